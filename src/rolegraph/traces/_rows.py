"""How trace records become rows of the trace index: span rows, inherited step context, run-folder facts."""

from __future__ import annotations

import datetime as dt
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from rolegraph.layout import SUMMARY_FILE, TRACE_FILE, RunFolder
from rolegraph.traces.sinks import dumps
from rolegraph.traces.trace import SpanRecord


@dataclass(frozen=True)
class RunEnd:
    """What a run's index row says once the run ended (as its ``run.json`` does)."""

    status: str
    started: float | None
    """Unix time the run started (its first invocation)."""
    duration_s: float | None
    resumed: bool = False
    """Whether this invocation continued an earlier one (then the run is re-imported from its folder)."""


def run_stamp(run_dir: Path) -> str:
    """Changes whenever the run's trace or summary does: when the index must read the run again."""
    return RunFolder(run_dir).stamp(TRACE_FILE, SUMMARY_FILE)


def timestamp(value: Any) -> float | None:
    """Unix time of an ISO 8601 string (naive means UTC); None if it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).timestamp()


def read_summary(run_dir: Path) -> dict[str, Any]:
    """A run folder's ``run.json``, or {} if it is missing or unreadable."""
    return RunFolder(run_dir).read_summary()


def item_text(value: Any) -> str | None:
    """A column value as text (None stays None)."""
    return None if value is None else str(value)


Usage = dict[str | None, tuple[int, int]]
"""Input and output tokens of a run's ended chat spans, by model (``gen_ai.request.model``)."""


class Context:
    """What a span inherits from its ancestors: step, item and role."""

    def __init__(self) -> None:
        self.by_span: dict[str, tuple[str | None, str | None, str | None]] = {}
        self.open_rows: set[str] = set()
        """Spans written as ``unfinished`` rows by an earlier batch (live indexing): their ends update those rows."""
        self.usage: Usage | None = None
        """Live indexing: the run's ended chat spans' tokens by model, as its rows in the index hold them (read
        from the index when the run's row is first written, then added to batch by batch), so the run's totals
        and cost at its end need no pass over its rows. None until then."""

    def resolve(self, span_id: str, parent_id: str | None, attributes: dict[str, Any]) -> tuple[Any, Any, Any]:
        step, item, role = self.by_span.get(parent_id, (None, None, None)) if parent_id else (None, None, None)
        if "rolegraph.step.id" in attributes:
            step = item_text(attributes["rolegraph.step.id"])
            item = item_text(attributes.get("rolegraph.step.item"))
        if "gen_ai.agent.name" in attributes:
            role = item_text(attributes["gen_ai.agent.name"])
        self.by_span[span_id] = (step, item, role)
        return step, item, role

    def forget(self, span_id: str) -> None:
        """Drop an ended span (live indexing keeps only open spans, so memory follows the live work)."""
        self.by_span.pop(span_id, None)


def span_row(run_id: str, record: dict[str, Any], context: Context, ended: bool) -> tuple[Any, ...]:
    """The index row of a span record (an open span's end columns are empty, its status ``unfinished``)."""
    inherited = context.resolve(record["span_id"], record.get("parent_id"), record.get("attributes") or {})
    return _row(run_id, record, inherited, ended)


def _row(run_id: str, record: dict[str, Any], inherited: tuple[Any, Any, Any], ended: bool) -> tuple[Any, ...]:
    """`span_row` with the step, item and role the span inherits already resolved."""
    get = record.get
    attributes: dict[str, Any] = get("attributes") or {}
    parent_id = get("parent_id")
    step, item, role = inherited
    kind = get("kind")
    if kind == "chat":
        model = item_text(attributes.get("gen_ai.request.model"))
        tokens_in = attributes.get("gen_ai.usage.input_tokens")
        tokens_out = attributes.get("gen_ai.usage.output_tokens")
    else:
        model = tokens_in = tokens_out = None
    tool = attributes.get("gen_ai.tool.name")
    if tool is not None:
        tool = str(tool)
    try:  # `dumps`, written out: the index writer runs this for every span
        encoded = orjson.dumps(attributes, default=str).decode()
    except TypeError:
        encoded = dumps(attributes).decode()
    if ended:
        end_time, duration_s, status, error = get("end_time"), get("duration_s"), get("status", "ok"), get("error")
    else:
        end_time = duration_s = error = None
        status = "unfinished"
    return (
        run_id, record["span_id"], parent_id, kind, get("name"), get("start_time"),
        end_time, duration_s, status, error,
        step, item, role, model, tool, tokens_in, tokens_out, encoded,
    )  # fmt: skip


