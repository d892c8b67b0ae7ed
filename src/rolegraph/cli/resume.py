"""``rolegraph resume``: continue a run that crashed, was killed, was cancelled or ran out of budget."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from rolegraph.cli._common import (
    EXIT_BAD_INPUT,
    ExecutorOption,
    MaxCostOption,
    MaxIterationsOption,
    MaxTokensOption,
    MaxToolCallsOption,
    MaxWallOption,
    RunArgument,
    RunIdSink,
    app,
    budget_from,
    err,
    executor_factory,
    exit_for,
    find_run,
    load_workflow,
    run_async,
)
from rolegraph.cli.workflows import print_result
from rolegraph.durability.resume import resume as resume_run
from rolegraph.durability.resume import workflow_file
from rolegraph.errors import RolegraphError
from rolegraph.runtime.executor import ExecutorFactory, LocalExecutor
from rolegraph.traces.progress import ProgressPrinter
from rolegraph.traces.sinks import TraceSink


@app.command()
def resume(
    run_id: RunArgument,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON summary object on stdout at the end.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Resume even though the workflow file changed since the run started.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live progress.")] = False,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Go on with this model string as the default model (recorded calls are replayed as they were);"
            " a local_only run refuses a hosted one.",
        ),
    ] = None,
    max_tokens: MaxTokensOption = None,
    max_cost: MaxCostOption = None,
    max_wall: MaxWallOption = None,
    max_tool_calls: MaxToolCallsOption = None,
    max_iterations: MaxIterationsOption = None,
    executor: ExecutorOption = None,
) -> None:
    """Continue a run from its last checkpoint: finished steps are not run again, recorded calls are replayed.

    Exit codes as for `run`; 2 also when the run cannot be resumed (its workflow file changed: see --force),
    and when a local_only run (its privacy is recorded: from the file, --privacy or load(privacy=)) would
    send its content to a hosted model.
    """
    run_dir = find_run(run_id)
    budget = budget_from(max_tokens, max_cost, max_wall, max_tool_calls, max_iterations)
    factory = _executor(run_dir, executor)
    named = RunIdSink()
    sinks: list[TraceSink] = [named] if quiet else [named, ProgressPrinter(err)]
    result = run_async(
        resume_run(run_dir, force=force, budget=budget, model=model, sinks=sinks, executor=factory),
        error_exit=EXIT_BAD_INPUT,
        on_interrupt=named.hint,
    )
    if as_json:
        print(json.dumps(result.summary(), indent=2))
    print_result(result)
    if result.status != "completed":
        raise typer.Exit(exit_for(result.status))


def _executor(run_dir: Path, name: str | None) -> ExecutorFactory:
    """`--executor`, else the run's workflow's ``settings.executor``; local when the run names no readable
    workflow file (resuming then says why the run cannot be resumed)."""
    if name is not None:
        return executor_factory(name)
    try:
        file = workflow_file(run_dir)
    except RolegraphError:
        file = None
    if file is None or not file.is_file():
        return LocalExecutor.for_run
    return executor_factory(None, load_workflow(file))
