"""Benchmark output: ``results.json`` (every figure, with machine info), ``RESULTS.md`` and PNG plots."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from benchmarks import batched_decoding, many_runs, report_ray, report_whole
from benchmarks._common import loglog_slope

PACKAGES = ("rolegraph", "pydantic", "networkx", "structlog", "langgraph", "matplotlib", "llama-cpp-python")


def _first_line(path: str, prefix: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def machine_info() -> dict[str, Any]:
    """What the figures were measured on."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu_count": os.cpu_count(),
        "cpu": _first_line("/proc/cpuinfo", "model name") or platform.processor() or None,
        "memory": _first_line("/proc/meminfo", "MemTotal"),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": versions,
    }


def merge(previous: Mapping[str, Any] | None, scenarios: Mapping[str, Any]) -> dict[str, Any]:
    """New results: these scenarios' figures over the previous file's others (for ``--only``)."""
    kept = dict(previous.get("scenarios", {})) if previous else {}
    kept.update(scenarios)
    return {
        "generated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "scenarios": kept,
    }


def _figures(results: Mapping[str, Any], name: str) -> Any:
    entry = results.get("scenarios", {}).get(name)
    return None if entry is None else entry["figures"]


def _target(
    name: str, limit: str, measured: float | None, unit: str, met: bool | None, note: str = ""
) -> dict[str, Any]:
    return {"target": name, "limit": limit, "measured": measured, "unit": unit, "met": met, "note": note}


