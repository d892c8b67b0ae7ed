"""The runner: every question on every model, repeated, scored and aggregated into one table."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import rolegraph
from eval_projects import GOOD as GOOD_SCRIPT
from projects import write_script
from rolegraph.errors import ModelNotAvailableError
from rolegraph.evals.judge import JUDGE_PROMPT, Judge
from rolegraph.evals.loader import load_evalset
from rolegraph.evals.metrics import METRICS
from rolegraph.evals.record import RunFolderError
from rolegraph.evals.runner import EvalReport, EvalRun, MetricSummary, evaluate, rescore
from rolegraph.testing import ScriptedModel, text
from rolegraph.traces.trace import SpanRecord, Trace
from rolegraph.workflows.spec import Budget

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
            # GOOD's "Low-rank updates merge after training." joins two of beta's sentences: against its best
            # match alone, it lacks words (3 of its 4 claims with words of their own are supported)
            support = {GOOD: 0.75, THIN: 1.0}[model]
            assert summary[model]["claim_support"] == MetricSummary(mean=support, sd=0.0, n=2), model
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
        tokens = next(line for line in lines if line.startswith("| tokens |")).split(" | ")[1:]
        assert all(re.fullmatch(r"\d+ ± \d+ \(2\)( \|)?", cell) for cell in tokens), tokens  # counts: integers

    async def test_json_has_runs_summary_and_questions(self, project: Path) -> None:
        """The JSON holds every run with its scores, and the aggregates per model and per question."""
        report = await run_eval(project, models=[THIN])
        data = report.to_dict()
        assert set(data) == {
            *("evalset", "workflow", "models", "repeat", "grid", "runs", "summary", "questions"),
            *("judge", "judge_prompt", "judge_trace", "eval_id", "started", "default_model"),
        }
        assert (data["grid"], data["judge"], data["eval_id"], data["default_model"]) == ({}, None, None, "local")
        assert data["started"].endswith("+00:00")
        assert data["runs"][0]["excerpt"] == "Review Adapters train few weights. They are small."
        (run,) = data["runs"]
        assert run["scores"]["missing_sources"] == ["beta2021"]
        assert run["scores"]["missing_facts"] == ["low-rank"]
        # the researcher's claim, then the report's two sentences (held against alpha2020's best-matching sentence)
        assert [(c["step"], c["quoted"], c["supported"]) for c in run["scores"]["claims"]] == [
            ("research", True, True),
            ("write", False, True),
            ("write", False, True),
        ]
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


def chats(run_dir: Path) -> list[SpanRecord]:
    return [s for s in Trace.load(run_dir / "trace.jsonl").walk() if s.kind == "chat"]


class TestGrid:
    async def test_columns_and_settings_reach_the_model(self, project: Path, home: Path) -> None:
        """Each model and settings combination is a column; its settings are what its runs' model calls used."""
        grid = {"temperature": [0.0, 0.7], "seed": [1]}
        report = await run_eval(project, models=[GOOD, THIN], grid=grid, repeat=2)
        assert report.models == [
            f"{GOOD} t=0 seed=1",
            f"{GOOD} t=0.7 seed=1",
            f"{THIN} t=0 seed=1",
            f"{THIN} t=0.7 seed=1",
        ]
        assert report.grid == {"temperature": [0.0, 0.7], "seed": [1]}
        assert len(report.runs) == 8
        for run in report.runs:
            used = {
                (s.attributes["gen_ai.request.temperature"], s.attributes["gen_ai.request.seed"])
                for s in chats(home / "runs" / run.run_id)
            }
            assert used == {(run.settings["temperature"], 1)}, run.model
        summary = report.summary()
        assert summary[f"{THIN} t=0.7 seed=1"]["source_recall"] == MetricSummary(mean=0.5, sd=0.0, n=2)
        assert "| metric | " + " | ".join(f"`{m}`" for m in report.models) + " |" in report.to_markdown()

    async def test_a_bad_grid_fails_before_any_run(self, project: Path, home: Path) -> None:
        """From Python, an unknown setting or a value out of range is a ValueError naming it; nothing runs."""
        with pytest.raises(ValueError, match=r"'scripted:good.yaml temprature=0.5': temprature: Extra inputs"):
            await run_eval(project, models=[GOOD], grid={"temprature": [0.5]})
        with pytest.raises(ValueError, match=r"temperature: Input should be less than or equal to 2"):
            await run_eval(project, models=[GOOD], grid={"temperature": [5]})
        assert not (home / "runs").exists()


def judge_of(answers: list[str]) -> Judge:
    return Judge(
        ScriptedModel(
            [text(json.dumps({"verdict": a, "reason": a})) if a in ("yes", "no") else text(a) for a in answers]
        )
    )


