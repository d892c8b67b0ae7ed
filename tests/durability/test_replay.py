"""Replaying a recorded run offline: identical when nothing changed, the first divergence when something did."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from pathlib import Path

import pytest

import rolegraph
from durable_projects import LOOP_CHATS, LOOP_TOOLS, SCRIPTS, edit, outputs_of
from projects import write_script
from rolegraph.agents.journal import request_digest
from rolegraph.durability.replay import Divergence, Recording, ReplayDiverged, ReplayError, ReplayModel, replay
from rolegraph.durability.store import STORE_FILE, JournalEntry, RunStore
from rolegraph.runtime.result import RunResult
from rolegraph.traces.sinks import read_jsonl
from rolegraph.workflows.spec import Budget

CALLS = LOOP_CHATS + LOOP_TOOLS


pytestmark = pytest.mark.usefixtures("home")


@pytest.fixture
def recorded(project: Path) -> RunResult:
    """A completed run of the looping project."""
    result = rolegraph.load(project).run_sync()
    assert result.status == "completed", result.error
    return result


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _call_spans(run_dir: Path) -> list[dict[str, object]]:
    records = read_jsonl(run_dir / "trace.jsonl")
    return [r for r in records if r.get("event") == "span_end" and r["kind"] in ("chat", "execute_tool")]


def _offline(project: Path) -> None:
    """Delete the model scripts: a replay that loaded or called any model would now fail."""
    for role in SCRIPTS:
        (project.parent / f"{role}.yaml").unlink()


class TestIdentical:
    async def test_an_unchanged_workflow_replays_identically_and_offline(
        self, project: Path, recorded: RunResult
    ) -> None:
        """With the model scripts gone, the replay answers every recorded call from the recording, in a new run
        whose step outputs, output files and usage equal the original's; every call span is marked replayed."""
        _offline(project)
        report = await replay(recorded.run_dir)
        assert report.divergence is None
        assert (report.status, report.replayed_calls, report.recorded_calls) == ("identical", CALLS, CALLS)
        assert report.result.run_id != recorded.run_id
        assert report.result.run_dir.parent == recorded.run_dir.parent
        assert report.result.status == "completed"
        original, again = outputs_of(recorded.run_dir), outputs_of(report.result.run_dir)
        assert again == original
        spans = _call_spans(report.result.run_dir)
        assert len(spans) == CALLS
        assert all(span["attributes"]["rolegraph.replayed"] is True for span in spans)  # type: ignore[index]
        root = next(r for r in read_jsonl(report.result.run_dir / "trace.jsonl") if r["kind"] == "invoke_workflow")
        assert root["attributes"]["rolegraph.replay.of"] == recorded.run_id

    async def test_replaying_twice_gives_the_same_result(self, project: Path, recorded: RunResult) -> None:
        """Two replays in a row are both identical and produce the same outputs as each other."""
        _offline(project)
        first = await replay(recorded.run_dir)
        second = await replay(recorded.run_dir)
        assert (first.status, second.status) == ("identical", "identical")
        assert first.result.run_id != second.result.run_id
        assert outputs_of(first.result.run_dir) == outputs_of(second.result.run_dir)
        assert first.summary() | {"replay": None} == second.summary() | {"replay": None}

    async def test_the_recorded_run_is_left_untouched(self, recorded: RunResult) -> None:
        """Replaying reads the original run's store read-only: its store, trace and summary are byte-identical."""
        files = [STORE_FILE, "trace.jsonl", "run.json"]
        before = {name: _digest(recorded.run_dir / name) for name in files}
        await replay(recorded.run_dir)
        assert {name: _digest(recorded.run_dir / name) for name in files} == before

    async def test_a_run_stopped_by_its_budget_replays_to_the_same_stop(self, project: Path) -> None:
        """A run that hit max_iterations replays identically: the budget stops the replay at the same call."""
        stopped = await rolegraph.load(project).run(budget=Budget(max_iterations=3))
        assert stopped.status == "budget_exceeded"
        report = await replay(stopped.run_dir)
        assert report.divergence is None, report.divergence
        assert (report.result.status, report.result.error) == ("budget_exceeded", stopped.error)
        assert report.replayed_calls == report.recorded_calls

    async def test_a_run_whose_model_failed_replays_to_the_same_failure(self, project: Path) -> None:
        """The writer's model fails (its script is empty): that call was never recorded, and the replay fails it
        with the recorded error instead of calling a model, so the replay is identical, status failed."""
        write_script(project.parent, "writer", [])
        failed = await rolegraph.load(project).run()
        assert (failed.status, failed.steps["write"].status) == ("failed", "failed")
        report = await replay(failed.run_dir)
        assert report.divergence is None, report.divergence
        assert report.failed_as_recorded == ["write#1/chat/1"]
        assert (report.result.status, report.result.error) == ("failed", failed.error)

    async def test_a_replay_records_its_calls_with_their_request_digests(self, recorded: RunResult) -> None:
        """The replay run's own store holds the same calls, results and request digests as the recording."""
        report = await replay(recorded.run_dir)
        stores = [RunStore.open_existing(d, read_only=True) for d in (recorded.run_dir, report.result.run_dir)]
        original, again = ([e.model_dump() for e in s.entries()] for s in stores)
        for store in stores:
            store.close()
        assert again == original
        assert {frozenset(e["request"]) for e in original} == {
            frozenset({"messages", "tools", "schema", "settings", "version"}),
            frozenset({"tool", "arguments", "version"}),
        }


