"""Traces and runs rendered: escaped HTML for Jupyter's ``_repr_html_``, rich trees and tables for terminals.

```python
result = await wf.run(inputs)
result            # in Jupyter: status, steps, outputs, usage and the nested span list
rich.print(result.trace)   # in a terminal: the span tree
```

Trace content is untrusted (it holds web page text): every value is escaped,
and the markup is well-formed XHTML, with no script and no external resource.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

if TYPE_CHECKING:  # the trace renders itself through this module, so only its types are needed here
    from rolegraph.traces.trace import SpanRecord, Trace

__all__ = ["run_html", "run_rich", "skipped_lines", "step_rows", "trace_html", "trace_tree"]

MAX_SPANS = 2000
"""Spans listed in a notebook, at most; the rest are counted (the viewer shows every one)."""
_OPEN_DEPTH = 2
_THOUGHT_MAX = 300
_STEP_STATUS = {"ok": "completed", "error": "failed"}
_STATUS_COLOUR = {
    "ok": "#2e9d4f",
    "completed": "#2e9d4f",
    "error": "#c9302c",
    "failed": "#c9302c",
    "cancelled": "#b7791f",
    "tool_error": "#b7791f",
    "skipped": "#8a8f98",
    "unfinished": "#2563eb",
    "running": "#2563eb",
}
_STYLE = """
.rolegraph-view { font: 13px/1.45 system-ui, sans-serif; }
.rolegraph-view table { border-collapse: collapse; margin: 4px 0 8px; }
.rolegraph-view th, .rolegraph-view td { padding: 1px 10px 1px 0; text-align: left; }
.rolegraph-view td.num { text-align: right; font-variant-numeric: tabular-nums; }
.rolegraph-view ul { list-style: none; margin: 0; padding-left: 16px; }
.rolegraph-view summary { cursor: pointer; }
.rolegraph-view .kind { font-size: 10px; text-transform: uppercase; color: #6b7280; }
.rolegraph-view .dim { color: #6b7280; }
.rolegraph-view .thought { color: #6b7280; font-style: italic; }
.rolegraph-view .badge { font-weight: 600; }
"""


def _status(status: str) -> str:
    colour = _STATUS_COLOUR.get(status, "#6b7280")
    return f'<span class="badge" style="color: {colour}">{escape(status)}</span>'


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def step_rows(trace: Trace) -> list[dict[str, Any]]:
    """Per step, in start order: status (``completed``, ``failed``, ``cancelled`` or ``unfinished``: the worst
    of its agents'), agents, wall time from the first agent's start to the last one's end, and tokens."""
    steps: dict[str, dict[str, Any]] = {}
    for span in trace.walk():
        if span.kind != "invoke_agent" or "rolegraph.step.id" not in span.attributes:
            continue
        step = steps.setdefault(
            str(span.attributes["rolegraph.step.id"]),
            {"statuses": [], "agents": 0, "start": span.start_time, "end": span.start_time, "in": 0, "out": 0},
        )
        step["statuses"].append(span.status)
        step["agents"] += 1
        step["end"] = max(step["end"], span.end_time or span.start_time)
        step["in"] += span.input_tokens
        step["out"] += span.output_tokens
    rows = []
    for step_id, step in steps.items():
        statuses = step["statuses"]
        worst = next((s for s in ("error", "cancelled", "unfinished") if s in statuses), "ok")
        rows.append(
            {
                "step": step_id,
                "status": _STEP_STATUS.get(worst, worst),
                "agents": step["agents"],
                "duration_s": step["end"] - step["start"],
                "input_tokens": step["in"],
                "output_tokens": step["out"],
            }
        )
    return rows


def _span_line(span: SpanRecord) -> str:
    parts = [f'<span class="kind">{escape(span.kind)}</span> <b>{escape(span.name)}</b>']
    step = span.attributes.get("rolegraph.step.id")
    if step is not None:
        item = span.attributes.get("rolegraph.step.item")
        label = str(step) if item is None else f"{step}[{item}]"
        parts.append(f'<span class="dim">[{escape(label)}]</span>')
    parts.append(f'<span class="dim">{_seconds(span.duration_s)}</span>')
    if span.input_tokens or span.output_tokens:
        parts.append(f'<span class="dim">{span.input_tokens}→{span.output_tokens} tok</span>')
    if span.status != "ok":
        parts.append(_status(span.status))
    if span.error:
        parts.append(f'<span style="color: #c9302c">{escape(span.error)}</span>')
    line = " ".join(parts)
    thought = span.attributes.get("rolegraph.thought")
    if thought:
        text = str(thought)
        text = text if len(text) <= _THOUGHT_MAX else text[: _THOUGHT_MAX - 1] + "…"
        line += f'<br/><span class="thought">{escape(text)}</span>'
    return line


def _span_items(spans: list[SpanRecord], depth: int, budget: list[int]) -> Iterator[str]:
    for span in spans:
        if budget[0] <= 0:
            return
        budget[0] -= 1
        line = _span_line(span)
        if not span.children:
            yield f"<li>{line}</li>"
            continue
        opened = ' open="open"' if depth < _OPEN_DEPTH else ""
        yield f"<li><details{opened}><summary>{line}</summary><ul>"
        yield from _span_items(span.children, depth + 1, budget)
        yield "</ul></details></li>"


def _steps_table(trace: Trace) -> str:
    rows = step_rows(trace)
    if not rows:
        return ""
    cells = "".join(
        f"<tr><td>{escape(r['step'])}</td><td>{_status(r['status'])}</td><td class='num'>{r['agents']}</td>"
        f"<td class='num'>{_seconds(r['duration_s'])}</td>"
        f"<td class='num'>{r['input_tokens']}→{r['output_tokens']}</td></tr>"
        for r in rows
    )
    head = "<tr><th>step</th><th>status</th><th>agents</th><th>time</th><th>tokens</th></tr>"
    return f'<table class="steps">{head}{cells}</table>'


def _spans_list(trace: Trace) -> str:
    total = len(trace.spans)
    budget = [MAX_SPANS]
    items = "".join(_span_items(trace.roots, 0, budget))
    more = total - MAX_SPANS
    note = f'<p class="dim">… and {more} more spans (see <code>rolegraph serve</code>)</p>' if more > 0 else ""
    return f'<ul class="spans">{items}</ul>{note}'


def trace_html(trace: Trace) -> str:
    """A trace as escaped HTML: its status, tokens, a table of steps and the nested span list."""
    root = next((s for s in trace.roots if s.kind == "invoke_workflow"), None)
    status = "empty" if root is None else str(root.attributes.get("rolegraph.status") or root.status)
    usage = trace.usage()
    tokens_in, tokens_out = usage.input_tokens, usage.output_tokens
    title = escape(str(trace.path)) if trace.path else "trace"
    head = (
        f"<div><b>{title}</b> {_status(status)} <span class='dim'>{len(trace.spans)} spans,"
        f" {tokens_in} input + {tokens_out} output tokens, {_seconds(root.duration_s if root else None)}</span></div>"
    )
    body = _steps_table(trace) + _spans_list(trace)
    return f'<div class="rolegraph-view rolegraph-trace"><style>{_STYLE}</style>{head}{body}</div>'


def skipped_lines(summary: Mapping[str, Any]) -> list[str]:
    """One line per ``for_each`` item a step went on without (``on_item_error: skip``): ``step[index] item: error``."""
    lines = []
    recorded = summary.get("skipped_items")
    for step, entries in recorded.items() if isinstance(recorded, Mapping) else ():
        for entry in entries if isinstance(entries, list) else ():
            if isinstance(entry, Mapping):
                item = entry.get("item")
                shown = "" if item is None else f" {item if isinstance(item, str) else json.dumps(item)}"
                lines.append(f"skipped {step}[{entry.get('index')}]{shown}: {entry.get('error')}")
    return lines


def run_html(summary: Mapping[str, Any], trace: Trace | None) -> str:
    """A run as escaped HTML: id, status, time, tokens, citations, error, outputs, then its trace's steps and spans.

    Args:
        summary: The run's summary (`RunResult.summary`, the shape of ``run.json``).
        trace: The run's trace, if it has one.
    """
    usage = summary.get("usage") or {}
    citations = summary.get("citations") or {}
    facts = [
        f"<b>run {escape(str(summary.get('run_id', '')))}</b>",
        _status(str(summary.get("status", ""))),
        f"<span class='dim'>{_seconds(summary.get('duration_s'))},"
        f" {usage.get('input_tokens', 0)} input + {usage.get('output_tokens', 0)} output tokens,"
        f" {citations.get('total', 0)} citations ({citations.get('unresolved', 0)} unresolved)</span>",
    ]
    parts = [f"<div>{' '.join(facts)}</div>"]
    if summary.get("error"):
        parts.append(f'<pre style="color: #c9302c">{escape(str(summary["error"]))}</pre>')
    parts += [f'<div class="skipped">{escape(line)}</div>' for line in skipped_lines(summary)]
    outputs = summary.get("outputs") or {}
    if outputs:
        listed = "".join(f"<li>{escape(str(k))}: <code>{escape(str(v))}</code></li>" for k, v in outputs.items())
        parts.append(f'<ul class="outputs">{listed}</ul>')
    if trace is not None:
        parts += [_steps_table(trace), _spans_list(trace)]
    else:
        steps = summary.get("steps") or {}
        cells = "".join(f"<tr><td>{escape(str(k))}</td><td>{_status(str(v))}</td></tr>" for k, v in steps.items())
        parts.append(f'<table class="steps">{cells}</table>' if cells else "")
    return f'<div class="rolegraph-view rolegraph-run"><style>{_STYLE}</style>{"".join(parts)}</div>'


def run_rich(summary: Mapping[str, Any], trace: Trace | None) -> RenderableType:
    """A run for a terminal: a summary line, a table of steps and the trace's tree."""
    usage = summary.get("usage") or {}
    status = str(summary.get("status", ""))
    line = Text.assemble(
        ("run ", "bold"),
        (str(summary.get("run_id", "")), "bold"),
        "  ",
        (status, "green" if status == "completed" else "red"),
        (
            f"  {_seconds(summary.get('duration_s'))}, {usage.get('input_tokens', 0)} input"
            f" + {usage.get('output_tokens', 0)} output tokens",
            "dim",
        ),
    )
    parts: list[RenderableType] = [line]
    if summary.get("error"):
        parts.append(Text(str(summary["error"]), style="red"))
    parts += [Text(line, style="yellow") for line in skipped_lines(summary)]
    if trace is not None:
        table = Table(box=None, title=None)
        for column in ("step", "status", "agents", "time", "tokens"):
            table.add_column(column, justify="left" if column in ("step", "status") else "right")
        for row in step_rows(trace):
            table.add_row(
                Text(row["step"]),
                Text(row["status"]),
                str(row["agents"]),
                _seconds(row["duration_s"]),
                f"{row['input_tokens']}→{row['output_tokens']}",
            )
        parts += [table, trace.tree()]
    return Group(*parts)


def trace_tree(
    label: str, spans: Iterable[SpanRecord], *, thoughts: bool = False, messages: bool = False, tools: bool = False
) -> Tree:
    """Spans as a rich tree under `label`: names, durations, tokens, status and errors, and the details asked for."""
    root = Tree(Text(label, style="bold"))
    details = _Details(thoughts, messages, tools)
    for span in spans:
        _add(root, span, details)
    return root


def _add(parent: Tree, span: SpanRecord, details: _Details) -> None:
    label = Text(span.name, style="bold" if span.kind in ("invoke_workflow", "invoke_agent") else "")
    step = span.attributes.get("rolegraph.step.id")
    if step is not None:
        item = span.attributes.get("rolegraph.step.item")
        label.append(f" [{step}{'' if item is None else f'[{item}]'}]", style="cyan")
    if span.duration_s is not None:
        label.append(f"  {span.duration_s:.2f}s", style="dim")
    if span.input_tokens or span.output_tokens:
        label.append(f"  {span.input_tokens}→{span.output_tokens} tok", style="magenta")
    if span.status not in ("ok",):
        style = "yellow" if span.status in ("unfinished", "tool_error") else "red"
        label.append(f"  {span.status}", style=style)
    if span.error:
        label.append(f"  {span.error}", style="red")
    a = span.attributes
    skipped = a.get("rolegraph.items_skipped")
    if span.kind == "plan" and isinstance(skipped, list) and skipped:
        indexes = ", ".join(str(entry.get("index")) for entry in skipped if isinstance(entry, dict))
        label.append(f"  {len(skipped)} item(s) skipped: {indexes}", style="yellow")
    thought = a.get("rolegraph.thought")
    if details.thoughts and thought:
        label.append(f"\n  thought: {thought}", style="italic")
    if details.messages and span.kind == "chat":
        _detail(label, "input", a.get("rolegraph.input.last"))
        _detail(label, "output", a.get("rolegraph.output.text"))
        for call in a.get("rolegraph.output.tool_calls") or ():
            if isinstance(call, dict):
                _detail(label, "calls", f"{call.get('name')} {call.get('arguments')}")
    if details.tools and span.kind == "execute_tool":
        _detail(label, "arguments", a.get("rolegraph.tool.arguments"))
        _detail(label, "result", a.get("rolegraph.tool.result"))
    node = parent.add(label)
    for child in span.children:
        _add(node, child, details)


@dataclass(frozen=True)
class _Details:
    thoughts: bool
    messages: bool
    tools: bool


def _detail(label: Text, name: str, value: Any) -> None:
    if value is None or value == "":
        return
    text = str(value).rstrip().replace("\n", "\n    ")
    label.append(f"\n  {name}: ", style="dim")
    label.append(text, style="italic" if name in ("input", "arguments") else "")
