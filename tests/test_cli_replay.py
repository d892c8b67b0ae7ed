"""`rolegraph replay RUN`: exit 0 and "identical" for an unchanged workflow, 1 and the divergence after an edit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from durable_projects import LOOP_CHATS, LOOP_TOOLS, edit, write_loop_project
from projects import isolated_home
from rolegraph.cli import app


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolated_home(tmp_path, monkeypatch)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_loop_project(tmp_path / "project")


def cli(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def recorded_run(project: Path) -> str:
    result = cli("run", project, "--json", "--quiet")
    assert result.exit_code == 0, result.output
    return str(json.loads(result.stdout)["run_id"])


class TestReplayCommand:
    def test_an_unchanged_run_replays_identically(self, project: Path) -> None:
        """Exit 0; the JSON names both runs and counts every recorded call replayed; the text says identical."""
        run_id = recorded_run(project)
        result = cli("replay", run_id, "--json")
        assert result.exit_code == 0, result.output
        document = json.loads(result.stdout)
        calls = LOOP_CHATS + LOOP_TOOLS
        assert {k: v for k, v in document.items() if k != "replay"} == {
            "status": "identical",
            "original": run_id,
            "replay_status": "completed",
            "divergence": None,
            "replayed_calls": calls,
            "recorded_calls": calls,
            "differing_steps": [],
            "failed_as_recorded": [],
        }
        assert document["replay"] != run_id
        text = cli("replay", run_id)
        assert text.exit_code == 0
        assert text.stdout.startswith(f"identical: {calls} of {calls} recorded calls replayed, outputs equal")

    def test_trace_diff_compares_the_original_and_its_replay(self, project: Path) -> None:
        """The replay is an ordinary traced run: `trace diff ORIG REPLAY` finds no step that differs."""
        run_id = recorded_run(project)
        replay_id = json.loads(cli("replay", run_id, "--json").stdout)["replay"]
        diff = cli("trace", "diff", run_id, replay_id, "--json")
        assert diff.exit_code == 0, diff.output
        assert json.loads(diff.stdout)["totals"]["steps_differing"] == []

    def test_an_edited_task_diverges_with_exit_1(self, project: Path) -> None:
        """An edited task: exit 1, the step, call and reason, a unified diff of the prompt, the trace diff to run."""
        run_id = recorded_run(project)
        edit(project, "Write the review.", "Write a short review.")
        result = cli("replay", run_id)
        assert result.exit_code == 1, result.output
        lines = result.stdout.splitlines()
        assert lines[0] == "diverged at step write, call write#1/chat/1 (chat): prompt changed"
        assert lines[1:4] == ["  --- recorded", "  +++ replay", lines[3]] and lines[3].startswith("  @@ ")
        assert [line for line in lines[4:] if line.startswith(("  -", "  +"))] == [
            "  -Write the review.",
            "  +Write a short review.",
        ]
        assert lines[-2].startswith(f"{LOOP_CHATS + LOOP_TOOLS - 1} of {LOOP_CHATS + LOOP_TOOLS} recorded calls")
        assert lines[-1].startswith(f"compare: rolegraph trace diff {run_id} ")

    def test_no_prompt_diff_without_prompt_text(self, project: Path) -> None:
        """A run traced with --content metadata keeps no prompt text: the replay says so instead of a diff."""
        result = cli("run", project, "--json", "--quiet", "--content", "metadata")
        run_id = json.loads(result.stdout)["run_id"]
        edit(project, "Write the review.", "Write a short review.")
        lines = cli("replay", run_id).stdout.splitlines()
        assert lines[0].endswith("(chat): prompt changed")
        assert lines[1] == "  (no prompt text to compare: the traces keep it only with settings.content: full)"

    def test_runs_marks_replays_and_a_divergence(self, project: Path) -> None:
        """`runs` marks replays, and a replay stopped at a divergence shows 'diverged', never 'failed'."""
        run_id = recorded_run(project)
        same = json.loads(cli("replay", run_id, "--json").stdout)["replay"]
        edit(project, "Write the review.", "Write a short review.")
        cli("replay", run_id)
        listed = json.loads(cli("runs", "--json").stdout)
        lineage = {row["run_id"]: row["lineage"] for row in listed}
        assert lineage[run_id] == {"replay_of": None, "resumed": False, "divergence": None}
        assert lineage[same]["replay_of"] == run_id
        rows = {line.split()[0]: line.split()[2:4] for line in cli("runs").stdout.splitlines()[1:]}
        assert rows[run_id][0] == "completed" and rows[run_id][1] != "(replay)"
        assert rows[same] == ["completed", "(replay)"]
        diverged = next(r for r in listed if r["run_id"] not in (run_id, same))["run_id"]
        assert rows[diverged] == ["diverged", "(replay)"]

    def test_an_unknown_run_or_a_lost_workflow_file_exits_2(self, project: Path) -> None:
        """No such run: exit 2. The run's workflow file deleted: exit 2 with what to do."""
        assert cli("replay", "nope").exit_code == 2
        run_id = recorded_run(project)
        project.unlink()
        result = cli("replay", run_id)
        assert result.exit_code == 2
        assert "is gone; restore it to replay the run" in result.output
