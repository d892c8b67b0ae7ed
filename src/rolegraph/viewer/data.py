"""What the viewer shows of a run, as JSON data: its spans for the waterfall, step lanes, graph and details.

Everything is read from the run folder (``run.json``, ``trace.jsonl``,
``sources.json``), the source of truth, so a run that is still being written is
shown as far as it got: a span with a start record but no end record is
``unfinished`` and drawn up to the latest time the trace has seen. Views are
cached per run and rebuilt when the folder's files change (`view_stamp`).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rolegraph.layout import SUMMARY_FILE, TRACE_FILE, RunFolder
from rolegraph.traces.pricing import PriceTable
from rolegraph.traces.trace import SpanRecord, Trace
from rolegraph.traces.usage import roll_up
from rolegraph.viewer.layout import layout_graph

__all__ = ["RunReader", "view_stamp"]

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_STEP_STATUS = {"ok": "completed", "error": "failed", "cancelled": "cancelled", "unfinished": "running"}
_CACHED_RUNS = 16
_HINT_MAX = 140


def view_stamp(run_dir: Path) -> str:
    """A string that changes whenever the run's trace, summary or sources change: the view's cache key."""
    return RunFolder(run_dir).stamp(TRACE_FILE, SUMMARY_FILE, "sources.json")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _iso(timestamp: float | None) -> str | None:
    return None if timestamp is None else dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat()


@dataclass
class _Loaded:
    stamp: str
    trace: Trace
    view: dict[str, Any]
    costs: dict[str, float | None]
    encoded: bytes | None = None


class RunReader:
    """Reads run folders under ``home/runs`` into viewer data, caching each run until its files change.

    Args:
        runs_dir: The folder holding one folder per run.
        prices: Prices for the cost figures.

    Safe to call from several threads (Starlette runs each request's reading in a worker thread).
    """

    def __init__(self, runs_dir: Path, prices: PriceTable | None = None) -> None:
        self.runs_dir = runs_dir
        self.prices = prices or PriceTable()
        self._cache: dict[str, _Loaded] = {}
        self._lock = threading.Lock()

    def run_dir(self, run_id: str) -> Path | None:
        """The folder of `run_id`, or None if there is no such run (ids with path syntax never match)."""
        if not _RUN_ID.fullmatch(run_id):
            return None
        folder = self.runs_dir / run_id
        has_files = RunFolder(folder).has_run_files()
        return folder if folder.is_dir() and has_files else None

    def stamp(self, run_id: str) -> str | None:
        """The run's current stamp (see `view_stamp`), or None if there is no such run."""
        folder = self.run_dir(run_id)
        return None if folder is None else view_stamp(folder)

    def view(self, run_id: str) -> dict[str, Any] | None:
        """Everything the run page draws (see the module docstring), or None if there is no such run."""
        loaded = self._load(run_id)
        return None if loaded is None else loaded.view

    def view_json(self, run_id: str) -> bytes | None:
        """`view` encoded as JSON (UTF-8), encoded once per change of the run: a big run's view is megabytes."""
        loaded = self._load(run_id)
        if loaded is None:
            return None
        if loaded.encoded is None:
            text = json.dumps(loaded.view, ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=str)
            loaded.encoded = text.encode("utf-8")
        return loaded.encoded

    def span(self, run_id: str, span_id: str) -> dict[str, Any] | None:
        """One span in full: its fields, every attribute, its cost and the sources it returned."""
        loaded = self._load(run_id)
        span = None if loaded is None else loaded.trace.spans.get(span_id)
        if loaded is None or span is None:
            return None
        sources = loaded.view["sources"]
        returned = span.attributes.get("rolegraph.tool.sources") or []
        return {
            "id": span.span_id,
            "parent": span.parent_id,
            "kind": span.kind,
            "name": span.name,
            "status": span.status,
            "error": span.error,
            "started": _iso(span.start_time),
            "duration_s": span.duration_s,
            "input_tokens": span.input_tokens,
            "output_tokens": span.output_tokens,
            "cost_usd": loaded.costs.get(span.span_id),
            "attributes": span.attributes,
            "sources": [
                {"id": str(i), **sources.get(str(i), {})} for i in (returned if isinstance(returned, list) else [])
            ],
        }

    def _load(self, run_id: str) -> _Loaded | None:
        folder = self.run_dir(run_id)
        if folder is None:
            return None
        stamp = view_stamp(folder)
        with self._lock:
            cached = self._cache.get(run_id)
        if cached is not None and cached.stamp == stamp:
            return cached
        loaded = self._build(run_id, folder, stamp)
        with self._lock:
            self._cache[run_id] = loaded
            while len(self._cache) > _CACHED_RUNS:
                self._cache.pop(next(iter(self._cache)))
        return loaded

    def _build(self, run_id: str, folder: Path, stamp: str) -> _Loaded:
        files = RunFolder(folder)
        trace = Trace.load(files.trace) if files.trace.is_file() else Trace([])
        summary = _read_json(files.summary)
        summary = summary if isinstance(summary, dict) else {}
        root = next((s for s in trace.roots if s.kind == "invoke_workflow"), None)
        live = root is None or root.status == "unfinished"
        times = [t for s in trace.spans.values() for t in (s.start_time, s.end_time) if t is not None]
        t0 = root.start_time if root else min(times, default=0.0)
        t_end = max(times, default=t0)
        costs = _costs(trace, self.prices)
        spans = list(_rows(trace, t0, costs))
        steps = _steps(trace, spans, summary, live)
        workflow_file = summary.get("workflow_file") or (
            root.attributes.get("rolegraph.workflow.file") if root else None
        )
        if live:
            status = "unfinished"
        else:
            status = str(summary.get("status") or (root.attributes.get("rolegraph.status") if root else "") or "")
            status = status or _STEP_STATUS.get(root.status if root else "", "unfinished")
        rollup = roll_up(trace, self.prices)
        view = {
            "run_id": str(summary.get("run_id") or run_id),
            "workflow": summary.get("workflow") or (root.attributes.get("rolegraph.workflow") if root else None),
            "workflow_file": workflow_file,
            "status": status,
            "live": live,
            "stamp": stamp,
            "started": summary.get("started") or _iso(root.start_time if root else None),
            "duration_s": None if live else (root.duration_s if root else summary.get("duration_s")),
            "elapsed_s": t_end - t0,
            "inputs": summary.get("inputs") or (root.attributes.get("rolegraph.inputs") if root else None) or {},
            "error": summary.get("error") or (root.error if root else None),
            "outputs": summary.get("outputs") or {},
            "citations": summary.get("citations") or {},
            "usage": rollup.as_dict(),
            "spans": spans,
            "lanes": _lanes(spans, t_end - t0),
            "steps": steps,
            "graph": layout_graph(str(workflow_file) if workflow_file else None, steps).as_dict(),
            "sources": _sources(folder),
        }
        return _Loaded(stamp=stamp, trace=trace, view=view, costs=costs)


def _costs(trace: Trace, prices: PriceTable) -> dict[str, float | None]:
    """USD per span: a chat span's own, the sum over the chat spans below any other (None if a price is unknown)."""
    costs: dict[str, float | None] = {}
    for span in reversed(list(trace.walk())):  # children before their parents
        if span.kind == "chat":
            model = span.attributes.get("gen_ai.request.model")
            costs[span.span_id] = prices.cost(str(model) if model else None, span.input_tokens, span.output_tokens)
            continue
        total: float | None = 0.0
        for child in span.children:
            one = costs.get(child.span_id, 0.0)
            total = None if one is None or total is None else total + one
        costs[span.span_id] = total
    return costs


def _rows(trace: Trace, t0: float, costs: dict[str, float | None]) -> Iterator[dict[str, Any]]:
    """The spans in tree order (depth first, children by start), with depth, inherited step and times from t0."""
    stack: list[tuple[SpanRecord, int, str | None, str | None]] = [(s, 0, None, None) for s in reversed(trace.roots)]
    while stack:
        span, depth, step, item = stack.pop()
        a = span.attributes
        if "rolegraph.step.id" in a:
            step = str(a["rolegraph.step.id"])
            item = None if a.get("rolegraph.step.item") is None else str(a["rolegraph.step.item"])
        yield {
            "id": span.span_id,
            "parent": span.parent_id,
            "depth": depth,
            "kind": span.kind,
            "name": span.name,
            "step": step,
            "item": item,
            "role": a.get("gen_ai.agent.name"),
            "start": span.start_time - t0,
            "end": None if span.end_time is None else span.end_time - t0,
            "duration_s": span.duration_s,
            "status": span.status,
            "error": span.error,
            "input_tokens": span.input_tokens,
            "output_tokens": span.output_tokens,
            "cost_usd": costs.get(span.span_id),
            "children": len(span.children),
            "hint": _hint(span),
        }
        stack.extend((child, depth + 1, step, item) for child in reversed(span.children))


def _hint(span: SpanRecord) -> str | None:
    """A line of what the span did, for its waterfall row: a step's thought, a tool's arguments, an error."""
    a = span.attributes
    text = a.get("rolegraph.thought") if span.kind == "react_step" else None
    if span.kind == "execute_tool":
        text = a.get("rolegraph.tool.arguments")
    elif span.kind == "run_guardrail" and a.get("rolegraph.valid") is False:
        text = a.get("rolegraph.problem")
    elif span.kind == "route":
        text = "taken" if a.get("rolegraph.route.taken") else "not taken"
    if not text:
        return None
    line = " ".join(str(text).split())
    return line if len(line) <= _HINT_MAX else line[: _HINT_MAX - 1] + "…"


def _lanes(spans: list[dict[str, Any]], t_end: float) -> list[dict[str, Any]]:
    """Agent spans packed into lanes: spans that overlap in time (parallel branches) get different lanes."""
    agents = sorted((s for s in spans if s["kind"] == "invoke_agent"), key=lambda s: s["start"])
    ends: list[float] = []
    lanes = []
    for span in agents:
        end = span["end"] if span["end"] is not None else t_end
        lane = next((i for i, last in enumerate(ends) if last <= span["start"]), len(ends))
        if lane == len(ends):
            ends.append(end)
        ends[lane] = end
        lanes.append({"span": span["id"], "lane": lane, "step": span["step"], "item": span["item"], "end": end})
    return lanes


def _steps(trace: Trace, spans: list[dict[str, Any]], summary: dict[str, Any], live: bool) -> dict[str, dict[str, Any]]:
    """Per step in start order: status (from ``run.json`` once the run ended, else from its agents), role, items."""
    steps: dict[str, dict[str, Any]] = {}
    for span in spans:
        if span["kind"] != "invoke_agent" or span["step"] is None:
            continue
        step = steps.setdefault(span["step"], {"statuses": [], "role": span["role"], "items": 0, "visits": 0})
        step["statuses"].append(span["status"])
        step["items"] += span["item"] is not None
        step["visits"] += 1
    recorded = summary.get("steps") if not live else None
    result: dict[str, dict[str, Any]] = {}
    for step_id, step in steps.items():
        statuses = step.pop("statuses")
        worst = next((s for s in ("error", "cancelled", "unfinished") if s in statuses), "ok")
        status = _STEP_STATUS[worst] if live or worst != "unfinished" else "unfinished"
        result[step_id] = {**step, "status": status}
    if isinstance(recorded, dict):
        for step_id, status in recorded.items():
            result.setdefault(str(step_id), {"role": None, "items": 0, "visits": 0})["status"] = str(status)
    return result


def _sources(folder: Path) -> dict[str, dict[str, Any]]:
    """The run's ``sources.json`` by id (title, url, authors, year), if the workflow wrote one."""
    listed = _read_json(folder / "sources.json")
    if not isinstance(listed, list):
        return {}
    keep = ("title", "url", "authors", "year", "venue")
    return {str(s["id"]): {k: s.get(k) for k in keep} for s in listed if isinstance(s, dict) and "id" in s}
