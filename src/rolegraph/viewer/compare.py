"""Two runs side by side for the viewer: each run's summary, the step-by-step diff and the first
divergence (both from `rolegraph.traces.diff`, as ``rolegraph trace diff`` prints them), and which
output files differ.

```python
data = compare(reader, "20261201-203803-36ea1b20874e", "20261201-204512-9f0c2a1d33b7")
data["diff"]["first_divergence"]["text"]   # step research_a, tool call 1: library_search {...} vs ...
```
"""

from __future__ import annotations

from typing import Any

from rolegraph.traces.diff import diff_runs
from rolegraph.viewer.data import RunReader

__all__ = ["compare"]


def _summary(view: dict[str, Any]) -> dict[str, Any]:
    total = view["usage"]["total"]
    return {
        "run_id": view["run_id"],
        "workflow": view["workflow"],
        "status": view["status"],
        "lineage": view["lineage"],
        "live": view["live"],
        "started": view["started"],
        "duration_s": view["duration_s"],
        "input_tokens": total["input_tokens"],
        "output_tokens": total["output_tokens"],
        "cost_usd": total["cost_usd"],
        "calls": total["calls"],
        "steps": {step: info["status"] for step, info in view["steps"].items()},
        "step_cost": {step: usage["cost_usd"] for step, usage in view["usage"]["by_step"].items()},
        "inputs": view["inputs"],
        "error": view["error"],
    }


def compare(reader: RunReader, run_a: str, run_b: str) -> dict[str, Any] | None:
    """Runs `run_a` and `run_b` compared, as JSON data; None if either run is missing."""
    dir_a, dir_b = reader.run_dir(run_a), reader.run_dir(run_b)
    view_a, view_b = reader.view(run_a), reader.view(run_b)
    if dir_a is None or dir_b is None or view_a is None or view_b is None:
        return None
    files_a, files_b = reader.outputs(run_a) or {}, reader.outputs(run_b) or {}
    outputs = []
    for name in dict.fromkeys([*files_a, *files_b]):
        a, b = files_a.get(name), files_b.get(name)
        same = None if a is None or b is None else a.read_bytes() == b.read_bytes()
        outputs.append({"name": name, "a": a is not None, "b": b is not None, "same": same})
    return {
        "a": _summary(view_a),
        "b": _summary(view_b),
        "diff": diff_runs(dir_a, dir_b, reader.prices).as_dict(),
        "outputs": outputs,
    }
