"""Scenario 3, graph scale: parse, compile + validate, and schedule graphs of 10 to 10,000 steps.

For chains and random layered DAGs: time and tracemalloc peak per node of each
phase, and the exponent of a log-log fit of time against size (1.0 is linear
growth, 2.0 quadratic). ``compile`` is `compile_graph`, which validates the
graph; ``parse`` is `parse_spec` (YAML, schema and document checks, which
validate the graph once more); ``schedule`` is a full run with an instant executor.
``load_s`` is parse + compile + validate of the whole workflow through the public
API (``rolegraph.load`` of the file, as a user loads it), the median of `LOAD_REPEATS` loads, in
seconds of wall time and of this process's CPU time (the CPU figure is what a loaded machine does
not inflate).
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import rolegraph
from benchmarks._common import InstantExecutor, Level, loglog_slope, median_of, random_dag, schedule, spec_yaml
from benchmarks._common import chain as chain_deps
from rolegraph.workflows.graph import compile_graph
from rolegraph.workflows.loader import parse_spec

SIZES: dict[Level, tuple[int, ...]] = {
    "smoke": (10, 40),
    "quick": (10, 100, 1000),
    "full": (10, 100, 1000, 10000),
}
PHASES = ("parse", "compile", "schedule")
SEED = 7
LOAD_REPEATS = 3
"""Loads of the whole file whose median is ``load_s``, at every size: a single load of the
largest file would be one sample of a noisy machine."""


def _deps(shape: str, n: int) -> dict[str, list[str]]:
    return chain_deps(n) if shape == "chain" else random_dag("layered", n, random.Random(SEED + n))


def _timed(fn: Callable[[], object], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - start)
    return median_of(samples)


def _load_seconds(text: str, repeats: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``rolegraph.load`` of the workflow: parse + compile + validate."""
    wall, cpu = [], []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "workflow.yaml"
        path.write_text(text, encoding="utf-8")
        for _ in range(repeats):
            start_wall, start_cpu = time.perf_counter_ns(), time.process_time_ns()
            rolegraph.load(path)
            wall.append(time.perf_counter_ns() - start_wall)
            cpu.append(time.process_time_ns() - start_cpu)
    return median_of(wall) / 1e9, median_of(cpu) / 1e9


def _peak_bytes(fn: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def measure(deps: Mapping[str, Sequence[str]], repeats: int) -> dict[str, float]:
    """µs and peak bytes per node of each phase for one graph."""
    text = spec_yaml(deps)
    spec = parse_spec(text)
    graph = compile_graph(spec)

    def run_once() -> None:
        asyncio.run(schedule(spec, InstantExecutor(), graph=graph))

    phases: dict[str, Callable[[], object]] = {
        "parse": lambda: parse_spec(text),
        "compile": lambda: compile_graph(spec),
        "schedule": run_once,
    }
    n = len(deps)
    row: dict[str, float] = {"n": n}
    for name, fn in phases.items():
        row[f"{name}_us_per_node"] = _timed(fn, repeats) / n / 1000
        row[f"{name}_bytes_per_node"] = _peak_bytes(fn) / n
    row["load_s"], row["load_cpu_s"] = _load_seconds(text, max(repeats, LOAD_REPEATS))
    return row


def run(level: Level = "quick") -> dict[str, Any]:
    """Measure each phase for chains and layered DAGs of growing size; fit the growth exponents."""
    figures: dict[str, Any] = {}
    for shape in ("chain", "layered"):
        rows = []
        for n in SIZES[level]:
            repeats = 1 if n >= 5000 or level == "smoke" else 3
            rows.append(measure(_deps(shape, n), repeats))
        exponents = {
            phase: loglog_slope([r["n"] for r in rows], [r[f"{phase}_us_per_node"] * r["n"] for r in rows])
            for phase in PHASES
        }
        figures[shape] = {"rows": rows, "time_exponent": exponents}
    return figures