class TestDivergence:
    async def test_a_changed_task_diverges_at_its_step_with_prompt_changed(
        self, project: Path, recorded: RunResult
    ) -> None:
        """Editing the review step's task: the replay stops at review's first model call ("prompt changed"),
        after replaying everything before it; review and the steps after it do not complete."""
        _offline(project)
        edit(project, "Review {{ steps.research | length }} findings.", "Review the {{ steps.research | length }}.")
        report = await replay(recorded.run_dir)
        assert report.divergence == Divergence("review", "review#1/chat/1", "chat", "prompt changed")
        assert report.status == "diverged"
        assert report.replayed_calls == 1 + 4 + 2  # plan, the two research items (a search and an answer each)
        assert report.result.status == "failed"
        assert report.result.steps["review"].status == "failed"
        assert "prompt changed" in (report.result.steps["review"].error or "")
        assert report.result.steps["write"].status == "skipped"

    async def test_changed_instructions_diverge_at_the_first_step_of_the_role(
        self, project: Path, recorded: RunResult
    ) -> None:
        """A role's instructions are part of every prompt of that role: the planner diverges at once."""
        edit(project, "roles:\n", "roles:\n  planner: {instructions: Plan in three questions.}\n")
        report = await replay(recorded.run_dir)
        assert report.divergence == Divergence("plan", "plan#1/chat/1", "chat", "prompt changed")
        assert report.replayed_calls == 0

    async def test_a_new_step_diverges_at_its_first_call(self, project: Path, recorded: RunResult) -> None:
        """Adding a step after write: everything recorded replays, then the new step's call is not in the recording."""
        edit(project, "outputs:\n", '  recap: {role: writer, depends_on: [write], task: "Recap."}\noutputs:\n')
        report = await replay(recorded.run_dir)
        assert report.divergence == Divergence("recap", "recap#1/chat/1", "chat", "call not in the recording")
        assert report.replayed_calls == CALLS
        assert report.result.steps["write"].status == "completed"

    async def test_a_removed_route_leaves_recorded_calls_unmade(self, project: Path, recorded: RunResult) -> None:
        """Without the review's route back to research, the second research round is never asked for: the replay
        diverges (the writer's prompt no longer matches, or a recorded call is left unmade)."""
        edit(project, "    routes:\n      - {when: \"output.verdict == 'revise'\", goto: research, max_times: 1}\n", "")
        report = await replay(recorded.run_dir)
        assert report.status == "diverged"
        assert report.divergence is not None
        assert report.replayed_calls < CALLS

    async def test_a_changed_setting_diverges_as_model_settings_changed(
        self, project: Path, recorded: RunResult
    ) -> None:
        """A new temperature for the default model changes the planner's request settings, not its prompt."""
        edit(project, "default: scripted:planner.yaml\n", "default: {model: scripted:planner.yaml, temperature: 0.5}\n")
        report = await replay(recorded.run_dir)
        assert report.divergence == Divergence("plan", "plan#1/chat/1", "chat", "model settings changed")


class TestRecording:
    def _recording(self) -> Recording:
        chat = request_digest(messages=["hi"], tools=[], schema={}, settings={})
        tool = request_digest(tool="library_search", arguments='{"query": "a"}')
        return Recording(
            [
                JournalEntry(call_id="s#1/chat/1", step_id="s", kind="chat", result={"text": "x"}, request=chat),
                JournalEntry(call_id="s#1/tool/1/0", step_id="s", kind="tool", result={"content": "y"}, request=tool),
                JournalEntry(call_id="s#1/chat/2", step_id="s", kind="chat", result={"text": "z"}),
            ]
        )

    def test_a_matching_request_is_answered_with_the_recorded_result(self) -> None:
        """Same id and digest: the recorded result; the call counts as answered."""
        recording = self._recording()
        chat = request_digest(messages=["hi"], tools=[], schema={}, settings={})
        assert recording.answer("s#1/chat/1", "s", chat) == {"text": "x"}
        assert [e.call_id for e in recording.unanswered()] == ["s#1/tool/1/0", "s#1/chat/2"]

    def test_changed_tool_arguments_diverge(self) -> None:
        """A tool call under a recorded id with other arguments diverges as "tool arguments changed"."""
        recording = self._recording()
        with pytest.raises(ReplayDiverged, match="tool arguments changed"):
            recording.answer("s#1/tool/1/0", "s", request_digest(tool="library_search", arguments='{"query": "b"}'))
        assert recording.divergence == Divergence("s", "s#1/tool/1/0", "tool", "tool arguments changed")

    def test_after_a_divergence_every_call_diverges(self) -> None:
        """Once diverged, even a matching call is refused with the first divergence (the replay stops there)."""
        recording = self._recording()
        with pytest.raises(ReplayDiverged):
            recording.answer("t#1/chat/1", "t", None)
        chat = request_digest(messages=["hi"], tools=[], schema={}, settings={})
        with pytest.raises(ReplayDiverged, match=r"step t, call t#1/chat/1 \(chat\): call not in the recording"):
            recording.answer("s#1/chat/1", "s", chat)

    def test_digests_of_another_version_are_not_compared(self) -> None:
        """A call recorded with digests computed another way (another version) replays by id alone."""
        recording = self._recording()
        other = request_digest(messages=["changed"], tools=[], schema={}, settings={}) | {"version": "0"}
        assert recording.answer("s#1/chat/1", "s", other) == {"text": "x"}

    def test_a_call_recorded_without_a_digest_replays_by_id(self) -> None:
        """A call from before request digests is answered whatever the request now is."""
        recording = self._recording()
        assert recording.answer("s#1/chat/2", "s", request_digest(messages=["anything"])) == {"text": "z"}


