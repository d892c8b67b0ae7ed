"""The runner: every question on every model, repeated, scored and aggregated into one table."""

from __future__ import annotations

from pathlib import Path

import pytest

import rolegraph
from rolegraph.errors import ModelNotAvailableError
from rolegraph.evals.loader import load_evalset
from rolegraph.evals.runner import EvalReport, EvalRun, MetricSummary, evaluate

GOOD, THIN = "scripted:good.yaml", "scripted:thin.yaml"


async def run_eval(project: Path, **options: object) -> EvalReport:
    workflow = rolegraph.load(project / "review.yaml")
    evalset = load_evalset(project / "set.yaml", workflow)
    return await evaluate(workflow, evalset, **options)  # type: ignore[arg-type]


class TestMetricSummary:
    def test_mean_sd_n(self) -> None:
        """Mean and sample standard deviation of the measured values; None (not measured) is left out."""
        assert MetricSummary.of([1.0, 0.0, None]).model_dump() == {
            "mean": 0.5,
            "sd": pytest.approx(0.7071, abs=1e-4),
            "n": 2,
        }
        assert MetricSummary.of([0.25]) == MetricSummary(mean=0.25, sd=None, n=1)
        assert MetricSummary.of([None]) == MetricSummary(mean=None, sd=None, n=0)

    def test_cell(self) -> None:
        """Cells read ``mean ± sd (n)``; one value has no spread; nothing measured is n/a."""
        assert MetricSummary(mean=0.5, sd=0.25, n=2).cell() == "0.50 ± 0.25 (2)"
        assert MetricSummary(mean=0.5, sd=None, n=1).cell() == "0.50 (1)"
        assert MetricSummary(mean=None, sd=None, n=0).cell() == "n/a"


class TestEvaluate:
    async def test_two_models_repeated_twice(self, project: Path) -> None:
        """Each model gets its column; each question runs twice per model; spread and count per metric."""
        seen: list[EvalRun] = []
        report = await run_eval(project, models=[GOOD, THIN], repeat=2, on_run=seen.append)
        assert sorted((r.model, r.repeat) for r in seen) == [(GOOD, 1), (GOOD, 2), (THIN, 1), (THIN, 2)]
        assert [(r.question, r.model, r.repeat, r.status) for r in report.runs] == [
            ("adapters", GOOD, 1, "completed"),
            ("adapters", GOOD, 2, "completed"),
            ("adapters", THIN, 1, "completed"),
            ("adapters", THIN, 2, "completed"),
        ]
        summary = report.summary()
        assert list(summary) == [GOOD, THIN]
        expected = {
            GOOD: {"citation_validity": 1.0, "source_recall": 1.0, "source_precision": 1.0, "fact_coverage": 1.0},
            THIN: {"citation_validity": 1.0, "source_recall": 0.5, "source_precision": 1.0, "fact_coverage": 0.5},
        }
        for model, metrics in expected.items():
            for name, mean in metrics.items():
                assert summary[model][name] == MetricSummary(mean=mean, sd=0.0, n=2), (model, name)
            assert summary[model]["claim_support"] == MetricSummary(mean=1.0, sd=0.0, n=2)
            assert summary[model]["forbidden_facts"] == MetricSummary(mean=0.0, sd=0.0, n=2)
            assert summary[model]["completed"] == MetricSummary(mean=1.0, sd=0.0, n=2)
            assert summary[model]["tokens"].mean is not None and summary[model]["tokens"].mean > 0
            assert summary[model]["cost_usd"].mean == 0.0  # scripted models are free

    async def test_markdown_table(self, project: Path) -> None:
        """One table: a row per metric, a column per model, cells ``mean ± sd (n)``."""
        report = await run_eval(project, models=[GOOD, THIN], repeat=2)
        lines = report.to_markdown().splitlines()
        assert lines[4] == f"| metric | `{GOOD}` | `{THIN}` |"
        assert "| source_recall | 1.00 ± 0.00 (2) | 0.50 ± 0.00 (2) |" in lines
        assert "| fact_coverage | 1.00 ± 0.00 (2) | 0.50 ± 0.00 (2) |" in lines
        assert "| completed | 1.00 ± 0.00 (2) | 1.00 ± 0.00 (2) |" in lines

    async def test_json_has_runs_summary_and_questions(self, project: Path) -> None:
        """The JSON holds every run with its scores, and the aggregates per model and per question."""
        report = await run_eval(project, models=[THIN])
        data = report.to_dict()
        assert set(data) == {"evalset", "workflow", "models", "repeat", "runs", "summary", "questions"}
        (run,) = data["runs"]
        assert run["scores"]["missing_sources"] == ["beta2021"]
        assert run["scores"]["missing_facts"] == ["low-rank"]
        assert [c["supported"] for c in run["scores"]["claims"]] == [True]
        assert data["questions"]["adapters"][THIN]["source_recall"] == {"mean": 0.5, "sd": None, "n": 1}

    async def test_a_failed_run_is_scored_and_counted(self, project: Path) -> None:
        """A run whose script runs out fails; it is still scored, and counted as not completed."""
        (project / "short.yaml").write_text((project / "good.yaml").read_text().rsplit("- final:", 1)[0])
        report = await run_eval(project, models=["scripted:short.yaml"])
        (run,) = report.runs
        assert run.status == "failed" and run.error
        assert report.failed == 1
        assert run.scores.fact_coverage == 0.0
        assert report.summary()["scripted:short.yaml"]["completed"].mean == 0.0

    async def test_limit_and_concurrency(self, project: Path) -> None:
        """`limit` keeps the first questions; runs may overlap up to `concurrency`, results stay in order."""
        text = (project / "set.yaml").read_text()
        (project / "set.yaml").write_text(text + text.split("questions:\n", 1)[1].replace("id: adapters", "id: second"))
        report = await run_eval(project, models=[GOOD], repeat=2, concurrency=3)
        assert [(r.question, r.repeat) for r in report.runs] == [
            ("adapters", 1),
            ("adapters", 2),
            ("second", 1),
            ("second", 2),
        ]
        report = await run_eval(project, models=[GOOD], limit=1)
        assert [r.question for r in report.runs] == ["adapters"]

    async def test_a_missing_model_raises(self, project: Path) -> None:
        """A model that cannot be loaded stops the eval with its own error, not an exception group."""
        with pytest.raises(ModelNotAvailableError):
            await run_eval(project, models=["scripted:nope.yaml"])
