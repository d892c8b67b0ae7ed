"""Whole runs under faults: a hung tool, a hung model, a step and a run past their timeouts, a slow disk at a
run's end."""

from __future__ import annotations

import asyncio
import textwrap
import threading
from pathlib import Path

import pytest

import rolegraph
from rolegraph.durability.store import RunStore
from rolegraph.testing import FaultServer, Stall

TOOLS = """
from rolegraph.testing import hanging_tool

hang = hanging_tool("hang", timeout=0.05)
slow = hanging_tool("slow", timeout=600)
"""


def project(folder: Path, *, model: str, tool: str, settings: str = "", script: str = "") -> Path:
    """A one-step workflow whose role may call the faulty tool `tool`."""
    (folder / "faulty.py").write_text(TOOLS)
    (folder / "script.yaml").write_text(textwrap.dedent(script))
    (folder / "wf.yaml").write_text(
        textwrap.dedent(
            f"""
            rolegraph: 1
            name: faults
            models:
              default: {model}
            roles:
              worker:
                instructions: Work.
                tools: ["faulty:{tool}"]
                output: {{note: string}}
            steps:
              work: {{role: worker, task: Do the work.}}
            settings: {{fail_fast: true{settings}}}
            """
        )
    )
    return folder / "wf.yaml"


class TestHungTool:
    async def test_hung_tool_is_an_error_observation_and_the_run_completes(self, tmp_path: Path) -> None:
        """A tool that never returns becomes a timeout observation after its timeout; the agent answers."""
        script = """
        - {tool: hang, args: {query: x}, thought: try it}
        - {final: {note: the tool hung}, thought: give up on it}
        """
        path = project(tmp_path, model='"scripted:script.yaml"', tool="hang", script=script)
        result = await rolegraph.load(path).run(home=tmp_path / "home")
        assert result.status == "completed", result.error
        assert result.step_outputs["work"] == {"note": "the tool hung"}
        [span] = [s for s in result.trace.walk() if s.kind == "execute_tool"]
        assert span.attributes["rolegraph.tool.result"] == "hang did not finish within 0.05s"
        assert span.attributes["rolegraph.tool.is_error"] is True


class TestTimeouts:
    async def test_step_timeout_fails_the_step(self, tmp_path: Path) -> None:
        """A tool slower than settings.step_timeout: the step is abandoned and the run fails, saying why."""
        script = "- {tool: slow, args: {query: x}}\n"
        path = project(
            tmp_path, model='"scripted:script.yaml"', tool="slow", settings=", step_timeout: 0.3", script=script
        )
        result = await rolegraph.load(path).run(home=tmp_path / "home")
        assert result.status == "failed"
        assert result.steps["work"].status == "failed"
        assert result.error == "step 'work' failed: timed out"

    async def test_run_timeout_fails_the_run(self, tmp_path: Path) -> None:
        """settings.run_timeout bounds the whole run: steps in flight are cancelled and the run says why."""
        script = "- {tool: slow, args: {query: x}}\n"
        path = project(
            tmp_path, model='"scripted:script.yaml"', tool="slow", settings=", run_timeout: 0.3", script=script
        )
        result = await rolegraph.load(path).run(home=tmp_path / "home")
        assert (result.status, result.error) == ("failed", "the run did not finish within settings.run_timeout (0.3s)")
        assert result.steps["work"].status == "cancelled"
        assert "settings.run_timeout (0.3s)" in (result.run_dir / "run.json").read_text()

    async def test_hung_model_fails_the_step_after_its_retries(self, tmp_path: Path) -> None:
        """A model server that never answers: each try times out, retries as configured, then the step fails."""
        with FaultServer([Stall(), Stall()]) as server:
            model = f'{{model: "openai-compatible:m@{server.url}", attempt_timeout: 0.3, timeout: 30, retries: 1}}'
            path = project(tmp_path, model=model, tool="hang")
            result = await rolegraph.load(path).run(home=tmp_path / "home")
        assert result.status == "failed"
        assert len(server.requests) == 2
        assert "APITimeoutError" in (result.error or "") or "timed out" in (result.error or "")
        [chat] = [s for s in result.trace.walk() if s.kind == "chat"]
        assert [r["reason"] for r in chat.attributes["rolegraph.retries"]] == ["APITimeoutError"]


class TestSlowDisk:
    async def test_the_stores_close_waits_for_the_disk_with_the_loop_free(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A run's end waits for its store's close (the disk's flushes) in a worker thread: the loop's other work
        goes on meanwhile. The close here waits for a task of the loop to run; on the loop's thread it would wait
        in vain, and the run's end is recorded all the same."""
        closing, loop_ran, waits = threading.Event(), threading.Event(), []
        close = RunStore.close

        def slow_close(store: RunStore) -> None:
            closing.set()
            waits.append(loop_ran.wait(10))
            close(store)

        async def other_work() -> None:
            assert await asyncio.to_thread(closing.wait, 30)
            loop_ran.set()  # only once the loop runs this task again

        monkeypatch.setattr(RunStore, "close", slow_close)
        path = project(tmp_path, model='"scripted:script.yaml"', tool="hang", script="- {final: {note: x}}\n")
        result, _ = await asyncio.gather(rolegraph.load(path).run(home=tmp_path / "home"), other_work())
        assert result.status == "completed", result.error
        assert waits == [True]
        monkeypatch.undo()
        resumed = await rolegraph.resume(result.run_dir)
        assert (resumed.status, resumed.executed_steps) == ("completed", [])
