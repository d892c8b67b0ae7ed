"""What the scenarios share: levels, timing, generated workflows and fake executors."""

from __future__ import annotations

import asyncio
import math
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from rolegraph.runtime.scheduler import Scheduler, StepCall, StepExecutor, StepOutcome, StepState
from rolegraph.traces.index_writer import IndexWriter
from rolegraph.traces.redact import Redactor
from rolegraph.traces.sinks import JsonlSink, MemorySink, TraceSink
from rolegraph.traces.tracer import Tracer
from rolegraph.workflows.graph import compile_graph
from rolegraph.workflows.loader import parse_spec
from rolegraph.workflows.spec import WorkflowSpec

Level = Literal["smoke", "quick", "full"]
"""How big a run is: ``smoke`` for the test suite (seconds), ``quick`` for CI (minutes), ``full``."""

Shape = Literal["layered", "wide", "deep", "diamond"]
SHAPES: tuple[Shape, ...] = ("layered", "wide", "deep", "diamond")

ROLE = """roles:
  worker:
    instructions: Do the task.
    output: {value: string}
"""


def median_of(samples: Sequence[float]) -> float:
    """The median of `samples`."""
    return float(statistics.median(samples))


def repeat_ns(fn: Callable[[], object], *, repeats: int, warmup: int = 1) -> float:
    """Median wall time of `fn()` in nanoseconds, after `warmup` unmeasured calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - start)
    return median_of(samples)


async def arepeat_ns(fn: Callable[[], Awaitable[object]], *, repeats: int, warmup: int = 1) -> float:
    """Median wall time of `await fn()` in nanoseconds, after `warmup` unmeasured calls."""
    for _ in range(warmup):
        await fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        await fn()
        samples.append(time.perf_counter_ns() - start)
    return median_of(samples)


def loglog_slope(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Least-squares slope of log(y) on log(x): 1.0 is linear growth, 2.0 quadratic.

    None when a value is not positive: a time measured as 0 (below the timer's resolution) has no log.
    The slope itself may come out at or below 0 on a loaded machine (the small size took longest).
    """
    if any(v <= 0 for v in (*xs, *ys)):
        return None
    lx = [math.log(x) for x in xs]
    ly = [math.log(y) for y in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    num = sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True))
    den = sum((a - mx) ** 2 for a in lx)
    return num / den


# --- workflows -------------------------------------------------------------------------------------------------


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """`numerator / denominator`, or None when either is missing or the denominator was measured as 0
    (below the timer's resolution): a figure that could not be measured, never a division error."""
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return float(numerator / denominator)


def spec_yaml(deps: Mapping[str, Sequence[str]], *, model: str = "scripted:unused.yaml") -> str:
    """A workflow document with one `worker` step per key of `deps`, depending on its values."""
    lines = [
        "rolegraph: 1",
        "name: bench",
        f"models: {{default: {model!r}}}",
        ROLE,
        "settings: {max_concurrency: 10000}",
        "steps:",
    ]
    for step, parents in deps.items():
        after = f", depends_on: [{', '.join(parents)}]" if parents else ""
        lines.append(f"  {step}: {{role: worker, task: go{after}}}")
    return "\n".join(lines) + "\n"


def chain(n: int) -> dict[str, list[str]]:
    """``s0 -> s1 -> ... -> s{n-1}``."""
    return {f"s{i}": [f"s{i - 1}"] if i else [] for i in range(n)}


def fan_out(width: int) -> dict[str, list[str]]:
    """``start -> b0..b{width-1} -> join``."""
    deps: dict[str, list[str]] = {"start": []}
    deps.update({f"b{i}": ["start"] for i in range(width)})
    deps["join"] = [f"b{i}" for i in range(width)]
    return deps


