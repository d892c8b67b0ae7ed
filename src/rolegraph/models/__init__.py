"""Language models behind one interface: OpenAI-compatible servers, embedded llama.cpp, scripted.

`resolve_model` turns a model string (``local``, ``openai:gpt-4o-mini``, ...) into a
`Model`; providers load their heavy dependencies only when constructed.
"""

from rolegraph.models.local import LlamaCppModel, local_model_path
from rolegraph.models.messages import Message, ToolCall, ToolSpec
from rolegraph.models.model import Completion, Model, ModelSettings, Usage
from rolegraph.models.openai_compat import OpenAIModel
from rolegraph.models.providers import OpenAIProvider, Provider
from rolegraph.models.registry import resolve_model
from rolegraph.models.scripted import ScriptedCall, ScriptedModel

__all__ = [
    "Completion",
    "LlamaCppModel",
    "Message",
    "Model",
    "ModelSettings",
    "OpenAIModel",
    "OpenAIProvider",
    "Provider",
    "ScriptedCall",
    "ScriptedModel",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "local_model_path",
    "resolve_model",
]
