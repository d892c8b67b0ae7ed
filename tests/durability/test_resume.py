"""Resuming runs in-process: after a cancellation, after a budget ran out (each kind), twice, and refused ones."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

import rolegraph
from durable_projects import (
    edit,
    outputs_of,
    touch,
    wait_until_exists,
    write_edited_project,
    write_loop_project,
    write_waiting_project,
)
from rolegraph.durability.replay import replay
from rolegraph.durability.resume import resume, workflow_file
from rolegraph.durability.store import RunStore
from rolegraph.errors import ReplayError, ResumeError, SpecError
from rolegraph.layout import RunFolder
from rolegraph.runtime.result import RunResult
from rolegraph.traces.records import read_summary
from rolegraph.traces.sinks import read_jsonl
from rolegraph.workflows.spec import Budget

pytestmark = pytest.mark.usefixtures("home")


@pytest.fixture
def baseline(project: Path, tmp_path: Path) -> RunResult:
    """An uninterrupted run of the looping project (in its own home)."""
    return rolegraph.load(project).run_sync(home=tmp_path / "baseline")


async def wait_for(path: Path) -> None:
    await asyncio.to_thread(wait_until_exists, path)


async def cancelled_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A run of the waiting project cancelled while its `hold` step waits: its folder and the marks folder."""
    marks = tmp_path / "marks"
    marks.mkdir()
    monkeypatch.setenv("DURABLE_TEST_DIR", str(marks))
    workflow = rolegraph.load(write_waiting_project(tmp_path / "project"))
    task = asyncio.create_task(workflow.run())
    await wait_for(marks / "started")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (run_dir,) = (tmp_path / "home" / "runs").iterdir()
    return run_dir, marks


