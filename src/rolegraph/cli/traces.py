"""``rolegraph trace``: show a run's trace, compare two runs, export one."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from rolegraph.cli._common import (
    EXIT_BAD_INPUT,
    PricesOption,
    RunArgument,
    app,
    damage_exits,
    err,
    find_run,
    format_cost,
    load_prices,
    out,
)
from rolegraph.layout import RunFolder
from rolegraph.traces.call_diff import CallLine, compare_calls
from rolegraph.traces.diff import diff_runs
from rolegraph.traces.export import to_otlp_json
from rolegraph.traces.records import read_summary
from rolegraph.traces.trace import SpanRecord, Trace
from rolegraph.traces.usage import UsageTotal, roll_up


class _TraceGroup(TyperGroup):
    """``rolegraph trace RUN ...`` shows a run; ``trace diff`` and ``trace export`` are subcommands.

    A first argument that names no subcommand is a run id: it goes to ``trace show``.
    """

    # `ctx` is typer's vendored click Context, a private type: Any keeps the override compatible.
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["show", *args]
        return super().parse_args(ctx, args)


trace_app = typer.Typer(
    cls=_TraceGroup,
    no_args_is_help=True,
    subcommand_metavar="RUN | COMMAND [ARGS]...",
    help="Show a run's trace (`rolegraph trace RUN`), compare two runs (`trace diff`) or export one (`trace export`).",
)
app.add_typer(trace_app, name="trace")


def _span_json(span: SpanRecord) -> dict[str, Any]:
    return {
        "span_id": span.span_id,
        "parent_id": span.parent_id,
        "kind": span.kind,
        "name": span.name,
        "status": span.status,
        "error": span.error,
        "start_time": span.start_time,
        "duration_s": span.duration_s,
        "input_tokens": span.input_tokens,
        "output_tokens": span.output_tokens,
        "attributes": span.attributes,
        "children": [_span_json(child) for child in span.children],
    }


def _usage_table(title: str, totals: dict[str, UsageTotal]) -> Table:
    table = Table(title=title, title_justify="left", box=None)
    for column in (title.split(" ")[-1], "calls", "input", "output", "cost"):
        table.add_column(column, justify="left" if column == title.split(" ")[-1] else "right")
    for key, total in totals.items():
        table.add_row(
            escape(key),
            str(total.calls),
            str(total.input_tokens),
            str(total.output_tokens),
            format_cost(total.cost_usd),
        )
    return table


@trace_app.command("show")
def trace_show(
    run_id: RunArgument,
    step: Annotated[str | None, typer.Option("--step", help="Only this step's spans.")] = None,
    thoughts: Annotated[bool, typer.Option("--thoughts", help="Show each step's thought.")] = False,
    messages: Annotated[
        bool, typer.Option("--messages", help="Show each model call's last input message and its output.")
    ] = False,
    tools: Annotated[bool, typer.Option("--tools", help="Show each tool call's arguments and result.")] = False,
    usage: Annotated[bool, typer.Option("--usage", help="Add tokens and cost per step, role and model.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the span tree and usage as JSON.")] = False,
    prices: PricesOption = None,
) -> None:
    """Print a run's trace as a tree with durations, tokens and errors (`trace RUN` is short for this)."""
    path = RunFolder(find_run(run_id)).trace
    with damage_exits():
        recorded = Trace.load(path)
    roots = recorded.roots
    if step is not None:
        roots = recorded.step_roots(step)
        if not roots:
            steps = sorted(
                {str(s.attributes["rolegraph.step.id"]) for s in recorded.walk() if "rolegraph.step.id" in s.attributes}
            )
            err.print(f"[red]error[/] no step {escape(repr(step))} in this run; its steps: {escape(', '.join(steps))}")
            raise typer.Exit(EXIT_BAD_INPUT)
    rollup = roll_up(recorded, load_prices(prices), step=step)
    if as_json:
        document = {"run_id": path.parent.name, "trace": str(path), "step": step, "usage": rollup.as_dict()}
        print(json.dumps({**document, "spans": [_span_json(s) for s in roots]}, indent=2, default=str))
        return
    out.print(recorded.tree(show_thoughts=thoughts, show_messages=messages, show_tools=tools, step=step))
    if usage:
        for title, totals in (
            ("usage by step", rollup.by_step),
            ("usage by role", rollup.by_role),
            ("usage by model", rollup.by_model),
        ):
            out.print(_usage_table(title, totals))
    shown = list(recorded.walk(roots))
    chats = [span for span in shown if span.kind == "chat"]
    tokens_in, tokens_out = sum(c.input_tokens for c in chats), sum(c.output_tokens for c in chats)
    line = f"{len(shown)} spans, {tokens_in} input + {tokens_out} output tokens"
    cost = rollup.total.cost_usd
    line = line if cost is None or cost == 0 else f"{line}, {format_cost(cost)}"
    saved = rollup.saved
    if saved.calls:
        tokens = f"{saved.input_tokens} input + {saved.output_tokens} output tokens"
        worth = "" if not saved.cost_usd else f" ({format_cost(saved.cost_usd)})"
        line += f"; {saved.calls} calls answered from the cache saved {tokens}{worth}"
    out.print(line)


