"""Running an eval: every question, on every model, repeatedly through the workflow, scored, then aggregated.

```python
report = await evaluate(workflow, evalset, models=[None, "ollama:qwen2.5:7b"], repeat=2)
print(report.to_markdown())
```
"""

from __future__ import annotations

import asyncio
import json
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from rolegraph.evals.metrics import METRICS, RunScores, score_run
from rolegraph.evals.record import RunRecord, record_of
from rolegraph.evals.spec import EvalQuestion, EvalSet
from rolegraph.traces.pricing import PriceTable
from rolegraph.workflows.run import Workflow

__all__ = ["DEFAULT_MODEL", "EvalReport", "EvalRun", "MetricSummary", "RunListener", "evaluate"]

DEFAULT_MODEL = "default"
"""How the workflow's own default model is labelled in reports."""


class EvalRun(BaseModel):
    """One run of one question on one model, and its scores."""

    question: str
    model: str
    repeat: int
    run_id: str
    status: str
    error: str | None = None
    scores: RunScores


RunListener = Callable[[EvalRun], None]
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

    def cell(self) -> str:
        """``mean ± sd (n)``, or ``n/a`` when nothing was measured."""
        if self.mean is None:
            return "n/a"
        spread = f" ± {self.sd:.2f}" if self.sd is not None else ""
        return f"{self.mean:.2f}{spread} ({self.n})"


def _summarise(runs: Sequence[EvalRun]) -> dict[str, MetricSummary]:
    summary = {name: MetricSummary.of([r.scores.metrics()[name] for r in runs]) for name in METRICS}
    summary["completed"] = MetricSummary.of([1.0 if r.status == "completed" else 0.0 for r in runs])
    return summary


class EvalReport(BaseModel):
    """Every run of an eval, and its metrics aggregated per model and per question and model."""

    evalset: str
    workflow: str
    models: list[str]
    repeat: int
    runs: list[EvalRun] = Field(default_factory=list)

    @property
    def failed(self) -> int:
        """How many runs did not complete."""
        return sum(r.status != "completed" for r in self.runs)

    def summary(self) -> dict[str, dict[str, MetricSummary]]:
        """Per model: each metric over all its runs (plus ``completed``, the share of runs that completed)."""
        return {m: _summarise([r for r in self.runs if r.model == m]) for m in self.models}

    def by_question(self) -> dict[str, dict[str, dict[str, MetricSummary]]]:
        """Per question, per model: each metric over the repeats."""
        questions = dict.fromkeys(r.question for r in self.runs)
        return {
            q: {m: _summarise([r for r in self.runs if r.question == q and r.model == m]) for m in self.models}
            for q in questions
        }

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON data: ``runs``, then ``summary`` and ``questions`` aggregates."""

        def plain(table: dict[str, MetricSummary]) -> dict[str, Any]:
            return {k: v.model_dump() for k, v in table.items()}

        return {
            "evalset": self.evalset,
            "workflow": self.workflow,
            "models": self.models,
            "repeat": self.repeat,
            "runs": [r.model_dump() for r in self.runs],
            "summary": {m: plain(t) for m, t in self.summary().items()},
            "questions": {q: {m: plain(t) for m, t in ms.items()} for q, ms in self.by_question().items()},
        }

    def to_json(self) -> str:
        """`to_dict` as indented JSON."""
        return json.dumps(self.to_dict(), indent=2)

    def to_markdown(self) -> str:
        """One table: a row per metric, a column per model, cells ``mean ± sd (n)``."""
        summary = self.summary()
        lines = [
            f"# Eval `{self.evalset}` on workflow `{self.workflow}`",
            "",
            f"{len(self.runs)} run(s), {self.failed} failed; {self.repeat} repeat(s) per question and model.",
            "",
            "| metric | " + " | ".join(f"`{m}`" for m in self.models) + " |",
            "|---|" + "---|" * len(self.models),
        ]
        for name in (*METRICS, "completed"):
            lines.append(f"| {name} | " + " | ".join(summary[m][name].cell() for m in self.models) + " |")
        return "\n".join(lines) + "\n"


async def evaluate(
    workflow: Workflow,
    evalset: EvalSet,
    models: Sequence[str | None] = (None,),
    *,
    repeat: int = 1,
    concurrency: int = 1,
    limit: int | None = None,
    home: Path | None = None,
    prices: PriceTable | None = None,
    on_run: RunListener | None = None,
) -> EvalReport:
    """Run every question (the first `limit`) on every model `repeat` times, and score each run.

    Args:
        workflow: The workflow under test.
        evalset: The questions; their inputs should already be checked (`load_evalset(path, workflow)`).
        models: Model strings replacing the workflow's default model; None keeps it.
        repeat: Runs per question and model, for the spread.
        concurrency: Runs at once (the embedded model serialises its calls anyway).
        limit: Only the first `limit` questions.
        home: Where runs are kept (default `home_dir()`).
        prices: Price table for ``cost_usd``.
        on_run: Called as each run finishes.

    Returns:
        The report; a failed run is scored (usually badly) and counted, not raised.

    Raises:
        SpecError: A question's inputs do not fit the workflow.
        ModelNotAvailableError: A model cannot be loaded.
    """
    questions = evalset.questions[:limit] if limit is not None else evalset.questions
    labels = [m or DEFAULT_MODEL for m in models]
    report = EvalReport(
        evalset=evalset.name, workflow=workflow.spec.name, models=list(dict.fromkeys(labels)), repeat=repeat
    )
    slots = asyncio.Semaphore(max(1, concurrency))
    jobs = [(q, m, n) for q in questions for m in dict.fromkeys(models) for n in range(repeat)]
    done: list[tuple[int, EvalRun]] = []

    async def one(index: int, question: EvalQuestion, model: str | None, number: int) -> None:
        async with slots:
            result = await workflow.run(question.inputs, model=model, home=home)
        record = await asyncio.to_thread(record_of, result, workflow, prices)  # reads the trace file
        run = _scored(question, model, number, record)
        done.append((index, run))
        if on_run is not None:
            on_run(run)

    try:
        async with asyncio.TaskGroup() as group:
            for index, (question, model, number) in enumerate(jobs):
                group.create_task(one(index, question, model, number))
    except ExceptionGroup as failure:  # a setup error (bad inputs, missing model) stops the eval: raise it plainly
        raise failure.exceptions[0] from None
    report.runs = [run for _, run in sorted(done, key=lambda pair: pair[0])]
    return report


def _scored(question: EvalQuestion, model: str | None, number: int, record: RunRecord) -> EvalRun:
    return EvalRun(
        question=question.id,
        model=model or DEFAULT_MODEL,
        repeat=number + 1,
        run_id=record.run_id,
        status=record.status,
        error=record.error,
        scores=score_run(record, question),
    )
