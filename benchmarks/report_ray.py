"""The report's part for scenario 10, Ray: its RESULTS.md section and the README's cluster figures."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

NAMES = {"local": "one process", "ray-1": "Ray, 1 node", "ray-2": "Ray, 2 nodes"}
README_START = "<!-- benchmarks:ray (written by `python -m benchmarks` from results.json; do not edit) -->"
README_END = "<!-- /benchmarks:ray -->"


def _num(value: Any, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _load(row: Mapping[str, Any]) -> str:
    return f"{_num(row.get('load_start'))} → {_num(row.get('load_end'))}"


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    return [*lines, *("| " + " | ".join(row) + " |" for row in rows), ""]


def _prediction(predicted: Mapping[str, Any] | None, unit: str, label: str) -> list[str]:
    if predicted is None:
        return []
    nodes = list(predicted[unit])
    return [
        f"Two nodes against one: {_num(predicted['speedup_2_nodes'], 2)}x; Amdahl's law through these two points "
        f"(serial share {_num(predicted['serial_fraction'], 2)}) predicts, for N nodes (a floor: here both nodes "
        "share two cores):",
        "",
        *_table(["nodes", *nodes], [[label, *[_num(predicted[unit][n], 2) for n in nodes]]]),
    ]


def _runs(fig: Mapping[str, Any]) -> list[str]:
    rows = [
        [
            NAMES.get(name, name),
            str(c["completed"]),
            _num(c["seconds"], 2),
            _num(c["runs_per_s"], 2),
            _num(c.get("ms_per_step"), 1),
            _load(c),
        ]
        for name, c in fig["configs"].items()
    ]
    configs = fig["configs"].items()
    failed = [f"{fig['runs'] - c['completed']} on {n}" for n, c in configs if c["completed"] < fig["runs"]]
    prediction = (
        [f"Runs that did not complete: {', '.join(failed)}; no prediction is drawn from these figures.", ""]
        if failed
        else _prediction(fig["prediction"], "runs_per_s", "runs / s")
    )
    return [*_table(["where", "runs completed", "total s", "runs / s", "ms / step", "load"], rows), *prediction]


def _agreement(fan: Mapping[str, Any]) -> str:
    """Whether the fan-out completed everywhere, with the same outputs."""
    failed = [f"{NAMES.get(n, n)}: {c['error']}" for n, c in fan["configs"].items() if c["status"] != "completed"]
    if failed:
        return "it did not complete (" + "; ".join(failed) + ")"
    return "the same outputs everywhere" if fan["same_outputs"] else "outputs that differ between configurations"


def _fanout(fig: Mapping[str, Any]) -> list[str]:
    fan = fig.get("fanout")
    if not fan:
        return ["The embedded-model fan-out is not run at this size.", ""]
    rows = [
        [
            NAMES.get(name, name),
            f"{c['completed_items']} of {fan['items']}",
            _num(c["seconds"], 1),
            _num(c["items_per_s"], 2),
            str(c["tokens"]),
            _load(c),
        ]
        for name, c in fan["configs"].items()
    ]
    return [
        f"A `for_each` over {fan['items']} items on the embedded model (greedy, seed 42, at most "
        f"{fan.get('max_tokens', 32)} tokens an answer, 8 items at once), after a warm-up that loads the model: "
        f"{_agreement(fan)}.",
        "",
        *_table(["where", "items done", "s", "items / s", "tokens", "load"], rows),
        *_prediction(fan.get("prediction"), "items_per_s", "items / s"),
    ]


def section(fig: Mapping[str, Any]) -> list[str]:
    """Section 10 of RESULTS.md."""
    step = fig["step"]
    return [
        f"## 10. Ray ({fig['runs']} scripted runs of {fig['steps_per_run']} steps, "
        f"at most {fig['concurrency']} at once)",
        "",
        "Each configuration is a fresh driver process; the Ray nodes are `LocalNodes` on 127.0.0.1, one CPU each,",
        "sharing this machine's cores (and other users' load: `load` is the 1-minute load average when the",
        "configuration's driver started and when it ended).",
        "",
        *_runs(fig),
        f"One step through Ray (a chain of {step['steps']} function steps, one node): "
        f"{_num(step['ray_ms_per_step'], 1)} ms per step against {_num(step['local_ms_per_step'], 2)} ms in one "
        f"process: Ray adds {_num(step['overhead_ms_per_step'], 1)} ms to each step on the critical path.",
        "",
        *_fanout(fig),
    ]


def _predicted(predicted: Mapping[str, Any] | None, unit: str, label: str) -> str:
    """One sentence: two nodes against one, and what Amdahl's law through them predicts for 4 and 8."""
    if not predicted:
        return ""
    at = predicted[unit]
    return (
        f" Two nodes gave {_num(predicted['speedup_2_nodes'], 2)}x one node; Amdahl's law through the two (serial"
        f" share {_num(predicted['serial_fraction'], 2)}) predicts {_num(at['4'], 2)} {label} on 4 machines and"
        f" {_num(at['8'], 2)} on 8."
    )


def readme_block(fig: Mapping[str, Any]) -> str:
    """The README's measured figures for a cluster, between their markers."""
    configs, step = fig["configs"], fig["step"]
    text = [
        f"{fig['runs']} scripted 3-step runs, at most {fig['concurrency']} at once: "
        + "; ".join(
            f"{NAMES[name]} {_num(c['seconds'], 2)} s ({_num(c['runs_per_s'], 2)} runs/s, load {_load(c)})"
            for name, c in configs.items()
        )
        + ". One step through Ray costs "
        f"{_num(step['ray_ms_per_step'], 1)} ms against {_num(step['local_ms_per_step'], 2)} ms in one process "
        f"({_num(step['overhead_ms_per_step'], 1)} ms added per step on the critical path)."
        + _predicted(fig.get("prediction"), "runs_per_s", "runs/s")
    ]
    fan = fig.get("fanout")
    if fan:
        text.append(
            f"A {fan['items']}-item fan-out on the embedded model: "
            + "; ".join(
                f"{NAMES[name]} {_num(c['seconds'], 1)} s ({c['completed_items']} items, load {_load(c)})"
                for name, c in fan["configs"].items()
            )
            + f"; {_agreement(fan)}."
            + _predicted(fan.get("prediction"), "items_per_s", "items/s")
        )
    return "\n".join([README_START, "", *text, README_END])


def update_readme(results: Mapping[str, Any], readme: Path) -> bool:
    """Replace the cluster figures between their markers in `readme`; False without markers or figures."""
    text = readme.read_text(encoding="utf-8")
    start, end = text.find(README_START), text.find(README_END)
    ray = results.get("scenarios", {}).get("ray")
    if start < 0 or end < start or not ray:
        return False
    block = readme_block(ray["figures"])
    readme.write_text(text[:start] + block + text[end + len(README_END) :], encoding="utf-8")
    return True
