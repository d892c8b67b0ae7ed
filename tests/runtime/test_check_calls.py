"""An output check's own model call is a call of the run: journaled, counted in usage and budgets, answered from
the journal on resume (after a SIGKILL too) and on replay, from the cache when it is on; the judge (a scripted
model) and the moderation endpoint (a loopback server in OpenAI's wire format) alike."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

import rolegraph
from durable_projects import outputs_of, run_in_process, trace_lines
from moderation_wire import moderation_body
from projects import isolated_home, write_script
from rolegraph.durability.replay import replay
from rolegraph.durability.store import JournalEntry, RunStore
from rolegraph.testing import FaultServer, Status
from rolegraph.traces.sinks import read_jsonl

JUDGED = """\
rolegraph: 1
name: judged
models: {default: 'scripted:model.yaml', judge: 'scripted:judge.yaml'}
roles:
  scout:
    instructions: Answer.
    output: {notes: string}
    checks: [CHECK]
steps:
  a: {role: scout, task: t, max_steps: 1}
"""

JUDGE = "{judge: {model: judge, prompt: No stereotypes.}}"


def judged_project(folder: Path, check: str = JUDGE, settings: str = "") -> Path:
    """One agent step whose first answer the check fails and whose second it passes."""
    folder.mkdir(parents=True, exist_ok=True)
    write_script(folder, "model", [{"final": {"notes": "Old people hate phones."}}, {"final": {"notes": "Fine."}}])
    verdicts = [
        {"text": '{"verdict": "fail", "reason": "a stereotype about age"}'},
        {"text": '{"verdict": "pass", "reason": "fine"}'},
    ]
    write_script(folder, "judge", verdicts)
    path = folder / "wf.yaml"
    path.write_text(JUDGED.replace("CHECK", check) + settings)
    return path


def entries(run_dir: Path) -> list[JournalEntry]:
    store = RunStore.open_existing(run_dir, read_only=True)
    try:
        return list(store.entries())
    finally:
        store.close()


def chat_spans(run_dir: Path, since: int = 0) -> list[dict[str, Any]]:
    """The attributes of the run's ended chat spans (from trace record `since` on)."""
    records = read_jsonl(run_dir / "trace.jsonl")[since:]
    return [r["attributes"] for r in records if r.get("event") == "span_end" and r["kind"] == "chat"]


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolated_home(tmp_path, monkeypatch)


