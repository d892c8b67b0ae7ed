"""The tracer: opens spans over contextvars and emits their records through structlog.

Each span is emitted twice, at start and at end, so a hung step is visible in
the trace while it hangs. Records pass a structlog processor chain (secret
redaction, then any extra processors such as the run's content mode) and fan
out to the run's sinks. Parent ids follow
`contextvars`, so spans opened in parallel tasks nest under the span that was
current when the task was created.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from typing import Any

import structlog

from rolegraph.traces.content import Processor
from rolegraph.traces.redact import Redactor
from rolegraph.traces.sinks import TraceSink
from rolegraph.traces.spans import Span, SpanKind, _current

__all__ = ["Tracer", "current_tracer"]

_tracer: contextvars.ContextVar[Tracer | None] = contextvars.ContextVar("rolegraph_tracer", default=None)


def current_tracer() -> Tracer | None:
    """The tracer of the innermost open span in this task's context, if any.

    For code that runs inside a span but was handed no tracer (a model provider
    reporting a retry), so that it can still record an event.
    """
    return _tracer.get()


class _FanOut:
    """The structlog 'logger' at the end of the chain: hands each record to every sink."""

    def __init__(self, sinks: Sequence[TraceSink]) -> None:
        self.sinks = list(sinks)

    def info(self, record: dict[str, Any]) -> None:
        for sink in self.sinks:
            sink.emit(record)


def _finalize(_logger: object, _method: str, event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
    # The last processor's return value is passed to the logger method as-is.
    return {"record": event_dict}


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
        self._fanout = _FanOut(sinks)
        self._log = structlog.wrap_logger(
            self._fanout,
            # Redaction first: later processors (content modes) never see a secret.
            processors=[self._redact, *processors, _finalize],
            wrapper_class=structlog.BoundLogger,
            cache_logger_on_first_use=True,
        )

    def add_sink(self, sink: TraceSink) -> None:
        """Send future records to `sink` too."""
        self._fanout.sinks.append(sink)

    def _redact(self, _logger: object, _method: str, event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
        redacted: dict[str, Any] = self.redactor.value(event_dict)
        return redacted

    @contextmanager
    def span(self, kind: SpanKind, name: str, *, span_id: str | None = None, **attributes: Any) -> Iterator[Span]:
        """Open a span under the current one; close it (with status and error) on exit.

        Attribute names may spell dots as ``__`` (``gen_ai__request__model``).
        `span_id` reopens a span recorded earlier (a resumed run continues its root span), so
        the spans of every process that worked on a run form one tree.
        """
        parent = _current.get()
        # A span from another run (a workflow called inside a tool) is not our parent.
        if parent is not None and parent.run_id != self.run_id:
            parent = None
        span = Span(kind=kind, name=name, run_id=self.run_id, parent=parent)
        if span_id is not None:
            span.span_id = span_id
        span.set(**attributes)
        token = _current.set(span)
        tracer_token = _tracer.set(self)
        self._emit("span_start", span)
        try:
            yield span
        except (asyncio.CancelledError, KeyboardInterrupt):
            span.status = "cancelled"
            raise
        except BaseException as exc:
            span.status = "error"
            span.error = f"{type(exc).__name__}: {exc}"
            raise
        else:
            if span.status == "running":
                span.status = "ok"
        finally:
            _current.reset(token)
            _tracer.reset(tracer_token)
            span.end_time = time.time()
            span.duration_s = time.perf_counter() - span.start_perf
            self._emit("span_end", span)

    @contextmanager
    def under(self, span_id: str | None) -> Iterator[None]:
        """Nest the spans opened in this context under `span_id`, a span another process holds open
        (a step dispatched to a worker nests under the driver's span for it)."""
        if span_id is None:
            yield
            return
        token = _current.set(
            Span(kind=SpanKind.INVOKE_AGENT, name="remote parent", run_id=self.run_id, span_id=span_id)
        )
        try:
            yield
        finally:
            _current.reset(token)

    def ingest(self, record: dict[str, Any]) -> None:
        """Emit a record another process's tracer made (a worker's), through this tracer's redaction,
        processors and sinks, as if it had been made here."""
        if not self._fanout.sinks:
            return
        fields = dict(record)
        event = str(fields.pop("event", "event"))
        self._log.info(event, **fields)

    def event(self, name: str, **attributes: Any) -> None:
        """Record a point-in-time event under the current span (e.g. a run resumed)."""
        if not self._fanout.sinks:
            return
        parent = _current.get()
        self._log.info(
            "event",
            name=name,
            run_id=self.run_id,
            parent_id=parent.span_id if parent else None,
            time=time.time(),
            attributes={k.replace("__", "."): v for k, v in attributes.items()},
        )

    def _emit(self, event: str, span: Span) -> None:
        if not self._fanout.sinks:
            return  # nobody listens: building and redacting the record would be wasted work
        record: dict[str, Any] = {
            "run_id": span.run_id,
            "span_id": span.span_id,
            "parent_id": span.parent.span_id if span.parent else None,
            "kind": str(span.kind),
            "name": span.name,
            "start_time": span.start_time,
            "attributes": dict(span.attributes),
        }
        if event == "span_end":
            record["end_time"] = span.end_time
            record["duration_s"] = span.duration_s
            record["status"] = span.status
            if span.error is not None:
                record["error"] = span.error
            if span.kind is not SpanKind.CHAT and (span.aggregated_input_tokens or span.aggregated_output_tokens):
                record["attributes"]["rolegraph.aggregated.input_tokens"] = span.aggregated_input_tokens
                record["attributes"]["rolegraph.aggregated.output_tokens"] = span.aggregated_output_tokens
        self._log.info(event, **record)
