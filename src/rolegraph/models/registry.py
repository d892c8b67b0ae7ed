"""Model strings (``local``, ``openai:gpt-4o-mini``, ...) to models.

Providers are imported only when their string is resolved, so ``import rolegraph``
loads neither llama.cpp nor the OpenAI SDK.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from rolegraph.errors import ModelNotAvailableError
from rolegraph.models.model import Model

__all__ = ["HF_ROUTER_URL", "MODEL_STRING_FORMS", "OLLAMA_URL", "resolve_model"]

OLLAMA_URL = "http://localhost:11434/v1"
"""Where ``ollama:`` models are served."""
HF_ROUTER_URL = "https://router.huggingface.co/v1"
"""Where ``hf:`` models are served (Hugging Face's OpenAI-compatible router)."""

MODEL_STRING_FORMS = (
    "local",
    "llamacpp:/path/to/model.gguf",
    "openai:<model>",
    "openai-compatible:<model>@<base_url>",
    "ollama:<model>",
    "hf:<repo>",
    "scripted:<file.yaml>",
)
"""Every form `resolve_model` accepts."""

_COMPATIBLE = re.compile(r"^(?P<model>.+?)@(?P<url>https?://\S+)$")


def resolve_model(model_string: str, *, base_dir: Path | None = None) -> Model:
    """The model a model string names.

    Args:
        model_string: One of `MODEL_STRING_FORMS`, e.g. ``local`` or ``ollama:qwen2.5:7b``.
        base_dir: Where relative paths (``llamacpp:``, ``scripted:``) start; default: the working directory.

    Raises:
        ModelNotAvailableError: The string is not a known form, or the model cannot be
            used here (package, file or key missing).
        ModelError: The model exists but could not be loaded.
    """
    prefix, _, rest = model_string.strip().partition(":")
    rest = rest.strip()
    base = base_dir or Path.cwd()
    if model_string.strip() == "local":
        from rolegraph.models.local import LlamaCppModel, local_model_path

        return LlamaCppModel(local_model_path(), name="local")
    if prefix == "llamacpp" and rest:
        from rolegraph.models.local import LlamaCppModel

        return LlamaCppModel(_path(rest, base), name=model_string)
    if prefix == "openai" and rest:
        from rolegraph.models.openai_compat import OpenAIModel

        return OpenAIModel(rest, name=model_string)
    if prefix == "openai-compatible" and (match := _COMPATIBLE.match(rest)):
        from rolegraph.models.openai_compat import OpenAIModel

        # A local server needs no key; one behind a gateway may want the usual variable.
        return OpenAIModel(match["model"], base_url=match["url"], require_key=False, name=model_string)
    if prefix == "ollama" and rest:
        from rolegraph.models.openai_compat import OpenAIModel

        return OpenAIModel(
            rest, base_url=OLLAMA_URL, api_key_env="OLLAMA_API_KEY", require_key=False, name=model_string
        )
    if prefix == "hf" and rest:
        from rolegraph.models.openai_compat import OpenAIModel

        return OpenAIModel(rest, base_url=HF_ROUTER_URL, api_key_env="HF_TOKEN", require_key=True, name=model_string)
    if prefix == "scripted" and rest:
        from rolegraph.models.scripted import ScriptedModel

        return ScriptedModel.from_yaml(_path(rest, base), name=model_string)
    forms = "\n".join(f"  {form}" for form in MODEL_STRING_FORMS)
    raise ModelNotAvailableError(f"unknown model string {model_string!r}; use one of:\n{forms}")


def _path(text: str, base: Path) -> Path:
    path = Path(os.path.expanduser(text))
    return path if path.is_absolute() else base / path
