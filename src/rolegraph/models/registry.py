"""Model strings (``local``, ``openai:gpt-4o-mini``, ...) to models: a table from prefix to factory.

Providers are imported only when their string is resolved, so ``import rolegraph``
loads neither llama.cpp nor the OpenAI SDK.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rolegraph.errors import ModelNotAvailableError
from rolegraph.models.model import Model
from rolegraph.models.providers import HF_ROUTER_URL, OLLAMA_URL

__all__ = ["HF_ROUTER_URL", "MODEL_FORMS", "MODEL_STRING_FORMS", "OLLAMA_URL", "ModelForm", "resolve_model"]

Factory = Callable[[str, str, Path], "Model | None"]
"""Makes the model: ``(argument after the prefix, whole model string, base folder) -> Model``,
or None when the argument does not have the form's shape."""


@dataclass(frozen=True)
class ModelForm:
    """One kind of model string: how it is written and what makes its model."""

    form: str
    """How it is written, e.g. ``ollama:<model>`` (shown when a string matches no form)."""
    factory: Factory
    """Makes the model from the string's parts."""
    argument: bool = True
    """Whether the prefix takes an argument (``openai:<model>``) or stands alone (``local``)."""


def _local(_rest: str, string: str, _base: Path) -> Model:
    from rolegraph.models.local import LlamaCppModel, local_model_path

    return LlamaCppModel(local_model_path(), name=string)


def _llamacpp(rest: str, string: str, base: Path) -> Model:
    from rolegraph.models.local import LlamaCppModel

    return LlamaCppModel(_path(rest, base), name=string)


def _openai(rest: str, string: str, _base: Path) -> Model:
    from rolegraph.models.openai_compat import OpenAIModel
    from rolegraph.models.providers import OpenAIProvider

    return OpenAIModel(rest, provider=OpenAIProvider.openai(purpose=f"model {string}"), name=string)


_COMPATIBLE = re.compile(r"^(?P<model>.+?)@(?P<url>https?://\S+)$")


def _compatible(rest: str, string: str, _base: Path) -> Model | None:
    from rolegraph.models.openai_compat import OpenAIModel
    from rolegraph.models.providers import OpenAIProvider

    match = _COMPATIBLE.match(rest)
    if match is None:
        return None
    provider = OpenAIProvider.compatible(match["url"], purpose=f"model {string}")
    return OpenAIModel(match["model"], provider=provider, name=string)


def _ollama(rest: str, string: str, _base: Path) -> Model:
    from rolegraph.models.openai_compat import OpenAIModel
    from rolegraph.models.providers import OpenAIProvider

    return OpenAIModel(rest, provider=OpenAIProvider.ollama(purpose=f"model {string}"), name=string)


def _hf(rest: str, string: str, _base: Path) -> Model:
    from rolegraph.models.openai_compat import OpenAIModel
    from rolegraph.models.providers import OpenAIProvider

    return OpenAIModel(rest, provider=OpenAIProvider.hf_router(purpose=f"model {string}"), name=string)


def _scripted(rest: str, string: str, base: Path) -> Model:
    from rolegraph.models.scripted import ScriptedModel

    return ScriptedModel.from_yaml(_path(rest, base), name=string)


MODEL_FORMS: dict[str, ModelForm] = {
    "local": ModelForm("local", _local, argument=False),
    "llamacpp": ModelForm("llamacpp:/path/to/model.gguf", _llamacpp),
    "openai": ModelForm("openai:<model>", _openai),
    "openai-compatible": ModelForm("openai-compatible:<model>@<base_url>", _compatible),
    "ollama": ModelForm("ollama:<model>", _ollama),
    "hf": ModelForm("hf:<repo>", _hf),
    "scripted": ModelForm("scripted:<file.yaml>", _scripted),
}
"""Every kind of model string, by prefix."""

MODEL_STRING_FORMS = tuple(form.form for form in MODEL_FORMS.values())
"""Every form `resolve_model` accepts."""


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
    string = model_string.strip()
    prefix, colon, rest = string.partition(":")
    rest = rest.strip()
    form = MODEL_FORMS.get(prefix)
    model = None
    if form is not None and (bool(rest) if form.argument else not colon):
        model = form.factory(rest, string, base_dir or Path.cwd())
    if model is None:
        forms = "\n".join(f"  {form}" for form in MODEL_STRING_FORMS)
        raise ModelNotAvailableError(f"unknown model string {model_string!r}; use one of:\n{forms}")
    return model


def _path(text: str, base: Path) -> Path:
    path = Path(os.path.expanduser(text))
    return path if path.is_absolute() else base / path
