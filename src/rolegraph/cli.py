"""The `rolegraph` command line. Thin: it parses, calls the library, and renders."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rolegraph.errors import RolegraphError, SpecError
from rolegraph.traces.progress import ProgressPrinter
from rolegraph.traces.trace import Trace
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
    try:
        result = asyncio.run(workflow.run(inputs, model=model, sinks=sinks))
    except SpecError as exc:
        raise _report_spec_error(exc) from None
    except RolegraphError as exc:
        err.print(f"[red]error[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_FAILED) from None
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]")
        raise typer.Exit(EXIT_CANCELLED) from None
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


@app.command()
def trace(
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix, or 'last').")],
    thoughts: Annotated[bool, typer.Option(help="Show each step's thought.")] = False,
) -> None:
    """Print a run's trace as a tree with durations, tokens and errors."""
    path = _find_run(run_id) / "trace.jsonl"
    recorded = Trace.load(path)
    out.print(recorded.tree(show_thoughts=thoughts))
    tokens_in, tokens_out = recorded.usage()
    out.print(f"{len(recorded.spans)} spans, {tokens_in} input + {tokens_out} output tokens")


def main() -> None:
    """Entry point of the `rolegraph` console script."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(EXIT_CANCELLED)
