"""Scenario 4, concurrent runs: many small workflow runs at once in one process, against LangGraph.

The workflow is three steps, ``a -> b, c``, whose model answers at once. Three
ways of running it, each N times at once (one `TaskGroup`, or `asyncio.gather`):

- ``rolegraph``: whole `Workflow.run`s — run folder, JSONL trace, a checkpoint
  file per step, the summary written twice, the run indexed into SQLite;
- ``rolegraph_engine``: the same runs without the run folder: a `LocalExecutor`
  (agents, answer validation, spans without sinks) under the `Scheduler`;
- ``langgraph``: the same graph as a compiled LangGraph `StateGraph` (nodes
  return their answer at once; ``b`` and ``c`` run in one superstep), invoked
  N times with `asyncio.gather`; ``langgraph_checkpointed`` adds LangGraph's
  `InMemorySaver`, its own persistence (one thread id per run).

Each (variant, N) runs in a fresh subprocess, so that peak RSS growth (over the
process's RSS after imports and a warm-up) belongs to that measurement alone.
Figures: total time, time per run, peak traced memory (tracemalloc, in a second
pass in the same process) and RSS growth per run. For whole rolegraph runs, a
cProfile of a batch splits the time of one run into its parts (``breakdown``).
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import pstats
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypedDict

from benchmarks._common import Level, quiet_tracer, spec_yaml
from benchmarks._common import ratio as ratio_of
from rolegraph.runtime.executor import LocalExecutor
from rolegraph.runtime.scheduler import Scheduler
from rolegraph.tools.sources import SourceRegistry
from rolegraph.traces.index_writer import RunIndex
from rolegraph.workflow import Workflow
from rolegraph.workflows.loader import parse_spec

RUNS: dict[Level, tuple[int, ...]] = {"smoke": (5, 20), "quick": (100, 1000), "full": (1000, 10000)}
WHOLE_RUNS_MAX = 1000
"""Most whole rolegraph runs measured at once at the full size: 10,000, each writing and indexing
a run folder, take over an hour on a loaded 2-core machine (see ``breakdown`` for where the time goes)."""
BREAKDOWN_RUNS: dict[Level, int] = {"smoke": 5, "quick": 100, "full": 300}
VARIANTS = ("rolegraph", "rolegraph_engine", "langgraph", "langgraph_checkpointed")
DEPS = {"a": [], "b": ["a"], "c": ["a"]}
ROOT = Path(__file__).resolve().parent.parent

# Parts of a whole run, by (file suffix, function): their cumulative time in a profile of a batch of runs.
PARTS = {
    "executor setup (roles, models)": ("rolegraph/runtime/executor.py", "__init__"),
    "scheduler setup (templates read)": ("rolegraph/runtime/scheduler.py", "__init__"),
    "steps (agents, through the executor)": ("rolegraph/runtime/executor.py", "execute"),
    "step log (steps.jsonl lines, handed to their writer thread)": ("rolegraph/runtime/step_log.py", "listener"),
    "JSONL trace records": ("rolegraph/traces/sinks.py", "emit"),
    "declared outputs": ("rolegraph/runtime/outputs.py", "write_outputs"),
    "run folder opened (folder, store, trace file, run.json)": ("rolegraph/runtime/invoke.py", "_open_folder"),
    "run's end (step log, run.json, the store's status and close)": ("rolegraph/runtime/invoke.py", "_write_end"),
    "run summary (run.json, twice)": ("rolegraph/runtime/invoke.py", "_write_summary"),
}
INDEX_PART = "SQLite index: the run's end handed to the writer (not awaited, wall time)"


class RunState(TypedDict, total=False):
    a: dict[str, str]
    b: dict[str, str]
    c: dict[str, str]


def _answer(key: str) -> Callable[[RunState], Awaitable[RunState]]:
    async def node(state: RunState) -> RunState:
        return {key: {"value": "ok"}}  # type: ignore[misc]  # a literal key of RunState

    return node


def langgraph_workflow(checkpointed: bool) -> Any:
    """``a -> b, c`` as a compiled LangGraph graph (with `InMemorySaver` when `checkpointed`)."""
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.graph import END, START, StateGraph

    builder = StateGraph(RunState)
    for key in DEPS:
        builder.add_node(key, _answer(key))
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("a", "c")
    builder.add_edge("b", END)
    builder.add_edge("c", END)
    return builder.compile(checkpointer=InMemorySaver() if checkpointed else None)


def _runner(variant: str, folder: Path) -> Callable[[int], Awaitable[None]]:
    """A coroutine function running the workflow once (run number `i`) the way `variant` does."""
    script = folder / "script.yaml"
    script.write_text("- {final: {value: ok}, thought: done}\n" * len(DEPS), encoding="utf-8")
    spec = parse_spec(spec_yaml(DEPS, model=f"scripted:{script}"))
    if variant == "rolegraph":
        workflow = Workflow(spec)

        async def whole(i: int) -> None:
            result = await workflow.run({}, home=folder / "home")
            if result.status != "completed":
                raise RuntimeError(f"run {i} {result.status}: {result.error}")

        return whole
    if variant == "rolegraph_engine":
        graph = Workflow(spec).graph

        async def engine(i: int) -> None:
            tracer = quiet_tracer()
            executor = LocalExecutor(spec, tools={}, sources=SourceRegistry(), tracer=tracer, base_dir=folder)
            scheduler = Scheduler(spec, graph, executor, run_id=f"run-{i}", inputs={}, tracer=tracer)
            states = await scheduler.run()
            if any(s.status != "completed" for s in states.values()):
                raise RuntimeError(f"run {i} did not complete")

        return engine
    compiled = langgraph_workflow(checkpointed=variant == "langgraph_checkpointed")

    async def langgraph(i: int) -> None:
        config = {"configurable": {"thread_id": f"run-{i}"}}
        result = await compiled.ainvoke({}, config=config)
        if set(result) != set(DEPS):
            raise RuntimeError(f"LangGraph run {i} gave {result}")

    return langgraph


async def run_all(once: Callable[[int], Awaitable[None]], count: int, offset: int = 0) -> None:
    """Start `count` runs at once and wait for all of them."""
    async with asyncio.TaskGroup() as group:
        for i in range(count):
            group.create_task(once(offset + i))


def _peak_rss_kib() -> int:
    """This process's peak resident set in KiB: ``VmHWM`` on Linux. Not ``getrusage``'s ``ru_maxrss``,
    which Linux carries across ``exec``: a fresh child of a large parent reports the parent's size."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS


def _current_rss_kib() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() // 1024


def measure(variant: str, count: int) -> dict[str, Any]:
    """Time and memory of `count` concurrent runs of `variant` (call it in a fresh process)."""
    with tempfile.TemporaryDirectory(prefix="rolegraph-bench-") as tmp:
        once = _runner(variant, Path(tmp))
        asyncio.run(run_all(once, 2, offset=-2))  # warm-up
        rss_before = max(_current_rss_kib(), _peak_rss_kib())
        start = time.perf_counter_ns()
        asyncio.run(run_all(once, count))
        elapsed = time.perf_counter_ns() - start
        rss_growth = max(0, _peak_rss_kib() - rss_before)
        tracemalloc.start()
        try:
            asyncio.run(run_all(once, count, offset=count))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    return {
        "runs": count,
        "total_s": elapsed / 1e9,
        "ms_per_run": elapsed / 1e6 / count,
        "tracemalloc_peak_mib": peak / 2**20,
        "tracemalloc_kib_per_run": peak / 1024 / count,
        "rss_growth_kib_per_run": rss_growth / count or None,
    }


def breakdown(count: int) -> dict[str, Any]:
    """Where the time of a whole rolegraph run goes: each part's share of a profiled batch of `count` runs.

    The SQLite index is written by the home's writer thread, which cProfile does not see: what a run
    spends on the index at its end (handing its end to the writer, which it does not wait for) is timed
    by wrapping `RunIndex.finish` (wall time).
    """
    index_seconds: list[float] = []
    original = RunIndex.finish

    def timed_finish(self: RunIndex, end: Any) -> None:
        start = time.perf_counter()
        try:
            original(self, end)
        finally:
            index_seconds.append(time.perf_counter() - start)

    with tempfile.TemporaryDirectory(prefix="rolegraph-bench-") as tmp:
        once = _runner("rolegraph", Path(tmp))
        asyncio.run(run_all(once, 2, offset=-2))
        profile = cProfile.Profile()
        RunIndex.finish = timed_finish  # type: ignore[method-assign]  # benchmark instrumentation, restored below
        try:
            start = time.perf_counter()
            profile.enable()
            asyncio.run(run_all(once, count))
            profile.disable()
            total = time.perf_counter() - start
        finally:
            RunIndex.finish = original  # type: ignore[method-assign]
    stats: dict[Any, Any] = pstats.Stats(profile).stats  # type: ignore[attr-defined]  # untyped in typeshed
    parts: dict[str, float] = {}
    for label, (suffix, function) in PARTS.items():
        cumulative = sum(v[3] for (file, _, name), v in stats.items() if file.endswith(suffix) and name == function)
        parts[label] = cumulative / count * 1000
    parts[INDEX_PART] = sum(index_seconds) / count * 1000
    return {
        "runs": count,
        "profiled_ms_per_run": total / count * 1000,
        "parts_ms_per_run": parts,
        "note": "cumulative times under cProfile, which slows Python code; the parts overlap where one calls another",
    }


def _in_subprocess(variant: str, count: int, level: Level) -> dict[str, Any]:
    if level == "smoke":  # seconds matter more than a clean RSS figure: measured in this process
        return measure(variant, count)
    command = [sys.executable, "-m", "benchmarks.concurrent_runs", variant, str(count)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{variant} x{count} failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(level: Level = "quick") -> dict[str, Any]:
    """Measure each variant at each count of `RUNS[level]`, and the breakdown of a whole run."""
    rows = {
        variant: [
            _in_subprocess(variant, count, level)
            for count in RUNS[level]
            if variant != "rolegraph" or level != "full" or count <= WHOLE_RUNS_MAX
        ]
        for variant in VARIANTS
    }
    by_count = {variant: {r["runs"]: r for r in variant_rows} for variant, variant_rows in rows.items()}

    def ratio(variant: str, other: str, count: int, key: str) -> float | None:
        ours, theirs = by_count[variant].get(count), by_count[other].get(count)
        return None if ours is None or theirs is None else ratio_of(ours[key], theirs[key])

    ratios = [
        {
            "runs": count,
            "time_ratio": ratio("rolegraph", "langgraph", count, "total_s"),
            "memory_ratio": ratio("rolegraph", "langgraph", count, "tracemalloc_kib_per_run"),
            "engine_time_ratio": ratio("rolegraph_engine", "langgraph", count, "total_s"),
            "engine_memory_ratio": ratio("rolegraph_engine", "langgraph", count, "tracemalloc_kib_per_run"),
            "checkpointed_time_ratio": ratio("rolegraph", "langgraph_checkpointed", count, "total_s"),
        }
        for count in RUNS[level]
    ]
    return {
        "steps_per_run": len(DEPS),
        "variants": rows,
        "ratios": ratios,
        "breakdown": breakdown(BREAKDOWN_RUNS[level]),
    }


if __name__ == "__main__":  # one measurement, in the fresh process `_in_subprocess` starts
    print(json.dumps(measure(sys.argv[1], int(sys.argv[2]))))
