"""Running an eval: every question, in every column, repeatedly through the workflow, scored, then aggregated.

A column is a model crossed with one combination of a settings grid (`evals.matrix`):

```python
report = await evaluate(workflow, evalset, models=[None, "ollama:qwen2.5:7b"], repeat=2)
report = await evaluate(workflow, evalset, grid={"temperature": [0, 0.7]}, repeat=3)
print(report.to_markdown())
```

`rescore` scores runs already on disk (their folders hold everything scoring reads).

Every run can be held to a `Budget`; one that runs out of it has status ``budget_exceeded`` and
is scored and counted like a failed run. Given an `EvalManifest`, `evaluate` records each run's
id and status in it as runs start and finish; called again with that manifest (loaded back from
disk), it resumes the eval: finished runs are re-scored from their folders, interrupted ones are
continued (`durability.resume.resume`), and the rest are started.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import statistics
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from rolegraph.evals.judge import JUDGE_PROMPT, ClaimVerdict, FactVerdict, Judge
from rolegraph.evals.manifest import REPORT_FILE, ColumnSpec, EvalManifest, ManifestError, PlannedRun
from rolegraph.evals.matrix import DEFAULT_MODEL, Column, columns
from rolegraph.evals.metrics import CHECKS, QUALITY, RunScores, metric_names, score_run
from rolegraph.evals.planned import run_entry
from rolegraph.evals.record import RunFolderError, RunRecord, record_from_dir, record_of
from rolegraph.evals.relevance import topic_matches_of
from rolegraph.evals.spec import EvalQuestion, EvalSet
from rolegraph.evals.support import judgeable_claims
from rolegraph.layout import home_dir
from rolegraph.runtime.executor import ExecutorFactory
from rolegraph.runtime.result import RunResult
from rolegraph.traces.pricing import PriceTable
from rolegraph.traces.sinks import TraceSink
from rolegraph.workflow import Workflow
from rolegraph.workflows.spec import Budget

__all__ = ["DEFAULT_MODEL", "EvalReport", "EvalRun", "MetricSummary", "RunListener", "evaluate", "rescore"]


class EvalRun(BaseModel):
    """One run of one question in one column, and its scores."""

    question: str
    model: str
    """The column's label: the model (``default`` for the workflow's own) and its settings, if any."""
    settings: dict[str, Any] = Field(default_factory=dict)
    """The settings laid over the default model's for this run (the column's grid values)."""
    repeat: int
    run_id: str
    status: str
    error: str | None = None
    scores: RunScores
    excerpt: str = ""
    """The start of the run's report (its prose, without citations), to read beside the scores."""


RunListener = Callable[[EvalRun], None]

COUNTS = frozenset({"tokens"})
"""Metrics that count something: reported as whole numbers."""
"""Called as each run finishes (progress displays)."""


class MetricSummary(BaseModel):
    """A metric over several runs: mean, sample standard deviation (the spread across repeats), count."""

    mean: float | None
    sd: float | None
    n: int

    @classmethod
    def of(cls, values: Sequence[float | int | None]) -> MetricSummary:
        """Summarise the measured values (None means not measured, and is left out)."""
        measured = [float(v) for v in values if v is not None]
        mean = statistics.fmean(measured) if measured else None
        sd = statistics.stdev(measured) if len(measured) >= 2 else None
        return cls(mean=mean, sd=sd, n=len(measured))

    def cell(self, *, whole: bool = False) -> str:
        """``mean ± sd (n)``, or ``n/a`` when nothing was measured; `whole` rounds to integers (a count)."""
        if self.mean is None:
            return "n/a"
        digits = 0 if whole else 2
        spread = f" ± {self.sd:.{digits}f}" if self.sd is not None else ""
        return f"{self.mean:.{digits}f}{spread} ({self.n})"


def _summarise(runs: Sequence[EvalRun], names: Sequence[str]) -> dict[str, MetricSummary]:
    summary = {name: MetricSummary.of([getattr(r.scores, name) for r in runs]) for name in names}
    summary["completed"] = MetricSummary.of([1.0 if r.status == "completed" else 0.0 for r in runs])
    return summary


