"""Exporting a recorded trace as OTLP/JSON: the ``ExportTraceServiceRequest`` an OTLP/HTTP collector accepts.

Ids are derived from the run id and rolegraph's span ids, so exporting a run
twice gives the same trace: ``traceId`` is 32 hex digits of SHA-256 of the run
id, ``spanId`` 16 hex digits of SHA-256 of run id and span id. Attribute names
are kept as recorded (``gen_ai.*`` after the OpenTelemetry GenAI conventions,
``rolegraph.*`` otherwise).

The mapping of a span to OTLP terms (ids, kind, status, attribute values) is
defined here once and shared with the live exporter (`rolegraph.traces.otel`).
"""

from __future__ import annotations

import hashlib
import json
import math
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from rolegraph.traces.trace import SpanRecord, Trace

__all__ = [
    "OTLP_ENDPOINT_VARS",
    "attribute_value",
    "otlp_any_value",
    "otlp_span_id",
    "otlp_trace_id",
    "span_attributes",
    "span_kind",
    "span_status",
    "to_otlp_json",
]

#: Environment variables that turn live OTLP export on (the SDK's names: signal URL, then base URL).
OTLP_ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")

# OTLP enum values (opentelemetry/proto/trace/v1/trace.proto).
SPAN_KIND_INTERNAL, SPAN_KIND_CLIENT = 1, 3
STATUS_UNSET, STATUS_OK, STATUS_ERROR = 0, 1, 2
# Model calls leave the process; everything else happens inside it.
_CLIENT_KINDS = {"chat"}
_INT64 = range(-(2**63), 2**63)
_REQUEST_MODEL, _MODEL_ID = "gen_ai.request.model", "rolegraph.model.id"

AttributeValue = str | bool | int | float | tuple[str, ...] | tuple[bool, ...] | tuple[int, ...] | tuple[float, ...]
"""What an OpenTelemetry attribute may hold: a scalar, or a tuple of scalars of one type."""


def otlp_trace_id(run_id: str) -> str:
    """The run's 16-byte trace id, as 32 lowercase hex digits."""
    return hashlib.sha256(run_id.encode()).hexdigest()[:32]


def otlp_span_id(run_id: str, span_id: str) -> str:
    """A span's 8-byte id, as 16 lowercase hex digits (rolegraph span ids are only unique per run)."""
    return hashlib.sha256(f"{run_id}/{span_id}".encode()).hexdigest()[:16]


def _nanos(seconds: float) -> str:
    return str(nanos(seconds))


def nanos(seconds: float) -> int:
    """Unix time in seconds as integer nanoseconds."""
    return round(seconds * 1_000_000_000)


def _scalar(value: Any) -> bool:
    kind = type(value)
    if kind is str or kind is bool or kind is float:  # the common case first: this runs per attribute
        return True
    if kind is int or isinstance(value, int):
        return value in _INT64
    return isinstance(value, str | float)


def attribute_value(value: Any) -> AttributeValue | None:
    """A recorded attribute as an OpenTelemetry attribute value; None for null (OTLP has no null).

    Scalars keep their type, a list of scalars of one type becomes a tuple, anything
    else (mappings, mixed or nested lists, huge integers) becomes its JSON text.
    """
    if value is None:
        return None
    if _scalar(value):
        return value  # type: ignore[no-any-return]  # one of the scalar types, checked above
    if isinstance(value, list | tuple) and all(_scalar(v) for v in value) and len({type(v) for v in value}) <= 1:
        return tuple(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def otlp_any_value(value: Any) -> dict[str, Any]:
    """A JSON value as an OTLP/JSON ``AnyValue``, after `attribute_value`."""
    mapped = attribute_value(value)
    if isinstance(mapped, tuple):
        return {"arrayValue": {"values": [otlp_any_value(v) for v in mapped]}}
    if isinstance(mapped, bool):
        return {"boolValue": mapped}
    if isinstance(mapped, int):
        return {"intValue": str(mapped)}  # int64 is a string in the protobuf JSON mapping
    if isinstance(mapped, float):
        return {"doubleValue": mapped if math.isfinite(mapped) else str(mapped)}
    return {"stringValue": "" if mapped is None else mapped}


def _attributes(attributes: dict[str, Any]) -> list[dict[str, Any]]:
    # OTLP has no null value: an unset attribute is left out.
    return [{"key": k, "value": otlp_any_value(v)} for k, v in attributes.items() if v is not None]


def span_attributes(attributes: dict[str, Any], span_id: str, status: str) -> dict[str, Any]:
    """A span's exported attributes: as recorded, plus rolegraph's own span id and status.

    A model call names its model as the provider does: the trace's ``gen_ai.request.model`` is the model
    string (``local``, what prices and usage key on); when the call recorded the provider's name for it
    (``rolegraph.model.id``), that becomes ``gen_ai.request.model`` and the string ``rolegraph.model``.
    """
    exported = {**attributes, "rolegraph.span_id": span_id, "rolegraph.status": status}
    model, model_id = attributes.get(_REQUEST_MODEL), exported.pop(_MODEL_ID, None)
    if model is not None and model_id:
        exported[_REQUEST_MODEL], exported["rolegraph.model"] = model_id, model
    return exported


def span_name(name: str, attributes: dict[str, Any]) -> str:
    """A span's exported name: a model call's ``chat local`` names the model as the provider does
    (``chat SmolLM2-135M-Instruct.Q4_1``), as OpenTelemetry's ``{operation} {request model}`` wants."""
    model, model_id = attributes.get(_REQUEST_MODEL), attributes.get(_MODEL_ID)
    if isinstance(model, str) and isinstance(model_id, str) and model_id and name.endswith(f" {model}"):
        return name.removesuffix(model) + model_id
    return name


def span_kind(kind: str) -> int:
    """The OTLP span kind of a rolegraph span kind: CLIENT for model calls, INTERNAL otherwise."""
    return SPAN_KIND_CLIENT if kind in _CLIENT_KINDS else SPAN_KIND_INTERNAL


def span_status(status: str, error: str | None) -> tuple[int, str | None]:
    """The OTLP status code and message of a span's rolegraph status."""
    if status == "unfinished":
        return STATUS_UNSET, "span never ended"
    if status in ("ok", "tool_error"):  # a tool error is an observation for the agent, not a failure
        return STATUS_OK, None
    return STATUS_ERROR, error or status


def _span(run_id: str, span: SpanRecord, end_of_trace: float, events: list[dict[str, Any]]) -> dict[str, Any]:
    attributes = span_attributes(span.attributes, span.span_id, span.status)
    code, message = span_status(span.status, span.error)
    status: dict[str, Any] = {"code": code} if message is None else {"code": code, "message": message}
    otlp: dict[str, Any] = {
        "traceId": otlp_trace_id(run_id),
        "spanId": otlp_span_id(run_id, span.span_id),
        "name": span_name(span.name, span.attributes),
        "kind": span_kind(span.kind),
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
