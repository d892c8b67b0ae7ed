"""``rolegraph eval``: score a workflow on an eval set (new runs, past runs with ``--rescore``, or the rest of
an interrupted eval with ``--resume``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from rolegraph.cli._common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    CacheOption,
    ExecutorOption,
    MaxCostOption,
    MaxIterationsOption,
    MaxTokensOption,
    MaxToolCallsOption,
    MaxWallOption,
    PricesOption,
    app,
    budget_from,
    err,
    executor_factory,
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
from rolegraph.evals.manifest import (
    MANIFEST_FILE,
    EvalManifest,
    ManifestError,
    eval_dir,
    new_eval_id,
    resume_manifest,
)
from rolegraph.evals.matrix import columns, parse_grid
from rolegraph.evals.runner import EvalReport, EvalRun, evaluate, rescore
from rolegraph.layout import home_dir
from rolegraph.workflows.spec import Budget


def _fail(message: str) -> typer.Exit:
    for line in message.splitlines():
        err.print(f"[red]error[/] {escape(line)}", highlight=False, soft_wrap=True)
    return typer.Exit(EXIT_BAD_INPUT)


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
    workflow_file: Annotated[
        Path | None, typer.Argument(metavar="WORKFLOW", help="Workflow YAML file (with --resume: the eval's own).")
    ] = None,
    evalset_file: Annotated[
        Path | None, typer.Argument(metavar="EVALSET", help="Eval set YAML file (with --resume: the eval's own).")
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            metavar="<model>",
            help="A model replacing the workflow's default (repeatable: one column each).",
        ),
    ] = None,
    setting: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="<name=v1,v2>",
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
            metavar="<run>",
            help="Score this past run instead of running (repeatable; id, prefix or 'last').",
        ),
    ] = None,
    resume_eval: Annotated[
        str | None,
        typer.Option(
            "--resume",
            metavar="<eval>",
            help="Finish an interrupted eval (its id, a prefix or 'last'): finished runs are re-scored, "
            "interrupted ones continued, the rest run.",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="With --resume: go on although the workflow or eval set file changed.")
    ] = False,
    max_tokens: MaxTokensOption = None,
    max_cost: MaxCostOption = None,
    max_wall: MaxWallOption = None,
    max_tool_calls: MaxToolCallsOption = None,
    max_iterations: MaxIterationsOption = None,
    prices: PricesOption = None,
    cache: CacheOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole report as JSON on stdout.")] = False,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Also write the report here: .html (table and plots), .json or markdown."),
    ] = None,
    executor: ExecutorOption = None,
) -> None:
    """Run every question of an eval set through a workflow and score the runs.

    One table, a column per model and settings.

    The budget options hold every run to limits (a run that reaches one is scored as failed). Each eval
    prints its id: `rolegraph eval --resume ID` finishes it after a crash, a kill or Ctrl-C.

    Exit 0 when every run completed, 1 if any failed (or ran out of budget), 2 on bad input.
    """
    budget = budget_from(max_tokens, max_cost, max_wall, max_tool_calls, max_iterations)
    manifest: EvalManifest | None = None
    if resume_eval is not None:
        if model or setting or repeat != 1 or limit or rescore_runs or judge_model:
            raise _fail("--resume goes on with the eval's own --model, --set, --repeat, --limit and --judge")
        try:
            manifest = resume_manifest(
                home_dir(), resume_eval, workflow_file=workflow_file, evalset_file=evalset_file, force=force
            )
        except ManifestError as exc:
            raise _fail(str(exc)) from None
        workflow_file, evalset_file = Path(manifest.workflow_file), Path(manifest.evalset_file)
        budget = budget or Budget(**manifest.budget)
        judge_model, repeat, limit = manifest.judge, manifest.repeat, manifest.limit
    if workflow_file is None or evalset_file is None:
        raise _fail("give a WORKFLOW and an EVALSET file, or --resume EVAL")
    if rescore_runs and (model or setting or repeat != 1 or limit or concurrency != 1 or budget):
        raise _fail(
            "--rescore scores past runs as they are: --model, --set, --repeat, --limit, --concurrency and the "
            "budget options do not apply"
        )
    workflow = load_workflow(workflow_file)
    factory = executor_factory(executor, workflow)
    try:
        evalset = load_evalset(evalset_file, workflow)
        grid = parse_grid(setting or []) if manifest is None else dict(manifest.grid)
    except SpecError as exc:
        raise report_spec_error(exc) from None
    except ValueError as exc:
        raise _fail(str(exc)) from None
    run_dirs = [find_run(run) for run in rescore_runs or []]
    models: list[str | None] = list(model) if model else [None]
    if manifest is not None:
        models = list(dict.fromkeys(c.model for c in manifest.columns))
    elif not rescore_runs:
        manifest = EvalManifest.start(
            workflow_file,
            evalset_file,
            grid={name: list(values) for name, values in grid.items()},
            repeat=repeat,
            limit=limit,
            concurrency=concurrency,
            budget=budget.limits() if budget else {},
            judge=judge_model,
        )
    eval_id = manifest.eval_id if manifest is not None else new_eval_id()
    folder = eval_dir(home_dir(), eval_id)
    if manifest is not None:
        manifest.path = folder / MANIFEST_FILE
        manifest.concurrency = concurrency if concurrency != 1 else manifest.concurrency
        manifest.budget = budget.limits() if budget else {}
        started = "resumed" if resume_eval else "resume it with"
        err.print(f"eval {eval_id} ({started}: rolegraph eval --resume {eval_id})", highlight=False, soft_wrap=True)
    questions = len(evalset.questions[:limit] if limit else evalset.questions)
    progress = _Progress(len(run_dirs) or questions * len(columns(models, grid)) * repeat, bool(judge_model))

    async def work() -> EvalReport:
        judge = Judge.open(judge_model, folder / "judge.jsonl", base_dir=workflow.base_dir) if judge_model else None
        try:
            if run_dirs:
                return await rescore(workflow, evalset, run_dirs, prices=table, judge=judge, on_run=progress)
            concurrent = manifest.concurrency if manifest else concurrency
            return await evaluate(
                workflow, evalset, models, grid=grid, repeat=repeat, concurrency=concurrent, limit=limit,
                prices=table, judge=judge, on_run=progress, budget=budget, manifest=manifest, force=force,
                executor=factory, cache=cache,
            )  # fmt: skip
        finally:
            if judge is not None:
                await judge.aclose()

    table = load_prices(prices)
    report = run_async(work(), error_exit=EXIT_BAD_INPUT)
    report.eval_id = eval_id
    report.save(folder)  # where `rolegraph serve` finds it
    if output is not None:
        _write(report, output)
    print(report.to_json() if as_json else report.to_markdown().rstrip("\n"))
    if report.failed:
        raise typer.Exit(EXIT_FAILED)


class _Progress:
    """Prints one line per finished run: its question, model, status, main scores and time."""

    def __init__(self, total: int, judged: bool) -> None:
        self.total = total
        self.judged = judged
        self.finished = 0

    def __call__(self, run: EvalRun) -> None:
        self.finished += 1
        scores = run.scores
        shown = {
            "facts": scores.fact_coverage,
            **({"judged": scores.fact_coverage_judge} if self.judged else {}),
            "recall": scores.source_recall,
            "support": scores.claim_support,
        }
        parts = " ".join(f"{k} {'n/a' if v is None else f'{v:.2f}'}" for k, v in shown.items())
        colour = {"completed": "green", "budget_exceeded": "yellow"}.get(run.status, "red")
        err.print(
            f"[{self.finished}/{self.total}] {escape(run.question)} on {escape(run.model)} #{run.repeat}: "
            f"[{colour}]{run.status}[/] {parts} {scores.wall_time_s:.1f}s",
            highlight=False,
            soft_wrap=True,  # one line per run, however narrow the terminal
        )