class TestCancelled:
    async def test_a_cancelled_run_resumes(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Cancelling the run's task records `cancelled` (run.json and run store); resume finishes the run."""
        run_dir, marks = await cancelled_run(tmp_path, monkeypatch)
        assert json.loads((run_dir / "run.json").read_text())["status"] == "cancelled"
        store = RunStore.open_existing(run_dir)
        assert store.record().status == "cancelled"
        store.close()
        touch(marks / "release")
        result = await resume(run_dir)
        assert (result.status, result.resumed_steps, result.executed_steps) == ("completed", ["plan"], ["hold"])
        assert json.loads((run_dir / "held.json").read_text()) == {"note": "done"}

    async def test_a_resume_writes_the_step_lines_a_killed_run_left_torn(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A step's line torn with its run (written off the loop, killed mid-write) is written again on resume,
        after the torn one (ended with a newline, skipped on reading)."""
        run_dir, marks = await cancelled_run(tmp_path, monkeypatch)
        folder = RunFolder(run_dir)
        written = folder.step_states()["plan"]
        torn = folder.step_log.read_bytes()[:-9]  # as a kill in the middle of the writer's write leaves it
        folder.step_log.write_bytes(torn)
        assert "plan" not in folder.step_states()
        touch(marks / "release")
        result = await resume(run_dir)
        assert result.status == "completed" and result.resumed_steps == ["plan"]
        assert folder.step_states()["plan"] == written
        assert folder.step_log.read_bytes().startswith(torn + b"\n")

    async def test_a_run_in_progress_cannot_be_resumed(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """While a process works on a run (it holds the run's lock and keeps its store locked), resuming it,
        replaying it or asking for its workflow file is refused, saying so; once the run ends, all three work."""
        marks = tmp_path / "marks"
        marks.mkdir()
        monkeypatch.setenv("DURABLE_TEST_DIR", str(marks))
        file = write_waiting_project(tmp_path / "project")
        task = asyncio.create_task(rolegraph.load(file).run())
        await wait_for(marks / "started")
        (run_dir,) = (tmp_path / "home" / "runs").iterdir()
        busy = f"run {run_dir.name} is being worked on by another process; wait for it to end"
        with pytest.raises(ResumeError) as resuming:
            await resume(run_dir)
        with pytest.raises(ReplayError) as replaying:
            await replay(run_dir)
        with pytest.raises(ResumeError) as asking:
            workflow_file(run_dir)
        assert [str(e.value) for e in (resuming, replaying, asking)] == [busy] * 3
        touch(marks / "release")
        assert (await task).status == "completed"
        assert workflow_file(run_dir) == file.absolute()
        assert (await resume(run_dir)).status == "completed"
        assert (await replay(run_dir)).divergence is None

    async def test_a_run_cancelled_as_it_ends_records_its_end_whole(self, project: Path, home: Path) -> None:
        """A run cancelled just as its root span ends (an eval interrupted by another run) still records its end:
        run.json and the run store agree it completed, so a resume returns it as it is and run.json says so."""

        class CancelAtTheEnd:
            """Cancels the run's task when the run's root span ends: the cancellation lands while it records."""

            def emit(self, record: dict[str, Any]) -> None:
                if record.get("kind") == "invoke_workflow" and "end_time" in record:
                    task = asyncio.current_task()
                    assert task is not None
                    task.cancel()

        with pytest.raises(asyncio.CancelledError):
            await rolegraph.load(project).run(sinks=[CancelAtTheEnd()])
        (run_dir,) = (home / "runs").iterdir()
        store = RunStore.open_existing(run_dir)
        assert store.record().status == "completed"
        store.close()
        assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"
        assert (await resume(run_dir)).status == "completed"


class TestResumingAgain:
    async def test_resuming_a_finished_run_changes_nothing(self, baseline: RunResult) -> None:
        """A completed run resumed (twice) runs nothing: same trace bytes, outputs, usage; no step executed."""
        trace = (baseline.run_dir / "trace.jsonl").read_bytes()
        outputs = outputs_of(baseline.run_dir)
        for _ in range(2):
            again = await resume(baseline.run_dir)
            assert (again.status, again.executed_steps) == ("completed", [])
            assert again.resumed_steps == ["plan", "research", "review", "write"]
            assert again.usage == baseline.usage
            assert [s.id for s in again.sources] == [s.id for s in baseline.sources]
        assert (baseline.run_dir / "trace.jsonl").read_bytes() == trace
        assert outputs_of(baseline.run_dir) == outputs

    async def test_the_trace_continues_under_one_root(self, project: Path, baseline: RunResult) -> None:
        """A resumed run's spans join the same root span; a run_resumed event marks where the resume began."""
        stopped = await rolegraph.load(project).run(budget=Budget(max_iterations=2))
        result = await resume(stopped.run_dir, budget=Budget(max_iterations=100))
        assert result.status == "completed"
        trace = result.trace
        (root,) = trace.roots
        assert (root.status, root.attributes["rolegraph.invocation"], root.attributes["rolegraph.resumed"]) == (
            "ok",
            2,
            True,
        )
        events = [r for r in read_jsonl(result.run_dir / "trace.jsonl") if r.get("event") == "event"]
        assert [(e["name"], e["parent_id"]) for e in events] == [
            ("run_resumed", root.span_id),
            ("resume_calls", root.span_id),
        ]
        assert events[0]["attributes"]["rolegraph.resumed_steps"] == ["plan"]
        replayed = [s for s in trace.walk() if s.attributes.get("rolegraph.replayed")]
        assert [s.attributes["rolegraph.call.id"] for s in replayed] == [
            "research[0]#1/chat/1",
            "research[0]#1/tool/1/0",
        ]
        assert all("gen_ai.usage.input_tokens" not in s.attributes for s in replayed)
        # Tokens traced = tokens spent: no call was made twice, so the trace sums to the run's usage.
        assert trace.usage() == result.usage
        assert (root.input_tokens, root.output_tokens) == (result.usage.input_tokens, result.usage.output_tokens)
        assert outputs_of(result.run_dir) == outputs_of(baseline.run_dir)

    async def test_a_changed_workflow_file_is_refused(self, project: Path) -> None:
        """After the workflow file changed, resume raises ResumeError naming --force; force resumes."""
        stopped = await rolegraph.load(project).run(budget=Budget(max_iterations=2))
        edit(project, "Write the review.", "Write the review!")
        with pytest.raises(ResumeError, match=r"changed since the run started.*--force"):
            await resume(stopped.run_dir, budget=Budget(max_iterations=100))
        forced = await resume(stopped.run_dir, budget=Budget(max_iterations=100), force=True)
        assert forced.status == "completed"

    async def test_a_file_edited_after_loading_is_refused(self, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A run records the content it ran (the bytes loaded), not the file as it is when the run starts: a file
        edited between load and run is a changed file for the resume, and the loaded content resumes. A relative
        path is taken from the directory at load, as the files the workflow names are."""
        monkeypatch.chdir(project.parent.parent)
        workflow = rolegraph.load(project.relative_to(project.parent.parent))
        edit(project, "Write the review.", "Write the review!")
        monkeypatch.chdir(project.parent)  # the file and the files it names stay where they were at load
        stopped = await workflow.run(budget=Budget(max_iterations=2))
        resolved = await asyncio.to_thread(project.resolve)
        assert read_summary(RunFolder(stopped.run_dir).summary)["workflow_file"] == str(resolved)
        with pytest.raises(ResumeError, match=r"changed since the run started"):
            await resume(stopped.run_dir, budget=Budget(max_iterations=100))
        edit(project, "Write the review!", "Write the review.")  # back to the content that ran
        resumed = await resume(stopped.run_dir, budget=Budget(max_iterations=100))
        assert resumed.status == "completed"

    async def test_a_folder_without_a_store_is_refused(self, tmp_path: Path) -> None:
        """A folder that holds no run store cannot be resumed, and the error says so."""
        (tmp_path / "nothing").mkdir()
        with pytest.raises(ResumeError, match="no run store"):
            await resume(tmp_path / "nothing")


PRICES = '"scripted:*": {input: 1000, output: 1000}\n'
"""$0.001 a token: scripted models are free by default."""


class TestBudgets:
    @pytest.mark.parametrize(
        ("budget", "limit", "stopped_in", "used"),
        [
            (Budget(max_tokens=60), "max_tokens", "research", 134),
            (Budget(max_cost_usd=0.06), "max_cost_usd", "research", 0.134),
            (Budget(max_iterations=2), "max_iterations", "research", 2),
            (Budget(max_tool_calls=1), "max_tool_calls", "research", 1),
        ],
    )
    async def test_each_limit_stops_the_run_resumably(
        self,
        project: Path,
        baseline: RunResult,
        home: Path,
        budget: Budget,
        limit: str,
        stopped_in: str,
        used: float,
    ) -> None:
        """A run limit stops the run `budget_exceeded` in the step that reached it, partial outputs written,
        the trace naming the limit; resumed with a higher limit it ends like an unlimited run."""
        touch(home / "prices.yaml", PRICES)
        stopped = await rolegraph.load(project).run(budget=budget)
        assert stopped.status == "budget_exceeded"
        assert stopped.steps[stopped_in].status == "budget_exceeded"
        assert stopped.steps["plan"].status == "completed"
        assert stopped.error == f"run budget exceeded: {limit} is {budget.limits()[limit]:g}, used {used:g}"
        assert sorted(stopped.outputs) == ["sources"]  # the report needs the write step
        (root,) = stopped.trace.roots
        assert root.status == "budget_exceeded"
        assert root.attributes["rolegraph.budget.exceeded"]["limit"] == limit
        assert root.attributes["rolegraph.budget.exceeded"]["scope"] == "run"
        assert json.loads((stopped.run_dir / "run.json").read_text())["status"] == "budget_exceeded"
        assert stopped.trace.usage() == stopped.usage

        result = await resume(stopped.run_dir, budget=Budget(**{limit: 10**6}))
        assert result.status == "completed", result.error
        assert result.usage == baseline.usage
        assert outputs_of(result.run_dir) == outputs_of(baseline.run_dir)

    async def test_resuming_without_raising_the_limit_makes_no_call(self, project: Path) -> None:
        """Resumed with the limit that tripped, the run stops again at once: no model or tool call is made."""
        stopped = await rolegraph.load(project).run(budget=Budget(max_iterations=2))
        lines = len(read_jsonl(stopped.run_dir / "trace.jsonl"))
        again = await resume(stopped.run_dir)
        assert again.status == "budget_exceeded"
        new = read_jsonl(stopped.run_dir / "trace.jsonl")[lines:]
        made = [r for r in new if r.get("event") == "span_end" and r["kind"] == "chat"]
        assert all(r["attributes"].get("rolegraph.replayed") or r["status"] == "error" for r in made)
        assert again.usage == stopped.usage

    async def test_a_cost_limit_needs_a_price_for_every_model(self, project: Path, home: Path) -> None:
        """max_cost_usd with a model the price table does not know is refused before the run starts."""
        unpriced = "openai-compatible:m@http://127.0.0.1:9/v1"  # never called: the run is refused first
        with pytest.raises(SpecError, match=f"max_cost_usd is set but {unpriced} has no price"):
            await rolegraph.load(project).run(model=unpriced, budget=Budget(max_cost_usd=1))
        assert not (home / "runs").exists()

    async def test_a_step_budget_names_the_step(self, tmp_path: Path, baseline: RunResult) -> None:
        """A step's own budget stops the run with scope `step <id>`; after raising it in the file, --force resumes."""
        extra = "    budget: {max_tool_calls: 1}\n"
        path = write_loop_project(tmp_path / "stepped")
        path.write_text(
            path.read_text().replace(
                '    task: "Answer: {{ question }}"\n', '    task: "Answer: {{ question }}"\n' + extra
            )
        )
        stopped = await rolegraph.load(path).run()
        assert stopped.status == "budget_exceeded"
        assert stopped.error == "step research budget exceeded: max_tool_calls is 1, used 1"
        assert stopped.trace.roots[0].attributes["rolegraph.budget.exceeded"]["scope"] == "step research"
        edit(path, extra, "    budget: {max_tool_calls: 10}\n")
        result = await resume(stopped.run_dir, force=True)
        assert result.status == "completed"
        assert outputs_of(result.run_dir)["files"] == outputs_of(baseline.run_dir)["files"]

    async def test_wall_time_stops_a_waiting_run(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A run past max_wall_s stops `budget_exceeded` (the tool in flight cancelled); it resumes with more time."""
        marks = tmp_path / "marks"
        marks.mkdir()
        monkeypatch.setenv("DURABLE_TEST_DIR", str(marks))
        workflow = rolegraph.load(write_waiting_project(tmp_path / "project"))
        stopped = await workflow.run(budget=Budget(max_wall_s=0.2))
        assert (stopped.status, stopped.error) == (
            "budget_exceeded",
            "run budget exceeded: max_wall_s is 0.2, used 0.2",
        )
        assert (marks / "started").exists()
        touch(marks / "release")
        result = await resume(stopped.run_dir, budget=Budget(max_wall_s=600))
        assert result.status == "completed"
        assert json.loads((result.run_dir / "held.json").read_text()) == {"note": "done"}


class TestResumeAfterAnEdit:
    async def test_calls_whose_request_changed_are_sent_again(self, tmp_path: Path) -> None:
        """After editing a failed step's task, resume --force sends that step's recorded calls again (not the
        stale answers); the other failed step's unchanged calls are replayed. Both counts reach the result,
        run.json and the trace's run_resumed event; the stale record is kept as superseded."""
        project = write_edited_project(tmp_path / "project")
        failed = await rolegraph.load(project).run()
        assert (failed.status, {k: s.status for k, s in failed.steps.items()}) == (
            "failed",
            {"first": "failed", "second": "failed"},
        )
        edit(project, "Describe the second thing.", "Describe the second thing, briefly.")
        result = await resume(failed.run_dir, force=True)
        assert {k: s.status for k, s in result.steps.items()} == {"first": "failed", "second": "completed"}
        assert result.steps["second"].output == {"note": "the second thing, described"}
        assert (result.replayed_calls, result.resent_calls) == (3, 1)
        summary = json.loads((result.run_dir / "run.json").read_text())
        assert (summary["replayed_calls"], summary["resent_calls"]) == (3, 1)
        events = [r for r in read_jsonl(result.run_dir / "trace.jsonl") if r.get("event") == "event"]
        assert [e["name"] for e in events] == ["run_resumed", "resume_calls"]
        assert events[1]["attributes"] == {
            "rolegraph.recorded_calls": 6,
            "rolegraph.replayed_calls": 3,
            "rolegraph.resent_calls": 1,
            "rolegraph.first_resent": "second#1/chat/1: prompt changed",
        }
        (root,) = result.trace.roots
        assert (
            root.attributes["rolegraph.resume.replayed_calls"],
            root.attributes["rolegraph.resume.resent_calls"],
        ) == (
            3,
            1,
        )
        chats = [s for s in result.trace.walk() if s.kind == "chat"]
        resumed = chats[6:]  # the second invocation's model calls
        assert [(s.attributes["rolegraph.call.id"], bool(s.attributes.get("rolegraph.replayed"))) for s in resumed] == [
            ("first#1/chat/1", True),
            ("first#1/chat/2", True),
            ("first#1/chat/3", True),
            ("second#1/chat/1", False),
        ]
        store = RunStore.open_existing(result.run_dir, read_only=True)
        assert [e.call_id for e in store.superseded()] == ["second#1/chat/1"]
        assert [e.call_id for e in store.entries()][-1] == "second#1/chat/1"
        store.close()

    async def test_an_unchanged_failed_step_is_replayed_as_before(self, tmp_path: Path) -> None:
        """Resumed without an edit, a failed step's recorded calls are all replayed, none sent again."""
        project = write_edited_project(tmp_path / "project")
        failed = await rolegraph.load(project).run()
        result = await resume(failed.run_dir)
        assert (result.status, result.replayed_calls, result.resent_calls) == ("failed", 6, 0)
        assert {k: s.status for k, s in result.steps.items()} == {"first": "failed", "second": "failed"}
