"""``rolegraph eval``: score a workflow on an eval set."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from rolegraph.cli._common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    app,
    err,
    load_workflow,
    report_spec_error,
    run_async,
)
from rolegraph.errors import SpecError
from rolegraph.evals.loader import load_evalset
from rolegraph.evals.runner import EvalRun, evaluate


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
    workflow = load_workflow(workflow_file)
    try:
        evalset = load_evalset(evalset_file, workflow)
    except SpecError as exc:
        raise report_spec_error(exc) from None
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

    report = run_async(
        evaluate(workflow, evalset, models, repeat=repeat, concurrency=concurrency, limit=limit, on_run=progress),
        error_exit=EXIT_BAD_INPUT,
    )
    markdown = report.to_markdown()
    if output is not None:
        output.write_text(markdown, encoding="utf-8")
    print(report.to_json() if as_json else markdown.rstrip("\n"))
    if report.failed:
        raise typer.Exit(EXIT_FAILED)
