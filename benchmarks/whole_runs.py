"""Scenario 11, whole runs through the public API, side by side with LangGraph in the same process.

A rolegraph run here is what a user gets from ``rolegraph.load(path).run()``: a
run folder with its JSONL trace, run store (checkpoint per step, call journal),
step log, summary and live index, secret redaction on. Two chains of N steps:

- ``agent``: agent steps answered at once by a scripted model; against a LangGraph
  chain of N trivial async nodes;
- ``function``: ``function:`` steps (a Python function, no model), each adding 1 to
  its predecessor's value; against LangGraph function nodes doing the same, node
  for node.

LangGraph runs bare, with its in-memory checkpointer (`InMemorySaver`), and with
its SQLite checkpointer (`AsyncSqliteSaver` from ``langgraph-checkpoint-sqlite``, on
a file, as durable as rolegraph's store) when that package is installed. Figures
are per step: the median wall time of a whole run (workflow loaded once, outside
the timing) over N. Ratios are rolegraph / LangGraph within one run of this scenario.

The sides take turns: each round runs rolegraph, each LangGraph variant and the
file-work floor (`benchmarks.io_floor`: the disk work of a durable traced step done
with bare ``sqlite3``/``os`` calls) once, so a burst of load on this shared
machine falls on every side alike; the first round warms up and is not counted.
"""

from __future__ import annotations

import asyncio
import importlib.util
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, TypedDict

from benchmarks._common import Level, chain, ratio, spec_yaml
from benchmarks.io_floor import FloorRun
from rolegraph.workflow import load

CHAIN_SIZES: dict[Level, tuple[int, ...]] = {"smoke": (5, 20), "quick": (20, 100), "full": (100, 1000)}
REPEATS: dict[Level, int] = {"smoke": 1, "quick": 3, "full": 7}
"""Counted rounds per chain (after one warm-up round)."""
FUNCTION_MODULE = """def add(value):
    return {"value": int(value) + 1}
"""


class ChainState(TypedDict):
    value: int


def agent_workflow(folder: Path, n: int) -> Path:
    """A chain of `n` agent steps on a scripted model that answers each at once."""
    script = folder / f"script{n}.yaml"
    script.write_text("- {final: {value: ok}, thought: done}\n" * n, encoding="utf-8")
    path = folder / f"agents{n}.yaml"
    path.write_text(spec_yaml(chain(n), model=f"scripted:{script}"), encoding="utf-8")
    return path


def function_workflow(folder: Path, n: int) -> Path:
    """A chain of `n` function steps, each adding 1 to the value of the step before."""
    (folder / "bench_steps.py").write_text(FUNCTION_MODULE, encoding="utf-8")
    lines = ["rolegraph: 1", "name: functions", "settings: {max_concurrency: 10000}", "steps:"]
    for i in range(n):
        value = f"{{{{ steps.s{i - 1}.value }}}}" if i else "0"
        after = f", depends_on: [s{i - 1}]" if i else ""
        lines.append(f'  s{i}: {{function: "bench_steps:add", args: {{value: "{value}"}}{after}}}')
    path = folder / f"functions{n}.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


Timer = Callable[[], Awaitable[float]]
"""One whole run of one side: its wall time in seconds (it checks the run's result)."""


def rolegraph_timer(path: Path, n: int, home: Path) -> Timer:
    """Whole runs of the workflow at `path` (loaded once, outside the timing)."""
    workflow = load(path)

    async def once() -> float:
        start = time.perf_counter()
        result = await workflow.run(home=home)
        elapsed = time.perf_counter() - start
        if result.status != "completed":
            raise RuntimeError(f"rolegraph run of {path.name} {result.status}: {result.error}")
        return elapsed

    return once


def floor_timer(folder: Path, n: int) -> Timer:
    """The file-work floor of `n` steps (`benchmarks.io_floor.FloorRun`)."""
    floor = FloorRun(folder)

    async def once() -> float:
        start = time.perf_counter()
        floor(n)
        return time.perf_counter() - start

    return once


async def us_per_step(timers: Mapping[str, Timer], n: int, repeats: int) -> dict[str, float]:
    """Median µs per step of each timer over `repeats` rounds, every timer once per round, after a warm-up round."""
    samples: dict[str, list[float]] = {name: [] for name in timers}
    for round_ in range(repeats + 1):
        for name, once in timers.items():
            elapsed = await once()
            if round_:
                samples[name].append(elapsed)
    return {name: statistics.median(times) / n * 1e6 for name, times in samples.items()}