@trace_app.command("diff")
def trace_diff(
    run_a: Annotated[str, typer.Argument(help="The first run (id, prefix or 'last').")],
    run_b: Annotated[str, typer.Argument(help="The second run.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
    prices: PricesOption = None,
) -> None:
    """Compare two runs step by step: status, visits, tool calls, outputs, tokens and time."""
    folder_a, folder_b, price_table = find_run(run_a), find_run(run_b), load_prices(prices)
    with damage_exits():
        difference = diff_runs(folder_a, folder_b, price_table)
    if as_json:
        print(json.dumps(difference.as_dict(), indent=2, default=str))
        return
    workflows = difference.as_dict()["workflow"]
    if workflows[0] != workflows[1]:
        err.print(f"[yellow]note[/] different workflows: {escape(str(workflows[0]))} and {escape(str(workflows[1]))}")
    table = Table(box=None, title=f"A {difference.a.run_id}  B {difference.b.run_id}", title_justify="left")
    for column in ("", "step", "status", "visits", "tool calls", "output", "tokens", "time"):
        table.add_column(column)
    for s in difference.steps:
        table.add_row(
            "[red]≠[/]" if s.differs else "=",
            escape(s.step_id),
            _pair(*s.status),
            _pair(*s.visits),
            "same" if s.tool_calls_same else f"[red]{len(s.tool_calls[0])} vs {len(s.tool_calls[1])}, differ[/]",
            {True: "same", False: "[red]differs[/]", None: "-"}[s.output_same],
            _pair(*s.tokens),
            _times(*s.duration_s),
        )
    t = difference.totals
    table.add_row(
        "",
        "[bold]total[/]",
        _pair(*t["status"]),
        "",
        _pair(*t["tool_calls"]),
        "",
        _pair(t["input_tokens"][0] + t["output_tokens"][0], t["input_tokens"][1] + t["output_tokens"][1]),
        _times(*t["duration_s"]),
    )
    out.print(table)
    for s in difference.steps:
        if not s.tool_calls_same:
            _print_calls(s.step_id, compare_calls(*s.tool_calls))
    differing = t["steps_differing"]
    out.print(
        f"{len(differing)} of {len(difference.steps)} steps differ" + (f": {', '.join(differing)}" if differing else "")
    )


def _print_calls(step_id: str, lines: list[CallLine]) -> None:
    """A step's tool calls, item by item: identical stretches as one ``=`` line, the rest as A and B."""
    out.print(f"[bold]{escape(step_id)}[/] tool calls:")
    item: str | None = None
    for line in lines:
        indent = "  "
        if line.item is not None:
            if line.item != item:
                out.print(f"  item {escape(line.item)}:")
            indent = "    "
        item = line.item
        if line.side == "=" and line.count > 1:
            out.print(f"{indent}= {line.count} identical calls, from {escape(line.text)}", soft_wrap=True)
        else:
            out.print(f"{indent}{line.side} {escape(line.text)}", soft_wrap=True)


def _pair(a: Any, b: Any) -> str:
    text = escape(f"{a}" if a == b else f"{a} → {b}")
    return text if a == b else f"[yellow]{text}[/]"


def _times(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return f"{'-' if a is None else f'{a:.2f}s'} → {'-' if b is None else f'{b:.2f}s'}"
    ratio = f" (x{b / a:.2f})" if a > 0 else ""
    return f"{a:.2f}s → {b:.2f}s{ratio}"


class ExportFormat(StrEnum):
    """What `rolegraph trace export` writes."""

    OTLP_JSON = "otlp-json"
    JSONL = "jsonl"


@trace_app.command("export")
def trace_export(
    run_id: RunArgument,
    format: Annotated[
        ExportFormat, typer.Option("--format", "-f", help="OTLP/JSON or the raw JSONL.")
    ] = ExportFormat.OTLP_JSON,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file, not stdout.")] = None,
) -> None:
    """Export a run's trace: OTLP/JSON (an ExportTraceServiceRequest) or the raw JSONL."""
    run_dir = find_run(run_id)
    path = RunFolder(run_dir).trace
    if format is ExportFormat.JSONL:
        data = path.read_bytes()
    else:
        with damage_exits():
            summary = read_summary(RunFolder(run_dir).summary)
            recorded = Trace.load(path)
        document = to_otlp_json(recorded, run_dir.name, {"rolegraph.workflow": summary.get("workflow")})
        data = (json.dumps(document, ensure_ascii=False) + "\n").encode()
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        output.write_bytes(data)
        err.print(f"wrote {escape(str(output))}")
