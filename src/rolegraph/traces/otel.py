"""Live OTLP export: each span sent to an OpenTelemetry collector as it ends, while the run goes on.

Enabled for a run when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set; the SDK's other
``OTEL_EXPORTER_OTLP_*`` variables (headers, compression, certificates) apply
as usual. Spans go through the OpenTelemetry SDK's `BatchSpanProcessor` and its
OTLP/HTTP protobuf exporter, so `emit` only converts and queues: a slow or
unreachable collector never holds up the run. At the end of the run `close`
flushes for at most ``shutdown_timeout_s`` seconds (``ROLEGRAPH_OTLP_SHUTDOWN_TIMEOUT``,
default 2) and then leaves whatever is unsent behind.

Spans are the same as ``rolegraph trace export``'s (`rolegraph.traces.export`
defines the mapping): trace and span ids derived from the run and span ids,
parent links, recorded start and end times, status, attributes as recorded
(``gen_ai.*`` after the OpenTelemetry GenAI conventions), point events on their
span, and the resource ``service.name=rolegraph`` with the run id and workflow.
Records arrive after the tracer's processor chain, so the export follows the
run's content mode and never carries a secret.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from opentelemetry import trace as otel_trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, Status, StatusCode, TraceFlags

from rolegraph.traces.export import (
    OTLP_ENDPOINT_VARS,
    SPAN_KIND_CLIENT,
    STATUS_ERROR,
    STATUS_OK,
    attribute_value,
    nanos,
    otlp_span_id,
    otlp_trace_id,
    span_attributes,
    span_kind,
    span_name,
    span_status,
)

__all__ = ["SHUTDOWN_TIMEOUT_VAR", "OtlpSink"]

#: Seconds a run waits at its end for the last spans to be exported.
SHUTDOWN_TIMEOUT_VAR = "ROLEGRAPH_OTLP_SHUTDOWN_TIMEOUT"
_TIMEOUT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_STATUS = {STATUS_OK: StatusCode.OK, STATUS_ERROR: StatusCode.ERROR}


def _attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    mapped = {key: attribute_value(value) for key, value in attributes.items()}
    return {key: value for key, value in mapped.items() if value is not None}


def _seconds(text: str | None, default: float) -> float:
    try:
        return max(0.0, float(text)) if text else default
    except ValueError:
        return default


def _scope() -> InstrumentationScope:
    try:
        return InstrumentationScope("rolegraph", version("rolegraph"))
    except PackageNotFoundError:  # running from a source tree that was never installed
        return InstrumentationScope("rolegraph", "0")


class OtlpSink:
    """A trace sink exporting each span, when it ends, to an OTLP/HTTP collector.

    Args:
        run_id: The run (its trace id is derived from it).
        resource: Resource attributes besides ``service.name=rolegraph`` and ``rolegraph.run_id``
            (the run's workflow, say).
        endpoint: The collector's trace URL (``.../v1/traces``); default: from ``OTEL_EXPORTER_OTLP_*``.
        exporter: Where spans go (default: `OTLPSpanExporter` to `endpoint`).
        export_timeout_s: Seconds one export request may take (the default exporter's timeout).
        shutdown_timeout_s: Seconds `close` waits for the last spans to go out.
        schedule_delay_ms: How often queued spans are sent, at most this long after they end.
        max_queue_size: Spans held for export at most; past it new spans are dropped (with a
            warning from the SDK) rather than slowing the run.
    """

    def __init__(
        self,
        run_id: str,
        *,
        resource: Mapping[str, Any] | None = None,
        endpoint: str | None = None,
        exporter: SpanExporter | None = None,
        export_timeout_s: float | None = 2.0,
        shutdown_timeout_s: float = 2.0,
        schedule_delay_ms: int = 1000,
        max_queue_size: int = 8192,
    ) -> None:
        self.run_id = run_id
        self.shutdown_timeout_s = shutdown_timeout_s
        self.errors = 0
        """Spans that could not be converted (never raised into the run)."""
        attributes = {"service.name": "rolegraph", "rolegraph.run_id": run_id, **(resource or {})}
        self._resource = Resource.create(_attributes(attributes))
        self._scope = _scope()
        self._trace_id = int(otlp_trace_id(run_id), 16)
        self._events: dict[str, list[Event]] = {}
        self.exporter = exporter or OTLPSpanExporter(endpoint=endpoint, timeout=export_timeout_s)
        self._processor = BatchSpanProcessor(
            self.exporter, max_queue_size=max_queue_size, schedule_delay_millis=schedule_delay_ms
        )
        self._closed = False

    @classmethod
    def from_env(
        cls, run_id: str, resource: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
    ) -> OtlpSink | None:
        """A sink for `run_id` if an OTLP endpoint is configured in `env` (default ``os.environ``), else None.

        The export timeout is the SDK's ``OTEL_EXPORTER_OTLP_TIMEOUT`` when set, else 2 seconds
        (short: a collector that does not answer must not keep spans queued for long).
        """
        env = os.environ if env is None else env
        traces, base = (env.get(name) for name in OTLP_ENDPOINT_VARS)
        if not (traces or base) or env.get("OTEL_SDK_DISABLED", "").lower() == "true":
            return None
        # As the SDK resolves them, but from `env`: the signal URL as given, the base URL plus the signal path.
        endpoint = traces or f"{(base or '').removesuffix('/')}/v1/traces"
        timeout = _seconds(next((env[n] for n in _TIMEOUT_VARS if env.get(n)), None), 2.0)
        shutdown = _seconds(env.get(SHUTDOWN_TIMEOUT_VAR), 2.0)
        return cls(run_id, resource=resource, endpoint=endpoint, export_timeout_s=timeout, shutdown_timeout_s=shutdown)

    def emit(self, record: dict[str, Any]) -> None:
        """Queue a finished span for export (span starts are skipped; events join their span)."""
        try:
            if record.get("event") == "span_end":
                self._processor.on_end(self._span(record))
            elif record.get("event") == "event" and record.get("parent_id"):
                event = Event(
                    str(record.get("name", "")),
                    _attributes(record.get("attributes") or {}),
                    nanos(float(record.get("time", 0.0))),
                )
                self._events.setdefault(str(record["parent_id"]), []).append(event)
        except Exception:  # a sink must not raise into the run; the JSONL file has the record
            self.errors += 1

    def _span(self, record: dict[str, Any]) -> ReadableSpan:
        span_id = str(record["span_id"])
        status = str(record.get("status", "ok"))
        code, message = span_status(status, record.get("error"))
        parent_id = record.get("parent_id")
        parent = None
        if parent_id:
            parent = SpanContext(self._trace_id, int(otlp_span_id(self.run_id, str(parent_id)), 16), False, _SAMPLED)
        kind = otel_trace.SpanKind.CLIENT if span_kind(str(record.get("kind"))) == SPAN_KIND_CLIENT else None
        # Built directly, not through an SDK Tracer: ids, times and parents are the recorded ones.
        recorded = record.get("attributes") or {}
        return ReadableSpan(
            name=span_name(str(record.get("name", "")), recorded),
            context=SpanContext(self._trace_id, int(otlp_span_id(self.run_id, span_id), 16), False, _SAMPLED),
            parent=parent,
            resource=self._resource,
            attributes=_attributes(span_attributes(recorded, span_id, status)),
            events=self._events.pop(span_id, ()),
            kind=kind or otel_trace.SpanKind.INTERNAL,
            status=Status(_STATUS.get(code, StatusCode.UNSET), message if code == STATUS_ERROR else None),
            start_time=nanos(float(record["start_time"])),
            end_time=nanos(float(record.get("end_time") or record["start_time"])),
            instrumentation_scope=self._scope,
        )

    def close(self) -> bool:
        """Export what is queued and stop, waiting at most `shutdown_timeout_s` (blocks: call from a thread).

        Returns:
            True if the exporter finished in time (sent, or given up on an unreachable collector);
            False if the wait was cut short and unsent spans were left behind.
        """
        if self._closed:
            return True
        self._closed = True
        done = threading.Event()

        def shutdown() -> None:
            try:
                self._processor.shutdown()  # type: ignore[no-untyped-call]  # unannotated in the SDK
            finally:
                done.set()

        # The SDK's shutdown waits up to 30 s for a stuck export; this bounds the run's wait.
        threading.Thread(target=shutdown, name="rolegraph-otlp-shutdown", daemon=True).start()
        return done.wait(self.shutdown_timeout_s)