@dataclass
class LiveRows:
    """The rows a batch of live records gives, for one or many runs (`add_live_rows`)."""

    starts: list[tuple[Any, ...]] = field(default_factory=list)
    """Rows of spans still open at the batch's end (``unfinished``)."""
    ends: list[tuple[Any, ...]] = field(default_factory=list)
    """Rows of spans that ended whose start an earlier batch wrote as a row (upserted over it)."""
    whole: list[tuple[Any, ...]] = field(default_factory=list)
    """Rows of spans that ended, written as their only row (no earlier batch wrote their start)."""
    roots: dict[str, tuple[dict[str, Any], bool, Path | None, Context]] = field(default_factory=dict)
    """Each run's latest root (``invoke_workflow``) record, whether it ended, the run's folder and its context."""
    tokens: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Tokens of the chat spans that ended, by run."""


def add_live_rows(rows: LiveRows, records: list[dict[str, Any]], context: Context, run_dir: Path | None) -> None:
    """Add the rows of one run's live `records` (in emission order) to `rows`.

    A span that starts and ends within the batch gives one row, from its end: its start's row
    would be overwritten in the same transaction (half the rows for the short spans that make
    most of a trace). Its start still passes its step and role on to its children.
    """
    ends, whole, tokens, roots = rows.ends, rows.whole, rows.tokens, rows.roots
    open_rows, usage = context.open_rows, context.usage
    opened: dict[str, dict[str, Any]] = {}
    """The starts of this batch whose spans have not ended (yet), in order."""
    for record in records:
        event = record.get("event")
        span_id = record.get("span_id")
        if span_id is None:
            continue
        if event == "span_start":
            # Resolved now, in order: the span's children, started later, inherit from it.
            context.resolve(span_id, record.get("parent_id"), record.get("attributes") or {})
            opened[span_id] = record
            ended = False
        elif event == "span_end":
            opened.pop(span_id, None)
            row = span_row(str(record.get("run_id")), record, context, ended=True)
            if span_id in open_rows:
                open_rows.discard(span_id)
                ends.append(row)
            else:
                whole.append(row)
            context.forget(span_id)
            if row[3] == "chat" and row[8] != "unfinished":
                tokens_in, tokens_out = row[15] or 0, row[16] or 0
                before = tokens.get(row[0], (0, 0))
                tokens[row[0]] = (before[0] + tokens_in, before[1] + tokens_out)
                if usage is not None:
                    before = usage.get(row[13], (0, 0))
                    usage[row[13]] = (before[0] + tokens_in, before[1] + tokens_out)
            ended = True
        else:
            continue
        if record.get("kind") == "invoke_workflow" and record.get("parent_id") is None:
            roots[str(record.get("run_id"))] = (record, ended, run_dir, context)
    for span_id, record in opened.items():  # open at the batch's end: an unfinished row, completed by its end
        rows.starts.append(_row(str(record.get("run_id")), record, context.by_span[span_id], ended=False))
        open_rows.add(span_id)


def writer_alive(writer: str | None) -> bool:
    """Whether the process that writes a live run still exists (a run on another host is trusted)."""
    host, _, pid = (writer or "").rpartition(":")
    if not host or not pid.isdigit():
        return False
    if host != socket.gethostname() or os.name == "nt":
        return True  # another machine's run; and on Windows, os.kill would end the process, not probe it
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def run_status(summary: dict[str, Any], root: SpanRecord) -> str:
    """A finished run's status: from ``run.json``, else from its root span."""
    recorded = summary.get("status") or root.attributes.get("rolegraph.status")
    return str(recorded) if recorded else {"ok": "completed"}.get(root.status, root.status)


def started_from_id(run_id: str) -> float | None:
    """The start time encoded in a run id (``YYYYmmdd-HHMMSS-...``), if it has one."""
    try:
        return dt.datetime.strptime(run_id[:15], "%Y%m%d-%H%M%S").replace(tzinfo=dt.UTC).timestamp()
    except ValueError:
        return None


def as_record(span: SpanRecord) -> tuple[dict[str, Any], bool]:
    """A read-back span as a live record, and whether it ended."""
    record = {
        "span_id": span.span_id,
        "parent_id": span.parent_id,
        "kind": span.kind,
        "name": span.name,
        "start_time": span.start_time,
        "end_time": span.end_time,
        "duration_s": span.duration_s,
        "status": span.status,
        "error": span.error,
        "attributes": span.attributes,
    }
    return record, span.status != "unfinished"
