"""The report's part for scenario 11, whole runs against LangGraph: its targets and its RESULTS.md section."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FLAT_LIMIT = 1.25
"""Per-step cost at the largest chain over the smallest, at most: what "flat" means here."""


def _target(name: str, limit: str, measured: float | None, unit: str, met: bool | None, note: str) -> dict[str, Any]:
    return {"target": name, "limit": limit, "measured": measured, "unit": unit, "met": met, "note": note}


def _worst(rows: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    measured = [r for r in rows if r.get(key) is not None]
    return max(measured, key=lambda r: r[key]) if measured else None


def targets(fig: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Whole durable, traced runs per step against LangGraph bare and with SQLite; cost flat in N."""
    rows = fig["agent"] if fig else []
    sizes = ", ".join(f"{r['n']:,}" for r in rows) or "—"
    bare = _worst(rows, "ratio_bare")
    sqlite = _worst(rows, "ratio_sqlite")
    memory = _worst(rows, "ratio_memory")
    where = f"; worst at {bare['n']:,}: {bare['rolegraph_us']:,.0f} vs {bare['langgraph_us']:,.0f} µs" if bare else ""
    if bare and bare.get("io_floor_us") is not None:
        where += f" (the disk work alone, bare calls: {bare['io_floor_us']:,.0f} µs)"
    out = [
        _target(
            "whole durable, traced run per step / LangGraph bare per step (worst chain)",
            "≤ 1",
            bare and bare["ratio_bare"],
            "x",
            None if bare is None else bare["ratio_bare"] <= 1,
            f"chains of {sizes} agent steps{where}",
        ),
        _target(
            "whole durable, traced run per step / LangGraph with its SQLite checkpointer",
            "≤ 0.2",
            sqlite and sqlite["ratio_sqlite"],
            "x",
            None if sqlite is None else sqlite["ratio_sqlite"] <= 0.2,
            "langgraph-checkpoint-sqlite not installed here"
            if fig and not fig.get("sqlite_saver")
            else (f"with InMemorySaver: {memory['ratio_memory']:.2f}x" if memory else ""),
        ),
    ]
    growth = rows[-1]["rolegraph_us"] / rows[0]["rolegraph_us"] if len(rows) > 1 else None
    out.append(
        _target(
            "whole run: cost per step, largest chain / smallest",
            f"≤ {FLAT_LIMIT:g} (flat)",
            growth,
            "x",
            None if growth is None else growth <= FLAT_LIMIT,
            f"{rows[0]['n']:,} to {rows[-1]['n']:,} steps" if len(rows) > 1 else "",
        )
    )
    return out


def _num(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def section(fig: Any) -> list[str]:
    """RESULTS.md section 11."""
    headers = ["kind", "steps", "rolegraph µs/step", "LangGraph", "+ InMemorySaver", "+ SQLite saver"]
    headers += ["/ bare", "/ InMemorySaver", "/ SQLite", "disk work alone µs/step"]
    rows = [
        [kind, f"{r['n']:,}", _num(r["rolegraph_us"]), _num(r["langgraph_us"]), _num(r["langgraph_memory_us"]),
         _num(r["langgraph_sqlite_us"]), _num(r["ratio_bare"], 2), _num(r["ratio_memory"], 2),
         _num(r["ratio_sqlite"], 2), _num(r.get("io_floor_us"))]
        for kind in ("agent", "function")
        for r in fig[kind]
    ]  # fmt: skip
    table = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    table += ["| " + " | ".join(row) + " |" for row in rows]
    saver = "" if fig.get("sqlite_saver") else " (`langgraph-checkpoint-sqlite` was not installed: no SQLite column)"
    return [
        "## 11. Whole runs through the public API, side by side with LangGraph",
        "",
        "`rolegraph.load(path).run()`: run folder, JSONL trace, run store (a checkpoint per step, the call journal),",
        "step log, summary and live index, redaction on. *agent*: agent steps on a scripted model answering at once,",
        "against LangGraph async nodes; *function*: `function:` steps adding 1, against LangGraph function nodes.",
        f"Median of whole runs, per step; ratios rolegraph / LangGraph (below 1: rolegraph is faster){saver}.",
        "The sides take turns, one run each per round, so a burst of load falls on all alike.",
        "*Disk work alone*: what a durable, traced step writes, done with bare `sqlite3`/`os` calls and no",
        "framework (one SQLite transaction of a journal row and a checkpoint row, three trace lines, a line of",
        "the step log, appended in batches; `benchmarks/io_floor.py`): the least such a step costs on this disk.",
        "",
        *table,
        "",
    ]