def random_dag(shape: Shape, n: int, rng: random.Random) -> dict[str, list[str]]:
    """A random DAG of about `n` steps with the given shape (seeded by `rng`).

    ``layered``: ~sqrt(n) layers, each step depends on 1-3 steps of the layer before;
    ``wide``: 3 layers, the middle one holding most steps; ``deep``: a long chain whose
    steps also depend on a random earlier step now and then; ``diamond``: a row of
    fork-join diamonds of 2-6 branches each.
    """
    deps: dict[str, list[str]] = {}
    if shape in ("layered", "wide"):
        widths = [max(1, n // max(1, round(math.sqrt(n))))] * max(1, round(math.sqrt(n)))
        if shape == "wide":
            widths = [2, max(1, n - 4), 2]
        previous: list[str] = []
        count = 0
        for width in widths:
            layer = [f"s{count + i}" for i in range(width)]
            count += width
            for step in layer:
                deps[step] = sorted(rng.sample(previous, min(len(previous), rng.randint(1, 3)))) if previous else []
            previous = layer
    elif shape == "deep":
        for i in range(n):
            parents = [f"s{i - 1}"] if i else []
            if i > 2 and rng.random() < 0.3:
                extra = f"s{rng.randrange(0, i - 1)}"
                parents.append(extra)
            deps[f"s{i}"] = parents
    else:
        tail = "s0"
        deps[tail] = []
        count = 1
        while count < n:
            branches = [f"s{count + i}" for i in range(rng.randint(2, 6))]
            count += len(branches)
            for branch in branches:
                deps[branch] = [tail]
            tail = f"s{count}"
            deps[tail] = branches
            count += 1
    return deps


def build_spec(deps: Mapping[str, Sequence[str]], *, model: str = "scripted:unused.yaml") -> WorkflowSpec:
    """The validated spec of `spec_yaml(deps)`."""
    return parse_spec(spec_yaml(deps, model=model))


# --- executors -------------------------------------------------------------------------------------------------

ANSWER = {"value": "ok"}


class InstantExecutor:
    """Returns at once: what remains of a step's time is the scheduler's own."""

    async def execute(self, call: StepCall) -> StepOutcome:
        """Answer `call` without awaiting anything."""
        return StepOutcome(output=ANSWER)


class SleepExecutor:
    """Holds each step for its drawn duration (a simulated model latency) with `asyncio.sleep`."""

    def __init__(self, durations: Mapping[str, float]) -> None:
        self.durations = durations

    async def execute(self, call: StepCall) -> StepOutcome:
        """Sleep for the step's duration, then answer."""
        await asyncio.sleep(self.durations[call.step_id])
        return StepOutcome(output=ANSWER)


def quiet_tracer(sinks: Sequence[TraceSink] = ()) -> Tracer:
    """A tracer with the given sinks and no secret to look for (redaction stays on, with its patterns)."""
    return Tracer("bench", sinks=sinks, redactor=Redactor())


async def schedule(
    spec: WorkflowSpec, executor: StepExecutor, tracer: Tracer | None = None, graph: Any = None
) -> dict[str, StepState]:
    """Run every step of `spec` through the real scheduler; fail loudly if a step did not complete."""
    scheduler = Scheduler(
        spec,
        graph if graph is not None else compile_graph(spec),
        executor,
        run_id="bench",
        inputs={},
        tracer=tracer or quiet_tracer(),
    )
    states = await scheduler.run()
    bad = {k: (s.status, s.error) for k, s in states.items() if s.status != "completed"}
    if bad:
        raise RuntimeError(f"benchmark run did not complete: {dict(list(bad.items())[:3])}")
    return states


# --- trace sinks -----------------------------------------------------------------------------------------------


class BenchSink:
    """A sink under test, with what it takes to close it and to measure what it wrote."""

    def __init__(self, sink: TraceSink, close: Callable[[], None], size: Callable[[], int] | None) -> None:
        self.sink = sink
        self.close = close
        self.size = size
        """Bytes the sink has written so far, where that is a file's size."""


def open_sink(kind: str, folder: Path, name: str) -> BenchSink | None:
    """A fresh sink of `kind` (``memory``, ``jsonl``, ``sqlite``) writing under `folder`.

    ``sqlite`` is the live index (`rolegraph.traces.index_writer`), with its writer thread.
    """
    if kind == "memory":
        memory = MemorySink()
        return BenchSink(memory, lambda: None, None)
    if kind == "jsonl":
        path = folder / f"{name}.jsonl"
        jsonl = JsonlSink(path)
        return BenchSink(jsonl, jsonl.close, lambda: path.stat().st_size)
    if kind == "sqlite":
        # The live index as a run writes it: a run's sink on the home's long-lived writer (its own thread).
        writer = IndexWriter(folder / f"{name}.sqlite")
        run = writer.open_run(folder / name)

        def close() -> None:
            run.close()  # waits for the writer to commit the run's last records
            if run.errors or writer.errors:
                raise RuntimeError(f"the SQLite trace index failed to write {run.errors + writer.errors} batches")

        def size() -> int:
            return sum(p.stat().st_size for p in folder.glob(f"{name}.sqlite*"))

        return BenchSink(run, close, size)
    raise ValueError(f"unknown sink kind {kind!r}")
