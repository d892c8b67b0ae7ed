"""Durability of `rolegraph run`, end to end: SIGKILL at many points then resume, Ctrl-C, SIGTERM, `rolegraph resume`.

The kill points are reproducible: ``ROLEGRAPH_KILL_AT=<kind>:<n>`` makes the run SIGKILL
itself right after its n-th journal write, trace record, checkpoint or recorded
``for_each`` item. Each killed run is resumed and must end exactly like an
uninterrupted run, without running a finished step or re-issuing a recorded call.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from durable_projects import (
    LOOP_CHATS,
    LOOP_TOOLS,
    outputs_of,
    trace_lines,
    write_loop_project,
    write_waiting_project,
)
from projects import isolated_home
from rolegraph.cli import app
from rolegraph.durability.resume import resume
from rolegraph.durability.store import RunStore
from rolegraph.traces.sinks import read_jsonl

ROLEGRAPH = Path(sys.executable).parent / "rolegraph"


def rolegraph(*args: str | Path, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the installed `rolegraph` command with its own home; never raises on a non-zero exit."""
    environment = {**os.environ, "ROLEGRAPH_HOME": str(home), "COLUMNS": "200", **env}
    return subprocess.run([ROLEGRAPH, *args], env=environment, capture_output=True, text=True, timeout=120, check=False)


def only_run(home: Path) -> Path:
    (run_dir,) = (home / "runs").iterdir()
    return run_dir


@pytest.fixture(scope="module")
def loop_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_loop_project(tmp_path_factory.mktemp("loop") / "project")


