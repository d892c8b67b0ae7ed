"""The `rolegraph` command line. Thin: it parses, calls the library, and renders."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from rolegraph.errors import RolegraphError, SpecError
from rolegraph.traces.diff import diff_runs
from rolegraph.traces.export import to_otlp_json
from rolegraph.traces.pricing import PricesError, PriceTable
from rolegraph.traces.progress import ProgressPrinter
from rolegraph.traces.store import TraceStore
from rolegraph.traces.trace import SpanRecord, Trace
from rolegraph.traces.usage import UsageTotal, roll_up
from rolegraph.workflows.graph import to_dot, to_mermaid
from rolegraph.workflows.run import RunResult, Workflow, home_dir
from rolegraph.workflows.spec import WorkflowSpec

__all__ = ["app", "main"]

app = typer.Typer(
    name="rolegraph",
    help="Multi-agent research workflows in YAML, every step traced.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err = Console(stderr=True)
out = Console(highlight=False)

T = TypeVar("T")

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_CANCELLED = 130


def _report_spec_error(exc: SpecError) -> typer.Exit:
    for problem in exc.problems:
        err.print(f"[red]error[/] {escape(str(problem))}", markup=True, highlight=False, soft_wrap=True)
    err.print(f"{len(exc.problems)} problem(s) found.")
    return typer.Exit(EXIT_BAD_INPUT)


def _load(file: Path) -> Workflow:
    try:
        return Workflow.load(file)
    except SpecError as exc:
        raise _report_spec_error(exc) from None


def _parse_inputs(pairs: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            err.print(f"[red]error[/] --input expects name=value, got {escape(repr(pair))}")
            raise typer.Exit(EXIT_BAD_INPUT)
        values[name.strip()] = value
    return values


def _run_async(work: Coroutine[Any, Any, T], *, error_exit: int) -> T:
    """Run `work` to completion, turning rolegraph's errors and Ctrl-C into messages and exit codes."""
    try:
        return asyncio.run(work)
    except SpecError as exc:
        raise _report_spec_error(exc) from None
    except RolegraphError as exc:
        err.print(f"[red]error[/] {escape(str(exc))}")
        raise typer.Exit(error_exit) from None
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]")
        raise typer.Exit(EXIT_CANCELLED) from None


def _print_result(result: RunResult) -> None:
    table = Table(show_header=False, box=None)
    colour = "green" if result.status == "completed" else "red"
    table.add_row("run", result.run_id)
    table.add_row("status", f"[{colour}]{result.status}[/]")
    if result.error:
        table.add_row("error", escape(result.error))
    table.add_row("tokens", f"{result.usage.input_tokens} in, {result.usage.output_tokens} out")
    table.add_row("time", f"{result.duration_s:.1f}s")
    table.add_row("sources", str(len(result.sources)))
    table.add_row("citations", f"{result.citations.total} ({result.citations.unresolved} unresolved)")
    for name, path in result.outputs.items():
        table.add_row(name, escape(str(path)))
    table.add_row("trace", escape(str(result.run_dir / "trace.jsonl")))
    err.print(table)


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="Workflow YAML file.")],
    input: Annotated[
        list[str] | None, typer.Option("--input", "-i", help="An input as name=value (repeatable).")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model string replacing the workflow's default model.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON summary object on stdout at the end.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live progress.")] = False,
) -> None:
    """Run a workflow. Exit 0 on success, 1 if the run failed, 2 on bad input, 130 if interrupted."""
    workflow = _load(file)
    inputs = _parse_inputs(input or [])
    sinks = [] if quiet else [ProgressPrinter(err)]
    result = _run_async(workflow.run(inputs, model=model, sinks=sinks), error_exit=EXIT_FAILED)
    if as_json:
        print(json.dumps(result.summary(), indent=2))
    _print_result(result)
    if result.status != "completed":
        raise typer.Exit(EXIT_FAILED)


@app.command()
def validate(file: Annotated[Path, typer.Argument(help="Workflow YAML file.")]) -> None:
    """Check a workflow file; print every problem with file:line:col and exit 2 if there are any."""
    workflow = _load(file)
    spec = workflow.spec
    inputs = ", ".join(spec.inputs) or "none"
    out.print(f"[green]ok[/] {escape(str(file))}: workflow {spec.name!r}, {len(spec.steps)} steps, inputs: {inputs}")


@app.command()
def graph(
    file: Annotated[Path, typer.Argument(help="Workflow YAML file.")],
    format: Annotated[str, typer.Option("--format", "-f", help="mermaid or dot.")] = "mermaid",
) -> None:
    """Print the workflow's step graph as Mermaid or Graphviz DOT."""
    workflow = _load(file)
    if format not in ("mermaid", "dot"):
        err.print(f"[red]error[/] unknown format {escape(repr(format))}; use mermaid or dot")
        raise typer.Exit(EXIT_BAD_INPUT)
    text = to_mermaid(workflow.graph) if format == "mermaid" else to_dot(workflow.graph)
    print(text.rstrip("\n"))  # one final newline, not the renderer's plus print's