class EvalReport(BaseModel):
    """Every run of an eval, and its metrics aggregated per column and per question and column."""

    evalset: str
    workflow: str
    models: list[str]
    """The columns' labels, in order (`EvalRun.model`)."""
    eval_id: str | None = None
    """The eval's id (its folder under ``$ROLEGRAPH_HOME/evals``), when it has one."""
    started: str | None = None
    """When the eval started (ISO 8601, UTC)."""
    default_model: str | None = None
    """The model string the workflow's ``default`` model names (what a ``default`` column ran)."""
    repeat: int
    grid: dict[str, list[int | float]] = Field(default_factory=dict)
    """The settings grid crossed with the models (empty: none)."""
    judge: str | None = None
    """The judge model's name, when one scored fact coverage."""
    judge_prompt: str | None = None
    """The judge's fixed system prompt (each call also sends the report and one fact)."""
    judge_trace: str | None = None
    """The JSONL trace of the judge's calls."""
    runs: list[EvalRun] = Field(default_factory=list)

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metrics reported, in order (``fact_coverage_judge`` only with a judge)."""
        return metric_names(self.judge is not None)

    def column_name(self, label: str) -> str:
        """A column's label with ``default`` replaced by the model it stands for: ``local t=0.7``."""
        model, _, settings = label.partition(" ")
        if model != DEFAULT_MODEL or not self.default_model:
            return label
        return f"{self.default_model} {settings}".strip()

    @property
    def failed(self) -> int:
        """How many runs did not complete (over budget included)."""
        return sum(r.status != "completed" for r in self.runs)

    @property
    def over_budget(self) -> int:
        """How many runs stopped on their budget."""
        return sum(r.status == "budget_exceeded" for r in self.runs)

    def summary(self) -> dict[str, dict[str, MetricSummary]]:
        """Per column: each metric over all its runs (plus ``completed``, the share of runs that completed)."""
        return {m: _summarise([r for r in self.runs if r.model == m], self.metrics) for m in self.models}

    def by_question(self) -> dict[str, dict[str, dict[str, MetricSummary]]]:
        """Per question, per column: each metric over the repeats."""
        questions = dict.fromkeys(r.question for r in self.runs)
        return {
            q: {
                m: _summarise([r for r in self.runs if r.question == q and r.model == m], self.metrics)
                for m in self.models
            }
            for q in questions
        }

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON data: ``runs``, then ``summary`` and ``questions`` aggregates."""

        def plain(table: dict[str, MetricSummary]) -> dict[str, Any]:
            return {k: v.model_dump() for k, v in table.items()}

        return {
            "evalset": self.evalset,
            "workflow": self.workflow,
            "eval_id": self.eval_id,
            "started": self.started,
            "default_model": self.default_model,
            "models": self.models,
            "repeat": self.repeat,
            "grid": self.grid,
            "judge": self.judge,
            "judge_prompt": self.judge_prompt,
            "judge_trace": self.judge_trace,
            "runs": [r.model_dump() for r in self.runs],
            "summary": {m: plain(t) for m, t in self.summary().items()},
            "questions": {q: {m: plain(t) for m, t in ms.items()} for q, ms in self.by_question().items()},
        }

    def save(self, folder: Path) -> Path:
        """Write the report into an eval's folder as ``report.json`` (where ``rolegraph serve`` reads it)."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / REPORT_FILE
        path.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        return path

    def to_json(self) -> str:
        """`to_dict` as indented JSON."""
        return json.dumps(self.to_dict(), indent=2)

    def to_markdown(self) -> str:
        """One table: a row per metric, a column per model and settings, cells ``mean ± sd (n)``."""
        summary = self.summary()
        lines = [
            f"# Eval `{self.evalset}` on workflow `{self.workflow}`",
            "",
            f"{len(self.runs)} run(s), {self.failed} failed"
            + (f" ({self.over_budget} over budget)" if self.over_budget else "")
            + f"; {self.repeat} repeat(s) per question and column.",
            *([f"Fact coverage also judged by `{self.judge}`."] if self.judge else []),
            "",
            "| metric | " + " | ".join(f"`{m}`" for m in self.models) + " |",
            "|---|" + "---|" * len(self.models),
        ]
        for name in (*self.metrics, "completed"):
            if name in _GROUP_STARTS:
                lines.append(f"| *{_GROUP_STARTS[name]}* |" + " |" * len(self.models))
            lines.append(
                f"| {name} | " + " | ".join(summary[m][name].cell(whole=name in COUNTS) for m in self.models) + " |"
            )
        return "\n".join(lines) + "\n"


_GROUP_STARTS = {QUALITY[0]: "quality", CHECKS[0]: "checks (a defect if not 1.00, or 0 forbidden)", "tokens": "usage"}


