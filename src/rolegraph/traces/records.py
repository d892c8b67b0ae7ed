"""Reading a run's trace and summary back, strictly: damage is named, never half-read into a crash.

Every reader of recorded runs (the index, `rolegraph trace`, diff and export, the
viewer, evals) comes through here, so one damaged run folder gives one clear
error — `DamagedFileError`, naming the file, the line and the field — and every
other run reads as usual.

What counts as damage in ``trace.jsonl``: a line that parses as JSON but is not a
record rolegraph writes (not an object, a field missing or of the wrong type, a
time outside the calendar, a token count that is not a count), and a complete line
that is not UTF-8. A line that does not parse at all is a write a crash cut short
(the last line of a killed run, ended by the next invocation's first record): it
is skipped, as it always was. Records of an event this version does not know are
skipped too (a newer rolegraph may write them).

In ``run.json`` (written whole, by rename): anything that does not parse as a JSON
object, or a known field of the wrong type.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rolegraph.errors import DamagedFileError

__all__ = ["SUMMARY_ADVICE", "TRACE_ADVICE", "check_summary", "read_summary", "read_trace_records", "record_problem"]

TRACE_ADVICE = "the run's trace is damaged: restore the file from a copy, or delete the run's folder"
SUMMARY_ADVICE = "the run's summary is damaged: restore the file from a copy, or delete the run's folder"

_LAST_TIME = 253402300799.0
"""23:59:59 on 31 December 9999, UTC: a time after it cannot be shown as a date."""
_MAX_COUNT = 2**53
"""A token count past this is not a count (and would not fit SQLite's integers or a float exactly)."""

Check = Callable[[Any], bool]


def _text(value: Any) -> bool:
    return isinstance(value, str)


def _optional_text(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return abs(value) < _MAX_COUNT if isinstance(value, int) else math.isfinite(value)


def _optional_number(value: Any) -> bool:
    return value is None or _number(value)


def _time(value: Any) -> bool:
    return _number(value) and 0 <= value <= _LAST_TIME


def _optional_time(value: Any) -> bool:
    return value is None or _time(value)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _MAX_COUNT


def _object(value: Any) -> bool:
    return isinstance(value, dict)


def _optional_list(value: Any) -> bool:
    return value is None or isinstance(value, list)


_SPAN_FIELDS: dict[str, tuple[Check, str]] = {
    "span_id": (lambda v: isinstance(v, str) and v != "", "a non-empty string"),
    "parent_id": (_optional_text, "a string or null"),
    "kind": (_text, "a string"),
    "name": (_text, "a string"),
    "start_time": (_time, "a Unix time"),
    "run_id": (_text, "a string"),
}
_SPAN_END_FIELDS: dict[str, tuple[Check, str]] = {
    "status": (_text, "a string"),
    "end_time": (_optional_time, "a Unix time or null"),
    "duration_s": (_optional_number, "a number or null"),
    "error": (_optional_text, "a string or null"),
}
_EVENT_FIELDS: dict[str, tuple[Check, str]] = {
    "name": (_text, "a string"),
    "parent_id": (_optional_text, "a string or null"),
    "time": (_optional_time, "a Unix time"),
    "run_id": (_text, "a string"),
}
_REQUIRED = {"span_start": ("span_id", "kind", "name", "start_time"), "event": ("name",)}
_REQUIRED["span_end"] = _REQUIRED["span_start"]
_ATTRIBUTES: dict[str, tuple[Check, str]] = {
    **{
        f"{prefix}.{side}_tokens": (_count, "a token count")
        for prefix in ("gen_ai.usage", "rolegraph.aggregated", "rolegraph.replayed")
        for side in ("input", "output")
    },
    "rolegraph.step.visit": (lambda v: v is None or _count(v), "a count"),
    "rolegraph.output.tool_calls": (_optional_list, "a list"),
    "rolegraph.tool.sources": (_optional_list, "a list"),
}
"""Attributes whose readers count on their type."""


def record_problem(record: Any) -> str | None:
    """What makes `record` not a trace record rolegraph writes (None if it is one, or of an unknown event)."""
    if not isinstance(record, dict):
        return f"not a JSON object but {_kind(record)}"
    event = record.get("event")
    if not isinstance(event, str):
        return "field `event` is missing" if event is None else "field `event` is not a string"
    if event not in _REQUIRED:
        return None
    fields = _EVENT_FIELDS if event == "event" else _SPAN_FIELDS
    for name in _REQUIRED[event]:
        if name not in record:
            return f"field `{name}` is missing"
    problem = _fields(record, fields) or (_fields(record, _SPAN_END_FIELDS) if event == "span_end" else None)
    if problem is not None:
        return problem
    attributes = record.get("attributes", {})
    if not isinstance(attributes, dict):
        return f"field `attributes` is not an object but {_kind(attributes)}"
    return _fields(attributes, _ATTRIBUTES, prefix="attributes.")


def _fields(record: Mapping[str, Any], fields: Mapping[str, tuple[Check, str]], prefix: str = "") -> str | None:
    for name, (check, expected) in fields.items():
        if name in record and not check(record[name]):
            return f"field `{prefix}{name}` is not {expected} but {_kind(record[name])}"
    return None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value!r}"[:60]
    names: dict[type, str] = {str: "a string", list: "a list", dict: "an object"}
    return names.get(type(value), type(value).__name__)


def read_trace_records(path: Path) -> list[dict[str, Any]]:
    """The records of a ``trace.jsonl`` (see the module docstring for what is skipped).

    Raises:
        DamagedFileError: A line is damaged (the error names it); or the file cannot be read.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DamagedFileError(path, f"cannot be read ({exc.strerror or exc})", advice=TRACE_ADVICE) from None
    records: list[dict[str, Any]] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            if _parses(raw.decode("utf-8", errors="replace")):  # a whole line, not a torn one
                raise DamagedFileError(
                    path, f"not UTF-8 (byte {exc.start + 1} of the line)", line=number, advice=TRACE_ADVICE
                ) from None
            continue
        try:
            record = json.loads(text)
        except (ValueError, RecursionError):
            continue  # a torn write (see the module docstring)
        problem = record_problem(record)
        if problem is not None:
            raise DamagedFileError(path, problem, line=number, advice=TRACE_ADVICE)
        if record["event"] in _REQUIRED:
            records.append(record)
    return records


def _parses(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


_SUMMARY_FIELDS: dict[str, tuple[Check, str]] = {
    "run_id": (_text, "a string"),
    "status": (_text, "a string"),
    "workflow": (_optional_text, "a string or null"),
    "workflow_file": (_optional_text, "a string or null"),
    "started": (_optional_text, "a string or null"),
    "error": (_optional_text, "a string or null"),
    "duration_s": (_optional_number, "a number or null"),
    "trace": (_optional_text, "a string or null"),
    **{name: (lambda v: v is None or _object(v), "an object") for name in ("outputs", "citations", "inputs", "usage")},
    "steps": (lambda v: v is None or (_object(v) and all(isinstance(s, str) for s in v.values())), "steps' statuses"),
    "overrides": (lambda v: v is None or _object(v), "an object"),
    "resumed_steps": (_optional_list, "a list"),
    "executed_steps": (_optional_list, "a list"),
    "replayed_calls": (lambda v: v is None or _count(v), "a count"),
    "resent_calls": (lambda v: v is None or _count(v), "a count"),
    "sources": (lambda v: v is None or _count(v), "a count"),
    "cache": (lambda v: v is None or _object(v), "an object"),
}


def check_summary(summary: Any) -> str | None:
    """What makes `summary` not a run summary rolegraph writes (None if it is one)."""
    if not isinstance(summary, dict):
        return f"not a JSON object but {_kind(summary)}"
    for name, kind in (("outputs", str), ("citations", int)):
        values = summary.get(name)
        if isinstance(values, dict) and not all(isinstance(v, kind) for v in values.values()):
            return f"field `{name}` holds a value of the wrong type"
    return _fields(summary, _SUMMARY_FIELDS)


def read_summary(path: Path) -> dict[str, Any]:
    """A run's ``run.json``; {} if there is none (a run killed before its first summary).

    Raises:
        DamagedFileError: The file cannot be read, is not JSON, a field has the wrong type, or
            its ``run_id`` is not the name of its folder (a run's id is its folder's name).
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise DamagedFileError(path, f"cannot be read ({exc.strerror or exc})", advice=SUMMARY_ADVICE) from None
    try:
        summary = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DamagedFileError(path, f"not UTF-8 (byte {exc.start + 1})", advice=SUMMARY_ADVICE) from None
    except (ValueError, RecursionError) as exc:
        raise DamagedFileError(path, f"not JSON ({exc})", advice=SUMMARY_ADVICE) from None
    problem = check_summary(summary)
    if problem is None and summary.get("run_id", path.parent.name) != path.parent.name:
        problem = f"field `run_id` names another run ({str(summary['run_id'])[:80]!r}), not its folder's"
    if problem is not None:
        raise DamagedFileError(path, problem, advice=SUMMARY_ADVICE)
    result: dict[str, Any] = summary
    return result