class TestJudged:
    async def test_both_coverages_reported(self, project: Path) -> None:
        """With a judge, fact_coverage_judge sits beside the string match; verdicts and prompt are in the JSON."""
        # THIN states 'few weights' but not 'low-rank'; per run the judge answers on both facts, then on the three
        # claims (the researcher's, the report's two sentences): yes to both facts (paraphrase), no to the first
        # claim and yes to the others; then yes, garbage, and yes to every claim.
        judge = judge_of(["yes", "yes", "no", "yes", "yes", "yes", "Certainly!", "yes", "yes", "yes"])
        report = await run_eval(project, models=[THIN], repeat=2, judge=judge)
        assert report.metrics[4:6] == ("fact_coverage", "fact_coverage_judge")
        first, second = report.runs
        assert (first.scores.fact_coverage, first.scores.fact_coverage_judge) == (0.5, 1.0)
        assert [v.verdict for v in second.scores.fact_verdicts] == ["yes", "unknown"]
        assert second.scores.fact_coverage_judge == 1.0  # the unknown verdict is left out, not counted as no
        assert [c.judge for c in first.scores.claims] == ["no", "yes", "yes"]
        assert [c.judge for c in second.scores.claims] == ["yes", "yes", "yes"]
        assert (first.scores.claim_support, second.scores.claim_support) == (2 / 3, 1.0)  # the judge decides
        data = report.to_dict()
        assert data["judge"] == "scripted" and data["judge_prompt"] == JUDGE_PROMPT
        assert data["summary"][THIN]["fact_coverage_judge"] == {"mean": 1.0, "sd": 0.0, "n": 2}
        assert "| fact_coverage_judge | 1.00 ± 0.00 (2) |" in report.to_markdown()

    async def test_without_a_judge_no_judge_row(self, project: Path) -> None:
        """No judge: the metrics and table are as before."""
        report = await run_eval(project, models=[THIN])
        assert report.metrics == METRICS
        assert "fact_coverage_judge" not in report.to_markdown()


class TestRescore:
    async def test_past_runs_score_as_they_did(self, project: Path, home: Path) -> None:
        """Re-scoring run folders gives the scores the runs got when they finished, columns from their overrides."""
        original = await run_eval(project, models=[GOOD, THIN], grid={"temperature": [0.5]})
        workflow = rolegraph.load(project / "review.yaml")
        evalset = load_evalset(project / "set.yaml", workflow)
        dirs = [home / "runs" / r.run_id for r in original.runs]
        again = await rescore(workflow, evalset, dirs)
        assert again.models == original.models == [f"{GOOD} t=0.5", f"{THIN} t=0.5"]
        assert [r.model_dump(exclude={"scores"}) for r in again.runs] == [
            r.model_dump(exclude={"scores"}) for r in original.runs
        ]
        for old, new in zip(original.runs, again.runs, strict=True):
            assert new.scores.model_dump(exclude={"wall_time_s"}) == old.scores.model_dump(exclude={"wall_time_s"})

    async def test_rescore_with_a_judge_and_repeats(self, project: Path, home: Path) -> None:
        """Two runs of one question in one column are repeats 1 and 2; a judge scores them afresh."""
        original = await run_eval(project, models=[THIN], repeat=2)
        workflow = rolegraph.load(project / "review.yaml")
        evalset = load_evalset(project / "set.yaml", workflow)
        again = await rescore(
            workflow, evalset, [home / "runs" / r.run_id for r in original.runs], judge=judge_of(["no"] * 10)
        )
        assert [(r.model, r.repeat) for r in again.runs] == [(THIN, 1), (THIN, 2)]
        assert again.repeat == 2
        assert [r.scores.fact_coverage_judge for r in again.runs] == [0.0, 0.0]

    async def test_a_run_matching_no_question_is_refused(self, project: Path, home: Path) -> None:
        """A run whose inputs are no question's cannot be scored: the error names the run and its inputs."""
        workflow = rolegraph.load(project / "review.yaml")
        result = await workflow.run({"topic": "something else"}, model=GOOD)
        evalset = load_evalset(project / "set.yaml", workflow)
        with pytest.raises(
            RunFolderError, match=r"its inputs \{'topic': 'something else'\} match no question of 'tiny'"
        ):
            await rescore(workflow, evalset, [result.run_dir])


class TestBudget:
    async def test_token_budget_stops_one_run_and_the_eval_goes_on(self, project: Path) -> None:
        """A run that reaches the token budget is budget_exceeded, scored and counted; the others complete."""
        search = GOOD_SCRIPT[0]
        write_script(project, "long", [search] * 6 + GOOD_SCRIPT)  # the same answer, after many more calls
        long = "scripted:long.yaml"
        free = await run_eval(project, models=[GOOD, long])
        good_tokens, long_tokens = (r.scores.tokens for r in free.runs)
        assert good_tokens < long_tokens
        report = await run_eval(
            project, models=[GOOD, long], budget=Budget(max_tokens=(good_tokens + long_tokens) // 2)
        )
        assert [(r.model, r.status) for r in report.runs] == [(GOOD, "completed"), (long, "budget_exceeded")]
        assert "max_tokens" in (report.runs[1].error or "")
        assert report.failed == 1 and report.over_budget == 1
        summary = report.summary()
        assert summary[GOOD]["completed"].mean == 1.0 and summary[long]["completed"].mean == 0.0
        assert "1 failed (1 over budget)" in report.to_markdown()
