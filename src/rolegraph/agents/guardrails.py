"""Output checks: each answer is checked before it is accepted, and each check is a ``run_guardrail`` span.

The course's "evaluate outputs for bias or inappropriate content". A check looks at
an answer (the validated output, a dict) and gives a `Verdict`. An agent sends a
failed check's reason back to its model as a repair turn, like a validation error;
when the repairs run out the step fails with the check's message. A check that
raises is a failed check with its error, never a crash of the run.

Built in: `FunctionCheck` (a Python function), `NoPII`, `Blocklist`, `MaxLength`,
`JudgeCheck` (a model answering pass or fail under a JSON schema) and
`ModerationCheck` (a classifier such as OpenAI's moderation endpoint).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rolegraph.models.messages import Message
from rolegraph.models.model import Model, ModelSettings
from rolegraph.traces.spans import SpanKind
from rolegraph.traces.tracer import Tracer

__all__ = [
    "Blocklist",
    "FunctionCheck",
    "JudgeCheck",
    "MaxLength",
    "ModerationCheck",
    "NoPII",
    "OutputCheck",
    "Verdict",
    "check_output",
]

_REASON_MAX_CHARS = 500


@dataclass(frozen=True)
class Verdict:
    """What a check says of one answer.

    Attributes:
        passed: Whether the answer may be accepted.
        reason: Why it failed (or a note on why it passed), for the model and the trace.
    """

    passed: bool
    reason: str = ""


class OutputCheck(ABC):
    """A check of an answer; `name` labels its span and its messages."""

    name: str

    @abstractmethod
    async def __call__(self, output: Mapping[str, Any], tracer: Tracer) -> Verdict:
        """Judge `output` (a model call it makes goes under `tracer`)."""


def _texts(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """``(field path, text)`` for every string in an answer."""
    if isinstance(value, str):
        yield path or "(answer)", value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _texts(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _texts(item, f"{path}[{index}]")


class FunctionCheck(OutputCheck):
    """A Python function of the answer: None or True passes; False, or a string (the reason), fails.

    Sync functions run in a worker thread, off the event loop; async ones are awaited.
    """

    def __init__(self, name: str, fn: Callable[[dict[str, Any]], Any]) -> None:
        self.name = name
        self.fn = fn

    async def __call__(self, output: Mapping[str, Any], tracer: Tracer) -> Verdict:
        """Call the function with a copy of the answer."""
        answer = json.loads(json.dumps(output))  # the function may not change the answer it checks
        if inspect.iscoroutinefunction(self.fn):
            value = await self.fn(answer)
        else:
            value = await asyncio.to_thread(self.fn, answer)
        if isinstance(value, Awaitable):
            value = await value
        if value is None or value is True:
            return Verdict(True)
        if value is False:
            return Verdict(False, "the answer did not pass")
        if isinstance(value, str):
            return Verdict(False, value)
        if isinstance(value, Verdict):
            return value
        raise TypeError(f"returned {type(value).__name__}; return None or True to pass, False or a reason to fail")


_PII = (
    ("an email address", re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")),
    ("a phone number", re.compile(r"(?<![\w.])\+?\d{1,3}?[ .-]?\(?\d{2,4}\)?[ .-]\d{3,4}[ .-]\d{3,4}(?![\w.])")),
    (
        "an API key",
        re.compile(
            r"\b(sk-[A-Za-z0-9_-]{16,}|hf_[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}"
            r"|xox[abposr]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35})\b"
        ),
    ),
)


class NoPII(OutputCheck):
    """Fails an answer holding an email address, a phone number or an API-key-shaped string.

    The reason names what was found and where, never the value (it would reach the trace).
    """

    name = "no_pii"

    async def __call__(self, output: Mapping[str, Any], tracer: Tracer) -> Verdict:
        """Scan every string of the answer."""
        found = [f"{what} in {path}" for path, text in _texts(output) for what, pattern in _PII if pattern.search(text)]
        if found:
            return Verdict(False, f"the answer contains {'; '.join(dict.fromkeys(found))}: remove it")
        return Verdict(True)


class Blocklist(OutputCheck):
    """Fails an answer holding any of the words or phrases (whole words, any case)."""

    name = "blocklist"

    def __init__(self, words: Sequence[str]) -> None:
        self.words = list(words)
        self._patterns = [(w, re.compile(rf"(?<!\w){re.escape(w)}(?!\w)", re.IGNORECASE)) for w in self.words]

    async def __call__(self, output: Mapping[str, Any], tracer: Tracer) -> Verdict:
        """Look for each word in every string of the answer."""
        texts = [text for _, text in _texts(output)]
        hits = [word for word, pattern in self._patterns if any(pattern.search(t) for t in texts)]
        if hits:
            return Verdict(False, f"the answer uses blocked words: {', '.join(repr(h) for h in hits)}; rephrase it")
        return Verdict(True)


class MaxLength(OutputCheck):
    """Fails an answer whose text (every string in it, together) is longer than `limit` characters."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.name = f"max_length {limit}"

    async def __call__(self, output: Mapping[str, Any], tracer: Tracer) -> Verdict:
        """Count the characters of every string of the answer."""
        length = sum(len(text) for _, text in _texts(output))
        if length > self.limit:
            return Verdict(False, f"the answer's text is {length} characters; shorten it to at most {self.limit}")
        return Verdict(True)


JUDGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"verdict": {"type": "string", "enum": ["pass", "fail"]}, "reason": {"type": "string"}},
    "required": ["verdict", "reason"],
    "additionalProperties": False,
}
"""What a judge answers: the verdict and a reason (sent as the output schema: a grammar for the embedded model)."""


class JudgeCheck(OutputCheck):
    """A model that reads the answer and the check's prompt, and answers pass or fail with a reason.

    A reply that is not such a verdict (garbage, a refusal, a timeout) fails the check:
    an answer nobody could judge is not accepted.
    """

    def __init__(self, model: Model, prompt: str, settings: ModelSettings | None = None) -> None:
        self.model = model
        self.prompt = prompt
        self.settings = settings or ModelSettings()
        self.name = f"judge {model.name}"

    async def __call__(self, output: Mapping[str, Any], tracer: Tracer) -> Verdict:
        """Ask the judge model, in a ``chat`` span of its own (its tokens are traced)."""
        messages = [
            Message.system(
                "You check an answer written by another assistant against one rule.\n"
                f"The rule: {self.prompt}\n"
                'Reply with JSON: {"verdict": "pass" or "fail", "reason": one sentence}.'
            ),
            Message.user(json.dumps(output, ensure_ascii=False)),
        ]
        with tracer.span(
            SpanKind.CHAT,
            f"chat {self.model.name}",
            gen_ai__operation__name="chat",
            gen_ai__request__model=self.model.name,
            rolegraph__purpose="judge",
        ) as span:
            async with asyncio.timeout(self.settings.timeout):
                completion = await self.model.complete(messages, output_schema=JUDGE_SCHEMA, settings=self.settings)
            span.record_usage(completion.usage.input_tokens, completion.usage.output_tokens)
            span.set(rolegraph__output__text=completion.text[:_REASON_MAX_CHARS])
        return _judge_verdict(completion.text, self.model.name)


def _judge_verdict(text: str, model: str) -> Verdict:
    try:
        reply = json.loads(text)
    except ValueError:
        reply = None
    if not isinstance(reply, dict) or reply.get("verdict") not in ("pass", "fail"):
        shown = text.strip()[:200] or "(nothing)"
        return Verdict(False, f"the judge {model} gave no verdict (it answered {shown!r}); the answer is not accepted")
    reason = str(reply.get("reason", "")).strip()
    return Verdict(reply["verdict"] == "pass", reason or f"the judge {model} said {reply['verdict']}")


Classifier = Callable[[str], Awaitable[list[str]]]
"""Classifies a text: the categories it is flagged for (empty: not flagged)."""


class ModerationCheck(OutputCheck):
    """Fails an answer a moderation classifier flags (`rolegraph.models.moderation` for OpenAI's endpoint)."""

    name = "moderation"

    def __init__(self, classify: Classifier) -> None:
        self.classify = classify

    async def __call__(self, output: Mapping[str, Any], tracer: Tracer) -> Verdict:
        """Send the answer's text to the classifier."""
        text = "\n".join(text for _, text in _texts(output))
        flagged = await self.classify(text)
        if flagged:
            return Verdict(False, f"the answer was flagged by moderation for: {', '.join(flagged)}; rewrite it")
        return Verdict(True)


async def check_output(checks: Sequence[OutputCheck], output: Mapping[str, Any], tracer: Tracer) -> str | None:
    """Run every check on `output`, each in a ``run_guardrail`` span; what failed, or None when all passed.

    A check that raises has failed, with its error as the reason.
    """
    failed: list[str] = []
    for check in checks:
        with tracer.span(
            SpanKind.RUN_GUARDRAIL, f"run_guardrail {check.name}", rolegraph__guardrail__name=check.name
        ) as span:
            try:
                verdict = await check(output, tracer)
            except Exception as exc:  # a broken check fails the answer; it never crashes the run
                verdict = Verdict(False, f"the check raised {type(exc).__name__}: {exc}")
            reason = verdict.reason[:_REASON_MAX_CHARS]
            span.set(
                rolegraph__guardrail__verdict="pass" if verdict.passed else "fail", rolegraph__guardrail__reason=reason
            )
            if not verdict.passed:
                span.status = "failed_check"
                failed.append(f"check {check.name} failed: {reason}")
    return "\n".join(failed) if failed else None