class TestOldRunsAndErrors:
    async def test_a_run_from_before_request_digests_replays_by_call_id(self, recorded: RunResult) -> None:
        """A run store without the request column (read-only, so not migrated) replays identically by ids."""
        database = sqlite3.connect(recorded.run_dir / STORE_FILE)
        database.execute("ALTER TABLE calls DROP COLUMN request")
        database.commit()
        database.close()
        report = await replay(recorded.run_dir)
        assert (report.status, report.replayed_calls) == ("identical", CALLS)
        database = sqlite3.connect(recorded.run_dir / STORE_FILE)
        columns = {row[1] for row in database.execute("PRAGMA table_info(calls)")}
        database.close()
        assert "request" not in columns

    async def test_a_folder_without_a_run_store_cannot_be_replayed(self, tmp_path: Path) -> None:
        """No run.sqlite: a ReplayError that says so."""
        folder = tmp_path / "home" / "runs" / "nothing"
        folder.mkdir(parents=True)
        with pytest.raises(ReplayError, match="no run store"):
            await replay(folder)

    def test_a_run_whose_workflow_file_is_gone_cannot_be_replayed(self, project: Path, recorded: RunResult) -> None:
        """The workflow file was deleted: a ReplayError naming it and saying to restore it."""
        project.unlink()
        with pytest.raises(ReplayError, match="is gone; restore it"):
            asyncio.run(replay(recorded.run_dir))

    async def test_the_replay_model_cannot_be_called(self) -> None:
        """The stand-in model refuses every call: a replay can only answer from the recording."""
        with pytest.raises(rolegraph.errors.ModelError, match="cannot be called"):
            await ReplayModel("local").complete([])


DEMO_LIBRARY = Path(__file__).resolve().parents[2] / "examples" / "library"
# The call and step time limits are far above any real call: on a loaded machine a call past the default 300 s
# failed the recording on wall time, and this test is about every recorded call replaying, not about time limits
# (a call that failed replays as `failed_as_recorded`: test_a_run_whose_model_failed_replays_to_the_same_failure).
# The run itself may fail on what the model wrote (SmolLM2's research answer is cut at max_tokens): all its calls
# are recorded, and the replay must end the same way.
SHORT_LOCAL = """\
rolegraph: 1
name: short_local
library: {library}
models:
  default: {{model: local, temperature: 0.2, seed: 42, max_tokens: 256, timeout: 7200}}
settings: {{step_timeout: 14400}}
steps:
  plan: {{role: planner, task: "Write 2 short research questions about LoRA."}}
  research: {{role: researcher, depends_on: [plan], task: "What does LoRA change in a transformer?", max_steps: 1}}
"""


@pytest.mark.local_model
class TestOnTheEmbeddedModel:
    def test_a_short_run_on_the_local_model_replays_identically(self, tmp_path: Path) -> None:
        """A plan-and-research run on SmolLM2 over the demo library replays identically, from the recording alone:
        the same calls, step outputs and usage, with no chat span of the replay un-replayed."""
        path = tmp_path / "short.yaml"
        path.write_text(SHORT_LOCAL.format(library=DEMO_LIBRARY))
        recorded = rolegraph.load(path).run_sync()
        report = asyncio.run(replay(recorded.run_dir))
        assert report.divergence is None, report.divergence
        assert report.replayed_calls == report.recorded_calls > 0
        assert report.result.status == recorded.status
        assert report.result.step_outputs == recorded.step_outputs
        assert report.result.usage == recorded.usage
        assert all(span["attributes"]["rolegraph.replayed"] for span in _call_spans(report.result.run_dir))  # type: ignore[index]