@app.command()
def schema() -> None:
    """Print the JSON Schema of workflow files (for editor validation)."""
    document: dict[str, Any] = WorkflowSpec.model_json_schema(by_alias=True)
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "rolegraph workflow"
    print(json.dumps(document, indent=2))


def _started(run_dir: Path) -> str:
    """When the run began (ISO 8601 UTC, from its ``run.json``), or "" if unknown."""
    try:
        summary = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    return str(summary.get("started", "")) if isinstance(summary, dict) else ""


def _find_run(run_id: str) -> Path:
    runs = home_dir() / "runs"
    candidates = sorted(p for p in runs.glob("*") if p.is_dir()) if runs.is_dir() else []
    if run_id == "last" and candidates:
        # Ids only have whole seconds before their random suffix: runs of one second sort at random by name.
        return max(candidates, key=lambda p: (_started(p), p.name))
    matches = [p for p in candidates if p.name.startswith(run_id)]
    if len(matches) == 1:
        return matches[0]
    problem = f"no run {run_id!r} in {runs}" if not matches else f"{run_id!r} is ambiguous"
    err.print(f"[red]error[/] {escape(problem)}")
    raise typer.Exit(EXIT_BAD_INPUT)


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
    help="Show a run's trace (`rolegraph trace RUN`), compare two runs (`trace diff`) or export one (`trace export`).",
)
app.add_typer(trace_app, name="trace")

RunArgument = Annotated[str, typer.Argument(help="Run id (or a unique prefix, or 'last').")]
PricesOption = Annotated[
    Path | None, typer.Option("--prices", help="A price file (model: {input, output} USD per 1M tokens).")
]