async def evaluate(
    workflow: Workflow,
    evalset: EvalSet,
    models: Sequence[str | None] = (None,),
    *,
    grid: Mapping[str, Sequence[int | float]] | None = None,
    repeat: int = 1,
    concurrency: int = 1,
    limit: int | None = None,
    home: Path | None = None,
    prices: PriceTable | None = None,
    judge: Judge | None = None,
    on_run: RunListener | None = None,
    budget: Budget | None = None,
    manifest: EvalManifest | None = None,
    force: bool = False,
    executor: ExecutorFactory | None = None,
    cache: bool | None = None,
) -> EvalReport:
    """Run every question (the first `limit`) in every column `repeat` times, and score each run.

    Args:
        workflow: The workflow under test.
        evalset: The questions; their inputs should already be checked (`load_evalset(path, workflow)`).
        models: Model strings replacing the workflow's default model; None keeps it.
        grid: Settings to vary (`matrix.parse_grid`), each model crossed with every combination.
        repeat: Runs per question and column, for the spread.
        concurrency: Runs at once (the embedded model serialises its calls anyway).
        limit: Only the first `limit` questions.
        home: Where runs are kept (default `home_dir()`).
        prices: Price table for ``cost_usd``.
        judge: A judge model for ``fact_coverage_judge`` (the caller closes it).
        on_run: Called as each run finishes.
        budget: Limits for every run, replacing those of the workflow's ``settings.budget``
            (the ones set); on resuming, they replace the interrupted runs' own.
        manifest: Where each run's id and status are recorded (saved as they change, when it
            has a path). One already holding runs is resumed: its plan must be this call's.
        force: On resuming, continue runs whose workflow file changed since they started.
        executor: Where every run's steps run (default: the workflow's ``settings.executor``); with
            a Ray executor and `concurrency` above one, the runs spread over the cluster's nodes.
        cache: Use the model-call cache in every run (True) or in none (False), replacing the
            workflow's ``settings.cache``. With `repeat`, cached repeats are identical.

    Returns:
        The report; a failed or over-budget run is scored (usually badly) and counted, not raised.

    Raises:
        ManifestError: `manifest` plans other runs than these arguments give.
        SpecError: A question's inputs do not fit the workflow.
        ModelNotAvailableError: A model cannot be loaded.
        ValueError: The grid names an unknown setting or a value out of range.
    """
    questions = evalset.questions[:limit] if limit is not None else evalset.questions
    cols = columns(models, grid)
    for column in cols:
        column.model_settings()  # a bad grid fails here, before any run
    report = _report(workflow, evalset, [c.label for c in cols], repeat, judge)
    report.grid = {name: list(values) for name, values in (grid or {}).items()}
    report.eval_id = manifest.eval_id if manifest is not None and manifest.eval_id else None
    slots = asyncio.Semaphore(max(1, concurrency))
    factory = workflow.executor(executor)
    jobs = [(q, c, n) for q in questions for c in cols for n in range(repeat)]
    manifest = _planned(manifest or EvalManifest(), questions, cols, repeat)
    await manifest.save()
    runs_home = home or home_dir()
    matches = await asyncio.to_thread(topic_matches_of, workflow, questions)
    done: list[tuple[int, EvalRun]] = []

    async def one(index: int, question: EvalQuestion, column: Column, number: int) -> None:
        entry = manifest.runs[index]
        async with slots:
            record = await _execute(
                workflow, question, column, entry, manifest, runs_home, budget, prices, force, factory, cache
            )
        run = await _scored(question, column, number, record, judge, matches.get(question.id, []))
        done.append((index, run))
        if on_run is not None:
            on_run(run)

    try:
        async with asyncio.TaskGroup() as group:
            for index, (question, column, number) in enumerate(jobs):
                group.create_task(one(index, question, column, number))
    except ExceptionGroup as failure:  # a setup error (bad inputs, missing model) stops the eval: raise it plainly
        raise failure.exceptions[0] from None
    report.runs = [run for _, run in sorted(done, key=lambda pair: pair[0])]
    return report


def _planned(
    manifest: EvalManifest, questions: Sequence[EvalQuestion], cols: Sequence[Column], repeat: int
) -> EvalManifest:
    """`manifest` with its plan filled in, or checked against these runs when it already has one."""
    specs = [ColumnSpec(model=c.model, settings=dict(c.settings)) for c in cols]
    plan = [
        PlannedRun(question=q.id, column=i, repeat=n + 1)
        for q in questions
        for i in range(len(cols))
        for n in range(repeat)
    ]
    if not manifest.runs:
        manifest.columns, manifest.repeat, manifest.runs = specs, repeat, plan
        return manifest
    key = [(r.question, r.column, r.repeat) for r in manifest.runs]
    if manifest.columns != specs or key != [(r.question, r.column, r.repeat) for r in plan]:
        raise ManifestError(
            f"eval {manifest.eval_id}: its manifest plans other runs (questions, columns or repeats) than asked for"
        )
    return manifest


