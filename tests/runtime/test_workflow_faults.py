"""Whole runs under faults: a hung tool, a hung model, a step and a run past their timeouts, a run cancelled
as it starts."""

from __future__ import annotations

import asyncio
import gc
import textwrap
import threading
import warnings
from pathlib import Path
from typing import Any

import pytest

import rolegraph
from rolegraph.runtime import invoke
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


class TestCancelledWhileStarting:
    async def test_the_trace_file_opened_meanwhile_is_closed(self, tmp_path: Path, monkeypatch: Any) -> None:
        """A run cancelled while a worker thread opens its folder waits for the thread and closes its trace file."""
        path = project(tmp_path, model='"scripted:script.yaml"', tool="hang", script="- {final: {note: x}}\n")
        opening, release = threading.Event(), threading.Event()
        write_summary = invoke._write_summary

        def slow_summary(*args: Any, **kwargs: Any) -> None:
            opening.set()
            release.wait(30)
            write_summary(*args, **kwargs)

        monkeypatch.setattr(invoke, "_write_summary", slow_summary)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run = asyncio.ensure_future(rolegraph.load(path).run(home=tmp_path / "home"))
            assert await asyncio.to_thread(opening.wait, 30)
            run.cancel()
            await asyncio.sleep(0.01)  # the cancellation reaches the run while the thread still works
            release.set()
            with pytest.raises(asyncio.CancelledError):
                await run
            await asyncio.sleep(0.01)  # the thread's result reaches the loop
            gc.collect()
        assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
