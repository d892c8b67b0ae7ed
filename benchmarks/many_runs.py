"""Scenario 12, 10,000 concurrent whole runs: throughput and peak memory, rolegraph against LangGraph.

N runs of the `concurrent_runs` workflow (``a -> b, c``, a model answering at once)
started together in one process:

- ``rolegraph``: whole runs through the public API (`Workflow.run`: a run folder each,
  run store, JSONL trace, index), N coroutines gathered in one `TaskGroup`;
- ``langgraph``: the same graph compiled with LangGraph, invoked N times at once;
  ``langgraph_checkpointed`` with its `InMemorySaver`; ``langgraph_sqlite`` with its
  `AsyncSqliteSaver` on a file (durable, as rolegraph's runs are), one thread id per run;
- two references, not part of the target: ``io_floor``, "disk work alone": what one rolegraph run
  writes, done with bare ``sqlite3`` and ``os`` calls and no framework (`benchmarks.io_floor.FloorWholeRun`:
  the folder, the store from its template, its transactions, the trace lines, the step log, ``run.json``,
  the index rows, the store's close with its flushes), N runs one after another on one thread, as rolegraph
  does them on its event loop's thread; and ``rolegraph_engine``, "the engine alone": the same runs through
  rolegraph's scheduler and agents with no run folder (no file at all). Together they show how much of a run's
  cost is the disk, and whether "faster than LangGraph bare" is reachable at all with the guarantees
  rolegraph gives: one thread doing both would take at least the sum of their times.

Each side runs alone in a fresh subprocess, once: wall time, runs per second, and
memory. Memory is the peak resident set of that process (``VmHWM``, not
``getrusage``'s ``ru_maxrss``, which Linux carries over from the parent across
``exec``), absolute and above its resident set after imports and a two-run warm-up
(``peak_rss_growth_mib``: what the N runs themselves added). Why RSS and not
tracemalloc: tracemalloc sees only Python's allocator (not SQLite's page cache,
orjson's or libyaml's buffers, thread stacks), and it slows allocation-heavy code two
to three times, so it would need a second pass of 10,000 runs; the peak RSS of a
fresh process is all the memory a side held at its worst. Where rolegraph misses the
target, ``top_allocations`` (a tracemalloc snapshot at the peak of a smaller batch)
says what holds the memory.

rolegraph works on at most ``ROLEGRAPH_MAX_RUNS`` runs at once per event loop (64 by
default, `rolegraph.runtime.admission`): the others wait in their coroutines, so its
memory is bounded by that, not by N. LangGraph starts all N at once.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from benchmarks._common import Level
from benchmarks._common import ratio as ratio_of
from benchmarks.concurrent_runs import DEPS, _current_rss_kib, _peak_rss_kib, _runner, langgraph_workflow, run_all
from benchmarks.io_floor import FloorWholeRun
from rolegraph.runtime.admission import max_runs

RUNS: dict[Level, int] = {"smoke": 20, "quick": 1000, "full": 10000}
VARIANTS = ("rolegraph", "langgraph", "langgraph_checkpointed", "langgraph_sqlite", "io_floor", "rolegraph_engine")
FLOOR = "io_floor"
ENGINE = "rolegraph_engine"
REFERENCES = (FLOOR, ENGINE)
"""The sides that are parts of a whole run (its disk work, its engine): reported apart, never part of the target."""
TARGET_MIB = 150
ROOT = Path(__file__).resolve().parent.parent


async def _sqlite_runner(folder: Path, stack: AsyncExitStack) -> Callable[[int], Awaitable[None]]:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    saver = await stack.enter_async_context(AsyncSqliteSaver.from_conn_string(str(folder / "langgraph.sqlite")))
    compiled = langgraph_workflow(checkpointed=False).builder.compile(checkpointer=saver)

    async def langgraph(i: int) -> None:
        result = await compiled.ainvoke({}, config={"configurable": {"thread_id": f"run-{i}"}})
        if set(result) != set(DEPS):
            raise RuntimeError(f"LangGraph run {i} gave {result}")

    return langgraph


async def _measure(variant: str, count: int, folder: Path) -> dict[str, Any]:
    async with AsyncExitStack() as stack:
        once = await _sqlite_runner(folder, stack) if variant == "langgraph_sqlite" else _runner(variant, folder)
        await run_all(once, 2, offset=-2)  # warm-up: imports, caches, the home's index writer
        rss_before = _current_rss_kib()
        start = time.perf_counter()
        await run_all(once, count)
        elapsed = time.perf_counter() - start
    return _figures(count, elapsed, rss_before)


def _measure_floor(count: int, folder: Path) -> dict[str, Any]:
    """`count` runs of bare disk work (`FloorWholeRun`), one after another on this thread."""
    floor = FloorWholeRun(folder)
    for _ in range(2):  # warm-up, as the other sides
        floor()
    rss_before = _current_rss_kib()
    start = time.perf_counter()
    for _ in range(count):
        floor()
    floor.close()
    elapsed = time.perf_counter() - start
    return _figures(count, elapsed, rss_before)


def _figures(count: int, elapsed: float, rss_before_kib: int) -> dict[str, Any]:
    """One side's figures: `count` runs in `elapsed` seconds, and this process's memory, its peak read now (at least
    the resident set read before the runs: the kernel's high-water mark lags the resident set by a few pages)."""
    peak = max(_peak_rss_kib(), rss_before_kib)
    return {
        "runs": count,
        "total_s": elapsed,
        "runs_per_s": count / elapsed,
        "rss_before_mib": rss_before_kib / 1024,
        "peak_rss_mib": peak / 1024,
        "peak_rss_growth_mib": max(0, peak - rss_before_kib) / 1024,
    }


def measure(variant: str, count: int) -> dict[str, Any]:
    """Time and peak memory of `count` concurrent runs of `variant` (call it in a fresh process)."""
    with tempfile.TemporaryDirectory(prefix="rolegraph-bench-") as tmp:
        if variant == FLOOR:
            return _measure_floor(count, Path(tmp))
        return asyncio.run(_measure(variant, count, Path(tmp)))


def top_allocations(count: int, limit: int = 8) -> list[dict[str, Any]]:
    """Where the memory of `count` concurrent whole rolegraph runs is, at their peak: tracemalloc's
    largest allocation sites (file:line, MiB, blocks), from a snapshot taken when the most runs are alive."""
    snapshots: list[tracemalloc.Snapshot] = []
    with tempfile.TemporaryDirectory(prefix="rolegraph-bench-") as tmp:
        once = _runner("rolegraph", Path(tmp))

        async def main() -> None:
            await run_all(once, 2, offset=-2)
            tracemalloc.start(1)
            try:
                task = asyncio.create_task(run_all(once, count))
                best = 0
                while not task.done():
                    await asyncio.sleep(0.05)
                    current = tracemalloc.get_traced_memory()[0]
                    if current > best:
                        best, snapshots[:] = current, [tracemalloc.take_snapshot()]
                await task
            finally:
                tracemalloc.stop()

        asyncio.run(main())
    if not snapshots:
        return []
    stats = snapshots[0].statistics("lineno")[:limit]
    return [
        {
            "where": f"{s.traceback[0].filename.split('site-packages/')[-1]}:{s.traceback[0].lineno}",
            "mib": s.size / 2**20,
            "blocks": s.count,
        }
        for s in stats
    ]


def _in_subprocess(variant: str, count: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.many_runs", variant, str(count)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False, env=os.environ.copy())
    if done.returncode != 0:
        raise RuntimeError(f"{variant} x{count} failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _sqlite_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("langgraph.checkpoint.sqlite") is not None


def run(level: Level = "quick") -> dict[str, Any]:
    """Each side's N concurrent runs in a fresh process; the ratios; where rolegraph's memory is if over target."""
    count = RUNS[level]
    load_before = os.getloadavg()[0]
    variants = [v for v in VARIANTS if v != "langgraph_sqlite" or _sqlite_available()]
    rows = {v: (measure(v, count) if level == "smoke" else _in_subprocess(v, count)) for v in variants}
    ours = rows["rolegraph"]
    ratios = {
        other: {
            "time_ratio": ratio_of(ours["total_s"], rows[other]["total_s"]),
            "peak_rss_ratio": ratio_of(ours["peak_rss_mib"], rows[other]["peak_rss_mib"]),
            "growth_ratio": ratio_of(ours["peak_rss_growth_mib"], rows[other]["peak_rss_growth_mib"]),
        }
        for other in variants
        if other != "rolegraph" and other not in REFERENCES
    }
    floor = rows[FLOOR]
    over = ours["peak_rss_mib"] > TARGET_MIB
    return {
        "runs": count,
        "steps_per_run": len(DEPS),
        "max_runs": max_runs(),
        "variants": rows,
        "ratios": ratios,
        "floor_time_ratio": ratio_of(ours["total_s"], floor["total_s"]),
        "floor_over_langgraph": ratio_of(floor["total_s"], rows["langgraph"]["total_s"]),
        "target_mib": TARGET_MIB,
        "top_allocations": top_allocations(min(count, 1000)) if over else [],
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
    }


TARGET = "10,000 concurrent whole runs: faster than LangGraph, less memory, ≤ 150 MB peak"


def target(fig: dict[str, Any] | None) -> dict[str, Any]:
    """Issue 14's target: rolegraph's peak RSS (MiB) at N concurrent whole runs, met if ≤ 150 MiB at 10,000
    and both faster than and lighter than every LangGraph side."""
    row = {"target": TARGET, "limit": f"≤ {TARGET_MIB} MiB, < LangGraph", "unit": "MiB", "measured": None}
    if fig is None:
        return {**row, "met": None, "note": ""}
    ours = fig["variants"]["rolegraph"]
    faster = all(r["time_ratio"] is not None and r["time_ratio"] < 1 for r in fig["ratios"].values())
    lighter = all(r["peak_rss_ratio"] is not None and r["peak_rss_ratio"] < 1 for r in fig["ratios"].values())
    small = ours["peak_rss_mib"] <= TARGET_MIB
    versus = "; ".join(
        f"{name}: {fig['variants'][name]['runs_per_s']:.0f} runs/s, {fig['variants'][name]['peak_rss_mib']:.0f} MiB"
        for name in fig["ratios"]
    )
    floor, engine = fig["variants"].get(FLOOR), fig["variants"].get(ENGINE)
    if floor is not None:
        versus += f"; the disk work alone (bare calls): {floor['runs_per_s']:.0f} runs/s"
    if engine is not None:
        versus += f"; the engine alone (no files): {engine['runs_per_s']:.0f} runs/s"
    misses = [
        what
        for what, ok in (
            ("slower than LangGraph", faster),
            ("more memory than LangGraph", lighter),
            (f"over {TARGET_MIB} MiB", small),
        )
        if not ok
    ]
    note = (
        f"{fig['runs']} runs: {ours['runs_per_s']:.0f} runs/s, peak RSS {ours['peak_rss_mib']:.0f} MiB "
        f"({ours['peak_rss_growth_mib']:.0f} above the warmed-up process); {versus}; load average "
        f"{fig['load_average_before']:g} → {fig['load_average_after']:g}"
        + (f". Not met: {', '.join(misses)}" if misses else "")
    )
    met = fig["runs"] >= 10000 and faster and lighter and small
    return {**row, "measured": ours["peak_rss_mib"], "met": met, "note": note}


def _floor_lines(fig: dict[str, Any]) -> list[str]:
    """What the disk work alone says about the target (nothing for figures from before it was measured)."""
    floor = fig["variants"].get(FLOOR)
    if floor is None or fig.get("floor_time_ratio") is None:
        return []
    lines = [
        f"Disk work alone (`{FLOOR}`: what one run writes, with bare `sqlite3`/`os` calls on one thread, as "
        f"rolegraph makes them on its event loop's, `benchmarks/io_floor.py`): {floor['runs_per_s']:.0f} runs/s; "
        f"rolegraph takes {fig['floor_time_ratio']:.2f}x its time, and it takes "
        f"{fig['floor_over_langgraph']:.2f}x the time of LangGraph bare (which writes nothing).",
        "",
    ]
    engine, bare = fig["variants"].get(ENGINE), fig["variants"]["langgraph"]
    if engine is not None:
        left_ms = (bare["total_s"] - engine["total_s"]) / fig["runs"] * 1000
        lines += [
            f"The engine alone (`{ENGINE}`: the same runs through the scheduler and agents, no file written): "
            f"{engine['runs_per_s']:.0f} runs/s, {engine['total_s'] / bare['total_s']:.2f}x LangGraph bare's time. "
            f"To be faster than LangGraph bare, a whole run's files (their system calls and the Python around them) "
            f"would have to cost less than the difference, {left_ms:.2f} ms a run; the disk work alone takes "
            f"{floor['total_s'] / fig['runs'] * 1000:.2f} ms a run on one thread (waiting for its flushes, which "
            "rolegraph waits for in a worker thread while its loop goes on).",
            "",
        ]
    return lines


def markdown(fig: dict[str, Any]) -> list[str]:
    """The section of RESULTS.md: each side's time, throughput and memory, and the ratios."""
    header = ["side", "runs", "total s", "runs / s", "RSS after warm-up MiB", "peak RSS MiB", "peak growth MiB"]
    rows = [
        [name, str(r["runs"]), f"{r['total_s']:.1f}", f"{r['runs_per_s']:.0f}", f"{r['rss_before_mib']:.0f}",
         f"{r['peak_rss_mib']:.0f}", f"{r['peak_rss_growth_mib']:.0f}"]
        for name, r in fig["variants"].items()
    ]  # fmt: skip
    lines = [
        f"## 12. {fig['runs']:,} concurrent whole runs, each side in a fresh process",
        "",
        f"{fig['runs']:,} runs of a {fig['steps_per_run']}-step workflow started at once in one process: rolegraph's",
        "through `Workflow.run` (run folder, store, trace, index each), LangGraph's with `ainvoke` (bare, with its",
        "`InMemorySaver`, with its `AsyncSqliteSaver` on a file), and `io_floor`: the same disk work with bare",
        "calls. Memory is the process's peak resident set",
        "(`VmHWM`: all it held, C allocations included; tracemalloc misses those and would slow the runs),",
        f"and its growth above the warmed-up process. rolegraph works on {fig['max_runs']} runs at once",
        "(`ROLEGRAPH_MAX_RUNS`); the rest wait in their coroutines. Load average (1 min) "
        f"{fig['load_average_before']:g} before, {fig['load_average_after']:g} after.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
        *([f"Note: {fig['rolegraph_note']}.", ""] if fig.get("rolegraph_note") else []),
        "rolegraph / LangGraph: "
        + "; ".join(
            f"{name} time {r['time_ratio']:.2f}x, peak RSS {r['peak_rss_ratio']:.2f}x"
            for name, r in fig["ratios"].items()
            if r["time_ratio"] is not None and r["peak_rss_ratio"] is not None
        )
        + ".",
        "",
        *_floor_lines(fig),
    ]
    if fig["top_allocations"]:
        lines += ["Where rolegraph's memory is at its peak (tracemalloc, largest sites):", ""]
        lines += [f"- `{a['where']}`: {a['mib']:.1f} MiB in {a['blocks']} blocks" for a in fig["top_allocations"]]
        lines.append("")
    return lines


if __name__ == "__main__":  # one measurement, in the fresh process `_in_subprocess` starts
    print(json.dumps(measure(sys.argv[1], int(sys.argv[2]))))
