"""Scenario 4, concurrent runs: many small workflow runs at once in one process.

Each run is a whole `Workflow.run` of a three-step workflow (``a -> b, c``)
whose scripted model answers at once: run folder, JSONL trace, checkpoints,
summary. All runs start together in one `TaskGroup`. Figures: total time,
time per run, peak traced memory (tracemalloc, in a second pass) and the growth
of the process's peak RSS, per run. The LangGraph side is not written yet.
"""

from __future__ import annotations

import asyncio
import resource
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from benchmarks._common import Level, spec_yaml
from rolegraph.workflows.loader import parse_spec
from rolegraph.workflows.run import RunResult, Workflow

RUNS: dict[Level, tuple[int, ...]] = {"smoke": (5, 20), "quick": (100, 1000), "full": (100, 1000, 10000)}
DEPS = {"a": [], "b": ["a"], "c": ["a"]}


async def run_all(workflow: Workflow, count: int, home: Path) -> list[RunResult]:
    """Start `count` runs at once; return their results."""
    results: list[RunResult] = []

    async def one() -> None:
        results.append(await workflow.run({}, home=home))

    async with asyncio.TaskGroup() as group:
        for _ in range(count):
            group.create_task(one())
    return results


def _peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def measure(workflow: Workflow, count: int, folder: Path) -> dict[str, Any]:
    """Time and memory of `count` concurrent runs of `workflow`, writing under `folder`."""
    rss_before = _peak_rss_kib()
    start = time.perf_counter_ns()
    results = asyncio.run(run_all(workflow, count, folder / f"timed-{count}"))
    elapsed = time.perf_counter_ns() - start
    rss_growth = max(0, _peak_rss_kib() - rss_before) * 1024
    completed = sum(r.status == "completed" for r in results)
    if completed != count:
        raise RuntimeError(f"only {completed} of {count} runs completed")
    tracemalloc.start()
    try:
        asyncio.run(run_all(workflow, count, folder / f"traced-{count}"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return {
        "runs": count,
        "total_s": elapsed / 1e9,
        "ms_per_run": elapsed / 1e6 / count,
        "tracemalloc_peak_mib": peak / 2**20,
        "tracemalloc_kib_per_run": peak / 1024 / count,
        "rss_growth_kib_per_run": rss_growth / 1024 / count or None,
    }


def run(level: Level = "quick") -> dict[str, Any]:
    """Measure concurrent runs at each count of `RUNS[level]`."""
    with tempfile.TemporaryDirectory(prefix="rolegraph-bench-") as tmp:
        folder = Path(tmp)
        script = folder / "script.yaml"
        script.write_text("- {final: {value: ok}, thought: done}\n" * len(DEPS), encoding="utf-8")
        workflow = Workflow(parse_spec(spec_yaml(DEPS, model=f"scripted:{script}")))
        asyncio.run(run_all(workflow, 2, folder / "warmup"))
        rows = [measure(workflow, count, folder) for count in RUNS[level]]
    return {"steps_per_run": len(DEPS), "rows": rows}
