"""Model strings (``local``, ``openai:gpt-4o-mini``, ...) to models: a table from prefix to factory.

A model string names the model; `ModelOptions` (the other keys of a workflow's
``models:`` entry) say how to build it: which OpenAI protocol (``api``), which
Hugging Face inference provider (``provider``, ``base_url``), which LoRA adapter
(``lora``, ``lora_scale``). Each form accepts only the options that mean something
for it; `option_problem` says what is wrong with the others.

Providers are imported only when their string is resolved, so ``import rolegraph``
loads neither llama.cpp nor the OpenAI SDK.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from rolegraph.errors import ModelNotAvailableError
from rolegraph.models.model import Model
from rolegraph.models.providers import HF_ROUTER_URL, OLLAMA_URL

if TYPE_CHECKING:
    from rolegraph.models.local import LoRA
    from rolegraph.models.providers import OpenAIProvider

__all__ = [
    "HF_ROUTER_URL",
    "MODEL_FORMS",
    "MODEL_STRING_FORMS",
    "OLLAMA_URL",
    "ModelForm",
    "ModelOptions",
    "model_string_problem",
    "option_problem",
    "resolve_model",
]


class ModelOptions(BaseModel):
    """How to build a model, beyond its string (a workflow's ``models.<name>`` keys besides the settings)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api: Literal["chat", "responses"] | None = None
    """OpenAI protocol: ``responses`` (the default of ``openai:``) or ``chat`` (the default of
    ``openai-compatible:`` and ``ollama:``)."""
    provider: str | None = None
    """``hf:`` only: the Hugging Face inference provider (``auto``, ``hf-inference``, ``together``, ...)."""
    base_url: str | None = None
    """``hf:`` only: send requests here (an Inference Endpoint, a TGI server) instead of the providers."""
    lora: str | None = None
    """``local``/``llamacpp:`` only: a LoRA adapter GGUF file (relative to the workflow's folder)."""
    lora_scale: float | None = Field(default=None, ge=-4.0, le=4.0)
    """How strongly the adapter applies (default 1.0; 0 gives the base model's output)."""

    def given(self) -> set[str]:
        """The names of the options set."""
        return {name for name, value in self if value is not None}


NO_OPTIONS = ModelOptions()

Factory = Callable[[str, str, Path, ModelOptions], "Model | None"]
"""Makes the model: ``(argument after the prefix, whole model string, base folder, options) -> Model``,
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
    options: frozenset[str] = frozenset()
    """The `ModelOptions` that mean something for this form."""


def _local(_rest: str, string: str, base: Path, options: ModelOptions) -> Model:
    from rolegraph.models.local import LlamaCppModel, local_model_path

    return LlamaCppModel(local_model_path(), lora=_lora(options, base), name=string)


def _llamacpp(rest: str, string: str, base: Path, options: ModelOptions) -> Model:
    from rolegraph.models.local import LlamaCppModel

    return LlamaCppModel(_path(rest, base), lora=_lora(options, base), name=string)


def _lora(options: ModelOptions, base: Path) -> LoRA | None:
    from rolegraph.models.local import LoRA

    if options.lora is None:
        return None
    return LoRA(_path(options.lora, base), 1.0 if options.lora_scale is None else options.lora_scale)


def _openai_model(model: str, string: str, provider: OpenAIProvider, api: str) -> Model:
    if api == "responses":
        from rolegraph.models.openai_responses import OpenAIResponsesModel

        return OpenAIResponsesModel(model, provider=provider, name=string)
    from rolegraph.models.openai_compat import OpenAIModel

    return OpenAIModel(model, provider=provider, name=string)


def _openai(rest: str, string: str, _base: Path, options: ModelOptions) -> Model:
    from rolegraph.models.providers import OpenAIProvider

    return _openai_model(rest, string, OpenAIProvider.openai(purpose=f"model {string}"), options.api or "responses")


_COMPATIBLE = re.compile(r"^(?P<model>.+?)@(?P<url>https?://\S+)$")


def _compatible(rest: str, string: str, _base: Path, options: ModelOptions) -> Model | None:
    from rolegraph.models.providers import OpenAIProvider

    match = _COMPATIBLE.match(rest)
    if match is None:
        return None
    provider = OpenAIProvider.compatible(match["url"], purpose=f"model {string}")
    return _openai_model(match["model"], string, provider, options.api or "chat")


def _ollama(rest: str, string: str, _base: Path, options: ModelOptions) -> Model:
    from rolegraph.models.providers import OpenAIProvider

    return _openai_model(rest, string, OpenAIProvider.ollama(purpose=f"model {string}"), options.api or "chat")


def _hf(rest: str, string: str, _base: Path, options: ModelOptions) -> Model:
    from rolegraph.models.huggingface import HFInferenceModel, HFProvider

    provider = HFProvider(provider=options.provider or "auto", base_url=options.base_url, purpose=f"model {string}")
    return HFInferenceModel(rest, provider=provider, name=string)


def _scripted(rest: str, string: str, base: Path, _options: ModelOptions) -> Model:
    from rolegraph.models.scripted import ScriptedModel

    return ScriptedModel.from_yaml(_path(rest, base), name=string, keep_calls=False)


_API = frozenset({"api"})
_LORA = frozenset({"lora", "lora_scale"})

MODEL_FORMS: dict[str, ModelForm] = {
    "local": ModelForm("local", _local, argument=False, options=_LORA),
    "llamacpp": ModelForm("llamacpp:/path/to/model.gguf", _llamacpp, options=_LORA),
    "openai": ModelForm("openai:<model>", _openai, options=_API),
    "openai-compatible": ModelForm("openai-compatible:<model>@<base_url>", _compatible, options=_API),
    "ollama": ModelForm("ollama:<model>", _ollama, options=_API),
    "hf": ModelForm("hf:<repo>", _hf, options=frozenset({"provider", "base_url"})),
    "scripted": ModelForm("scripted:<file.yaml>", _scripted),
}
"""Every kind of model string, by prefix."""

MODEL_STRING_FORMS = tuple(form.form for form in MODEL_FORMS.values())
"""Every form `resolve_model` accepts."""


def option_problem(model_string: str, options: ModelOptions) -> str | None:
    """What is wrong with giving `options` to the model `model_string` (None: nothing).

    An option the model's form does not take is a mistake worth saying (``lora:`` on an
    ``openai:`` model would otherwise be ignored), as is ``lora_scale`` without ``lora``.
    """
    prefix = model_string.strip().partition(":")[0]
    form = MODEL_FORMS.get(prefix)
    if form is None:
        return None  # an unknown string is reported on its own
    unknown = sorted(options.given() - form.options)
    if unknown:
        takes = ", ".join(sorted(form.options)) or "none"
        return f"{', '.join(unknown)} cannot be set for {form.form} models (they take: {takes})"
    if options.lora_scale is not None and options.lora is None:
        return "lora_scale needs lora: the adapter file to scale"
    return None


def model_string_problem(model_string: str) -> str | None:
    """What is wrong with the form of a model string (None: `resolve_model` knows how to build it).

    Only the form is checked (a known prefix, the argument it needs): no package, key,
    file or server is looked at.
    """
    string = model_string.strip()
    prefix, colon, rest = string.partition(":")
    rest = rest.strip()
    form = MODEL_FORMS.get(prefix)
    if form is not None and (bool(rest) if form.argument else not colon):
        if prefix != "openai-compatible" or _COMPATIBLE.match(rest) is not None:
            return None
        return f"{string!r} needs a base URL: write {form.form}, e.g. 'openai-compatible:my-model@http://127.0.0.1:8080/v1'"
    if form is not None:
        return f"{string!r} {'is incomplete' if form.argument else 'takes nothing after the colon'}: write {form.form}"
    close = difflib.get_close_matches(prefix, MODEL_FORMS, n=1, cutoff=0.6)
    hint = f"did you mean {close[0] + (':' if MODEL_FORMS[close[0]].argument else '')!r}? " if close else ""
    return f"unknown model string {string!r}; {hint}use one of: {', '.join(MODEL_STRING_FORMS)}"


MODERATION_PREFIX = "moderation:"
"""The names of the moderation check's classifiers (`rolegraph.models.moderation`): not a form of the workflow
file's model strings, but resolved here so that whatever resolves a run's models (a Ray actor) resolves them."""


def resolve_model(model_string: str, *, base_dir: Path | None = None, options: ModelOptions | None = None) -> Model:
    """The model a model string names, built as `options` say.

    Args:
        model_string: One of `MODEL_STRING_FORMS`, e.g. ``local`` or ``ollama:qwen2.5:7b``.
        base_dir: Where relative paths (``llamacpp:``, ``scripted:``, ``lora``) start; default: the working directory.
        options: How to build it (API, inference provider, LoRA adapter); default: the form's defaults.

    Raises:
        ModelNotAvailableError: The string is not a known form, an option does not apply to it,
            or the model cannot be used here (package, file or key missing).
        ModelError: The model exists but could not be loaded.
    """
    string = model_string.strip()
    options = options or NO_OPTIONS
    if string.startswith(MODERATION_PREFIX):  # the moderation check's classifier, named by `moderation_name`
        from rolegraph.models.moderation import Moderation

        name = string.removeprefix(MODERATION_PREFIX).removesuffix(f"@{options.base_url}")
        return Moderation(base_url=options.base_url, model=name)
    prefix, colon, rest = string.partition(":")
    rest = rest.strip()
    form = MODEL_FORMS.get(prefix)
    if form is not None and (problem := option_problem(string, options)) is not None:
        raise ModelNotAvailableError(f"model {string}: {problem}")
    model = None
    if form is not None and (bool(rest) if form.argument else not colon):
        model = form.factory(rest, string, base_dir or Path.cwd(), options)
    if model is None:
        forms = "\n".join(f"  {form}" for form in MODEL_STRING_FORMS)
        raise ModelNotAvailableError(f"unknown model string {model_string!r}; use one of:\n{forms}")
    return model


def _path(text: str, base: Path) -> Path:
    path = Path(os.path.expanduser(text))
    return path if path.is_absolute() else base / path
