"""Scenario 1, per-step overhead: a chain of N steps whose model answers instantly.

Three measurements per chain length, all in µs per step:

- ``scheduler``: the real `Scheduler` with an executor that returns at once
  (pure scheduling: dependency tracking, task creation, templates, `StepCall`);
- ``engine_*``: the full in-process path, `LocalExecutor` → `Agent` → a
  `ScriptedModel` that answers at once, with answer validation and tracing —
  without sinks (``untraced``), with a JSONL file, with the SQLite index when
  `rolegraph.traces.store` provides one. The roles are resolved once per
  workflow, as `CompiledWorkflow` resolves them for every run of a loaded file
  (resolving builds each role's output model, whose answer schema is then made
  again: a per-run cost that a 10-step chain spread over its steps);
- the baseline: creating and awaiting one asyncio task.

Each engine figure also counts the full garbage collections (generation 2) during
its counted runs. A full collection walks every object of the process: at 1,000
steps, where a run leaves some 14 long-lived objects per step (each step's state,
the scripted model's record of each call), one falls in about every other run and
adds tens of milliseconds to it, so a median taken at 1,000 steps can land on
either side of it.
"""

from __future__ import annotations

import asyncio
import gc
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import (
    InstantExecutor,
    Level,
    arepeat_ns,
    build_spec,
    chain,
    median_of,
    open_sink,
    quiet_tracer,
    schedule,
)
from rolegraph.runtime.executor import LocalExecutor, resolve_roles
from rolegraph.tools.sources import SourceRegistry
from rolegraph.workflows.graph import compile_graph

SIZES: dict[Level, tuple[int, ...]] = {"smoke": (5, 20), "quick": (10, 100), "full": (10, 100, 1000)}
REPEATS: dict[Level, int] = {"smoke": 2, "quick": 5, "full": 7}
"""Counted runs per figure, at least (see `MEASURED_STEPS`)."""
MEASURED_STEPS: dict[Level, int] = {"smoke": 0, "quick": 2_000, "full": 20_000}
"""Steps counted per figure, at least: a chain of 10 steps runs in about a millisecond, and seven runs of it were
a sample that one burst of load on this shared machine moved by half (65 to 128 µs/step from one run of the
scenario to the next); short chains run more often instead."""
SINKS = ("untraced", "jsonl", "sqlite")


async def _noop() -> None:
    return None


async def asyncio_task_ns(count: int = 2000, repeats: int = 5) -> float:
    """Nanoseconds to create and await one asyncio task (median of `repeats` batches of `count`)."""

    async def batch() -> None:
        for _ in range(count):
            await asyncio.create_task(_noop())

    return await arepeat_ns(batch, repeats=repeats) / count


async def scheduler_ns_per_step(n: int, repeats: int) -> float:
    """Nanoseconds per step of a chain of `n` steps run by the scheduler with an instant executor."""
    spec = build_spec(chain(n))
    graph = compile_graph(spec)
    executor = InstantExecutor()
    return await arepeat_ns(lambda: schedule(spec, executor, graph=graph), repeats=repeats) / n


async def engine_ns_per_step(n: int, repeats: int, sink_kind: str, folder: Path) -> tuple[float, float, int] | None:
    """Nanoseconds per step of a chain of `n` agent steps with an instantly answering scripted model: the
    median wall time, the median CPU time of this process (which a loaded machine inflates far less), and
    the number of full garbage collections during the counted runs.

    Returns None when the sink kind is not available.
    """
    script = folder / f"script-{n}.yaml"
    script.write_text("- {final: {value: ok}, thought: done}\n" * n, encoding="utf-8")
    spec = build_spec(chain(n), model=f"scripted:{script.name}")
    graph = compile_graph(spec)
    roles = resolve_roles(spec)  # once per workflow, as `CompiledWorkflow` does: not a step's cost
    samples: list[float] = []
    cpu: list[float] = []
    full_gcs = 0

    def count(phase: str, info: dict[str, int]) -> None:
        nonlocal full_gcs
        full_gcs += phase == "stop" and info["generation"] == 2

    for attempt in range(repeats + 1):  # the first run warms up
        sink = None if sink_kind == "untraced" else open_sink(sink_kind, folder, f"{sink_kind}-{n}-{attempt}")
        if sink_kind != "untraced" and sink is None:
            return None
        tracer = quiet_tracer([sink.sink] if sink else [])
        executor = LocalExecutor(spec, tools={}, sources=SourceRegistry(), tracer=tracer, base_dir=folder, roles=roles)
        if attempt:
            gc.callbacks.append(count)
        start, start_cpu = time.perf_counter_ns(), time.process_time_ns()
        try:
            await schedule(spec, executor, tracer, graph=graph)
            if sink is not None:
                sink.close()  # inside the timing: the SQLite sink writes from a thread until closed
        finally:
            if attempt:
                gc.callbacks.remove(count)
        elapsed, elapsed_cpu = time.perf_counter_ns() - start, time.process_time_ns() - start_cpu
        if attempt:
            samples.append(elapsed)
            cpu.append(elapsed_cpu)
    return median_of(samples) / n, median_of(cpu) / n, full_gcs


async def _run(level: Level) -> dict[str, Any]:
    repeats = REPEATS[level]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="rolegraph-bench-") as tmp:
        folder = Path(tmp)
        task_us = await asyncio_task_ns(count=200 if level == "smoke" else 2000, repeats=repeats) / 1000
        for n in SIZES[level]:
            runs = max(repeats, MEASURED_STEPS[level] // n)
            row: dict[str, Any] = {"n": n, "scheduler_us": await scheduler_ns_per_step(n, runs) / 1000}
            for kind in SINKS:
                ns = await engine_ns_per_step(n, runs, kind, folder)
                row[f"engine_{kind}_us"] = None if ns is None else ns[0] / 1000
                if ns is not None:
                    row[f"engine_{kind}_cpu_us"] = ns[1] / 1000
                    row[f"engine_{kind}_full_gcs"] = ns[2]
            rows.append(row)
    return {"asyncio_task_us": task_us, "rows": rows}


def run(level: Level = "quick") -> dict[str, Any]:
    """Measure per-step overhead; figures in µs per step, one row per chain length."""
    return asyncio.run(_run(level))
