"""Scenario 11, whole runs through the public API, side by side with LangGraph in the same process.

A rolegraph run here is what a user gets from ``rolegraph.load(path).run()``: a
run folder with its JSONL trace, run store (checkpoint per step, call journal),
step files, summary and live index, secret redaction on. Two chains of N steps:

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
"""

from __future__ import annotations

import asyncio
import importlib.util
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict

from benchmarks._common import Level, chain, ratio, spec_yaml
from rolegraph.workflow import load

CHAIN_SIZES: dict[Level, tuple[int, ...]] = {"smoke": (5, 20), "quick": (20, 100), "full": (100, 1000)}
REPEATS: dict[Level, int] = {"smoke": 1, "quick": 2, "full": 2}
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


async def rolegraph_us_per_step(path: Path, n: int, repeats: int, home: Path) -> float:
    """Median µs per step of whole runs of the workflow at `path` (loaded once)."""
    workflow = load(path)
    samples = []
    for _ in range(repeats + 1):  # the first run warms up (imports, caches) and is not counted
        start = time.perf_counter()
        result = await workflow.run(home=home)
        samples.append(time.perf_counter() - start)
        if result.status != "completed":
            raise RuntimeError(f"rolegraph run of {path.name} {result.status}: {result.error}")
    return statistics.median(samples[1:]) / n * 1e6


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


async def _langgraph_us(graph: Any, n: int, repeats: int) -> float:
    samples = []
    for run in range(repeats + 1):
        config = {"recursion_limit": n + 10, "configurable": {"thread_id": f"t{run}"}}
        start = time.perf_counter()
        result = await graph.ainvoke({"value": 0}, config=config)
        samples.append(time.perf_counter() - start)
        if result["value"] != n:
            raise RuntimeError(f"LangGraph chain ran {result['value']} of {n} nodes")
    return statistics.median(samples[1:]) / n * 1e6


def sqlite_saver_available() -> bool:
    """Whether ``langgraph-checkpoint-sqlite`` (and its aiosqlite) is installed."""
    return importlib.util.find_spec("langgraph.checkpoint.sqlite") is not None


async def langgraph_variants(n: int, repeats: int, *, function_nodes: bool, folder: Path) -> dict[str, float | None]:
    """µs per node of LangGraph bare, with `InMemorySaver`, and with `AsyncSqliteSaver` (None if not installed)."""
    from langgraph.checkpoint.memory import InMemorySaver

    figures: dict[str, float | None] = {
        "langgraph_us": await _langgraph_us(langgraph_chain(n, function_nodes=function_nodes), n, repeats),
        "langgraph_memory_us": await _langgraph_us(
            langgraph_chain(n, function_nodes=function_nodes, checkpointer=InMemorySaver()), n, repeats
        ),
        "langgraph_sqlite_us": None,
    }
    if sqlite_saver_available():
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        database = folder / f"langgraph-{n}-{int(function_nodes)}.sqlite"
        async with AsyncSqliteSaver.from_conn_string(str(database)) as saver:
            graph = langgraph_chain(n, function_nodes=function_nodes, checkpointer=saver)
            figures["langgraph_sqlite_us"] = await _langgraph_us(graph, n, repeats)
    return figures


Build = Callable[[Path, int], Path]


async def _kind(kind: str, build: Build, level: Level, folder: Path) -> list[dict[str, Any]]:
    rows = []
    for n in CHAIN_SIZES[level]:
        ours = await rolegraph_us_per_step(build(folder, n), n, REPEATS[level], folder / "home")
        theirs = await langgraph_variants(n, REPEATS[level], function_nodes=kind == "function", folder=folder)
        rows.append(
            {
                "n": n,
                "rolegraph_us": ours,
                **theirs,
                "ratio_bare": ratio(ours, theirs["langgraph_us"]),
                "ratio_memory": ratio(ours, theirs["langgraph_memory_us"]),
                "ratio_sqlite": ratio(ours, theirs["langgraph_sqlite_us"]),
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
