"""What the viewer shows of a run, as JSON data: its spans for the waterfall, step lanes, graph and details,
its output files, the sources it cited with their evidence, and where it came from (replay, resume).

Everything is read from the run folder (``run.json``, ``trace.jsonl``,
``sources.jsonl``, ``steps.jsonl``), the source of truth, so a run that is still being
written is shown as far as it got: a span with a start record but no end record is
``unfinished`` and drawn up to the latest time the trace has seen. A resumed run's
trace holds one ``invoke_workflow`` root per invocation: the first one starts the
clock, the last one says whether the run is still going. Views are cached per run
and rebuilt when the folder's files change (`view_stamp`).
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

from rolegraph.layout import SOURCES_FILE, STEPS_FILE, SUMMARY_FILE, TRACE_FILE, RunFolder, is_run_id
from rolegraph.traces.pricing import PriceTable
from rolegraph.traces.records import read_summary
from rolegraph.traces.trace import SpanRecord, Trace
from rolegraph.traces.usage import roll_up
from rolegraph.viewer.layout import layout_graph
from rolegraph.viewer.lineage import Lineage, read_lineage
from rolegraph.viewer.outputs import evidence_for, output_files, read_output
from rolegraph.viewer.search import search_spans

__all__ = ["RunReader", "view_stamp"]

_STEP_STATUS = {"ok": "completed", "error": "failed", "cancelled": "cancelled", "unfinished": "running"}
_CACHED_RUNS = 16
_HINT_MAX = 140
_ROUTE_NAME = re.compile(r"^route (.+) -> (.+)$")
_SOURCE_FIELDS = ("title", "url", "authors", "year", "venue", "doi", "arxiv", "kind", "tool")


def view_stamp(run_dir: Path) -> str:
    """A string that changes whenever the run's trace, summary, sources or step log change: the view's cache key."""
    return RunFolder(run_dir).stamp(TRACE_FILE, SUMMARY_FILE, SOURCES_FILE, "sources.json", STEPS_FILE)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None


def _iso(timestamp: float | None) -> str | None:
    return None if timestamp is None else dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat()


@dataclass
class _Loaded:
    stamp: str
    folder: Path
    trace: Trace
    view: dict[str, Any]
    costs: dict[str, float | None]
    encoded: bytes | None = None


class RunReader:
    """Reads run folders under ``home/runs`` into viewer data, caching each run until its files change.

    A run whose trace or summary is damaged raises `DamagedFileError` from the methods that
    read it (the app answers 422 with the reason).

    Args:
        runs_dir: The folder holding one folder per run.
        prices: Prices for the cost figures.

    Safe to call from several threads (Starlette runs each request's reading in a worker thread).
    """

    def __init__(self, runs_dir: Path, prices: PriceTable | None = None) -> None:
        self.runs_dir = runs_dir
        self.prices = prices or PriceTable()
        self._cache: dict[str, _Loaded] = {}
        self._lineages: dict[str, tuple[str, Lineage]] = {}
        self._lock = threading.Lock()

    def run_dir(self, run_id: str) -> Path | None:
        """The folder of `run_id`, or None if there is no such run (ids with path syntax never match)."""
        if not is_run_id(run_id):
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

    def lineage(self, run_id: str) -> Lineage | None:
        """Where the run comes from (replay, resume), cheaply: for the runs list."""
        folder = self.run_dir(run_id)
        if folder is None:
            return None
        stamp = view_stamp(folder)
        with self._lock:
            known = self._lineages.get(run_id)
        if known is not None and known[0] == stamp:
            return known[1]
        found = read_lineage(folder, RunFolder(folder).read_summary())
        with self._lock:
            self._lineages[run_id] = (stamp, found)
        return found

    def search(self, run_id: str, text: str) -> dict[str, Any] | None:
        """The run's spans holding `text` (see `search_spans`), or None if there is no such run."""
        loaded = self._load(run_id)
        return None if loaded is None else search_spans(loaded.trace, text)

    def outputs(self, run_id: str) -> dict[str, Path] | None:
        """The run's output files by name (only files inside its folder), or None if there is no such run."""
        loaded = self._load(run_id)
        return None if loaded is None else output_files(loaded.folder, loaded.view["outputs"])

    def output(self, run_id: str, name: str) -> dict[str, Any] | None:
        """One output file for the page (see `read_output`), or None if the run or the output is missing."""
        loaded = self._load(run_id)
        path = None if loaded is None else output_files(loaded.folder, loaded.view["outputs"]).get(name)
        if loaded is None or path is None:
            return None
        return read_output(name, path, loaded.view["sources"])

    def source(self, run_id: str, source_id: str) -> dict[str, Any] | None:
        """A source the run retrieved: its record, the evidence the steps quoted from it, the spans that
        returned it; None if the run or the source is missing."""
        loaded = self._load(run_id)
        known = None if loaded is None else loaded.view["sources"].get(source_id)
        if loaded is None or known is None:
            return None
        text = _source_texts(loaded.folder).get(source_id, "")
        returned = [
            {"span": row["id"], "step": row["step"], "item": row["item"], "name": row["name"], "hint": row["hint"]}
            for row in loaded.view["spans"]
            if row["kind"] == "execute_tool"
            and source_id in (loaded.trace.spans[row["id"]].attributes.get("rolegraph.tool.sources") or [])
        ]
        return {
            "id": source_id,
            **known,
            "has_text": bool(text),
            "evidence": evidence_for(source_id, text, _step_outputs(loaded.folder)),
            "returned_by": returned,
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
        summary = read_summary(files.summary)
        roots = [s for s in trace.roots if s.kind == "invoke_workflow"]
        first, last = (roots[0], roots[-1]) if roots else (None, None)
        live = last is None or last.status == "unfinished"
        times = [t for s in trace.spans.values() for t in (s.start_time, s.end_time) if t is not None]
        # The clock starts with the first span: a resumed run's root is recorded again by each invocation.
        t0 = min(times, default=0.0)
        t_end = max(times, default=t0)
        resumes = _resumes(trace, t0)
        costs = _costs(trace, self.prices)
        spans = list(_rows(trace, t0, costs))
        for row in spans:
            if resumes and row["kind"] == "invoke_workflow" and row["depth"] == 0:
                row["start"] = 0.0  # drawn over every invocation, from the first start
                row["duration_s"] = None if row["end"] is None else row["end"]
        steps = _steps(trace, spans, summary, live)
        skipped = _skipped_items(trace, summary, spans)
        for entry in skipped:
            step = steps.setdefault(entry["step"], {"role": None, "items": 0, "visits": 0, "status": "completed"})
            step["skipped"] = step.get("skipped", 0) + 1
        attributes = first.attributes if first else {}
        workflow_file = summary.get("workflow_file") or attributes.get("rolegraph.workflow.file")
        if live:
            status = "unfinished"
        else:
            status = str(summary.get("status") or (last.attributes.get("rolegraph.status") if last else "") or "")
            status = status or _STEP_STATUS.get(last.status if last else "", "unfinished")
        lineage = read_lineage(folder, summary)
        graph = layout_graph(str(workflow_file) if workflow_file else None, steps).as_dict()
        _mark_routes(graph, _routes(trace))
        view = {
            "run_id": run_id,
            "workflow": summary.get("workflow") or attributes.get("rolegraph.workflow"),
            "workflow_file": workflow_file,
            "status": status if live else lineage.status(status),
            "recorded_status": status,
            "lineage": {**lineage.as_dict(), "invocations": 1 + len(resumes)},
            "resumes": resumes,
            "live": live,
            "stamp": stamp,
            "started": summary.get("started") or _iso(first.start_time if first else None),
            "duration_s": None if live else (summary.get("duration_s") or (last.duration_s if last else None)),
            "elapsed_s": t_end - t0,
            "inputs": summary.get("inputs") or attributes.get("rolegraph.inputs") or {},
            "error": summary.get("error") or (last.error if last else None),
            "outputs": summary.get("outputs") or {},
            "citations": summary.get("citations") or {},
            "skipped_items": skipped,
            "usage": roll_up(trace, self.prices).as_dict(),
            "spans": spans,
            "lanes": _lanes(spans, t_end - t0),
            "steps": steps,
            "graph": graph,
            "sources": _sources(folder),
        }
        return _Loaded(stamp=stamp, folder=folder, trace=trace, view=view, costs=costs)


def _resumes(trace: Trace, t0: float) -> list[dict[str, Any]]:
    """When the run was resumed (seconds from its start), each time with the steps restored from its checkpoint."""
    found = []
    for record in trace.records:
        if record.get("event") == "event" and record.get("name") == "run_resumed":
            a = record.get("attributes") or {}
            found.append(
                {
                    "at": float(record.get("time") or t0) - t0,
                    "invocation": a.get("rolegraph.invocation"),
                    "restored": a.get("rolegraph.resumed_steps") or [],
                }
            )
    return found


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
    text = None
    if span.kind == "react_step":  # its thought, or why its answer was sent back
        sent_back = a.get("rolegraph.action") == "invalid_answer"
        text = a.get("rolegraph.problem") if sent_back else a.get("rolegraph.thought")
    if span.kind == "execute_tool":
        text = a.get("rolegraph.tool.arguments")
    elif span.kind == "run_guardrail" and a.get("rolegraph.valid") is False:
        text = a.get("rolegraph.problem")
    elif span.kind == "route":
        text = _route_hint(a)
    if not text:
        return None
    line = " ".join(str(text).split())
    return line if len(line) <= _HINT_MAX else line[: _HINT_MAX - 1] + "…"


def _route_hint(a: dict[str, Any]) -> str:
    """What a route decided: fired, blocked by its ``max_times`` although its condition held, or not taken."""
    if a.get("rolegraph.route.taken"):
        return f"fired ({a.get('rolegraph.route.times')} of at most {a.get('rolegraph.route.max_times')})"
    if a.get("rolegraph.route.matched"):
        return f"blocked: its condition held, but it already fired {a.get('rolegraph.route.max_times')} times"
    if a.get("rolegraph.route.error"):
        return f"not taken: {a['rolegraph.route.error']}"
    return "not taken: condition false"


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


def _skipped_items(trace: Trace, summary: dict[str, Any], spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``for_each`` items their steps went on without (``on_item_error: skip``): step, index, item, error,
    and ``span``, the item's failed attempt (whose row is marked ``skipped``).

    From ``run.json`` once the run has written it (it has the items' values), else from each step's last
    ``plan`` span, so a live run shows them as they happen.
    """
    planned: dict[str, list[dict[str, Any]]] = {}
    for span in sorted(trace.walk(), key=lambda s: s.start_time):
        step = span.attributes.get("rolegraph.step.id")
        if span.kind == "plan" and step is not None:
            planned[str(step)] = _item_entries(span.attributes.get("rolegraph.items_skipped"))
    recorded = summary.get("skipped_items")
    if isinstance(recorded, dict):
        planned.update({str(step): parsed for step, entries in recorded.items() if (parsed := _item_entries(entries))})
    found = []
    for step, entries in planned.items():
        for entry in entries:
            index = str(entry["index"])
            failed = [
                row
                for row in spans
                if row["step"] == step
                and row["item"] == index
                and row["status"] == "error"
                and row["kind"] in ("invoke_agent", "execute_tool")
            ]
            top = min((row["depth"] for row in failed), default=0)
            attempt = max((row for row in failed if row["depth"] == top), key=lambda r: r["start"], default=None)
            if attempt is not None:
                attempt["skipped"] = True
                attempt["hint"] = "item skipped: its step went on without it (on_item_error: skip)"
            found.append({"step": step, **entry, "span": attempt["id"] if attempt else None})
    return found


def _item_entries(value: Any) -> list[dict[str, Any]]:
    """Skipped-item records ``{index, item?, error}`` as recorded; anything malformed is left out."""
    if not isinstance(value, list):
        return []
    entries = [v for v in value if isinstance(v, dict) and type(v.get("index")) is int]
    return [{k: v for k, v in entry.items() if k in ("index", "item", "error")} for entry in entries]


def _sources(folder: Path) -> dict[str, dict[str, Any]]:
    """The run's sources by id (title, url, authors, year, ...), from ``sources.jsonl``, else a ``sources.json``."""
    listed: Any = []
    try:
        with RunFolder(folder).sources.open(encoding="utf-8") as lines:
            listed = [json.loads(line) for line in lines if line.strip()]
    except (OSError, ValueError):
        listed = _read_json(folder / "sources.json")
    if not isinstance(listed, list):
        return {}
    return {str(s["id"]): {k: s.get(k) for k in _SOURCE_FIELDS} for s in listed if isinstance(s, dict) and "id" in s}


def _source_texts(folder: Path) -> dict[str, str]:
    """Each source's retrieved text, from ``sources.jsonl``."""
    texts: dict[str, str] = {}
    try:
        with RunFolder(folder).sources.open(encoding="utf-8") as lines:
            for line in lines:
                record = json.loads(line) if line.strip() else None
                if isinstance(record, dict) and "id" in record:
                    texts[str(record["id"])] = str(record.get("text") or "")
    except (OSError, ValueError):
        pass
    return texts


def _step_outputs(folder: Path) -> dict[str, Any]:
    """Each finished step's output, from its last state in ``steps.jsonl`` (or an older run's ``steps/``)."""
    states = RunFolder(folder).step_states()
    return {step: state["output"] for step, state in sorted(states.items()) if state.get("output") is not None}


def _routes(trace: Trace) -> dict[tuple[str, str], dict[str, Any]]:
    """Each route's decisions over the run, by (from step, to step): how often it fired, was blocked by its
    ``max_times`` although its condition held, or did not match."""
    decisions: dict[tuple[str, str], dict[str, Any]] = {}
    for span in trace.walk():
        named = _ROUTE_NAME.match(span.name) if span.kind == "route" else None
        if named is None:
            continue
        a = span.attributes
        entry = decisions.setdefault(
            (named[1], named[2]),
            {"fired": 0, "blocked": 0, "not_matched": 0, "when": a.get("rolegraph.route.when"), "error": None},
        )
        if a.get("rolegraph.route.taken"):
            entry["fired"] += 1
        elif a.get("rolegraph.route.matched"):
            entry["blocked"] += 1
        else:
            entry["not_matched"] += 1
        entry["max_times"] = a.get("rolegraph.route.max_times")
        entry["error"] = a.get("rolegraph.route.error") or entry["error"]
    return decisions


def _mark_routes(graph: dict[str, Any], decisions: dict[tuple[str, str], dict[str, Any]]) -> None:
    """Put each route's decisions on its graph edge (adding the edge when the graph came from the trace)."""
    nodes = {node["id"] for node in graph["nodes"]}
    edges = {(e["source"], e["target"]): e for e in graph["edges"] if e["kind"] == "route"}
    for (source, target), decided in decisions.items():
        edge = edges.get((source, target))
        if edge is None and {source, target} <= nodes:
            edge = {"source": source, "target": target, "kind": "route"}
            graph["edges"].append(edge)
        if edge is not None:
            edge["decisions"] = decided
