"""The tracer: opens spans over contextvars and emits their records to the run's sinks.

Each span is emitted twice, at start and at end, so a hung step is visible in
the trace while it hangs. Records pass secret redaction, then a chain of
structlog-style processors (such as the run's content mode), and fan out to the
run's sinks. A span's text attributes are redacted once, not again in its end
record. Parent ids follow `contextvars`, so spans opened in parallel tasks nest
under the span that was current when the task was created.

A span opened while its tracer has no sink costs next to nothing: it is the one
shared `UNRECORDED` span, which keeps no attributes, times, status or usage and
is not made current. Nothing but a sink reads those: a run's usage is summed
from what its model calls return, not from spans. A sink added later sees every
span opened after it, in full (start and end), nested under the innermost span
that was recorded.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Iterator, MutableMapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from types import TracebackType
from typing import Any

from rolegraph.traces.content import Processor
from rolegraph.traces.redact import Redactor
from rolegraph.traces.sinks import TraceSink
from rolegraph.traces.spans import _DOTTED, UNRECORDED, Span, SpanKind, _current, _dotted

__all__ = ["Tracer", "current_tracer"]

_tracer: contextvars.ContextVar[Tracer | None] = contextvars.ContextVar("rolegraph_tracer", default=None)


def current_tracer() -> Tracer | None:
    """The tracer of the innermost open span in this task's context, if any.

    For code that runs inside a span but was handed no tracer (a model provider
    reporting a retry), so that it can still record an event.
    """
    return _tracer.get()


class Tracer:
    """Opens spans for one run and writes their records to sinks.

    Args:
        run_id: The run the spans belong to.
        sinks: Where records go (more with `add_sink`).
        redactor: Secret redaction for every record (default: from the environment).
        processors: structlog processors run on each record after redaction
            (e.g. `rolegraph.traces.content.content_processor`).

    ```python
    tracer = Tracer("run-1", sinks=[JsonlSink(path)])
    with tracer.span(SpanKind.CHAT, "chat local") as span:
        span.record_usage(120, 40)
    ```
    """

    def __init__(
        self,
        run_id: str,
        sinks: Sequence[TraceSink] = (),
        redactor: Redactor | None = None,
        processors: Sequence[Processor] = (),
    ) -> None:
        self.run_id = run_id
        self.redactor = redactor or Redactor.from_env()
        self.sinks: list[TraceSink] = list(sinks)
        # After redaction: later processors (content modes) never see a secret.
        self._processors = list(processors)

    @property
    def recording(self) -> bool:
        """Whether a span opened now is recorded (a sink listens): a caller may skip working out the
        attributes of one that is not."""
        return bool(self.sinks)

    def add_sink(self, sink: TraceSink) -> None:
        """Send future records to `sink` too."""
        self.sinks.append(sink)

    def flush(self) -> None:
        """Have every sink that buffers (the JSONL file) write out what it holds."""
        for sink in self.sinks:
            flush = getattr(sink, "flush", None)
            if flush is not None:
                flush()

    def _send(self, record: dict[str, Any]) -> None:
        """Run a redacted record (its ``event`` set) through the processors and hand it to every sink."""
        if self._processors:
            event_dict: MutableMapping[str, Any] = record
            for processor in self._processors:
                event_dict = processor(None, "info", event_dict)
            record = event_dict if isinstance(event_dict, dict) else dict(event_dict)
        for sink in self.sinks:
            sink.emit(record)

    def span(
        self, kind: SpanKind, name: str, *, span_id: str | None = None, **attributes: Any
    ) -> AbstractContextManager[Span]:
        """Open a span under the current one; close it (with status and error) on exit.

        Attribute names may spell dots as ``__`` (``gen_ai__request__model``).
        `span_id` reopens a span recorded earlier (a resumed run continues its root span), so
        the spans of every process that worked on a run form one tree.

        While the tracer has no sink the span is `UNRECORDED` (shared, keeps nothing, not made
        current), unless it is given a `span_id`, which its caller may keep.
        """
        if not self.sinks and span_id is None:
            return _NOT_RECORDING
        parent = _current.get()
        # A span from another run (a workflow called inside a tool) is not our parent.
        if parent is not None and parent.run_id != self.run_id:
            parent = None
        dotted = {_DOTTED.get(key) or _dotted(key): value for key, value in attributes.items()} if attributes else None
        return _Scope(self, Span(kind, name, self.run_id, parent, dotted, span_id))

    @contextmanager
    def under(self, span_id: str | None) -> Iterator[None]:
        """Nest the spans opened in this context under `span_id`, a span another process holds open
        (a step dispatched to a worker nests under the driver's span for it)."""
        if span_id is None:
            yield
            return
        token = _current.set(Span(SpanKind.INVOKE_AGENT, "remote parent", self.run_id, span_id=span_id))
        try:
            yield
        finally:
            _current.reset(token)

    def ingest(self, record: dict[str, Any]) -> None:
        """Emit a record another process's tracer made (a worker's), through this tracer's redaction,
        processors and sinks, as if it had been made here."""
        if not self.sinks:
            return
        fields = dict(record)
        event = str(fields.pop("event", "event"))
        redacted = self.redactor.value(fields)
        redacted["event"] = event
        self._send(redacted)

    def event(self, name: str, **attributes: Any) -> None:
        """Record a point-in-time event under the current span (e.g. a run resumed)."""
        if not self.sinks:
            return
        parent = _current.get()
        record = {
            "name": name,
            "run_id": self.run_id,
            "parent_id": parent.span_id if parent else None,
            "time": time.time(),
            "attributes": {k.replace("__", "."): v for k, v in attributes.items()},
        }
        redacted = self.redactor.value(record)
        redacted["event"] = "event"
        self._send(redacted)

    def _start(self, span: Span) -> None:
        """Emit a span's start record (the first of its two)."""
        if not self.sinks:
            return  # nobody listens: building and redacting the record would be wasted work
        record = self._head(span).copy()  # a copy per record: a sink may keep it (the index writer's buffer does)
        attributes = span.attributes
        record["attributes"] = self.redactor.attributes(attributes, span.redacted) if attributes else {}
        record["event"] = "span_start"
        self._send(record)

    def _head(self, span: Span) -> dict[str, Any]:
        """The fields every record of `span` starts with, made once per span."""
        parent = span.parent
        head = span.head = {
            "run_id": span.run_id,
            "span_id": span.span_id,
            "parent_id": None if parent is None else parent.span_id,
            "kind": _KIND_TEXT[span.kind],
            "name": self.redactor.text(span.name),  # a name shorter than any secret is passed over by text itself
            "start_time": span.start_time,
        }
        return head

    def _end(self, span: Span) -> None:
        """Emit a span's end record: its start's fields, its attributes now, how it ended."""
        if not self.sinks:
            return
        # The span's last record: it takes the head itself, not a copy (the start record had one).
        # No head: a span reopened by id while no sink listened, and a sink added since; its start went nowhere.
        record = span.head or self._head(span)
        span.head = None
        attributes = record["attributes"] = self.redactor.attributes(span.attributes, span.redacted)
        record["end_time"] = span.end_time
        record["duration_s"] = span.duration_s
        record["status"] = span.status
        if span.error is not None:
            record["error"] = self.redactor.text(span.error)
        if span.kind is not SpanKind.CHAT and (span.aggregated_input_tokens or span.aggregated_output_tokens):
            attributes["rolegraph.aggregated.input_tokens"] = span.aggregated_input_tokens
            attributes["rolegraph.aggregated.output_tokens"] = span.aggregated_output_tokens
        record["event"] = "span_end"
        self._send(record)


_KIND_TEXT = {kind: kind.value for kind in SpanKind}
"""Each kind's text, looked up (an enum's ``value`` is a descriptor call on every record)."""


class _NotRecording:
    """What `Tracer.span` returns while no sink listens: enters `UNRECORDED`, changes no context, and lets
    any exception through. One shared object: it holds no state."""

    __slots__ = ()

    def __enter__(self) -> Span:
        return UNRECORDED

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


_NOT_RECORDING = _NotRecording()


class _Scope:
    """What `Tracer.span` returns: a context manager that emits the span's start and end records.

    A class rather than a generator-based context manager: one is entered per model call, tool call
    and step, and this costs about half as much.
    """

    __slots__ = ("_span", "_span_token", "_tracer", "_tracer_token")

    def __init__(self, tracer: Tracer, span: Span) -> None:
        self._tracer = tracer
        self._span = span
        self._tracer_token: contextvars.Token[Tracer | None] | None = None

    def __enter__(self) -> Span:
        span = self._span
        self._span_token = _current.set(span)
        # Nested spans of one tracer (nearly all) leave the current tracer as it is: one context change, not two.
        tracer = self._tracer
        self._tracer_token = None if _tracer.get() is tracer else _tracer.set(tracer)
        tracer._start(span)
        return span

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        span = self._span
        if exc is None:
            if span.status == "running":
                span.status = "ok"
        elif isinstance(exc, asyncio.CancelledError | KeyboardInterrupt):
            span.status = "cancelled"
        else:
            span.status = "error"
            span.error = f"{type(exc).__name__}: {exc}"
        _current.reset(self._span_token)
        if self._tracer_token is not None:
            _tracer.reset(self._tracer_token)
        span.end_time = time.time()
        span.duration_s = time.perf_counter() - span.start_perf
        self._tracer._end(span)
