"""Language models behind one interface: OpenAI (Responses, Chat Completions), Hugging Face, llama.cpp, scripted.

`resolve_model` turns a model string (``local``, ``openai:gpt-4o-mini``, ...) into a
`Model`; providers load their heavy dependencies only when constructed.
"""

from rolegraph.models.huggingface import HFInferenceModel, HFProvider
from rolegraph.models.local import LlamaCppModel, LoRA, local_model_path
from rolegraph.models.messages import Message, ToolCall, ToolSpec
from rolegraph.models.model import Completion, Model, ModelSettings, Usage
from rolegraph.models.openai_compat import OpenAIModel
from rolegraph.models.openai_responses import OpenAIResponsesModel
from rolegraph.models.providers import OpenAIProvider, Provider
from rolegraph.models.registry import ModelOptions, resolve_model
from rolegraph.models.scripted import ScriptedCall, ScriptedModel

__all__ = [
    "Completion",
    "HFInferenceModel",
    "HFProvider",
    "LlamaCppModel",
    "LoRA",
    "Message",
    "Model",
    "ModelOptions",
    "ModelSettings",
    "OpenAIModel",
    "OpenAIProvider",
    "OpenAIResponsesModel",
    "Provider",
    "ScriptedCall",
    "ScriptedModel",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "local_model_path",
    "resolve_model",
]
