"""Commands on workflow files: run, validate, graph, schema."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from rolegraph.cli._common import (
    EXIT_FAILED,
    CacheOption,
    ExecutorOption,
    MaxCostOption,
    MaxIterationsOption,
    MaxTokensOption,
    MaxToolCallsOption,
    MaxWallOption,
    PrivacyOption,
    RunIdSink,
    app,
    budget_from,
    err,
    executor_factory,
    exit_for,
    format_cost,
    load_workflow,
    out,
    parse_inputs,
    print_json_document,
    run_async,
)
from rolegraph.runtime.output_checks import check_entries
from rolegraph.runtime.result import RunResult
from rolegraph.traces.content import ContentMode
from rolegraph.traces.progress import ProgressPrinter
from rolegraph.traces.render import skipped_lines
from rolegraph.traces.sinks import TraceSink
from rolegraph.workflows.graph import to_dot, to_mermaid
from rolegraph.workflows.spec import WorkflowSpec


def print_result(result: RunResult) -> None:
    """The run's summary table, on stderr."""
    table = Table(show_header=False, box=None)
    colour = "green" if result.status == "completed" else "red"
    table.add_row("run", result.run_id)
    table.add_row("status", f"[{colour}]{result.status}[/]")
    if result.error:
        table.add_row("error", escape(result.error))
    for line in skipped_lines(result.summary()):
        table.add_row("[yellow]skipped[/]", escape(line.removeprefix("skipped ")))
    table.add_row("tokens", f"{result.usage.input_tokens} in, {result.usage.output_tokens} out")
    table.add_row("time", f"{result.duration_s:.1f}s")
    table.add_row("sources", str(len(result.sources)))
    table.add_row("citations", f"{result.citations.total} ({result.citations.unresolved} unresolved)")
    for name, path in result.outputs.items():
        table.add_row(name, escape(str(path)))
    table.add_row("trace", escape(str(result.folder.trace)))
    if result.resumed_steps:
        table.add_row("resumed", ", ".join(result.resumed_steps))
    if result.cache is not None:
        saved = result.cache
        cost = "" if not saved.cost_usd else f", {format_cost(saved.cost_usd)}"
        tokens = saved.input_tokens + saved.output_tokens
        table.add_row("cache", f"{saved.hits} calls answered from the cache, {tokens} tokens saved{cost}")
    if result.replayed_calls or result.resent_calls:
        table.add_row("calls", f"{result.replayed_calls} replayed, {result.resent_calls} re-sent (request changed)")
    err.print(table)
    if result.status == "budget_exceeded":
        err.print(f"resume with a higher limit: rolegraph resume {result.run_id} --max-<limit> N")


class GraphFormat(StrEnum):
    """What `rolegraph graph` prints."""

    MERMAID = "mermaid"
    DOT = "dot"


@app.command()
def run(
    file: Annotated[Path, typer.Argument(metavar="WORKFLOW", help="Workflow YAML file.")],
    input: Annotated[
        list[str] | None,
        typer.Option("--input", "-i", metavar="<name=value>", help="An input as name=value (repeatable)."),
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model string replacing the workflow's default model.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON summary object on stdout at the end.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live progress.")] = False,
    content: Annotated[
        ContentMode | None,
        typer.Option(
            help="What the trace keeps of prompts and payloads: full, metadata (no text) or redacted"
            " (text replaced by length and hash). Default: the workflow's settings.content."
        ),
    ] = None,
    max_tokens: MaxTokensOption = None,
    max_cost: MaxCostOption = None,
    max_wall: MaxWallOption = None,
    max_tool_calls: MaxToolCallsOption = None,
    max_iterations: MaxIterationsOption = None,
    executor: ExecutorOption = None,
    privacy: PrivacyOption = None,
    cache: CacheOption = None,
) -> None:
    """Run a workflow.

    Exit 0 on success, 1 if the run failed, 2 on bad input, 3 if a budget ran out, 130 if interrupted
    (Ctrl-C or SIGTERM; resume it with `rolegraph resume`).
    """
    workflow = load_workflow(file, privacy=privacy)
    inputs = parse_inputs(input or [])
    budget = budget_from(max_tokens, max_cost, max_wall, max_tool_calls, max_iterations)
    factory = executor_factory(executor, workflow)
    named = RunIdSink()
    sinks: list[TraceSink] = [named] if quiet else [named, ProgressPrinter(err)]
    result = run_async(
        workflow.run(inputs, model=model, sinks=sinks, budget=budget, content=content, cache=cache, executor=factory),
        error_exit=EXIT_FAILED,
        on_interrupt=named.hint,
    )
    if as_json:
        print_json_document(result.summary())
    print_result(result)
    if result.status != "completed":
        raise typer.Exit(exit_for(result.status))


@app.command()
def validate(
    file: Annotated[Path, typer.Argument(metavar="WORKFLOW", help="Workflow YAML file.")],
    privacy: PrivacyOption = None,
) -> None:
    """Check a workflow file as a run would (tools, functions, library, models, templates, privacy).

    Every problem is printed with file:line:col, and any exits 2; warnings are printed too, and alone exit 0.
    """
    workflow = load_workflow(file, machine=True, privacy=privacy)
    for warning in workflow.warnings:
        err.print(f"[yellow]warning[/] {escape(str(warning))}", highlight=False, soft_wrap=True)
    spec = workflow.spec
    inputs = ", ".join(spec.inputs) or "none"
    out.print(f"[green]ok[/] {escape(str(file))}: workflow {spec.name!r}, {len(spec.steps)} steps, inputs: {inputs}")
    checked = [(step_id, check_entries(spec, step_id)) for step_id in spec.steps]
    listed = [f"{step_id} ({', '.join(c.label for _, c in entries)})" for step_id, entries in checked if entries]
    if listed:
        out.print(f"output checks: {escape('; '.join(listed))}", highlight=False, soft_wrap=True)
    if spec.settings.privacy == "local_only":
        out.print("privacy: local_only (every model and tool keeps the workflow's content on this machine)")


@app.command()
def graph(
    file: Annotated[Path, typer.Argument(metavar="WORKFLOW", help="Workflow YAML file.")],
    format: Annotated[
        GraphFormat, typer.Option("--format", "-f", help="Mermaid or Graphviz DOT.")
    ] = GraphFormat.MERMAID,
) -> None:
    """Print the workflow's step graph as Mermaid or Graphviz DOT."""
    workflow = load_workflow(file)
    text = to_mermaid(workflow.graph) if format is GraphFormat.MERMAID else to_dot(workflow.graph)
    print(text.rstrip("\n"))  # one final newline, not the renderer's plus print's


@app.command()
def schema() -> None:
    """Print the JSON Schema of workflow files (for editor validation)."""
    document: dict[str, Any] = WorkflowSpec.model_json_schema(by_alias=True)
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "rolegraph workflow"
    print(json.dumps(document, indent=2))
