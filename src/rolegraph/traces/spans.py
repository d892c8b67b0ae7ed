"""Spans: one timed, nested unit of work in a run (a model call, a tool call, a step)."""

from __future__ import annotations

import contextvars
import itertools
import os
import time
from collections.abc import Iterator
from enum import StrEnum
from typing import Any, ClassVar

from rolegraph.traces.redact import Remembered

__all__ = ["UNRECORDED", "Span", "SpanKind", "current_span"]


class SpanKind(StrEnum):
    """Kinds of span, after the OpenTelemetry GenAI conventions plus rolegraph's own."""

    INVOKE_WORKFLOW = "invoke_workflow"
    """A whole run."""
    INVOKE_AGENT = "invoke_agent"
    """One step's agent, from task to final answer."""
    PLAN = "plan"
    """Scheduling decisions: fan-out of a `for_each` step."""
    CHAT = "chat"
    """One model call. The only kind that carries ``gen_ai.usage.*``."""
    EXECUTE_TOOL = "execute_tool"
    """One tool call."""
    RUN_GUARDRAIL = "run_guardrail"
    """A check on a model output (validation, repair)."""
    REACT_STEP = "react_step"
    """One think-act-observe iteration of an agent."""
    ROUTE = "route"
    """A routing decision after a step (loop back or go on)."""
    CHECKPOINT = "checkpoint"
    """A step's output made durable."""


def _id_counter() -> Iterator[int]:
    """Span ids: a count from a random start drawn from the OS, per process (again in a forked child).

    Two processes appending to one trace (a resumed run) draw their starts at random among 2**63, so their ids
    meet only if one of them makes some quintillions of spans; the start is at most 2**63, so the count never
    reaches 16 hex digits' end nor 0 (OpenTelemetry's invalid span id). Counting rather than drawing each id
    keeps a run's ids in increasing order, and the trace index (keyed by run and span id) then adds each span
    row at the end of the run's keys instead of at a random place among them: about half the index's SQLite
    work per span. `next` on a count is atomic: threads never share an id.
    """
    return itertools.count(1 + (int.from_bytes(os.urandom(8), "big") >> 1))


_ids = _id_counter()


def _restart_ids() -> None:
    """In a forked child: a start of its own (its parent goes on counting from the same place)."""
    global _ids
    _ids = _id_counter()


os.register_at_fork(after_in_child=_restart_ids)


_DOTTED: dict[str, str] = {}
"""Attribute names as given to `Tracer.span` and `Span.set` (``gen_ai__request__model``) and as recorded
(``gen_ai.request.model``): the same few dozen names recur in every span, and a lookup costs less than a
`str.replace`."""


def _dotted(key: str) -> str:
    """`key` with each ``__`` spelled as a dot, remembered in `_DOTTED`."""
    dotted = key.replace("__", ".")
    if len(_DOTTED) < 4096:  # names are the engine's own and a few of the user's: this bound is never reached
        _DOTTED[key] = dotted
    return dotted


_current: contextvars.ContextVar[Span | None] = contextvars.ContextVar("rolegraph_span", default=None)


def current_span() -> Span | None:
    """The innermost open span in this task's context that is recorded, if any (a span opened while its
    tracer had no sink is not: see `UNRECORDED`)."""
    return _current.get()


class Span:
    """An open or finished span.

    Attributes use OpenTelemetry GenAI names where one exists (``gen_ai.*``)
    and ``rolegraph.*`` otherwise. Token counts live only on `chat` spans
    (``gen_ai.usage.*``); every ancestor accumulates them separately under
    ``rolegraph.aggregated.*``, so summing a trace never counts twice.

    A plain class with slots rather than a dataclass: one is made for every model call,
    tool call and step, and a hand-written constructor costs a third of the generated one.
    """

    __slots__ = (
        "aggregated_input_tokens",
        "aggregated_output_tokens",
        "attributes",
        "duration_s",
        "end_time",
        "error",
        "head",
        "kind",
        "name",
        "parent",
        "redacted",
        "run_id",
        "span_id",
        "start_perf",
        "start_time",
        "status",
    )

    recording: ClassVar[bool] = True
    """Whether the span is recorded (False only for `UNRECORDED`): a caller may skip working out attributes
    for one that is not."""

    def __init__(
        self,
        kind: SpanKind,
        name: str,
        run_id: str,
        parent: Span | None = None,
        attributes: dict[str, Any] | None = None,
        span_id: str | None = None,
    ) -> None:
        self.kind = kind
        self.name = name
        self.run_id = run_id
        self.parent = parent
        self.attributes: dict[str, Any] = {} if attributes is None else attributes
        self.span_id: str = f"{next(_ids):016x}" if span_id is None else span_id
        """64 bits in hex (OpenTelemetry style), unique across the processes that append to one trace, as a
        resumed run does (see `_id_counter`)."""
        self.start_time: float = time.time()
        self.start_perf: float = time.perf_counter()
        self.end_time: float | None = None
        self.duration_s: float | None = None
        self.status = "running"
        self.error: str | None = None
        self.aggregated_input_tokens = 0
        self.aggregated_output_tokens = 0
        self.redacted: Remembered = {}
        """Text attributes as last redacted (`Redactor.attributes`): a text is redacted once, not again in the
        span's end record."""
        self.head: dict[str, Any] | None = None
        """The fields every record of the span starts with (ids, kind, redacted name, start time), made for
        its first record: the start record is a copy, the end record the head itself."""

    def __repr__(self) -> str:
        return f"Span({self.kind.value}, {self.name!r}, span_id={self.span_id!r}, status={self.status!r})"

    def set(self, **attributes: Any) -> None:
        """Add or replace attributes (dots in names are spelled as ``__``: ``gen_ai__system``)."""
        own = self.attributes
        for key, value in attributes.items():
            own[_DOTTED.get(key) or _dotted(key)] = value

    def record_usage(self, input_tokens: int, output_tokens: int) -> None:
        """Record a model call's token usage on this `chat` span and roll it up its ancestors."""
        if self.kind is not SpanKind.CHAT:
            raise ValueError(f"token usage belongs on chat spans, not {self.kind}")
        self.attributes["gen_ai.usage.input_tokens"] = input_tokens
        self.attributes["gen_ai.usage.output_tokens"] = output_tokens
        node = self.parent
        while node is not None:
            node.aggregated_input_tokens += input_tokens
            node.aggregated_output_tokens += output_tokens
            node = node.parent


class _Unrecorded(Span):
    """What a span opened while no sink listens is: one shared object, on which setting attributes and
    recording usage do nothing (nothing would ever read them), as OpenTelemetry's non-recording span.

    Its id is OpenTelemetry's invalid span id (all zeros): it names no record.
    """

    __slots__ = ()
    recording: ClassVar[bool] = False

    def __repr__(self) -> str:
        return "UNRECORDED"

    def set(self, **attributes: Any) -> None:
        """Nothing: the span is not recorded."""

    def record_usage(self, input_tokens: int, output_tokens: int) -> None:
        """Nothing: the span is not recorded, and the usage of a call is counted where it is returned
        (`rolegraph.agents.agent.AgentResult.usage`), not on spans."""


UNRECORDED: Span = _Unrecorded(SpanKind.CHAT, "unrecorded", "", span_id="0" * 16)
"""The span `Tracer.span` gives while its tracer has no sink. Shared by every such span: what a caller writes on
it (a tool error's ``status``) is never read."""