def targets(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each target of the benchmarks issue with its measured value and whether it is met (None: not measured)."""
    rows = []
    overhead = _figures(results, "overhead")
    load = results.get("scenarios", {}).get("overhead", {}).get("load_average")
    for kind, limit in (("untraced", 50.0), ("jsonl", 120.0)):
        worst = max((r[f"engine_{kind}_us"] for r in overhead["rows"]), default=None) if overhead else None
        label = "tracing off" if kind == "untraced" else "JSONL tracing"
        cpu = [r[f"engine_{kind}_cpu_us"] for r in overhead["rows"] if f"engine_{kind}_cpu_us" in r] if overhead else []
        note = f"CPU time per step, worst: {max(cpu):,.0f} µs" if cpu else ""
        if load:
            note += f"{'; ' if note else ''}load average {load[0]:g} → {load[1]:g}"
        rows.append(
            _target(
                f"engine overhead per step, {label} (worst chain length)",
                f"≤ {limit:g} µs",
                worst,
                "µs",
                None if worst is None else worst <= limit,
                note,
            )
        )
    parallel = _figures(results, "parallelism")
    if parallel:
        worst_shape = max([*parallel["dags"], *parallel["fan_out"]], key=lambda r: r["ratio"])
        floor = max(r["asyncio_ratio"] for r in [*parallel["dags"], *parallel["fan_out"]])
        rows.append(
            _target(
                "makespan / critical path, every shape (worst)",
                "≤ 1.02",
                worst_shape["ratio"],
                "x",
                worst_shape["ratio"] <= 1.02,
                f"worst: {worst_shape.get('shape') or 'fan-out ' + str(worst_shape.get('width'))}; "
                f"bare asyncio on the same graphs: up to {floor:.3f}",
            )
        )
    else:
        rows.append(_target("makespan / critical path, every shape (worst)", "≤ 1.02", None, "x", None))
    compare = _figures(results, "langgraph_compare")
    # A ratio is None (or 0) where a time was below the timer's resolution: no speed-up can be read from it.
    measured = [r for r in compare["chain"] if r["scheduler_ratio"] and r["engine_ratio"]] if compare else []
    if measured:
        speedup = min(1 / r["scheduler_ratio"] for r in measured)
        engine_speedup = min(1 / r["engine_ratio"] for r in measured)
        rows.append(
            _target(
                "per-step overhead, LangGraph / rolegraph (trivial node work, worst)",
                "≥ 5x",
                speedup,
                "x",
                speedup >= 5,
                f"full agent engine instead of the scheduler alone: {engine_speedup:.2f}x",
            )
        )
    else:
        rows.append(_target("per-step overhead, LangGraph / rolegraph", "≥ 5x", None, "x", None))
    runs = _figures(results, "concurrent_runs")
    label = "10,000 concurrent runs, LangGraph time / rolegraph time, with less memory"
    if runs and "ratios" in runs:
        whole = [r for r in runs["ratios"] if r["time_ratio"] is not None][-1]
        last = runs["ratios"][-1]
        speedup = 1 / whole["time_ratio"]
        ours = runs["variants"]["rolegraph"][-1]
        theirs = next(r for r in runs["variants"]["langgraph"] if r["runs"] == whole["runs"])
        engine = runs["variants"]["rolegraph_engine"][-1]
        rows.append(
            _target(
                label,
                "≥ 10x",
                speedup,
                "x",
                speedup >= 10 and whole["memory_ratio"] < 1 and whole["runs"] >= 10000,
                f"whole runs at {whole['runs']}: {ours['tracemalloc_kib_per_run']:.0f} KiB/run vs LangGraph "
                f"{theirs['tracemalloc_kib_per_run']:.0f}, vs LangGraph with InMemorySaver "
                f"{1 / whole['checkpointed_time_ratio']:.2f}x; engine without run folder at {last['runs']}: "
                f"{1 / last['engine_time_ratio']:.2f}x, {engine['tracemalloc_kib_per_run']:.0f} KiB/run",
            )
        )
    else:
        rows.append(_target(label, "≥ 10x", None, "x", None))
    scale = _figures(results, "graph_scale")
    if scale:
        fitted = [scale[shape]["time_exponent"]["compile"] for shape in ("chain", "layered")]
        exponent = None if None in fitted else max(fitted)
        largest = max(r["n"] for shape in ("chain", "layered") for r in scale[shape]["rows"])
        rows.append(
            _target(
                "compile + validate growth exponent (log-log, worst shape)",
                "≈ 1 (≤ 1.15) to 10,000 steps",
                exponent,
                "",
                None if exponent is None else exponent <= 1.15 and largest >= 9000,
                f"measured up to {largest} steps",
            )
        )
    else:
        rows.append(_target("compile + validate growth exponent", "≈ 1 to 10,000 steps", None, "", None))
    rows.append(_load_target(scale, results.get("scenarios", {}).get("graph_scale", {}).get("load_average")))
    rows += report_whole.targets(_figures(results, "whole_runs"))
    local = _figures(results, "local_model")
    label = "local provider tokens/s vs raw llama-cpp-python: framework's share (worst case)"
    if local:
        cases = local["cases"]
        worst = max(cases.values(), key=lambda c: c["framework_share_pct"])
        note = "; ".join(
            f"{name}: {c['provider']['tokens_per_s']:.1f} vs {c['raw']['tokens_per_s']:.1f} tokens/s"
            for name, c in cases.items()
        )
        share = worst["framework_share_pct"]
        rows.append(_target(label, "≤ 3%", share, "%", share <= 3.0, f"{note} ({local['max_tokens']} max tokens)"))
    else:
        rows.append(_target(label, "≤ 3%", None, "%", None))
    rows.append(batched_decoding.target(_figures(results, "batched_decoding")))
    rows.append(many_runs.target(_figures(results, "many_runs")))
    return rows


def _load_target(scale: Mapping[str, Any] | None, load: list[float] | None = None) -> dict[str, Any]:
    label = "10,000-step workflow: parse + compile + validate (worst shape)"
    largest = [shape["rows"][-1] for shape in (scale or {}).values() if shape["rows"][-1].get("load_s") is not None]
    if not largest or max(r["n"] for r in largest) < 9000:
        return _target(label, "< 1 s", None, "s", None)
    worst = max(largest, key=lambda r: r["load_s"])
    cpu = max(r["load_cpu_s"] for r in largest)
    note = f"CPU time {cpu:.2f} s" + (f"; load average {load[0]:g} → {load[1]:g}" if load else "")
    return _target(label, "< 1 s", worst["load_s"], "s", worst["load_s"] < 1, note)


# --- markdown --------------------------------------------------------------------------------------------------


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    return str(value)


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def targets_table(results: Mapping[str, Any]) -> list[str]:
    """The headline table: each target, its measured value, met or not."""
    rows = []
    for t in targets(results):
        met = "not measured" if t["met"] is None else ("met" if t["met"] else "**not met**")
        digits = 2 if t["unit"] in ("x", "", "s") else 1
        measured = _num(t["measured"], digits) + (f" {t['unit']}" if t["measured"] is not None and t["unit"] else "")
        rows.append([t["target"], t["limit"], measured, met, t["note"]])
    return _table(["target", "limit", "measured", "status", "note"], rows)


def _overhead_md(fig: Any) -> list[str]:
    rows = [
        [
            str(r["n"]),
            _num(r["scheduler_us"]),
            _num(r["engine_untraced_us"]),
            _num(r["engine_jsonl_us"]),
            _num(r["engine_sqlite_us"]),
        ]
        for r in fig["rows"]
    ]
    kinds = ("untraced", "jsonl", "sqlite")
    gcs = [f"N = {r['n']}: " + " / ".join(str(r.get(f"engine_{k}_full_gcs", "-")) for k in kinds) for r in fig["rows"]]
    counted = any("engine_untraced_full_gcs" in r for r in fig["rows"])  # figures measured before they were counted
    return [
        "## 1. Per-step overhead (µs per step, chain of N steps, instant model)",
        "",
        f"Baseline: creating and awaiting one asyncio task takes {_num(fig['asyncio_task_us'], 2)} µs.",
        "",
        *_table(["N", "scheduler only", "engine, no sinks", "engine + JSONL", "engine + SQLite"], rows),
        *(
            [
                "Full garbage collections during each engine figure's counted runs (no sinks / JSONL / SQLite): "
                + "; ".join(gcs)
                + ". Each adds tens of milliseconds to its run: a median at 1,000 steps moves with how many fell.",
                "",
            ]
            if counted
            else []
        ),
    ]


def _parallelism_md(fig: Any) -> list[str]:
    low, high = fig["duration_ms"]
    fan = [
        [
            str(r["width"]),
            _num(r["critical_path_ms"]),
            _num(r["makespan_ms"]),
            _num(r["ratio"], 3),
            _num(r["asyncio_ratio"], 3),
        ]
        for r in fig["fan_out"]
    ]
    dags = [
        [
            r["shape"],
            str(r["steps"]),
            _num(r["critical_path_ms"]),
            _num(r["makespan_ms"]),
            _num(r["ratio"], 3),
            _num(r["asyncio_ratio"], 3),
        ]
        for r in fig["dags"]
    ]
    return [
        f"## 2. Parallelism (step durations {low:g}-{high:g} ms, seed {fig['seed']})",
        "",
        "Makespan / critical path: 1.0 is the physical limit. *Bare asyncio* runs the same graph as one",
        "task per step awaiting its inputs' futures: the event loop's own floor (timer wake-ups).",
        "",
        *_table(["fan-out width", "critical path (ms)", "makespan (ms)", "makespan / CP", "bare asyncio / CP"], fan),
        *_table(
            ["DAG shape", "steps", "critical path (ms)", "makespan (ms)", "makespan / CP", "bare asyncio / CP"], dags
        ),
    ]


def _scale_md(fig: Any) -> list[str]:
    lines = ["## 3. Graph scale (per node; exponent of a log-log fit of total time, 1.0 = linear)", ""]
    for shape in ("chain", "layered"):
        rows = [
            [str(r["n"])]
            + [_num(r[f"{p}_us_per_node"]) for p in ("parse", "compile", "schedule")]
            + [_num(r[f"{p}_bytes_per_node"] / 1024, 2) for p in ("parse", "compile", "schedule")]
            for r in fig[shape]["rows"]
        ]
        exp = fig[shape]["time_exponent"]
        rows.append(["exponent, all sizes", *(_num(exp[p], 2) for p in ("parse", "compile", "schedule")), "", "", ""])
        last, before = fig[shape]["rows"][-1], fig[shape]["rows"][-2]
        local = [
            loglog_slope([before["n"], last["n"]], [r[f"{p}_us_per_node"] * r["n"] for r in (before, last)])
            for p in ("parse", "compile", "schedule")
        ]
        rows.append([f"exponent, {before['n']} to {last['n']}", *(_num(e, 2) for e in local), "", "", ""])
        headers = [
            "steps",
            "parse µs",
            "compile+validate µs",
            "schedule µs",
            "parse KiB",
            "compile KiB",
            "schedule KiB",
        ]
        lines += [f"**{shape}**", "", *_table(headers, rows)]
    return lines


def _runs_md(fig: Any) -> list[str]:
    names = {
        "rolegraph": "rolegraph, whole runs",
        "rolegraph_engine": "rolegraph engine, no run folder",
        "langgraph": "LangGraph",
        "langgraph_checkpointed": "LangGraph + InMemorySaver",
    }
    rows = [
        [names.get(variant, variant), str(r["runs"]), _num(r["total_s"], 2), _num(r["ms_per_run"], 2),
         _num(r["tracemalloc_peak_mib"]), _num(r["tracemalloc_kib_per_run"]), _num(r["rss_growth_kib_per_run"])]
        for variant, variant_rows in fig["variants"].items()
        for r in variant_rows
    ]  # fmt: skip
    ratios = [
        [str(r["runs"]), _num(r["time_ratio"], 2), _num(r["memory_ratio"], 2), _num(r["engine_time_ratio"], 2),
         _num(r["engine_memory_ratio"], 2), _num(r["checkpointed_time_ratio"], 2)]
        for r in fig["ratios"]
    ]  # fmt: skip
    parts = fig["breakdown"]
    split = [[part, _num(ms, 2)] for part, ms in parts["parts_ms_per_run"].items()]
    return [
        f"## 4. Concurrent runs ({fig['steps_per_run']} steps per run, all started at once in one process)",
        "",
        "Whole runs write a run folder (JSONL trace, a checkpoint per step, run.json) and index it in SQLite;",
        "LangGraph keeps everything in memory. Each row runs in a fresh process (RSS growth is its own).",
        "",
        *_table(
            ["variant", "runs", "total s", "ms / run", "tracemalloc peak MiB", "KiB / run", "RSS growth KiB / run"],
            rows,
        ),
        "Ratios rolegraph / LangGraph (below 1: rolegraph is faster or smaller):",
        "",
        *_table(
            ["runs", "whole runs: time", "memory", "engine: time", "engine: memory", "whole runs / LangGraph+saver"],
            ratios,
        ),
        f"Where a whole run's time goes (cProfile of {parts['runs']} concurrent runs, "
        f"{_num(parts['profiled_ms_per_run'], 2)} ms per run under the profiler; {parts['note']}):",
        "",
        *_table(["part", "ms per run"], split),
    ]


def _local_md(fig: Any) -> list[str]:
    rows = [
        [case, str(c["prompt_tokens"]), _num(c["provider"]["tokens"], 0), _num(c["provider"]["tokens_per_s"]),
         _num(c["raw"]["tokens_per_s"]), _num(c["ratio"], 3), _num(c["framework_share_pct"], 1)]
        for case, c in fig["cases"].items()
    ]  # fmt: skip
    return [
        f"## 6. Embedded model ({fig['model']}, at most {fig['max_tokens']} tokens, median of {fig['repeats']} "
        "interleaved calls)",
        "",
        "`LlamaCppModel.complete` against `Llama.create_completion` on the same prompt, settings and seed;",
        "*constrained* decodes under the grammar of an output schema on both sides.",
        "",
        *_table(
            ["case", "prompt tokens", "tokens", "provider tokens/s", "raw tokens/s", "ratio", "framework share %"],
            rows,
        ),
    ]


def _trace_md(fig: Any) -> list[str]:
    rows = [
        [kind, _num(v["spans_per_s"], 0), _num(v["bytes_per_span"], 0)] if v else [kind, "unavailable", "—"]
        for kind, v in fig["sinks"].items()
    ]
    return [
        f"## 5. Trace throughput ({fig['spans']} chat-like spans, start and end records each)",
        "",
        *_table(["sink", "spans / s", "bytes / span"], rows),
    ]


def _langgraph_md(fig: Any) -> list[str]:
    chain = [
        [
            str(r["n"]),
            _num(r["langgraph_us"]),
            _num(r["rolegraph_scheduler_us"]),
            _num(r["rolegraph_engine_us"]),
            _num(r["scheduler_ratio"], 2),
            _num(r["engine_ratio"], 2),
        ]
        for r in fig["chain"]
    ]
    spans = [
        [r["graph"], str(r["steps"]), _num(r["rolegraph_ratio"], 3), _num(r["langgraph_ratio"], 3), _num(r["ratio"], 3)]
        for r in fig["makespan"]
    ]
    return [
        "## 7. Side by side with LangGraph (ratios rolegraph / LangGraph; below 1: rolegraph is faster)",
        "",
        *_table(
            [
                "chain N",
                "LangGraph µs/step",
                "rolegraph scheduler µs/step",
                "rolegraph engine µs/step",
                "scheduler ratio",
                "engine ratio",
            ],
            chain,
        ),
        *_table(["graph", "steps", "rolegraph makespan / CP", "LangGraph makespan / CP", "ratio"], spans),
    ]


def _cache_md(fig: Any) -> list[str]:
    embedded = fig["embedded"]
    scripted, cached = fig["scripted_us_per_turn"], fig["cached_us_per_turn"]
    rows = [
        ["scripted model (instant)", _num(scripted), "1.0"],
        ["answered by the cache", _num(cached), _num(cached / scripted, 2)],
    ]
    if embedded is not None:
        us = embedded["ms_per_turn"] * 1000
        rows.append([f"embedded SmolLM2 ({embedded['tokens']} tokens)", _num(us, 0), _num(us / scripted, 0)])
    lines = [
        f"## 8. Model-call cache (one agent turn, median of {fig['repeats']})",
        "",
        "A planner's turn answered by a `ScriptedModel`, by the model-call cache (a warmed `RunCache` on a",
        "file), and by the embedded model; the cache's own `lookup` (key, read, hit count) and `keep`",
        "(redaction, write, size check) per call.",
        "",
        *_table(["the turn's model call", "µs per turn", "ratio to scripted"], rows),
        f"A hit costs {_num(cached - scripted)} µs more than an instant scripted call: the request's digest "
        f"({_num(fig['digest_us'])} µs for an agent's first call, which a durable run computes for its journal "
        "anyway), `lookup` "
        f"({_num(fig['lookup_us'])} µs) and rebuilding the answer. `keep` after a call made: "
        f"{_num(fig['keep_us'])} µs.",
    ]
    if embedded is not None:
        lines.append(f"The embedded model's turn takes {_num(fig['embedded_over_cached'], 0)} times a cached one.")
    return [*lines, ""]


SECTIONS: dict[str, Callable[[Any], list[str]]] = {
    "overhead": _overhead_md,
    "parallelism": _parallelism_md,
    "graph_scale": _scale_md,
    "concurrent_runs": _runs_md,
    "trace_throughput": _trace_md,
    "local_model": _local_md,
    "langgraph_compare": _langgraph_md,
    "model_cache": _cache_md,
    "batched_decoding": batched_decoding.markdown,
    "ray": report_ray.section,
    "whole_runs": report_whole.section,
    "many_runs": many_runs.markdown,
}


def _when(entry: Mapping[str, Any]) -> str:
    """How long a scenario took, and when and how busy the machine was if that was recorded."""
    parts = [f"{entry['seconds']:g} s"]
    if entry.get("measured"):
        parts.append(f"on {entry['measured'][:16].replace('T', ' ')} UTC")
    if entry.get("load_average"):
        before, after = entry["load_average"]
        parts.append(f"load average {before:g} → {after:g}")
    return ", ".join(parts)


def markdown(results: Mapping[str, Any]) -> str:
    """RESULTS.md: machine, headline targets, then one section per scenario measured."""
    machine = results["machine"]
    runs = ", ".join(f"{name} `{e['level']}` ({_when(e)})" for name, e in results["scenarios"].items())
    lines = [
        "# Benchmark results",
        "",
        "Regenerated by `uv run python -m benchmarks` (`--quick` for the quick sizes); do not edit by hand.",
        f"Scenarios and the size they ran at: {runs}.",
        "",
        f"Measured {results['generated']} on {machine['cpu'] or 'unknown CPU'} ({machine['cpu_count']} CPUs, "
        f"{machine['memory'] or '? memory'}), Python {machine['python']}, {machine['platform']}; "
        + ", ".join(f"{k} {v}" for k, v in machine["packages"].items() if v)
        + ".",
        "",
        "## Targets",
        "",
        *targets_table(results),
    ]
    for name, section in SECTIONS.items():
        figures = _figures(results, name)
        if figures is not None:
            lines += section(figures)
    missing = [name for name in SECTIONS if _figures(results, name) is None]
    if missing:
        lines += [f"Not measured in these results: {', '.join(missing)}.", ""]
    return "\n".join(lines)


# --- plots -----------------------------------------------------------------------------------------------------


def plots(results: Mapping[str, Any], out: Path) -> list[Path]:
    """PNG plots of the scenarios measured; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[Path] = []

    def save(fig: Any, name: str) -> None:
        path = out / name
        fig.tight_layout()
        fig.savefig(path, dpi=80)
        plt.close(fig)
        written.append(path)

    overhead = _figures(results, "overhead")
    if overhead:
        fig, ax = plt.subplots(figsize=(5.5, 3.5))
        ns = [r["n"] for r in overhead["rows"]]
        for key, label in (
            ("scheduler_us", "scheduler only"),
            ("engine_untraced_us", "engine, no sinks"),
            ("engine_jsonl_us", "engine + JSONL"),
            ("engine_sqlite_us", "engine + SQLite"),
        ):
            values = [r[key] for r in overhead["rows"]]
            if all(v is not None for v in values):
                ax.plot(ns, values, marker="o", label=label)
        compare = _figures(results, "langgraph_compare")
        if compare:
            ax.plot(
                [r["n"] for r in compare["chain"]],
                [r["langgraph_us"] for r in compare["chain"]],
                marker="s",
                linestyle="--",
                label="LangGraph",
            )
        ax.axhline(overhead["asyncio_task_us"], color="grey", linestyle=":", label="one asyncio task")
        ax.set(
            xscale="log", yscale="log", xlabel="chain length (steps)", ylabel="µs per step", title="Per-step overhead"
        )
        ax.legend(fontsize=7)
        save(fig, "overhead.png")
    parallel = _figures(results, "parallelism")
    if parallel:
        fig, ax = plt.subplots(figsize=(5.5, 3.5))
        widths = [r["width"] for r in parallel["fan_out"]]
        ax.plot(widths, [r["ratio"] for r in parallel["fan_out"]], marker="o", label="rolegraph")
        ax.plot(widths, [r["asyncio_ratio"] for r in parallel["fan_out"]], marker="^", label="bare asyncio")
        compare = _figures(results, "langgraph_compare")
        if compare:
            fan = [r for r in compare["makespan"] if r["graph"].startswith("fan-out")]
            ax.plot(
                [int(r["graph"].split()[-1]) for r in fan],
                [r["langgraph_ratio"] for r in fan],
                marker="s",
                linestyle="--",
                label="LangGraph",
            )
        ax.axhline(1.0, color="grey", linestyle=":")
        ax.axhline(1.02, color="red", linestyle=":", label="target 1.02")
        ax.set(xscale="log", xlabel="fan-out width", ylabel="makespan / critical path", title="Parallelism")
        ax.legend(fontsize=7)
        save(fig, "makespan.png")
    scale = _figures(results, "graph_scale")
    if scale:
        fig, ax = plt.subplots(figsize=(5.5, 3.5))
        for shape in ("chain", "layered"):
            rows = scale[shape]["rows"]
            for phase in ("parse", "compile", "schedule"):
                ax.plot(
                    [r["n"] for r in rows],
                    [r[f"{phase}_us_per_node"] for r in rows],
                    marker="o",
                    label=f"{phase} ({shape})",
                    linestyle="-" if shape == "chain" else "--",
                )
        ax.set(xscale="log", yscale="log", xlabel="steps", ylabel="µs per node (flat = linear)", title="Graph scale")
        ax.legend(fontsize=6, ncol=2)
        save(fig, "graph_scale.png")
    runs = _figures(results, "concurrent_runs")
    if runs:
        fig, (time_ax, memory_ax) = plt.subplots(1, 2, figsize=(8, 3.5))
        for variant, rows in runs["variants"].items():
            counts = [r["runs"] for r in rows]
            time_ax.plot(counts, [r["ms_per_run"] for r in rows], marker="o", label=variant)
            memory_ax.plot(counts, [r["tracemalloc_kib_per_run"] for r in rows], marker="o", label=variant)
        time_ax.set(xscale="log", yscale="log", xlabel="concurrent runs", ylabel="ms per run", title="Time")
        memory_ax.set(xscale="log", xlabel="concurrent runs", ylabel="KiB per run (tracemalloc peak)", title="Memory")
        time_ax.legend(fontsize=7)
        save(fig, "concurrent_runs.png")
    return written


def write(results: Mapping[str, Any], out: Path, markdown_path: Path) -> list[Path]:
    """Write results.json and the plots into `out`, and the markdown to `markdown_path`."""
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "results.json"
    json_path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    markdown_path.write_text(markdown(results), encoding="utf-8")
    return [json_path, markdown_path, *plots(results, out)]


README_START = "<!-- benchmarks:targets (written by `python -m benchmarks` from results.json; do not edit) -->"
README_END = "<!-- /benchmarks:targets -->"


def readme_block(results: Mapping[str, Any]) -> str:
    """The README's headline table: the targets table of `results`, between its markers."""
    return "\n".join([README_START, "", *targets_table(results), README_END])


def update_readme(results: Mapping[str, Any], readme: Path) -> bool:
    """Replace the headline table between the markers in `readme`; False if the file has no markers."""
    text = readme.read_text(encoding="utf-8")
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        return False
    readme.write_text(text[:start] + readme_block(results) + text[end + len(README_END) :], encoding="utf-8")
    return True


def load(out: Path) -> dict[str, Any] | None:
    """The results.json already in `out`, if any (unreadable files are ignored)."""
    try:
        loaded: dict[str, Any] = json.loads((out / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return loaded