def _prices(path: Path | None) -> PriceTable:
    if path is not None and not path.is_file():
        err.print(f"[red]error[/] {escape(str(path))}: no such price file")
        raise typer.Exit(EXIT_BAD_INPUT)
    try:
        return PriceTable.load(home_dir() / "prices.yaml", path)
    except PricesError as exc:
        err.print(f"[red]error[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_BAD_INPUT) from None


def _cost(value: float | None) -> str:
    return "?" if value is None else f"${value:.4f}"


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
            escape(key), str(total.calls), str(total.input_tokens), str(total.output_tokens), _cost(total.cost_usd)
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
    """Print a run's trace as a tree with durations, tokens and errors."""
    path = _find_run(run_id) / "trace.jsonl"
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
    rollup = roll_up(recorded, _prices(prices), step=step)
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
    out.print(line if cost is None or cost == 0 else f"{line}, {_cost(cost)}")


@trace_app.command("diff")
def trace_diff(
    run_a: Annotated[str, typer.Argument(help="The first run (id, prefix or 'last').")],
    run_b: Annotated[str, typer.Argument(help="The second run.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
    prices: PricesOption = None,
) -> None:
    """Compare two runs step by step: status, visits, tool calls, outputs, tokens and time."""
    difference = diff_runs(_find_run(run_a), _find_run(run_b), _prices(prices))
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
            out.print(f"[bold]{escape(s.step_id)}[/] tool calls:")
            for side, calls in zip("AB", s.tool_calls, strict=True):
                for call in calls:
                    arguments = json.dumps(call["arguments"], ensure_ascii=False)
                    out.print(f"  {side} {escape(str(call['name']))} {escape(arguments)}")
    differing = t["steps_differing"]
    out.print(
        f"{len(differing)} of {len(difference.steps)} steps differ" + (f": {', '.join(differing)}" if differing else "")
    )


def _pair(a: Any, b: Any) -> str:
    text = escape(f"{a}" if a == b else f"{a} → {b}")
    return text if a == b else f"[yellow]{text}[/]"


def _times(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return f"{'-' if a is None else f'{a:.2f}s'} → {'-' if b is None else f'{b:.2f}s'}"
    ratio = f" (x{b / a:.2f})" if a > 0 else ""
    return f"{a:.2f}s → {b:.2f}s{ratio}"


@trace_app.command("export")
def trace_export(
    run_id: RunArgument,
    format: Annotated[str, typer.Option("--format", "-f", help="otlp-json or jsonl.")] = "otlp-json",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file, not stdout.")] = None,
) -> None:
    """Export a run's trace: OTLP/JSON (an ExportTraceServiceRequest) or the raw JSONL."""
    if format not in ("otlp-json", "jsonl"):
        err.print(f"[red]error[/] unknown format {escape(repr(format))}; use otlp-json or jsonl")
        raise typer.Exit(EXIT_BAD_INPUT)
    run_dir = _find_run(run_id)
    path = run_dir / "trace.jsonl"
    if format == "jsonl":
        data = path.read_bytes()
    else:
        summary = _read_run_json(run_dir)
        resource = {"rolegraph.workflow": summary.get("workflow")}
        document = to_otlp_json(Trace.load(path), str(summary.get("run_id") or run_dir.name), resource)
        data = (json.dumps(document, ensure_ascii=False) + "\n").encode()
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        output.write_bytes(data)
        err.print(f"wrote {escape(str(output))}")


def _read_run_json(run_dir: Path) -> dict[str, Any]:
    try:
        summary = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return summary if isinstance(summary, dict) else {}


runs_app = typer.Typer(help="List runs (`rolegraph runs`) or delete old ones (`runs prune`).")
app.add_typer(runs_app, name="runs")


def _open_store(prices: Path | None = None) -> TraceStore:
    """The run index, brought up to date with the run folders (new, changed, crashed or deleted runs)."""
    home = home_dir()
    store = TraceStore(home / "index.sqlite", prices=_prices(prices))
    try:
        store.sync(home / "runs")
    except BaseException:
        store.close()
        raise
    return store


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


@runs_app.callback(invoke_without_command=True)
def runs(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many runs, newest first.")] = 20,
    workflow: Annotated[str | None, typer.Option("--workflow", "-w", help="Only runs of this workflow.")] = None,
    prices: PricesOption = None,
) -> None:
    """List runs, newest first: id, workflow, status, start (UTC), duration, tokens and cost."""
    if ctx.invoked_subcommand is not None:
        return
    with _open_store(prices) as store:
        rows = store.list_runs(limit=limit, workflow=workflow)
    if as_json:
        print(json.dumps([row.as_dict() for row in rows], indent=2))
        return
    table = Table(box=None)
    for column in ("run", "workflow", "status", "started (UTC)", "duration", "tokens", "cost"):
        table.add_column(column, justify="right" if column in ("duration", "tokens", "cost") else "left")
    colours = {"completed": "green", "failed": "red", "cancelled": "yellow", "unfinished": "yellow"}
    for row in rows:
        colour = colours.get(row.status, "white")
        table.add_row(
            row.run_id,
            escape(row.workflow or "-"),
            f"[{colour}]{escape(row.status)}[/]",
            _when(row.started),
            "-" if row.duration_s is None else f"{row.duration_s:.1f}s",
            f"{row.input_tokens}+{row.output_tokens}",
            _cost(row.cost_usd),
        )
    out.print(table)
    if not rows:
        err.print(f"no runs in {escape(str(home_dir() / 'runs'))}")


def _parse_age(text: str) -> dt.timedelta:
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if match is None:
        err.print(
            "[red]error[/] --older-than expects a number and a unit (s, m, h, d, w), e.g. 30d;"
            f" got {escape(repr(text))}"
        )
        raise typer.Exit(EXIT_BAD_INPUT)
    return dt.timedelta(**{units[match[2]]: float(match[1])})


@runs_app.command("prune")
def runs_prune(
    older_than: Annotated[str, typer.Option("--older-than", help="Age, e.g. 30d, 12h, 2w.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be deleted.")] = False,
) -> None:
    """Delete runs (their folders and index rows) started longer ago than --older-than."""
    cut = dt.datetime.now(dt.UTC) - _parse_age(older_than)
    with _open_store() as store:
        if dry_run:
            doomed = [r for r in store.list_runs(limit=None) if r.started is not None and r.started < cut.timestamp()]
        else:
            doomed = store.delete_runs(cut)
    for row in doomed:
        print(row.run_id)
    verb = "would delete" if dry_run else "deleted"
    err.print(f"{verb} {len(doomed)} run(s) started before {cut.strftime('%Y-%m-%d %H:%M:%S')} UTC")


def main() -> None:
    """Entry point of the `rolegraph` console script."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(EXIT_CANCELLED)


def _argument_summary(parameters: dict[str, Any]) -> str:
    """``name: type`` per argument; optional ones marked ``?``."""
    required = set(parameters.get("required", []))
    parts = []
    for field, prop in parameters.get("properties", {}).items():
        kind = prop.get("type") or "|".join(str(p.get("type", "?")) for p in prop.get("anyOf", [])) or "enum"
        if "enum" in prop:
            kind = "|".join(str(v) for v in prop["enum"])
        parts.append(f"{field}{'' if field in required else '?'}: {kind}")
    return "\n".join(parts)


@app.command("tools")
def tools_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print every tool's name, description and schema.")] = False,
) -> None:
    """List the built-in tools with their arguments."""
    from rolegraph.tools.registry import builtin_tools, describe_tools  # CLI-local: this block is self-contained

    described = describe_tools(builtin_tools())
    if as_json:
        print(json.dumps(described, indent=2))
        return
    table = Table("tool", "arguments", "description", show_lines=True)
    for entry in described:
        table.add_row(entry["name"], escape(_argument_summary(entry["parameters"])), escape(entry["description"]))
    out.print(table)


@app.command("tool")
def tool_run(
    name: Annotated[str, typer.Argument(help="A built-in tool, or an import path such as my_tools:word_count.")],
    args: Annotated[str, typer.Option("--args", help="The arguments, as a JSON object.")] = "{}",
    library: Annotated[Path | None, typer.Option(help="Folder of notes, for library_search and read_document.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole result as JSON (content, data, sources, is_error).")
    ] = False,
) -> None:
    """Run one tool. Exit 0 on success, 1 if the tool reported an error, 2 for bad arguments or an unknown tool."""
    from pydantic import ValidationError

    from rolegraph.tools.library import Library
    from rolegraph.tools.registry import call_tool, resolve_tool

    try:
        values = json.loads(args)
    except ValueError as exc:
        err.print(f"[red]error[/] --args is not valid JSON: {escape(str(exc))}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    if not isinstance(values, dict):
        err.print('[red]error[/] --args must be a JSON object, e.g. \'{"query": "LoRA"}\'')
        raise typer.Exit(EXIT_BAD_INPUT)
    try:
        notes = Library.from_dir(library) if library is not None else None
        chosen = resolve_tool(name, library=notes, search_path=Path.cwd())
    except SpecError as exc:
        raise _report_spec_error(exc) from None
    try:
        parsed = chosen.args_model.model_validate(values)
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "(arguments)"
            err.print(f"[red]error[/] {escape(name)}: {escape(where)}: {escape(error['msg'])}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    result = asyncio.run(call_tool(chosen, parsed, close=True))
    if as_json:
        print(result.model_dump_json(indent=2))
    else:
        print(result.content)
        if result.sources:
            err.print(f"{len(result.sources)} source(s): {escape(', '.join(s.id for s in result.sources))}")
    if result.is_error:
        raise typer.Exit(EXIT_FAILED)


@app.command("eval")
def eval_command(
    workflow_file: Annotated[Path, typer.Argument(metavar="WORKFLOW", help="Workflow YAML file.")],
    evalset_file: Annotated[Path, typer.Argument(metavar="EVALSET", help="Eval set YAML file.")],
    model: Annotated[
        list[str] | None,
        typer.Option("--model", "-m", help="A model replacing the workflow's default (repeatable: one column each)."),
    ] = None,
    repeat: Annotated[int, typer.Option(min=1, help="Runs per question and model, for the spread.")] = 1,
    concurrency: Annotated[int, typer.Option(min=1, help="Runs at once.")] = 1,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N questions (quick mode).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole report as JSON on stdout.")] = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also write the markdown report here.")] = None,
) -> None:
    """Run every question of an eval set through a workflow and score the runs; one table of metrics per model.

    Exit 0 when every run completed, 1 if any failed, 2 on bad input.
    """
    from rolegraph.evals.loader import load_evalset  # CLI-local: this block is self-contained
    from rolegraph.evals.runner import EvalRun, evaluate

    workflow = _load(workflow_file)
    try:
        evalset = load_evalset(evalset_file, workflow)
    except SpecError as exc:
        raise _report_spec_error(exc) from None
    models: list[str | None] = list(model) if model else [None]
    questions = len(evalset.questions[:limit] if limit else evalset.questions)
    total = questions * len(dict.fromkeys(models)) * repeat
    finished = 0

    def progress(run: EvalRun) -> None:
        nonlocal finished
        finished += 1
        scores = run.scores
        shown = {
            "facts": scores.fact_coverage,
            "recall": scores.source_recall,
            "support": scores.claim_support,
        }
        parts = " ".join(f"{k} {'n/a' if v is None else f'{v:.2f}'}" for k, v in shown.items())
        colour = "green" if run.status == "completed" else "red"
        err.print(
            f"[{finished}/{total}] {escape(run.question)} on {escape(run.model)} #{run.repeat}: "
            f"[{colour}]{run.status}[/] {parts} {scores.wall_time_s:.1f}s",
            highlight=False,
            soft_wrap=True,  # one line per run, however narrow the terminal
        )

    report = _run_async(
        evaluate(workflow, evalset, models, repeat=repeat, concurrency=concurrency, limit=limit, on_run=progress),
        error_exit=EXIT_BAD_INPUT,
    )
    markdown = report.to_markdown()
    if output is not None:
        output.write_text(markdown, encoding="utf-8")
    print(report.to_json() if as_json else markdown.rstrip("\n"))
    if report.failed:
        raise typer.Exit(EXIT_FAILED)
