"""Benchmarks: the engine never slows the research.

``uv run python -m benchmarks`` runs every scenario and regenerates
``benchmarks/RESULTS.md``, ``benchmarks/results/results.json`` and the plots;
``--quick`` is the few-minute run CI uses (it checks the benchmarks run, not
their numbers). Each scenario module has ``run(level) -> figures``, where the
level is ``smoke``, ``quick`` or ``full``; figures are plain JSON data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from benchmarks import (
    batched_decoding,
    concurrent_runs,
    graph_scale,
    langgraph_compare,
    local_model,
    many_runs,
    model_cache,
    overhead,
    parallelism,
    ray_cluster,
    trace_throughput,
    whole_runs,
)
from benchmarks._common import Level

Scenario = Callable[[Level], dict[str, Any]]

SCENARIOS: dict[str, Scenario] = {
    "overhead": overhead.run,
    "parallelism": parallelism.run,
    "graph_scale": graph_scale.run,
    "concurrent_runs": concurrent_runs.run,
    "trace_throughput": trace_throughput.run,
    "local_model": local_model.run,
    "langgraph_compare": langgraph_compare.run,
    "model_cache": model_cache.run,
    "batched_decoding": batched_decoding.run,
    "ray": ray_cluster.run,
    "whole_runs": whole_runs.run,
    "many_runs": many_runs.run,
}
"""Every scenario, by the name ``--only`` takes, in the order they run."""

__all__ = ["SCENARIOS", "Scenario"]
