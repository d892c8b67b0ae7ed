"""Scenario 7, side by side with LangGraph, in the same process.

- Per-step overhead (scenario 1): a chain of N nodes each doing trivial work.
  LangGraph: async nodes incrementing a counter in the state. rolegraph: the
  scheduler with an executor that returns at once (the same trivial work),
  and the full agent engine with an instantly answering scripted model.
- Parallelism (scenario 2): the same fan-outs and random DAGs with the same
  drawn durations, each node awaiting `asyncio.sleep`. LangGraph expresses a
  join as an edge from the list of its dependencies (it waits for all of them).

Ratios are rolegraph / LangGraph: below 1 means rolegraph is faster.
"""

from __future__ import annotations

import asyncio
import operator
import random
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, TypedDict

from benchmarks import overhead, parallelism
from benchmarks._common import SHAPES, Level, arepeat_ns, build_spec, fan_out, median_of, random_dag, ratio
from rolegraph.workflows.graph import compile_graph, critical_path

CHAIN_SIZES: dict[Level, tuple[int, ...]] = {"smoke": (5, 20), "quick": (10, 100), "full": (10, 100, 1000)}
REPEATS: dict[Level, int] = {"smoke": 2, "quick": 5, "full": 7}
SEED = 20261124


class ChainState(TypedDict):
    value: int


class FanState(TypedDict):
    done: Annotated[int, operator.add]


def langgraph_chain(n: int) -> Any:
    """A compiled LangGraph chain of `n` nodes, each adding 1 to ``value``."""
    from langgraph.graph import END, START, StateGraph  # here: a process measuring rolegraph alone never loads it

    async def step(state: ChainState) -> dict[str, int]:
        return {"value": state["value"] + 1}

    builder = StateGraph(ChainState)
    for i in range(n):
        builder.add_node(f"s{i}", step)
        builder.add_edge(START if i == 0 else f"s{i - 1}", f"s{i}")
    builder.add_edge(f"s{n - 1}", END)
    return builder.compile()


def _sleeper(seconds: float) -> Callable[[FanState], Awaitable[dict[str, int]]]:
    async def sleeper(state: FanState) -> dict[str, int]:
        await asyncio.sleep(seconds)
        return {"done": 1}

    return sleeper


def langgraph_dag(deps: Mapping[str, Sequence[str]], durations: Mapping[str, float]) -> Any:
    """A compiled LangGraph graph of `deps`, each node sleeping its duration."""
    from langgraph.graph import END, START, StateGraph

    builder = StateGraph(FanState)
    for node, parents in deps.items():
        builder.add_node(node, _sleeper(durations[node]))
        if not parents:
            builder.add_edge(START, node)
        elif len(parents) == 1:
            builder.add_edge(parents[0], node)
        else:
            builder.add_edge(list(parents), node)  # a join: waits for every parent
    children = {p for parents in deps.values() for p in parents}
    for node in deps:
        if node not in children:
            builder.add_edge(node, END)
    return builder.compile()


async def langgraph_chain_ns_per_step(n: int, repeats: int) -> float:
    """Nanoseconds per node of one LangGraph chain run (compiled once, outside the timing)."""
    graph = langgraph_chain(n)
    config = {"recursion_limit": n + 10}

    async def once() -> None:
        result = await graph.ainvoke({"value": 0}, config=config)
        if result["value"] != n:
            raise RuntimeError(f"LangGraph chain ran {result['value']} of {n} nodes")

    return await arepeat_ns(once, repeats=repeats) / n


async def langgraph_makespan_ratio(
    deps: Mapping[str, Sequence[str]], durations: Mapping[str, float], repeats: int
) -> float:
    """Median LangGraph makespan over the critical path of the same DAG and durations."""
    graph = langgraph_dag(deps, durations)
    path = critical_path(compile_graph(build_spec(deps)), durations)
    config = {"recursion_limit": len(deps) + 10}
    await graph.ainvoke({"done": 0}, config=config)  # warm-up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = await graph.ainvoke({"done": 0}, config=config)
        samples.append(time.perf_counter() - start)
        if result["done"] != len(deps):
            raise RuntimeError(f"LangGraph ran {result['done']} of {len(deps)} nodes")
    return median_of(samples) / path


async def _run(level: Level) -> dict[str, Any]:
    repeats = REPEATS[level]
    chains = []
    with tempfile.TemporaryDirectory(prefix="rolegraph-bench-") as tmp:
        for n in CHAIN_SIZES[level]:
            langgraph_us = await langgraph_chain_ns_per_step(n, repeats) / 1000
            scheduler_us = await overhead.scheduler_ns_per_step(n, repeats) / 1000
            engine_ns = await overhead.engine_ns_per_step(n, repeats, "untraced", Path(tmp))
            engine_us = (engine_ns[0] if engine_ns else 0.0) / 1000  # wall time, as LangGraph's
            chains.append(
                {
                    "n": n,
                    "langgraph_us": langgraph_us,
                    "rolegraph_scheduler_us": scheduler_us,
                    "rolegraph_engine_us": engine_us,
                    "scheduler_ratio": ratio(scheduler_us, langgraph_us),
                    "engine_ratio": ratio(engine_us, langgraph_us),
                }
            )
    rng = random.Random(SEED)
    low, high = parallelism.DURATION_MS[level]
    graphs: list[tuple[str, dict[str, list[str]]]] = [(f"fan-out {w}", fan_out(w)) for w in parallelism.WIDTHS[level]]
    graphs += [(shape, random_dag(shape, parallelism.DAG_STEPS[level], rng)) for shape in SHAPES]
    makespans = []
    for name, deps in graphs:
        durations = parallelism.draw_durations(list(deps), low, high, rng)
        ours = await parallelism.measure(deps, durations, parallelism.REPEATS[level])
        theirs = await langgraph_makespan_ratio(deps, durations, parallelism.REPEATS[level])
        makespans.append(
            {
                "graph": name,
                "steps": len(deps),
                "rolegraph_ratio": ours["ratio"],
                "langgraph_ratio": theirs,
                "ratio": ours["ratio"] / theirs,
            }
        )
    return {"chain": chains, "makespan": makespans}


def run(level: Level = "quick") -> dict[str, Any]:
    """Compare per-step overhead and makespan / critical path with LangGraph."""
    return asyncio.run(_run(level))