def langgraph_chain(n: int, *, function_nodes: bool, checkpointer: Any = None) -> Any:
    """A compiled LangGraph chain of `n` nodes adding 1 to ``value`` (sync function nodes or async nodes)."""
    from langgraph.graph import END, START, StateGraph

    def add(state: ChainState) -> dict[str, int]:
        return {"value": state["value"] + 1}

    async def add_async(state: ChainState) -> dict[str, int]:
        return {"value": state["value"] + 1}

    builder = StateGraph(ChainState)
    for i in range(n):
        builder.add_node(f"s{i}", add if function_nodes else add_async)
        builder.add_edge(START if i == 0 else f"s{i - 1}", f"s{i}")
    builder.add_edge(f"s{n - 1}", END)
    return builder.compile(checkpointer=checkpointer)


def langgraph_timer(graph: Any, n: int) -> Timer:
    """Whole invocations of a compiled LangGraph chain of `n` nodes (a fresh thread id each)."""
    runs = 0

    async def once() -> float:
        nonlocal runs
        runs += 1
        config = {"recursion_limit": n + 10, "configurable": {"thread_id": f"t{runs}"}}
        start = time.perf_counter()
        result = await graph.ainvoke({"value": 0}, config=config)
        elapsed = time.perf_counter() - start
        if result["value"] != n:
            raise RuntimeError(f"LangGraph chain ran {result['value']} of {n} nodes")
        return elapsed

    return once


def sqlite_saver_available() -> bool:
    """Whether ``langgraph-checkpoint-sqlite`` (and its aiosqlite) is installed."""
    return importlib.util.find_spec("langgraph.checkpoint.sqlite") is not None


async def langgraph_timers(
    n: int, *, function_nodes: bool, folder: Path, stack: AsyncExitStack
) -> dict[str, Timer | None]:
    """LangGraph bare, with `InMemorySaver`, and with `AsyncSqliteSaver` on a file (None if not installed)."""
    from langgraph.checkpoint.memory import InMemorySaver

    timers: dict[str, Timer | None] = {
        "langgraph_us": langgraph_timer(langgraph_chain(n, function_nodes=function_nodes), n),
        "langgraph_memory_us": langgraph_timer(
            langgraph_chain(n, function_nodes=function_nodes, checkpointer=InMemorySaver()), n
        ),
        "langgraph_sqlite_us": None,
    }
    if sqlite_saver_available():
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        database = folder / f"langgraph-{n}-{int(function_nodes)}.sqlite"
        saver = await stack.enter_async_context(AsyncSqliteSaver.from_conn_string(str(database)))
        timers["langgraph_sqlite_us"] = langgraph_timer(
            langgraph_chain(n, function_nodes=function_nodes, checkpointer=saver), n
        )
    return timers


Build = Callable[[Path, int], Path]


async def _kind(kind: str, build: Build, level: Level, folder: Path) -> list[dict[str, Any]]:
    rows = []
    for n in CHAIN_SIZES[level]:
        async with AsyncExitStack() as stack:
            theirs = await langgraph_timers(n, function_nodes=kind == "function", folder=folder, stack=stack)
            timers = {
                "rolegraph_us": rolegraph_timer(build(folder, n), n, folder / "home"),
                **{name: timer for name, timer in theirs.items() if timer is not None},
                "io_floor_us": floor_timer(folder / f"floor-{kind}-{n}", n),
            }
            figures: dict[str, float | None] = {**dict.fromkeys(theirs), **await us_per_step(timers, n, REPEATS[level])}
        ours = figures["rolegraph_us"]
        rows.append(
            {
                "n": n,
                **figures,
                "ratio_bare": ratio(ours, figures["langgraph_us"]),
                "ratio_memory": ratio(ours, figures["langgraph_memory_us"]),
                "ratio_sqlite": ratio(ours, figures["langgraph_sqlite_us"]),
            }
        )
    return rows


async def _run(level: Level) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="rolegraph-bench-") as tmp:
        folder = Path(tmp)
        kinds: dict[str, Build] = {"agent": agent_workflow, "function": function_workflow}
        figures = {kind: await _kind(kind, build, level, folder) for kind, build in kinds.items()}
    return {**figures, "sqlite_saver": sqlite_saver_available()}


def run(level: Level = "quick") -> dict[str, Any]:
    """Whole runs through the public API against LangGraph (bare, in-memory and SQLite checkpointers)."""
    return asyncio.run(_run(level))
