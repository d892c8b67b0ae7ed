"""``rolegraph eval``: score a workflow on an eval set (new runs, or past runs with ``--rescore``)."""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from rolegraph.cli._common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    PricesOption,
    app,
    err,
    find_run,
    load_prices,
    load_workflow,
    report_spec_error,
    run_async,
)
from rolegraph.errors import SpecError
from rolegraph.evals.html import render_html
from rolegraph.evals.judge import Judge
from rolegraph.evals.loader import load_evalset
from rolegraph.evals.matrix import columns, parse_grid
from rolegraph.evals.runner import EvalReport, EvalRun, evaluate, rescore
from rolegraph.workflows.run import home_dir


def _fail(message: str) -> typer.Exit:
    for line in message.splitlines():
        err.print(f"[red]error[/] {escape(line)}", highlight=False, soft_wrap=True)
    return typer.Exit(EXIT_BAD_INPUT)


def _eval_dir() -> Path:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    return home_dir() / "evals" / f"{stamp}-{secrets.token_hex(6)}"


def _write(report: EvalReport, path: Path) -> None:
    """`path` by its suffix: ``.html`` a page with plots, ``.json`` the JSON, anything else markdown."""
    suffix = path.suffix.lower()
    if suffix in (".html", ".htm"):
        text = render_html(report)
    elif suffix == ".json":
        text = report.to_json() + "\n"
    else:
        text = report.to_markdown()
    path.write_text(text, encoding="utf-8")


@app.command("eval")
def eval_command(
    workflow_file: Annotated[Path, typer.Argument(metavar="WORKFLOW", help="Workflow YAML file.")],
    evalset_file: Annotated[Path, typer.Argument(metavar="EVALSET", help="Eval set YAML file.")],
    model: Annotated[
        list[str] | None,
        typer.Option("--model", "-m", help="A model replacing the workflow's default (repeatable: one column each)."),
    ] = None,
    setting: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Vary a default-model setting: NAME=V1,V2 (temperature, top_p, seed, max_tokens; repeatable: "
            "every combination, crossed with the models, is a column).",
        ),
    ] = None,
    repeat: Annotated[int, typer.Option(min=1, help="Runs per question and column, for the spread.")] = 1,
    concurrency: Annotated[int, typer.Option(min=1, help="Runs at once.")] = 1,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N questions (quick mode).")] = None,
    judge_model: Annotated[
        str | None,
        typer.Option("--judge", help="A model string: also judge fact coverage with this model (fact_coverage_judge)."),
    ] = None,
    rescore_runs: Annotated[
        list[str] | None,
        typer.Option(
            "--rescore",
            metavar="RUN",
            help="Score this past run instead of running (repeatable; id, prefix or 'last').",
        ),
    ] = None,
    prices: PricesOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole report as JSON on stdout.")] = False,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Also write the report here: .html (table and plots), .json or markdown."),
    ] = None,
) -> None:
    """Run every question of an eval set through a workflow and score the runs; one table, a column per model
    and settings.

    Exit 0 when every run completed, 1 if any failed, 2 on bad input.
    """
    workflow = load_workflow(workflow_file)
    try:
        evalset = load_evalset(evalset_file, workflow)
    except SpecError as exc:
        raise report_spec_error(exc) from None
    try:
        grid = parse_grid(setting or [])
    except ValueError as exc:
        raise _fail(str(exc)) from None
    if rescore_runs and (model or setting or repeat != 1 or limit or concurrency != 1):
        raise _fail(
            "--rescore scores past runs as they are: --model, --set, --repeat, --limit and --concurrency do not apply"
        )
    run_dirs = [find_run(run) for run in rescore_runs or []]
    table = load_prices(prices)
    models: list[str | None] = list(model) if model else [None]
    questions = len(evalset.questions[:limit] if limit else evalset.questions)
    total = len(run_dirs) or questions * len(columns(models, grid)) * repeat
    finished = 0

    def progress(run: EvalRun) -> None:
        nonlocal finished
        finished += 1
        scores = run.scores
        shown = {
            "facts": scores.fact_coverage,
            **({"judged": scores.fact_coverage_judge} if judge_model else {}),
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

    async def work() -> EvalReport:
        judge = None
        if judge_model:
            judge = Judge.open(judge_model, _eval_dir() / "judge.jsonl", base_dir=workflow.base_dir)
        try:
            if run_dirs:
                return await rescore(workflow, evalset, run_dirs, prices=table, judge=judge, on_run=progress)
            return await evaluate(
                workflow,
                evalset,
                models,
                grid=grid,
                repeat=repeat,
                concurrency=concurrency,
                limit=limit,
                prices=table,
                judge=judge,
                on_run=progress,
            )
        finally:
            if judge is not None:
                await judge.aclose()

    report = run_async(work(), error_exit=EXIT_BAD_INPUT)
    if output is not None:
        _write(report, output)
    print(report.to_json() if as_json else report.to_markdown().rstrip("\n"))
    if report.failed:
        raise typer.Exit(EXIT_FAILED)
