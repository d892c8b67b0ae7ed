"""Scenario 2, parallelism: does the scheduler reach the critical path?

Each step holds a drawn duration (a simulated model latency, `asyncio.sleep`).
The figure is makespan / critical path under the same durations, where 1.0 is
the physical limit. Shapes: a fan-out ``start -> N branches -> join`` of
several widths, and seeded random DAGs (layered, wide, deep, diamond-heavy).

The same DAG is also run as bare asyncio — one task per step, awaiting its
dependencies' futures, then sleeping — to show what the event loop alone costs
(`asyncio.sleep` wakes up to a timer tick late, so a long chain drifts past
its critical path even with no scheduler at all).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any

from benchmarks._common import (
    SHAPES,
    Level,
    SleepExecutor,
    build_spec,
    fan_out,
    median_of,
    random_dag,
    schedule,
)
from rolegraph.workflows.graph import compile_graph, critical_path

WIDTHS: dict[Level, tuple[int, ...]] = {"smoke": (1, 10), "quick": (1, 10, 100), "full": (1, 10, 100, 1000)}
DAG_STEPS: dict[Level, int] = {"smoke": 12, "quick": 50, "full": 50}
DURATION_MS: dict[Level, tuple[float, float]] = {"smoke": (1.0, 3.0), "quick": (5.0, 20.0), "full": (5.0, 20.0)}
REPEATS: dict[Level, int] = {"smoke": 1, "quick": 3, "full": 5}
SEED = 20261123


def draw_durations(steps: Sequence[str], low_ms: float, high_ms: float, rng: random.Random) -> dict[str, float]:
    """A duration in seconds for each step, uniform in [low_ms, high_ms]."""
    return {step: rng.uniform(low_ms, high_ms) / 1000 for step in steps}


async def asyncio_makespan(deps: Mapping[str, Sequence[str]], durations: Mapping[str, float]) -> float:
    """Seconds bare asyncio takes to run the DAG: one task per step, started at once, awaiting its inputs."""
    loop = asyncio.get_running_loop()
    done = {step: loop.create_future() for step in deps}

    async def node(step: str) -> None:
        for parent in deps[step]:
            await done[parent]
        await asyncio.sleep(durations[step])
        done[step].set_result(None)

    start = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for step in deps:
            group.create_task(node(step))
    return time.perf_counter() - start


async def measure(deps: Mapping[str, Sequence[str]], durations: Mapping[str, float], repeats: int) -> dict[str, float]:
    """Makespan of the scheduler and of bare asyncio over the critical path (medians of `repeats`)."""
    spec = build_spec(deps)
    graph = compile_graph(spec)
    path = critical_path(graph, durations)
    executor = SleepExecutor(durations)
    engine: list[float] = []
    bare: list[float] = []
    await schedule(spec, executor, graph=graph)  # warm-up
    for _ in range(repeats):
        start = time.perf_counter()
        await schedule(spec, executor, graph=graph)
        engine.append(time.perf_counter() - start)
        bare.append(await asyncio_makespan(deps, durations))
    makespan, floor = median_of(engine), median_of(bare)
    return {
        "steps": len(deps),
        "critical_path_ms": path * 1000,
        "makespan_ms": makespan * 1000,
        "ratio": makespan / path,
        "asyncio_ratio": floor / path,
    }


async def _run(level: Level) -> dict[str, Any]:
    rng = random.Random(SEED)
    low, high = DURATION_MS[level]
    repeats = REPEATS[level]
    fan: list[dict[str, Any]] = []
    for width in WIDTHS[level]:
        deps = fan_out(width)
        fan.append({"width": width, **await measure(deps, draw_durations(list(deps), low, high, rng), repeats)})
    dags: list[dict[str, Any]] = []
    for shape in SHAPES:
        deps = random_dag(shape, DAG_STEPS[level], rng)
        dags.append({"shape": shape, **await measure(deps, draw_durations(list(deps), low, high, rng), repeats)})
    return {"duration_ms": [low, high], "seed": SEED, "fan_out": fan, "dags": dags}


def run(level: Level = "quick") -> dict[str, Any]:
    """Measure makespan / critical path for fan-outs and random DAG shapes."""
    return asyncio.run(_run(level))
