"""Recorded runs for the trace-store tests, built with a real Tracer (no workflow, no model)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from rolegraph.traces.redact import Redactor
from rolegraph.traces.sinks import MemorySink
from rolegraph.traces.spans import SpanKind
from rolegraph.traces.tracer import Tracer


async def parallel_records(run_id: str = "20261101-120000-aaaaaa") -> list[dict[str, Any]]:
    """A run with two agents working at once (steps `a` and `b`, each with a chat and a tool call) and a writer."""
    sink = MemorySink()
    tracer = Tracer(run_id, sinks=[sink], redactor=Redactor())
    both_open = asyncio.Barrier(2)

    async def agent(step: str, role: str, model: str, tokens: tuple[int, int], item: int | None = None) -> None:
        with tracer.span(
            SpanKind.INVOKE_AGENT,
            f"invoke_agent {role}",
            gen_ai__agent__name=role,
            rolegraph__step__id=step,
            rolegraph__step__item=item,
            rolegraph__step__visit=1,
        ):
            await both_open.wait()  # both branches are open at once: their spans interleave
            with tracer.span(SpanKind.REACT_STEP, "react_step 1"):
                with tracer.span(SpanKind.CHAT, f"chat {model}", gen_ai__request__model=model) as chat:
                    await asyncio.sleep(0)
                    chat.record_usage(*tokens)
                with tracer.span(
                    SpanKind.EXECUTE_TOOL,
                    "execute_tool library_search",
                    gen_ai__tool__name="library_search",
                    rolegraph__tool__arguments=json.dumps({"query": step}),
                ):
                    pass

    with tracer.span(SpanKind.INVOKE_WORKFLOW, "invoke_workflow demo", rolegraph__workflow="demo") as root:
        async with asyncio.TaskGroup() as group:
            group.create_task(agent("a", "researcher", "openai:gpt-4o-mini", (1000, 100)))
            group.create_task(agent("b", "researcher", "local", (2000, 200)))
        both_open = asyncio.Barrier(1)
        await agent("write", "writer", "openai:gpt-4o-mini", (3000, 300))
        root.set(rolegraph__status="completed")
    return sink.records


def write_run(
    runs: Path,
    records: list[dict[str, Any]],
    *,
    started: dt.datetime | None = None,
    status: str = "completed",
    torn: bool = False,
) -> Path:
    """A run folder: ``trace.jsonl`` from `records` (optionally with a torn last line) and ``run.json``."""
    run_id = records[0]["run_id"]
    folder = runs / run_id
    folder.mkdir(parents=True)
    lines = [json.dumps(r) for r in records]
    text = "\n".join(lines) + "\n" + ('{"run_id": "' + run_id + '", "span_id": "9' if torn else "")
    (folder / "trace.jsonl").write_text(text)
    started = started or dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
    summary = {"run_id": run_id, "status": status, "workflow": "demo", "started": started.isoformat()}
    (folder / "run.json").write_text(json.dumps({**summary, "duration_s": 1.5}))
    return folder


@pytest.fixture
async def records() -> list[dict[str, Any]]:
    """The records of `parallel_records`."""
    return await parallel_records()


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """An empty runs folder under a home folder."""
    folder = tmp_path / "home" / "runs"
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def make_run() -> Any:
    """`write_run`, for writing run folders."""
    return write_run


@pytest.fixture
def make_records() -> Any:
    """`parallel_records`, for runs with other ids."""
    return parallel_records