@pytest.fixture(scope="module")
def baseline(loop_project: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An uninterrupted run of the looping project: its outputs and how many trace records it wrote."""
    home = tmp_path_factory.mktemp("baseline")
    proc = rolegraph("run", loop_project, "--json", "--quiet", home=home)
    assert proc.returncode == 0, proc.stderr
    run_dir = only_run(home)
    return {"outputs": outputs_of(run_dir), "records": trace_lines(run_dir)}


def kill_points() -> Iterator[str]:
    """31 points: every journal write, every for_each item and checkpoint, and trace records spread over the run."""
    yield from (f"journal:{k}" for k in range(1, LOOP_CHATS + LOOP_TOOLS + 1))
    yield from (f"item:{k}" for k in (1, 2, 3))
    yield from (f"checkpoint:{k}" for k in (1, 2, 3, 5))
    # The uninterrupted run writes 82 trace records; these fall inside spans of every kind.
    yield from (f"trace:{k}" for k in (2, 9, 14, 23, 40, 61, 77, 81))


class TestKillAndResume:
    @pytest.mark.parametrize("point", list(kill_points()))
    async def test_a_killed_run_resumes_to_the_same_outputs_without_repeating_work(
        self, point: str, loop_project: Path, baseline: dict[str, Any], tmp_path: Path
    ) -> None:
        """SIGKILL at the point, resume: outputs, step outputs and usage equal the uninterrupted run's;
        no step finished before the kill runs again and no call recorded before it is re-issued."""
        home = tmp_path / "home"
        killed = rolegraph("run", loop_project, "--json", "--quiet", home=home, ROLEGRAPH_KILL_AT=point)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        run_dir = only_run(home)
        store = RunStore.open_existing(run_dir)
        recorded = {entry.call_id for entry in store.entries()}
        checkpoint = store.load()
        states = checkpoint.states.values() if checkpoint else ()
        finished = {state.step_id: state.visits for state in states if state.status == "completed"}
        items = {("research", visit, index) for visit in (1, 2) for index in store.items("research", visit)}
        store.close()
        before = trace_lines(run_dir)

        result = await resume(run_dir)

        assert result.status == "completed", result.error
        assert outputs_of(run_dir) == baseline["outputs"]
        assert set(result.resumed_steps) == set(finished)
        new = read_jsonl(run_dir / "trace.jsonl")[before:]
        ended = [r for r in new if r.get("event") == "span_end" and r["kind"] in ("chat", "execute_tool")]
        issued = [r["attributes"]["rolegraph.call.id"] for r in ended if not r["attributes"].get("rolegraph.replayed")]
        assert not set(issued) & recorded, "a recorded call was issued again"
        agents = [r["attributes"] for r in new if r.get("event") == "span_start" and r["kind"] == "invoke_agent"]
        runs = [(a["rolegraph.step.id"], a["rolegraph.step.visit"], a["rolegraph.step.item"]) for a in agents]
        # A finished step runs again only on a later visit (a route sent work back), a recorded item never.
        assert all(visit > finished[step] for step, visit, _ in runs if step in finished), runs
        assert not set(runs) & items, runs
        # Every call of the run was made at least once and is in the journal exactly once.
        store = RunStore.open_existing(run_dir)
        assert len(list(store.entries())) == LOOP_CHATS + LOOP_TOOLS
        store.close()

    def test_the_kill_points_cover_the_whole_run(self, baseline: dict[str, Any]) -> None:
        """The trace kill points fall inside the uninterrupted run (each one really kills)."""
        assert baseline["records"] == 82
        assert max(int(p.split(":")[1]) for p in kill_points() if p.startswith("trace")) < baseline["records"]
        assert len(list(kill_points())) >= 20

    def test_resume_command_reports_resumed_and_executed_steps(
        self, loop_project: Path, baseline: dict[str, Any], tmp_path: Path
    ) -> None:
        """`rolegraph resume RUN --json` after a kill in the write step: the summary lists restored and run steps."""
        home = tmp_path / "home"
        killed = rolegraph(
            "run", loop_project, "--quiet", home=home, ROLEGRAPH_KILL_AT=f"journal:{LOOP_CHATS + LOOP_TOOLS}"
        )
        assert killed.returncode == -signal.SIGKILL
        run_dir = only_run(home)
        # The run held its store (no -shm file); its write-ahead log is left for the next open to read back.
        assert Path(f"{run_dir / 'run.sqlite'}-wal").is_file() and not Path(f"{run_dir / 'run.sqlite'}-shm").exists()
        store = RunStore.open_existing(run_dir)
        assert store.record().elapsed_s > 0  # a killed invocation's time counts, up to its last checkpoint
        store.close()
        proc = rolegraph("resume", run_dir.name, "--json", "--quiet", home=home)
        assert proc.returncode == 0, proc.stderr
        summary = json.loads(proc.stdout)
        assert (summary["status"], summary["resumed_steps"], summary["executed_steps"]) == (
            "completed",
            ["plan", "research", "review"],
            ["write"],
        )
        assert summary["usage"] == baseline["outputs"]["usage"]
        assert outputs_of(run_dir) == baseline["outputs"]
        again = rolegraph("resume", run_dir.name, "--json", "--quiet", home=home)
        assert (again.returncode, json.loads(again.stdout)["executed_steps"]) == (0, [])

    def test_a_changed_workflow_file_is_refused_without_force(self, tmp_path: Path) -> None:
        """Resuming after the workflow file changed exits 2 and says so; --force resumes anyway."""
        project = write_loop_project(tmp_path / "project")
        home = tmp_path / "home"
        assert rolegraph("run", project, "--quiet", home=home, ROLEGRAPH_KILL_AT="journal:3").returncode < 0
        project.write_text(project.read_text().replace("Write the review.", "Write the review!"))
        run_id = only_run(home).name
        refused = rolegraph("resume", run_id, home=home)
        assert refused.returncode == 2
        assert "changed since the run started" in refused.stderr and "--force" in refused.stderr
        forced = rolegraph("resume", run_id, "--force", "--json", "--quiet", home=home)
        assert (forced.returncode, json.loads(forced.stdout)["status"]) == (0, "completed")


class TestBudgetsOnTheCommandLine:
    def test_a_budget_exits_3_and_resume_raises_it(
        self, loop_project: Path, baseline: dict[str, Any], tmp_path: Path
    ) -> None:
        """`run --max-iterations 2` exits 3 (budget_exceeded, listed so by `runs`); `resume --max-iterations 100`
        finishes it with the uninterrupted run's outputs."""
        home = tmp_path / "home"
        stopped = rolegraph("run", loop_project, "--json", "--max-iterations", "2", home=home)
        assert stopped.returncode == 3, stopped.stderr
        summary = json.loads(stopped.stdout)
        assert (summary["status"], summary["error"]) == (
            "budget_exceeded",
            "run budget exceeded: max_iterations is 2, used 2",
        )
        assert f"rolegraph resume {summary['run_id']}" in stopped.stderr
        listed = json.loads(rolegraph("runs", "--json", home=home).stdout)
        assert [row["status"] for row in listed] == ["budget_exceeded"]
        resumed = rolegraph("resume", "last", "--json", "--quiet", "--max-iterations", "100", home=home)
        assert resumed.returncode == 0, resumed.stderr
        assert outputs_of(only_run(home)) == baseline["outputs"]


def wait_for(path: Path, proc: subprocess.Popen[str]) -> None:
    """Wait until `path` exists (the run reached a known point); fail if the process ends first."""
    deadline = time.monotonic() + 60
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def start(project: Path, home: Path, marks: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "ROLEGRAPH_HOME": str(home), "DURABLE_TEST_DIR": str(marks), "COLUMNS": "200"}
    return subprocess.Popen(
        [ROLEGRAPH, "run", project, "--json", "--quiet", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class TestInterrupts:
    @pytest.fixture
    def waiting(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
        marks = tmp_path / "marks"
        marks.mkdir()
        monkeypatch.setenv("DURABLE_TEST_DIR", str(marks))
        return write_waiting_project(tmp_path / "project"), marks

    @pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
    async def test_a_signal_cancels_checkpoints_and_the_run_resumes(
        self, sig: signal.Signals, waiting: tuple[Path, Path], tmp_path: Path
    ) -> None:
        """Ctrl-C or SIGTERM mid-tool: exit 130, run.json says cancelled, stderr names the resume command;
        resumed, the run ends with the outputs of an uninterrupted run."""
        project, marks = waiting
        home = tmp_path / "home"
        proc = start(project, home, marks)
        wait_for(marks / "started", proc)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 130, stderr
        run_dir = only_run(home)
        assert json.loads((run_dir / "run.json").read_text())["status"] == "cancelled"
        assert f"rolegraph resume {run_dir.name}" in stderr
        (marks / "release").write_text("")
        result = await resume(run_dir)
        assert (result.status, result.resumed_steps, result.executed_steps) == ("completed", ["plan"], ["hold"])
        assert json.loads((run_dir / "held.json").read_text()) == {"note": "done"}
        baseline = rolegraph("run", project, "--json", "--quiet", home=tmp_path / "other", DURABLE_TEST_DIR=str(marks))
        assert json.loads(baseline.stdout)["usage"] == result.usage.model_dump()

    def test_a_second_ctrl_c_exits_at_once(self, waiting: tuple[Path, Path], tmp_path: Path) -> None:
        """When cancelling hangs (a tool ignores it), a second Ctrl-C exits 130 at once; the run stays resumable."""
        project, marks = waiting
        (marks / "stubborn").write_text("")
        home = tmp_path / "home"
        proc = start(project, home, marks)
        wait_for(marks / "started", proc)
        proc.send_signal(signal.SIGINT)
        wait_for(marks / "cancel_seen", proc)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
        assert proc.returncode == 130
        (marks / "stubborn").unlink()
        (marks / "release").write_text("")
        resumed = rolegraph("resume", only_run(home).name, "--json", "--quiet", home=home, DURABLE_TEST_DIR=str(marks))
        assert (resumed.returncode, json.loads(resumed.stdout)["status"]) == (0, "completed")


class TestDamagedRunStore:
    @pytest.fixture
    def completed(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
        """The folder of a completed run of the looping project (run in-process, under its own home)."""
        home = isolated_home(tmp_path, monkeypatch)
        result = CliRunner().invoke(app, ["run", str(write_loop_project(tmp_path / "project")), "--json", "--quiet"])
        assert result.exit_code == 0, result.output
        return only_run(home)

    @pytest.mark.parametrize("how", ["garbage", "truncated", "empty"])
    @pytest.mark.parametrize("command", ["resume", "replay"])
    def test_a_damaged_run_store_is_one_line_and_exit_2(self, how: str, command: str, completed: Path) -> None:
        """A garbage, cut-short or empty run.sqlite: resume and replay print one line naming the file, exit 2."""
        store = completed / "run.sqlite"
        data = store.read_bytes()
        store.write_bytes({"garbage": bytes(255 - b for b in data), "truncated": data[:5000], "empty": b""}[how])
        result = CliRunner().invoke(app, [command, completed.name])
        assert result.exit_code == 2, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert len(result.stderr.splitlines()) == 1 and str(store) in result.stderr, result.stderr

    def test_a_summary_that_is_not_utf8_is_one_line_and_exit_2(self, completed: Path) -> None:
        """Resuming a completed run whose run.json is not UTF-8: one line naming run.json, exit 2."""
        (completed / "run.json").write_bytes(b'{"run_id": "\xff"}')
        result = CliRunner().invoke(app, ["resume", completed.name])
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(f"error {completed / 'run.json'}: not UTF-8")
        assert len(result.stderr.splitlines()) == 1

    def test_a_damaged_trace_stops_a_resume_before_it_writes(self, completed: Path) -> None:
        """A failed run whose trace is damaged is not resumed: one line, exit 2, and its files are left as they were."""
        (completed / "run.json").write_text(
            json.dumps({**json.loads((completed / "run.json").read_text()), "status": "failed"})
        )
        with sqlite3.connect(completed / "run.sqlite") as db:
            (record,) = db.execute("SELECT record FROM run").fetchone()
            db.execute("UPDATE run SET record = ?", (json.dumps({**json.loads(record), "status": "failed"}),))
        db.close()
        with (completed / "trace.jsonl").open("ab") as f:
            f.write(b"[1, 2]\n")
        before = {p.name: p.read_bytes() for p in completed.iterdir() if p.is_file() and p.suffix != ".lock"}
        result = CliRunner().invoke(app, ["resume", completed.name])
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(f"error {completed / 'trace.jsonl'}, line ")
        after = {p.name: p.read_bytes() for p in completed.iterdir() if p.is_file() and p.suffix != ".lock"}
        assert after == before


class TestResumePrivacy:
    """A run's privacy is recorded (run.json and its store) and a resume keeps it."""

    @pytest.fixture
    def stopped(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
        """A run of the looping project started with --privacy local_only (the file says nothing of privacy)
        that stopped at its token budget: resumable."""
        home = isolated_home(tmp_path, monkeypatch)
        project = write_loop_project(tmp_path / "project")
        result = CliRunner().invoke(
            app, ["run", str(project), "--privacy", "local_only", "--max-tokens", "40", "--quiet"]
        )
        assert result.exit_code == 3, result.output
        return only_run(home)

    def calls(self, run_dir: Path) -> int:
        store = RunStore.open_existing(run_dir, read_only=True)
        try:
            return len(list(store.entries()))
        finally:
            store.close()

    def forget_privacy_in_the_store(self, run_dir: Path) -> None:
        """Make the run's store record one from before privacy was recorded."""
        with sqlite3.connect(run_dir / "run.sqlite") as db:
            (record,) = db.execute("SELECT record FROM run").fetchone()
            old = {k: v for k, v in json.loads(record).items() if k != "privacy"}
            db.execute("UPDATE run SET record = ?", (json.dumps(old),))
        db.close()

    def test_the_effective_privacy_is_in_run_json(self, stopped: Path) -> None:
        """--privacy local_only is recorded as the run's privacy in run.json, though the file does not set it."""
        assert json.loads((stopped / "run.json").read_text())["privacy"] == "local_only"

    @pytest.mark.parametrize("old_store", [False, True], ids=["store", "run.json"])
    def test_a_hosted_model_is_refused_before_any_call(self, stopped: Path, old_store: bool) -> None:
        """`resume --model openai:...` of a local_only run, without --privacy: exit 2, one error line naming the
        model, and no call made or recorded; the privacy comes from the store record, else from run.json."""
        if old_store:
            self.forget_privacy_in_the_store(stopped)
        calls, lines = self.calls(stopped), trace_lines(stopped)
        result = CliRunner().invoke(
            app, ["resume", stopped.name, "--model", "openai:gpt-4o-mini", "--max-tokens", "100000"]
        )
        assert result.exit_code == 2, result.output
        errors = [line for line in result.stderr.splitlines() if line.startswith("error ")]
        assert result.stderr.splitlines() == [*errors, "1 problem(s) found."], result.stderr
        assert "settings.privacy is local_only, so model 'openai:gpt-4o-mini' cannot be used" in errors[0]
        assert (self.calls(stopped), trace_lines(stopped)) == (calls, lines)

    def test_a_hosted_model_in_the_edited_file_is_refused(self, stopped: Path) -> None:
        """The file edited to a hosted model and resumed with --force: refused under the recorded local_only."""
        file = Path(json.loads((stopped / "run.json").read_text())["workflow_file"])
        file.write_text(file.read_text().replace("scripted:writer.yaml", "openai:gpt-4o-mini"))
        result = CliRunner().invoke(app, ["resume", stopped.name, "--force", "--max-tokens", "100000"])
        assert result.exit_code == 2, result.output
        assert "privacy is local_only (--privacy), so model 'openai:gpt-4o-mini' cannot be used" in result.stderr

    @pytest.mark.parametrize("damage", [None, 7, "secret"], ids=["missing", "number", "unknown"])
    def test_an_old_or_damaged_record_does_not_break_resume(self, stopped: Path, damage: object) -> None:
        """A store record without privacy and a run.json whose privacy is missing or damaged: the resume goes on
        under the file's own privacy and completes."""
        self.forget_privacy_in_the_store(stopped)
        summary = {k: v for k, v in json.loads((stopped / "run.json").read_text()).items() if k != "privacy"}
        (stopped / "run.json").write_text(json.dumps(summary if damage is None else {**summary, "privacy": damage}))
        result = CliRunner().invoke(app, ["resume", stopped.name, "--max-tokens", "100000", "--quiet"])
        assert result.exit_code == 0, result.output
