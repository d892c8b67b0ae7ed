"""``rolegraph replay``: re-run a recorded run offline from its recorded calls and report where it diverges."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape

from rolegraph.cli._common import EXIT_BAD_INPUT, EXIT_FAILED, RunArgument, app, err, find_run, out, run_async
from rolegraph.durability.prompt_diff import prompt_change
from rolegraph.durability.replay import replay as replay_run
from rolegraph.traces.progress import ProgressPrinter
from rolegraph.traces.sinks import TraceSink


@app.command()
def replay(
    run_id: RunArgument,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as one JSON object.")] = False,
    verbose: Annotated[bool, typer.Option("--progress", help="Show the replay's live progress.")] = False,
) -> None:
    """Re-run a run offline with its recorded model and tool responses; report the first divergence.

    The workflow file is read as it is now (edit it, or the code, then replay). The replay is
    a new run; no model is loaded or called and no tool runs. Exit 0 identical, 1 diverged,
    2 the run cannot be replayed.
    """
    run_dir = find_run(run_id)
    sinks: list[TraceSink] = [ProgressPrinter(err)] if verbose else []
    report = run_async(replay_run(run_dir, sinks=sinks), error_exit=EXIT_BAD_INPUT)
    if as_json:
        print(json.dumps(report.summary(), indent=2))
    else:
        calls = f"{report.replayed_calls} of {report.recorded_calls} recorded calls replayed"
        if report.divergence is None:
            out.print(f"identical: {calls}, outputs equal (replay {report.result.run_id})", soft_wrap=True)
        else:
            out.print(f"diverged at {escape(report.divergence.describe())}", soft_wrap=True)
            divergence = report.divergence
            if divergence.kind in ("chat", "check") and divergence.call_id and "prompt" in divergence.reason:
                for line in prompt_change(run_dir, report.result.folder.path, divergence.call_id):
                    out.print(f"  {escape(line)}", soft_wrap=True, highlight=False)
            out.print(f"{calls}; replay {report.result.run_id}", soft_wrap=True)
            out.print(f"compare: rolegraph trace diff {report.original} {report.result.run_id}", soft_wrap=True)
    if report.divergence is not None:
        raise typer.Exit(EXIT_FAILED)
