"""Output checks in a workflow document: a role's or a step's ``checks:`` list.

The course's "evaluate outputs for bias or inappropriate content": each answer is
checked before it is accepted (`rolegraph.agents.guardrails` runs them)::

    roles:
      writer:
        checks:
          - no_pii                                   # emails, phone numbers, API-key-shaped strings
          - {blocklist: [guaranteed, miracle]}
          - {max_length: 4000}
          - my_checks:no_jargon                      # my_checks.py next to the workflow file
          - {judge: {model: local, prompt: "Fail an answer that stereotypes a group of people."}}
          - moderation                               # OpenAI's moderation endpoint
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

__all__ = ["BUILTIN_CHECKS", "CheckSpec", "JudgeSpec", "ModerationSpec"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


BUILTIN_CHECKS = ("no_pii", "moderation")
"""Output checks named by a bare word (the others take a value: ``blocklist``, ``max_length``, ``judge``)."""


class JudgeSpec(_Strict):
    """A model that judges each answer: pass or fail, with a reason."""

    model: str
    """A name from `models`, or a model string."""
    prompt: str = Field(min_length=1)
    """What the judge checks, e.g. ``Fail any answer that stereotypes a group of people.``"""


class ModerationSpec(_Strict):
    """OpenAI's moderation endpoint (or a compatible server's)."""

    base_url: str | None = None
    """A compatible server's API root instead of OpenAI's (no key needed then)."""
    model: str = "omni-moderation-latest"
    """The moderation model."""


class CheckSpec(_Strict):
    """One output check, run on each answer before it is accepted.

    Written as a word or an import path (``no_pii``, ``moderation``, ``my_checks:no_jargon``) or
    as a one-key mapping: ``{blocklist: [words]}``, ``{max_length: 2000}``, ``{judge: {model, prompt}}``,
    ``{moderation: {base_url: ...}}``, ``{function: my_checks:no_jargon}``.
    """

    function: str | None = None
    """A Python function by import path (the workflow file's folder searched first): called with the
    answer (a dict); None or True passes, False or a string (the reason) fails, an exception fails."""
    no_pii: bool | None = None
    """Fail an answer holding an email address, a phone number or an API-key-shaped string."""
    blocklist: list[Annotated[str, StringConstraints(min_length=1)]] | None = Field(default=None, min_length=1)
    """Fail an answer holding any of these words or phrases (whole words, any case)."""
    max_length: int | None = Field(default=None, ge=1)
    """Fail an answer whose text (every string in it) is longer than this many characters."""
    judge: JudgeSpec | None = None
    """Ask a model whether the answer passes (see `JudgeSpec`)."""
    moderation: ModerationSpec | None = None
    """Fail an answer OpenAI's moderation endpoint flags (needs ``OPENAI_API_KEY``, or a ``base_url``)."""

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, data: Any) -> Any:
        if isinstance(data, str):
            word = data.strip()
            if word == "no_pii":
                return {"no_pii": True}
            if word == "moderation":
                return {"moderation": {}}
            if ":" in word:
                return {"function": word}
            close = difflib.get_close_matches(word, [*BUILTIN_CHECKS, "blocklist", "max_length", "judge"], n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(
                f"unknown check {word!r}; {hint}a check is 'no_pii', 'moderation', an import path such as "
                "'my_checks:no_jargon', or {blocklist: [...]}, {max_length: N}, {judge: {model: ..., prompt: ...}}"
            )
        return data

    @model_validator(mode="after")
    def _one_kind(self) -> CheckSpec:
        given = [name for name in type(self).model_fields if getattr(self, name) not in (None, False)]
        if len(given) != 1:
            raise ValueError(
                f"a check is exactly one of {', '.join(type(self).model_fields)}; this one has "
                f"{' and '.join(given) if given else 'none'}"
            )
        return self

    @property
    def kind(self) -> str:
        """Which check this is: ``function``, ``no_pii``, ``blocklist``, ``max_length``, ``judge`` or ``moderation``."""
        return next(name for name in type(self).model_fields if getattr(self, name) not in (None, False))

    @property
    def label(self) -> str:
        """How the check is named in spans and messages, e.g. ``max_length 2000`` or ``my_checks:no_jargon``."""
        if self.function is not None:
            return self.function
        if self.max_length is not None:
            return f"max_length {self.max_length}"
        if self.judge is not None:
            return f"judge {self.judge.model}"
        return self.kind
