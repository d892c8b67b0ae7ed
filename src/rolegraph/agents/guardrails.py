"""Output checks: each answer is checked before it is accepted, and each check is a ``run_guardrail`` span.

The course's "evaluate outputs for bias or inappropriate content". A check looks at
an answer (the validated output, a dict) and gives a `Verdict`. An agent sends a
failed check's reason back to its model as a repair turn, like a validation error;
when the repairs run out the step fails with the check's message. A check that
raises is a failed check with its error, never a crash of the run.

Built in: `FunctionCheck` (a Python function), `NoPII`, `Blocklist`, `MaxLength`,
`JudgeCheck` (a model answering pass or fail under a JSON schema) and
`ModerationCheck` (a classifier model such as OpenAI's moderation endpoint,
`rolegraph.models.moderation`).

A check's own model call is a call of the run: it takes the path an agent's call
takes (`rolegraph.agents.model_calls`), so it is journaled under its call id
(``<agent run>/check/<model call>/<check>``), counted in the run's usage and
budgets, answered from the journal on resume and replay, and from the call cache
when the cache is on for its model. `CheckCalls` is where a run's checks send
them; without it (a check used on its own) the calls are just made.
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

from rolegraph.agents.call_ids import check_call_id
from rolegraph.agents.journal import CallJournal
from rolegraph.agents.model_calls import CallPath
from rolegraph.errors import RunError
from rolegraph.models.cache import RunCache
from rolegraph.models.messages import Message
from rolegraph.models.model import Model, ModelSettings
from rolegraph.traces.spans import SpanKind
from rolegraph.traces.tracer import Tracer

__all__ = [
    "Blocklist",
    "CheckCall",
    "CheckCalls",
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


@dataclass(frozen=True)
class CheckCalls:
    """Where the model calls of a step's output checks go: the run's journal for each model, and the cache.

    Attributes:
        journals: Gives the run's journal for the step and a model's name (None: no journal).
        cache: The model-call cache, used by a check whose model has it on.
    """

    journals: Callable[[str], CallJournal | None] | None = None
    cache: RunCache | None = None


@dataclass(frozen=True)
class CheckCall:
    """One check of one answer: where its spans go, and the id and path of its model call."""

    tracer: Tracer
    call_id: str = "check"
    """The id its model call is journaled under (`rolegraph.agents.call_ids.check_call_id`)."""
    calls: CheckCalls = CheckCalls()

    def path(self, model: Model, *, cached: bool) -> CallPath:
        """The call path of `model`'s call: its journal, and the cache if `cached` (the model has it on)."""
        journal = self.calls.journals(model.name) if self.calls.journals is not None else None
        return CallPath(self.tracer, journal, self.calls.cache if cached else None)


class OutputCheck(ABC):
    """A check of an answer; `name` labels its span and its messages."""

    name: str

    @abstractmethod
    async def __call__(self, output: Mapping[str, Any], call: CheckCall) -> Verdict:
        """Judge `output` (a model call it makes goes `call.path(...)`, under `call.tracer`)."""


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

    async def __call__(self, output: Mapping[str, Any], call: CheckCall) -> Verdict:
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

    async def __call__(self, output: Mapping[str, Any], call: CheckCall) -> Verdict:
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

    async def __call__(self, output: Mapping[str, Any], call: CheckCall) -> Verdict:
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

    async def __call__(self, output: Mapping[str, Any], call: CheckCall) -> Verdict:
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

    Args:
        model: The judge.
        prompt: The rule it checks.
        settings: Its sampling and limits.
        cache: Whether the model-call cache is on for the judge's model.
    """

    def __init__(
        self, model: Model, prompt: str, settings: ModelSettings | None = None, *, cache: bool = False
    ) -> None:
        self.model = model
        self.prompt = prompt
        self.settings = settings or ModelSettings()
        self.cache = cache
        self.name = f"judge {model.name}"

    async def __call__(self, output: Mapping[str, Any], call: CheckCall) -> Verdict:
        """Ask the judge model, in a ``chat`` span of its own, as a call of the run."""
        messages = [
            Message.system(
                "You check an answer written by another assistant against one rule.\n"
                f"The rule: {self.prompt}\n"
                'Reply with JSON: {"verdict": "pass" or "fail", "reason": one sentence}.'
            ),
            Message.user(json.dumps(output, ensure_ascii=False)),
        ]
        completion = await call.path(self.model, cached=self.cache).complete(
            self.model,
            messages,
            call_id=call.call_id,
            settings=self.settings,
            schema=JUDGE_SCHEMA,
            attributes={"rolegraph__purpose": "judge"},
        )
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


class ModerationCheck(OutputCheck):
    """Fails an answer a moderation classifier flags.

    The classifier is a model (`rolegraph.models.moderation.Moderation` for OpenAI's endpoint)
    sent the answer's text, that answers ``{"flagged": [categories]}`` (empty: not flagged).

    Args:
        model: The classifier.
        cache: Whether the model-call cache is on for it.
    """

    name = "moderation"

    def __init__(self, model: Model, *, cache: bool = False) -> None:
        self.model = model
        self.cache = cache

    async def __call__(self, output: Mapping[str, Any], call: CheckCall) -> Verdict:
        """Send the answer's text to the classifier, as a call of the run."""
        text = "\n".join(text for _, text in _texts(output))
        completion = await call.path(self.model, cached=self.cache).complete(
            self.model,
            [Message.user(text)],
            call_id=call.call_id,
            settings=ModelSettings(),
            attributes={"rolegraph__purpose": "moderation"},
        )
        flagged = _flagged(completion.text)
        if flagged:
            return Verdict(False, f"the answer was flagged by moderation for: {', '.join(flagged)}; rewrite it")
        return Verdict(True)


def _flagged(text: str) -> list[str]:
    """The categories a classifier's ``{"flagged": [...]}`` names.

    Raises:
        ValueError: The reply is not of that shape (the check then fails with it).
    """
    try:
        reply = json.loads(text)
    except ValueError:
        reply = None
    if not isinstance(reply, dict) or not isinstance(reply.get("flagged"), list):
        raise ValueError(f'the classifier answered {text.strip()[:200]!r}, not {{"flagged": [...]}}')
    return [str(category) for category in reply["flagged"]]


async def check_output(
    checks: Sequence[OutputCheck],
    output: Mapping[str, Any],
    tracer: Tracer,
    *,
    calls: CheckCalls | None = None,
    call_prefix: str = "checks",
    number: int = 0,
) -> str | None:
    """Run every check on `output`, each in a ``run_guardrail`` span; what failed, or None when all passed.

    A check that raises has failed, with its error as the reason; but the run's journal
    stopping the run (a budget crossed, a replay that diverged) stops it.

    Args:
        checks: The checks, in order.
        output: The answer.
        tracer: Where the spans go.
        calls: Where the checks' model calls go (default: they are just made).
        call_prefix: The prefix of the checking agent run's call ids (`rolegraph.agents.call_ids`).
        number: The model call whose answer this is (0: no model wrote it whole).
    """
    failed: list[str] = []
    for index, check in enumerate(checks):
        call = CheckCall(tracer, check_call_id(call_prefix, number, index), calls or CheckCalls())
        with tracer.span(
            SpanKind.RUN_GUARDRAIL, f"run_guardrail {check.name}", rolegraph__guardrail__name=check.name
        ) as span:
            try:
                verdict = await check(output, call)
            except RunError:
                raise
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
