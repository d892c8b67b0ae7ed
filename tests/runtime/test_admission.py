"""Admission: an event loop works on at most ROLEGRAPH_MAX_RUNS runs at once; the others wait their turn."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from pathlib import Path

import pytest

import rolegraph
from rolegraph.runtime.admission import DEFAULT_MAX_RUNS, MAX_RUNS_ENV, admitted, max_runs

SLOW_STEP = """
import asyncio

running = 0
most = 0


async def hold(tag):
    global running, most
    running += 1
    most = max(most, running)
    await asyncio.sleep(0.05)
    running -= 1
    return {"tag": tag}
"""


def _project(folder: Path) -> Path:
    folder.mkdir()
    (folder / "admission_steps.py").write_text(SLOW_STEP, encoding="utf-8")
    path = folder / "wf.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            rolegraph: 1
            name: held
            steps:
              only: {function: "admission_steps:hold", args: {tag: x}}
            """
        ),
        encoding="utf-8",
    )
    return path


async def test_runs_past_the_limit_wait_and_all_complete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With ROLEGRAPH_MAX_RUNS=2, six runs started together run at most two at a time, and all complete."""
    monkeypatch.setenv(MAX_RUNS_ENV, "2")
    workflow = rolegraph.load(_project(tmp_path / "p"))
    results = await asyncio.gather(*(workflow.run(home=tmp_path / "home") for _ in range(6)))
    assert [r.status for r in results] == ["completed"] * 6
    assert sys.modules["admission_steps"].most == 2  # the project's module, as the runs imported it


async def test_a_run_inside_an_admitted_run_does_not_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """With one slot, a run started from inside a run is admitted at once instead of waiting on its parent."""
    monkeypatch.setenv(MAX_RUNS_ENV, "1")
    entered = []
    async with admitted():
        async with asyncio.timeout(5):
            async with admitted():
                entered.append("inner")
    assert entered == ["inner"]


def test_the_limit_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset gives the default; a whole number is the limit."""
    monkeypatch.delenv(MAX_RUNS_ENV, raising=False)
    assert max_runs() == DEFAULT_MAX_RUNS
    monkeypatch.setenv(MAX_RUNS_ENV, " 5 ")
    assert max_runs() == 5


@pytest.mark.parametrize("value", ["0", "-3", "many", "2.5"])
async def test_an_invalid_limit_is_told(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """A run refuses an invalid ROLEGRAPH_MAX_RUNS, naming the variable and what it takes."""
    workflow = rolegraph.load(_project(tmp_path / "p"))
    monkeypatch.setenv(MAX_RUNS_ENV, value)
    with pytest.raises(ValueError, match=f"{MAX_RUNS_ENV} must be a whole number of at least 1.*{value!r}"):
        await workflow.run(home=tmp_path / "home")