async def _execute(
    workflow: Workflow,
    question: EvalQuestion,
    column: Column,
    entry: PlannedRun,
    manifest: EvalManifest,
    home: Path,
    budget: Budget | None,
    prices: PriceTable | None,
    force: bool,
    executor: ExecutorFactory,
    cache: bool | None = None,
) -> RunRecord:
    """The record of one planned run: re-read if it finished, continued if it was interrupted, else run."""

    def start(sinks: Sequence[TraceSink]) -> Awaitable[RunResult]:
        return workflow.run(
            question.inputs,
            model=column.model,
            settings=column.model_settings(),
            home=home,
            sinks=sinks,
            budget=budget,
            executor=executor,
            cache=cache,
        )

    folder, result = await run_entry(
        entry, manifest, start=start, home=home, budget=budget, force=force, executor=executor
    )
    if result is None:  # from the folder: its trace holds the whole run, before and after any interruption
        return await asyncio.to_thread(record_from_dir, folder, workflow, prices)
    return await asyncio.to_thread(record_of, result, workflow, prices)  # reads the trace file


async def rescore(
    workflow: Workflow,
    evalset: EvalSet,
    run_dirs: Sequence[Path],
    *,
    prices: PriceTable | None = None,
    judge: Judge | None = None,
    on_run: RunListener | None = None,
) -> EvalReport:
    """Score runs already on disk: each is matched to the question whose inputs it ran with.

    Columns come from each run's recorded model and settings overrides, repeats number the
    runs of one question in one column, in the order given.

    Raises:
        RunFolderError: A folder is not a finished run of `workflow`, predates ``sources.jsonl``,
            or its inputs match no question (or several) of `evalset`.
    """
    keyed = [(_plain(workflow.resolve_inputs(q.inputs)), q) for q in evalset.questions]
    matches = await asyncio.to_thread(topic_matches_of, workflow, evalset.questions)
    scored: list[EvalRun] = []
    labels: dict[str, None] = {}
    for run_dir in run_dirs:
        record = await asyncio.to_thread(record_from_dir, run_dir, workflow, prices)
        found = [q for inputs, q in keyed if inputs == _plain(record.inputs)]
        if len(found) != 1:
            which = "no question" if not found else f"{len(found)} questions ({', '.join(q.id for q in found)})"
            raise RunFolderError(f"run {run_dir.name}: its inputs {record.inputs} match {which} of {evalset.name!r}")
        overrides = record.overrides
        column = Column(model=overrides.get("model"), settings=dict(overrides.get("settings") or {}))
        number = sum(r.question == found[0].id and r.model == column.label for r in scored)
        run = await _scored(found[0], column, number, record, judge, matches.get(found[0].id, []))
        scored.append(run)
        labels[column.label] = None
        if on_run is not None:
            on_run(run)
    repeat = max(Counter((r.question, r.model) for r in scored).values(), default=1)
    report = _report(workflow, evalset, list(labels), repeat, judge)
    report.runs = scored
    return report


def _plain(inputs: Mapping[str, Any]) -> Any:
    # run.json holds inputs as JSON: compare both sides as JSON would give them back.
    return json.loads(json.dumps(dict(inputs), default=str, sort_keys=True))


def _report(workflow: Workflow, evalset: EvalSet, labels: list[str], repeat: int, judge: Judge | None) -> EvalReport:
    default = workflow.spec.models.get(DEFAULT_MODEL)
    return EvalReport(
        evalset=evalset.name,
        workflow=workflow.spec.name,
        models=list(dict.fromkeys(labels)),
        started=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        default_model=default if isinstance(default, str) or default is None else default.model,
        repeat=repeat,
        judge=judge.model.name if judge else None,
        judge_prompt=JUDGE_PROMPT if judge else None,
        judge_trace=str(judge.trace_file) if judge and judge.trace_file else None,
    )


async def _scored(
    question: EvalQuestion,
    column: Column,
    number: int,
    record: RunRecord,
    judge: Judge | None,
    topic: Sequence[str] = (),
) -> EvalRun:
    verdicts: list[FactVerdict] = []
    claim_verdicts: list[ClaimVerdict] = []
    if judge is not None:
        if question.must_include:
            verdicts = await judge.verdicts(
                record.report_text, question.must_include, question=question.id, run_id=record.run_id
            )
        claims = [(c.source_id, c.evidence, c.claim) for c in judgeable_claims(record.claims, record.sources)]
        if claims:
            claim_verdicts = await judge.claim_verdicts(claims, question=question.id, run_id=record.run_id)
    return EvalRun(
        question=question.id,
        model=column.label,
        settings=dict(column.settings),
        repeat=number + 1,
        run_id=record.run_id,
        status=record.status,
        error=record.error,
        scores=score_run(
            record,
            question,
            verdicts,
            claim_verdicts=claim_verdicts,
            topic_matches=topic,
        ),
        excerpt=_excerpt(f"{record.report_title} {record.report_text}"),
    )


_EXCERPT = 320


def _excerpt(text: str) -> str:
    """The first `_EXCERPT` characters of a report's prose, cut at a word."""
    flat = " ".join(text.split())
    return flat if len(flat) <= _EXCERPT else flat[:_EXCERPT].rsplit(" ", 1)[0] + " …"
