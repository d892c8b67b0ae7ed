"""Exporting a recorded trace as OTLP/JSON: the ``ExportTraceServiceRequest`` an OTLP/HTTP collector accepts.

Ids are derived from the run id and rolegraph's span ids, so exporting a run
twice gives the same trace: ``traceId`` is 32 hex digits of SHA-256 of the run
id, ``spanId`` 16 hex digits of SHA-256 of run id and span id. Attribute names
are kept as recorded (``gen_ai.*`` after the OpenTelemetry GenAI conventions,
``rolegraph.*`` otherwise).
"""

from __future__ import annotations

import hashlib
import json
import math
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from rolegraph.traces.trace import SpanRecord, Trace

__all__ = ["otlp_any_value", "otlp_span_id", "otlp_trace_id", "to_otlp_json"]

# OTLP enum values (opentelemetry/proto/trace/v1/trace.proto).
_SPAN_KIND_INTERNAL, _SPAN_KIND_CLIENT = 1, 3
_STATUS_UNSET, _STATUS_OK, _STATUS_ERROR = 0, 1, 2
# Model calls leave the process; everything else happens inside it.
_CLIENT_KINDS = {"chat"}


def otlp_trace_id(run_id: str) -> str:
    """The run's 16-byte trace id, as 32 lowercase hex digits."""
    return hashlib.sha256(run_id.encode()).hexdigest()[:32]


def otlp_span_id(run_id: str, span_id: str) -> str:
    """A span's 8-byte id, as 16 lowercase hex digits (rolegraph span ids are only unique per run)."""
    return hashlib.sha256(f"{run_id}/{span_id}".encode()).hexdigest()[:16]


def _nanos(seconds: float) -> str:
    return str(round(seconds * 1_000_000_000))


def otlp_any_value(value: Any) -> dict[str, Any]:
    """A JSON value as an OTLP ``AnyValue``: scalars typed, lists of scalars as arrays, the rest as JSON text."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}  # int64 is a string in the protobuf JSON mapping
    if isinstance(value, float):
        return {"doubleValue": value if math.isfinite(value) else str(value)}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, list | tuple) and all(isinstance(v, str | int | float | bool) for v in value):
        return {"arrayValue": {"values": [otlp_any_value(v) for v in value]}}
    return {"stringValue": json.dumps(value, ensure_ascii=False, default=str)}


def _attributes(attributes: dict[str, Any]) -> list[dict[str, Any]]:
    # OTLP has no null value: an unset attribute is left out.
    return [{"key": k, "value": otlp_any_value(v)} for k, v in attributes.items() if v is not None]


def _span(run_id: str, span: SpanRecord, end_of_trace: float, events: list[dict[str, Any]]) -> dict[str, Any]:
    attributes = {**span.attributes, "rolegraph.span_id": span.span_id, "rolegraph.status": span.status}
    if span.status == "unfinished":
        status: dict[str, Any] = {"code": _STATUS_UNSET, "message": "span never ended"}
    elif span.status in ("ok", "tool_error"):
        status = {"code": _STATUS_OK}
    else:
        status = {"code": _STATUS_ERROR, "message": span.error or span.status}
    otlp: dict[str, Any] = {
        "traceId": otlp_trace_id(run_id),
        "spanId": otlp_span_id(run_id, span.span_id),
        "name": span.name,
        "kind": _SPAN_KIND_CLIENT if span.kind in _CLIENT_KINDS else _SPAN_KIND_INTERNAL,
        "startTimeUnixNano": _nanos(span.start_time),
        # An unfinished span ends with the last thing the trace recorded.
        "endTimeUnixNano": _nanos(span.end_time if span.end_time is not None else end_of_trace),
        "attributes": _attributes(attributes),
        "status": status,
    }
    if span.parent_id:
        otlp["parentSpanId"] = otlp_span_id(run_id, span.parent_id)
    if events:
        otlp["events"] = events
    return otlp


def to_otlp_json(trace: Trace, run_id: str, resource: dict[str, Any] | None = None) -> dict[str, Any]:
    """The trace as an OTLP/JSON ``ExportTraceServiceRequest`` (one resource, one scope).

    Args:
        trace: The recorded trace.
        run_id: The run's id (the trace id is derived from it).
        resource: Extra resource attributes (``service.name`` is ``rolegraph`` unless given).
    """
    times = [t for s in trace.spans.values() for t in (s.start_time, s.end_time) if t is not None]
    end_of_trace = max(times, default=0.0)
    events: dict[str, list[dict[str, Any]]] = {}
    for record in trace.records:
        if record.get("event") == "event" and record.get("parent_id"):
            events.setdefault(record["parent_id"], []).append(
                {
                    "timeUnixNano": _nanos(float(record.get("time", 0.0))),
                    "name": str(record.get("name", "")),
                    "attributes": _attributes(record.get("attributes") or {}),
                }
            )
    try:
        scope_version = version("rolegraph")
    except PackageNotFoundError:  # running from a source tree that was never installed
        scope_version = "0"
    resource_attributes = {"service.name": "rolegraph", "rolegraph.run_id": run_id, **(resource or {})}
    spans = [_span(run_id, s, end_of_trace, events.get(s.span_id, [])) for s in trace.walk()]
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": _attributes(resource_attributes)},
                "scopeSpans": [{"scope": {"name": "rolegraph", "version": scope_version}, "spans": spans}],
            }
        ]
    }
