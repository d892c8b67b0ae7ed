"""Scenario 8, Ray: many scripted runs and an embedded-model fan-out in one process and on a Ray cluster
of one and of two nodes on this machine, and what one step costs through Ray.

Each configuration runs in a fresh driver process (Ray is set up once per process):

- ``local``: N runs of a three-step scripted workflow (``a -> b, c``), at most C at once, in the
  driver's own process;
- ``ray-1``, ``ray-2``: the same runs from a driver joined (``RAY_ADDRESS``) to a
  `rolegraph.distributed.local_nodes.LocalNodes` cluster of one or two nodes, one CPU each, every
  step a Ray task.

One warm-up run comes first in each (connecting, the first workers). Throughput is runs per second of
wall time.

The fan-out: one run of a ``for_each`` over F items on the embedded model (``local``, greedy, a fixed
seed, at most `FANOUT_TOKENS` tokens an answer, a failed item skipped), at most 8 items at once, after
a warm-up run of 4 items (which loads
the model: in the driver's process locally, in each node's model actor on Ray). Its outputs are
compared across the configurations (a digest each).

Each configuration records the load average (1 minute) when its driver started and ended: the machine
is shared, and every figure means little without it.

The step cost is the wall time per step of a chain of S function steps (one run, each step
waiting for the last), through Ray on one node and in the driver's process; the difference is what
Ray adds to a step on the critical path.

The prediction for N machines fits Amdahl's law to the one- and two-node figures: the share of the
work that did not spread (the driver, which takes every step's records in) stays, the rest divides
by N. Both nodes here share this machine's two cores (and other users' load), so the fit is a floor
for separate machines, not a measurement of them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import Level

RUNS: dict[Level, int] = {"smoke": 4, "quick": 200, "full": 200}
FANOUT: dict[Level, int] = {"smoke": 0, "quick": 16, "full": 64}
FANOUT_TOKENS = 64
"""At most this many tokens an answer (32 cut some answers short: a 135M model's JSON runs long)."""
"""Items of the embedded-model fan-out (none at smoke: the tests' smoke run loads no model)."""
CONCURRENCY = 8
CHAIN: dict[Level, int] = {"smoke": 4, "quick": 10, "full": 20}
NODES = {"ray-1": 1, "ray-2": 2}
PREDICT_FOR = (1, 2, 4, 8, 16)

WORKFLOW = """\
rolegraph: 1
name: ray_bench
models: {default: "scripted:script.yaml"}
roles:
  worker: {instructions: Do the task., output: {value: string}}
settings: {max_concurrency: 4}
steps:
  a: {role: worker, task: go}
  b: {role: worker, task: go, depends_on: [a]}
  c: {role: worker, task: go, depends_on: [a]}
"""
SCRIPT = "- {final: {value: ok}}\n" * 3
STEPS = "async def step(n: int) -> dict:\n    return {'n': n}\n"
FANOUT_YAML = """\
rolegraph: 1
name: ray_fanout
inputs:
  items: {type: list}
models:
  default: {model: local, temperature: 0, seed: 42, max_tokens: FANOUT_TOKENS}
roles:
  namer: {instructions: Answer with one word., thought_chars: 0, output: {word: string}}
steps:
  name:
    role: namer
    task: "A word for the number {{ n }}."
    for_each: {items: inputs.items, as: n, max_concurrency: 8, on_item_error: skip}
""".replace("FANOUT_TOKENS", str(FANOUT_TOKENS))


def chain_yaml(length: int) -> str:
    """A workflow of `length` function steps, each depending on the one before."""
    lines = ["rolegraph: 1", "name: ray_chain", "steps:"]
    for i in range(length):
        after = f", depends_on: [s{i - 1}]" if i else ""
        lines.append(f"  s{i}: {{function: 'bench_steps:step', args: {{n: {i}}}{after}}}")
    return "\n".join(lines) + "\n"


def run(level: Level = "quick") -> dict[str, Any]:
    """Throughput of N scripted runs locally and on one and two Ray nodes; the cost of a step through Ray."""
    from rolegraph.distributed.local_nodes import LocalNodes

    runs, length, items = RUNS[level], CHAIN[level], FANOUT[level]
    with tempfile.TemporaryDirectory(prefix="rg-bench-ray-", dir="/tmp") as tmp:
        folder = Path(tmp)
        (folder / "wf.yaml").write_text(WORKFLOW)
        (folder / "script.yaml").write_text(SCRIPT)
        (folder / "chain.yaml").write_text(chain_yaml(length))
        (folder / "bench_steps.py").write_text(STEPS)
        (folder / "fanout.yaml").write_text(FANOUT_YAML)
        configs = {"local": _measure(folder, runs, items, {})}
        for name, count in NODES.items():
            nodes_dir = folder / name
            nodes_dir.mkdir()
            nodes = LocalNodes(nodes_dir, count=count)
            try:
                configs[name] = _measure(folder, runs, items, nodes.env())
            finally:
                nodes.stop()
    for figures in configs.values():
        figures["runs_per_s"] = figures["completed"] / figures["seconds"]
        figures["ms_per_step"] = figures["seconds"] / max(1, figures["completed"] * 3) * 1000
    step_local = configs["local"]["chain_s"] / length * 1000
    step_ray = configs["ray-1"]["chain_s"] / length * 1000
    return {
        "runs": runs,
        "concurrency": CONCURRENCY,
        "steps_per_run": 3,
        "configs": configs,
        "step": {
            "steps": length,
            "local_ms_per_step": step_local,
            "ray_ms_per_step": step_ray,
            "overhead_ms_per_step": step_ray - step_local,
        },
        "prediction": _predict(configs["ray-1"]["runs_per_s"], configs["ray-2"]["runs_per_s"]),
        "fanout": _fanout(configs, items),
    }


def _fanout(configs: dict[str, Any], items: int) -> dict[str, Any] | None:
    """The fan-out's figures per configuration, whether their outputs agree, and the N-node prediction."""
    if not items:
        return None
    rows = {name: c.pop("fanout") for name, c in configs.items()}
    for row in rows.values():
        row["items_per_s"] = row["completed_items"] / row["seconds"] if row["seconds"] else None
    one, two = rows["ray-1"]["items_per_s"], rows["ray-2"]["items_per_s"]
    return {
        "items": items,
        "max_tokens": FANOUT_TOKENS,
        "configs": rows,
        "same_outputs": len({row["digest"] for row in rows.values()}) == 1,
        "prediction": _predict(one, two, unit="items_per_s") if one and two else None,
    }


def _predict(one: float, two: float, unit: str = "runs_per_s") -> dict[str, Any]:
    """Amdahl's law through the one- and two-node throughputs: throughput (`unit`) on N nodes."""
    speedup = two / one
    serial = min(1.0, max(0.0, 2 / speedup - 1))
    return {
        "speedup_2_nodes": speedup,
        "serial_fraction": serial,
        unit: {str(n): one / (serial + (1 - serial) / n) for n in PREDICT_FOR},
    }


def _measure(folder: Path, runs: int, items: int, env: dict[str, str]) -> dict[str, Any]:
    """One configuration, in a fresh driver process."""
    environ = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    where = "ray" if env else "local"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.ray_cluster", str(folder), str(runs), str(items), where],
        env={**environ, "ROLEGRAPH_HOME": str(folder / "home"), **env},
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"the {'ray' if env else 'local'} driver failed:\n{proc.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return figures


async def _drive(folder: Path, runs: int, items: int, executor: str) -> dict[str, Any]:
    """The driver: a warm-up run, N runs at most `CONCURRENCY` at once, the chain once, then the fan-out."""
    from rolegraph.workflow import Workflow

    load_start = os.getloadavg()[0]
    wf, chain = Workflow.load(folder / "wf.yaml"), Workflow.load(folder / "chain.yaml")
    factory = wf.executor(executor)
    await wf.run({}, executor=factory)
    slots = asyncio.Semaphore(CONCURRENCY)

    async def one() -> tuple[str, str | None]:
        async with slots:
            result = await wf.run({}, executor=factory)
            return result.status, result.error

    start = time.perf_counter()
    outcomes = await asyncio.gather(*(one() for _ in range(runs)))
    seconds = time.perf_counter() - start
    statuses = [status for status, _ in outcomes]
    errors = sorted({(error or status)[:300] for status, error in outcomes if status != "completed"})
    await chain.run({}, executor=factory)  # warm-up of the function step's import
    start = time.perf_counter()
    chained = await chain.run({}, executor=factory)
    chain_s = time.perf_counter() - start
    figures = {
        "seconds": seconds,
        "completed": statuses.count("completed"),
        "chain_s": chain_s,
        "chain_status": chained.status,
        "errors": errors[:5],
        "load_start": load_start,
        "load_end": os.getloadavg()[0],
    }
    if items:
        figures["fanout"] = await _fan_out(Workflow.load(folder / "fanout.yaml"), items, executor)
    return figures


async def _fan_out(wf: Any, items: int, executor: str) -> dict[str, Any]:
    """A warm-up fan-out of 4 items (the model loads), then one of `items`: time, items done, outputs' digest."""
    factory = wf.executor(executor)
    await wf.run({"items": list(range(4))}, executor=factory)
    load_start = os.getloadavg()[0]
    start = time.perf_counter()
    result = await wf.run({"items": list(range(items))}, executor=factory)
    seconds = time.perf_counter() - start
    state = result.steps.get("name")
    answers = (state.output if state is not None else None) or []
    return {
        "seconds": seconds,
        "status": result.status,
        "error": (result.error or "")[:300] or None,
        "completed_items": len(answers) if result.status == "completed" else 0,
        "digest": hashlib.sha256(json.dumps(answers, sort_keys=True).encode()).hexdigest()[:16],
        "tokens": result.usage.input_tokens + result.usage.output_tokens,
        "load_start": load_start,
        "load_end": os.getloadavg()[0],
    }


if __name__ == "__main__":
    folder, runs, items, where = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    print(json.dumps(asyncio.run(_drive(folder, runs, items, where))))
