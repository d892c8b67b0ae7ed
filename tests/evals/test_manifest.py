"""Resumable evals: the manifest records each run as it starts and finishes; an eval resumed from it ends
with the report an uninterrupted eval gives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import rolegraph
from rolegraph.evals.loader import load_evalset
from rolegraph.evals.manifest import (
    MANIFEST_FILE,
    EvalManifest,
    ManifestError,
    eval_dir,
    find_eval,
    new_eval_id,
)
from rolegraph.evals.runner import EvalReport, EvalRun, evaluate
from rolegraph.workflows.spec import Budget

GOOD, THIN = "scripted:good.yaml", "scripted:thin.yaml"
TIMING = {"wall_time_s", "tokens", "cost_usd"}
"""What may differ between an interrupted-then-resumed run and an uninterrupted one (time, replayed calls)."""


class Interrupted(Exception):
    """Stands in for a Ctrl-C or a kill part-way through an eval."""


def scores(report: EvalReport) -> list[tuple[str, str, int, str, dict[str, Any]]]:
    return [(r.question, r.model, r.repeat, r.status, r.scores.model_dump(exclude=TIMING)) for r in report.runs]


def manifest_at(home: Path) -> EvalManifest:
    manifest = EvalManifest(eval_id=new_eval_id())
    manifest.path = eval_dir(home, manifest.eval_id) / MANIFEST_FILE
    return manifest


async def run_eval(project: Path, **options: Any) -> EvalReport:
    workflow = rolegraph.load(project / "review.yaml")
    return await evaluate(workflow, load_evalset(project / "set.yaml", workflow), **options)


class TestManifestFile:
    async def test_records_every_run(self, project: Path, home: Path) -> None:
        """After an eval the manifest on disk names each planned run, its column, repeat, run id and status."""
        manifest = manifest_at(home)
        report = await run_eval(project, models=[GOOD, THIN], repeat=2, manifest=manifest)
        assert manifest.path is not None
        saved = json.loads(manifest.path.read_text())
        assert [(r["question"], r["column"], r["repeat"]) for r in saved["runs"]] == [
            ("adapters", 0, 1),
            ("adapters", 0, 2),
            ("adapters", 1, 1),
            ("adapters", 1, 2),
        ]
        assert [c["model"] for c in saved["columns"]] == [GOOD, THIN]
        assert [r["run_id"] for r in saved["runs"]] == [r.run_id for r in report.runs]
        assert {r["status"] for r in saved["runs"]} == {"completed"}
        assert not list(manifest.path.parent.glob("*.tmp"))  # atomic writes leave no temporary files

    def test_find_eval(self, home: Path) -> None:
        """An eval is found by id, unique prefix or ``last``; an unknown one is an error naming the ref."""
        older, newer = eval_dir(home, "20260101-000000-aaaaaa"), eval_dir(home, "20260102-000000-bbbbbb")
        for folder in (older, newer):
            EvalManifest(eval_id=folder.name, path=folder / MANIFEST_FILE).write()
        assert find_eval(home, "last") == newer
        assert find_eval(home, "20260101") == older
        with pytest.raises(ManifestError, match="'nope'"):
            find_eval(home, "nope")
        with pytest.raises(ManifestError, match="2 evals"):
            find_eval(home, "2026")

    @pytest.mark.parametrize(
        ("content", "expected"),
        [
            ({"runs": [{"question": "q", "column": 0, "repeat": 1, "run_id": "../../../x"}]}, "is not a run id"),
            ({"eval_id": "20260101-000000-bbbbbb"}, "names eval '20260101-000000-bbbbbb', not its folder's"),
            (b'{"eval_id": "\xff"}', "is not a readable eval manifest"),
            ({"runs": 5}, "is not a readable eval manifest (runs: "),
        ],
        ids=["run id with path syntax", "another eval's id", "not UTF-8", "runs not a list"],
    )
    def test_a_damaged_manifest_is_one_line_naming_it(self, content: Any, expected: str, home: Path) -> None:
        """A manifest whose run ids are not run ids, that names another eval, is not UTF-8 or has a field of the
        wrong type is refused in one line naming the file: no id read from it reaches a path."""
        folder = eval_dir(home, "20260101-000000-aaaaaa")
        folder.mkdir(parents=True)
        data = content if isinstance(content, bytes) else json.dumps({"eval_id": folder.name, **content}).encode()
        (folder / MANIFEST_FILE).write_bytes(data)
        with pytest.raises(ManifestError) as raised:
            EvalManifest.load(folder)
        assert expected in str(raised.value) and str(folder / MANIFEST_FILE) in str(raised.value)
        assert "\n" not in str(raised.value)

    async def test_other_plan_refused(self, project: Path, home: Path) -> None:
        """Resuming with other columns or repeats than the manifest planned is refused."""
        manifest = manifest_at(home)
        await run_eval(project, models=[GOOD], manifest=manifest)
        assert manifest.path is not None
        with pytest.raises(ManifestError, match="other runs"):
            await run_eval(project, models=[GOOD], repeat=2, manifest=EvalManifest.load(manifest.path.parent))


class TestResume:
    async def test_interrupted_eval_resumes_to_the_same_report(self, project: Path, home: Path) -> None:
        """An eval stopped after its first run, resumed from its manifest, scores like an uninterrupted eval."""
        plan: dict[str, Any] = {"models": [GOOD, THIN], "repeat": 2, "concurrency": 2}
        whole = await run_eval(project, **plan)

        def stop(run: EvalRun) -> None:
            raise Interrupted

        manifest = manifest_at(home)
        with pytest.raises(Interrupted):
            await run_eval(project, **plan, manifest=manifest, on_run=stop)
        assert manifest.path is not None
        left = EvalManifest.load(manifest.path.parent)
        statuses = [r.status for r in left.runs]
        assert 1 <= statuses.count("completed") < 4
        assert "pending" in statuses  # some runs never started

        seen: list[EvalRun] = []
        resumed = await run_eval(project, **plan, manifest=left, on_run=seen.append)
        assert scores(resumed) == scores(whole)
        assert len(seen) == 4
        done = [r.run_id for r, s in zip(left.runs, statuses, strict=True) if s == "completed"]
        assert set(done) <= {r.run_id for r in resumed.runs}  # finished runs were re-scored, not run again
        assert {r.status for r in EvalManifest.load(manifest.path.parent).runs} == {"completed"}

    async def test_over_budget_runs_continue_with_a_raised_budget(self, project: Path, home: Path) -> None:
        """Runs stopped by their budget are continued (same run ids) when resumed with a higher limit."""
        whole = await run_eval(project, models=[GOOD, THIN])
        manifest = manifest_at(home)
        stopped = await run_eval(project, models=[GOOD, THIN], budget=Budget(max_iterations=2), manifest=manifest)
        assert [r.status for r in stopped.runs] == ["budget_exceeded", "budget_exceeded"]
        assert stopped.summary()[GOOD]["completed"].mean == 0.0
        assert manifest.path is not None
        left = EvalManifest.load(manifest.path.parent)
        assert [r.status for r in left.runs] == ["budget_exceeded", "budget_exceeded"]

        resumed = await run_eval(project, models=[GOOD, THIN], budget=Budget(max_iterations=100), manifest=left)
        assert [r.run_id for r in resumed.runs] == [r.run_id for r in stopped.runs]
        assert scores(resumed) == scores(whole)
