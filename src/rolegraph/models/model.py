"""The `Model` interface every provider implements, and what a call returns."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rolegraph.models.messages import Message, ToolCall, ToolSpec
from rolegraph.tokens import Usage  # defined in a leaf so that traces can return it too; re-exported here

__all__ = ["Completion", "Model", "ModelSettings", "Usage"]


class ModelSettings(BaseModel):
    """Sampling and limits for a model call. `None` means the provider's default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    """Sampling temperature; 0 is greedy (most reproducible)."""
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    """Nucleus sampling mass."""
    seed: int | None = None
    """Sampling seed, for providers that honour one (llama.cpp does; OpenAI best-effort)."""
    max_tokens: int | None = Field(default=None, gt=0)
    """Upper bound on generated tokens per call."""
    timeout: float = Field(default=300.0, gt=0)
    """Seconds before a single call is abandoned, its retries and their waits included."""
    retries: int | None = Field(default=None, ge=0, le=20)
    """Retries of a transient failure (connection reset, timeout, 429, 5xx) per call; default: the provider's."""
    attempt_timeout: float | None = Field(default=None, gt=0)
    """Seconds one try of a call may take before it is retried (default: `timeout`)."""
    tool_choice: Literal["auto", "required"] = "auto"
    """``required``: the model must call a tool this turn (it may not answer yet)."""

    def merged(self, override: ModelSettings | None) -> ModelSettings:
        """These settings with every field set in `override` taking precedence."""
        if override is None:
            return self
        return self.model_copy(update=override.model_dump(exclude_unset=True))


class Completion(BaseModel):
    """What a model call returned.

    Either `tool_calls` is non-empty (the model wants to act; `text` is its
    thought, possibly empty) or `text` is the answer. When the call was made with
    an `output_schema`, `text` is JSON meant to match it (validate it: models err).
    """

    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    finish_reason: str = "stop"
    """`stop`, `length` (hit max_tokens), `tool_calls`, `refusal` (`text` is the refusal), or a provider's own value."""
    model: str = ""
    """The model that answered, as the provider names it."""
    reasoning: list[dict[str, Any]] = Field(default_factory=list, exclude_if=lambda items: not items)
    """Reasoning items the provider returned (OpenAI's Responses API), opaque: the agent keeps them on
    the assistant message so they go back with the next turn. Not serialised when empty."""
    raw: Any = Field(default=None, exclude=True, repr=False)
    """The provider's own response object, for debugging; never serialised."""


class Model(ABC):
    """A language model behind one method.

    Providers implement `complete`. Messages and tool specs are OpenAI-shaped;
    a provider without native tool calling emulates it (the embedded model uses
    grammar-constrained decoding), so agents never need to know which kind they hold.
    """

    name: str
    """The model string this instance was made from, e.g. ``local`` or ``openai:gpt-4o-mini``."""
    samples_by_default: bool = True
    """Whether a call that sets no temperature samples (a hosted API's default of 1.0 does); a model
    that is reproducible by default (a fixed seed) says False, so its calls may be cached."""

    @property
    def model_id(self) -> str:
        """What the provider calls the model (OpenTelemetry's ``gen_ai.request.model``): ``gpt-4o-mini`` for
        ``openai:gpt-4o-mini``, the GGUF's name (``SmolLM2-135M-Instruct.Q4_1``) for ``local``. Recorded on
        every ``chat`` span as ``rolegraph.model.id``, which the OTLP export reports. Default: `name`."""
        return self.name

    @property
    def revision(self) -> str:
        """What tells this model's weights apart beyond `model_id`: a local file's size and modification
        time, so a cache never answers for weights that changed under the same name. Default: nothing
        (a hosted provider versions its models by name)."""
        return ""

    @property
    def options(self) -> dict[str, Any]:
        """How this model was built beyond its string, when that shapes its answers: the API spoken,
        an inference provider, a LoRA adapter. Recorded on every ``chat`` span. Default: nothing."""
        return {}

    @abstractmethod
    async def complete(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] | None = None,
        output_schema: dict[str, Any] | None = None,
        settings: ModelSettings | None = None,
    ) -> Completion:
        """Generate the next assistant turn.

        Args:
            messages: The conversation so far.
            tools: Tools the model may call; it answers with `tool_calls` to use them.
            output_schema: JSON Schema the final answer (``text``) must match, as JSON.
            settings: Sampling and limits for this call.

        Raises:
            ModelError: The provider failed (after its own retries, if any).
        """

    async def check(self) -> None:  # noqa: B027 -- optional hook, most models need no check before use
        """Fail early, before a run starts, when the model cannot be used (its server is not running).

        The engine calls it once per model at setup. Default: nothing to check.

        Raises:
            ModelNotAvailableError: The model cannot be reached; the message says what to do.
        """

    def skip_replayed(self, count: int) -> None:  # noqa: B027 -- optional hook, only positional models need it
        """Be told that `count` of this model's calls are answered without it: replayed from a resumed
        run's journal, or answered by the model-call cache.

        A model that answers by position (a script) moves past them; any other ignores it. Default: nothing.
        """

    async def aclose(self) -> None:  # noqa: B027 -- optional hook, most providers hold nothing
        """Release what the provider holds (connections, servers). Default: nothing."""