class TestJudgeCalls:
    async def test_the_judges_calls_are_journaled_and_in_the_runs_usage(self, tmp_path: Path) -> None:
        """Each judge call is a `check` entry of the journal under its call id, with the judge's model and tokens,
        and the run's usage is every call's, the judge's included (it equals the traced chat spans')."""
        result = await rolegraph.load(judged_project(tmp_path / "p")).run()
        assert result.status == "completed", result.error
        recorded = entries(result.run_dir)
        assert [(e.call_id, e.kind, e.model) for e in recorded] == [
            ("a#1/chat/1", "chat", "scripted:model.yaml"),
            ("a#1/check/1/0", "check", "scripted:judge.yaml"),
            ("a#1/chat/2", "chat", "scripted:model.yaml"),
            ("a#1/check/2/0", "check", "scripted:judge.yaml"),
        ]
        judge_tokens = sum(e.input_tokens + e.output_tokens for e in recorded if e.kind == "check")
        assert judge_tokens > 0
        assert result.usage.input_tokens == sum(e.input_tokens for e in recorded)
        assert result.usage.output_tokens == sum(e.output_tokens for e in recorded)
        spans = chat_spans(result.run_dir)
        assert result.usage.input_tokens == sum(s["gen_ai.usage.input_tokens"] for s in spans)
        assert [s["rolegraph.call.id"] for s in spans if s.get("rolegraph.purpose") == "judge"] == [
            "a#1/check/1/0",
            "a#1/check/2/0",
        ]

    async def test_a_token_budget_stops_the_run_at_the_judges_call(self, tmp_path: Path) -> None:
        """With room for the agent's first call and one token more, the judge's call crosses max_tokens: the run
        stops budget_exceeded with that call recorded; a resume with a higher limit does not ask the judge again."""
        path = judged_project(tmp_path / "p")
        free = await rolegraph.load(path).run(home=tmp_path / "free")
        first = entries(free.run_dir)[0]
        limit = first.input_tokens + first.output_tokens + 1
        path.write_text(path.read_text() + f"settings: {{budget: {{max_tokens: {limit}}}}}\n")
        stopped = await rolegraph.load(path).run()
        assert stopped.status == "budget_exceeded", stopped.error
        assert stopped.error is not None and "max_tokens" in stopped.error
        assert [e.call_id for e in entries(stopped.run_dir)] == ["a#1/chat/1", "a#1/check/1/0"]
        before = trace_lines(stopped.run_dir)
        resumed = await rolegraph.resume(stopped.run_dir, budget=rolegraph.Budget(max_tokens=10_000))
        assert resumed.status == "completed", resumed.error
        asked = [s["rolegraph.call.id"] for s in chat_spans(stopped.run_dir, before) if not s.get("rolegraph.replayed")]
        assert asked == ["a#1/chat/2", "a#1/check/2/0"]
        assert resumed.usage == free.usage

    async def test_killed_after_the_judge_the_resume_asks_it_nothing_again(self, tmp_path: Path) -> None:
        """SIGKILL right after the judge's first call is recorded, then resume: the judge's recorded verdict is
        replayed, its script goes on from its second answer, and the outputs and usage equal an uninterrupted run's."""
        path = judged_project(tmp_path / "p")
        baseline = await rolegraph.load(path).run(home=tmp_path / "baseline")
        home = tmp_path / "killed"
        env = {**os.environ, "ROLEGRAPH_HOME": str(home), "ROLEGRAPH_KILL_AT": "journal:2"}
        proc = await run_in_process(path, env)
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        (run_dir,) = (home / "runs").iterdir()
        assert [e.call_id for e in entries(run_dir)] == ["a#1/chat/1", "a#1/check/1/0"]
        before = trace_lines(run_dir)
        resumed = await rolegraph.resume(run_dir)
        assert resumed.status == "completed", resumed.error
        spans = chat_spans(run_dir, before)
        assert [s["rolegraph.call.id"] for s in spans if not s.get("rolegraph.replayed")] == [
            "a#1/chat/2",
            "a#1/check/2/0",
        ]
        assert outputs_of(run_dir) == outputs_of(baseline.run_dir)

    async def test_a_judged_run_replays_identically_offline(self, tmp_path: Path) -> None:
        """With both scripts deleted, a replay answers the agent's and the judge's calls from the recording."""
        path = judged_project(tmp_path / "p")
        recorded = await rolegraph.load(path).run()
        for name in ("model", "judge"):
            (path.parent / f"{name}.yaml").unlink()
        report = await replay(recorded.run_dir)
        assert report.divergence is None, report.divergence.describe()
        assert (report.status, report.replayed_calls, report.recorded_calls) == ("identical", 4, 4)
        judged = [s for s in chat_spans(report.result.run_dir) if s.get("rolegraph.purpose") == "judge"]
        assert [s["rolegraph.replayed"] for s in judged] == [True, True]

    async def test_a_changed_rule_diverges_at_the_judges_call(self, tmp_path: Path) -> None:
        """Editing the judge's prompt changes its request: the replay diverges at its first call, prompt changed."""
        path = judged_project(tmp_path / "p")
        recorded = await rolegraph.load(path).run()
        path.write_text(path.read_text().replace("No stereotypes.", "No jargon."))
        report = await replay(recorded.run_dir)
        assert report.divergence is not None
        assert report.divergence.describe() == "step a, call a#1/check/1/0 (check): prompt changed"

    async def test_the_cache_answers_the_judge(self, tmp_path: Path) -> None:
        """With the cache on, a second run answers the judge's calls from it (chat spans marked cached, no tokens
        spent) and counts them in the run's savings."""
        path = judged_project(tmp_path / "p", settings="settings: {cache: true}\n")
        first = await rolegraph.load(path).run()
        second = await rolegraph.load(path).run()
        assert second.status == "completed", second.error
        judged = [s for s in chat_spans(second.run_dir) if s.get("rolegraph.purpose") == "judge"]
        assert [s.get("rolegraph.cached") for s in judged] == [True, True]
        assert second.usage.input_tokens == 0
        assert second.cache is not None and second.cache.hits == 4
        assert second.cache.input_tokens == first.usage.input_tokens


class TestModerationCalls:
    def project(self, tmp_path: Path, url: str) -> Path:
        return judged_project(tmp_path / "p", check=f"{{moderation: {{base_url: '{url}'}}}}")

    async def test_journaled_and_replayed_with_the_server_gone(self, tmp_path: Path) -> None:
        """Each moderation request is a `check` entry (no tokens) of the journal; with the server stopped, a replay
        answers them from the recording."""
        with FaultServer([Status(200, body=moderation_body(True)), Status(200, body=moderation_body(False))]) as server:
            path = self.project(tmp_path, server.url)
            recorded = await rolegraph.load(path).run()
        assert recorded.status == "completed", recorded.error
        checks = [e for e in entries(recorded.run_dir) if e.kind == "check"]
        assert [(e.call_id, e.model, e.input_tokens) for e in checks] == [
            ("a#1/check/1/0", f"moderation:omni-moderation-latest@{server.url}", 0),
            ("a#1/check/2/0", f"moderation:omni-moderation-latest@{server.url}", 0),
        ]
        assert len(server.requests) == 2
        report = await replay(recorded.run_dir)
        assert report.divergence is None, report.divergence.describe()
        assert report.replayed_calls == 4
        assert len(server.requests) == 2

    async def test_killed_after_moderation_the_resume_asks_it_nothing_again(self, tmp_path: Path) -> None:
        """SIGKILL after the first moderation request is recorded, then resume: the server is asked once more (for
        the second answer), never again for the first."""
        script = [Status(200, body=moderation_body(True)), Status(200, body=moderation_body(False))]
        with FaultServer(script) as server:
            path = self.project(tmp_path, server.url)
            env = {**os.environ, "ROLEGRAPH_KILL_AT": "journal:2"}
            proc = await run_in_process(path, env)
            assert proc.returncode == -signal.SIGKILL, proc.stderr
            assert len(server.requests) == 1
            (run_dir,) = (Path(os.environ["ROLEGRAPH_HOME"]) / "runs").iterdir()
            resumed = await rolegraph.resume(run_dir)
        assert resumed.status == "completed", resumed.error
        assert resumed.steps["a"].output == {"notes": "Fine."}
        assert [r.body["input"] for r in server.requests] == ["Old people hate phones.", "Fine."]
