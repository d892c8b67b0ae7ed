"""``rolegraph runs``: list recorded runs, prune old ones."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table

from rolegraph.cli._common import (
    EXIT_BAD_INPUT,
    PricesOption,
    app,
    err,
    format_cost,
    open_store,
    out,
    read_run_json,
)
from rolegraph.layout import home_dir
from rolegraph.runtime.result import CacheSavings
from rolegraph.traces.store import DAMAGED, RunRow
from rolegraph.viewer.lineage import Lineage, read_lineage

_EARLIEST = dt.datetime.min.replace(tzinfo=dt.UTC)
"""The cut of an age longer than dates go back: no run started before it."""

runs_app = typer.Typer(help="List runs (`rolegraph runs`) or delete old ones (`runs prune`).")
app.add_typer(runs_app, name="runs")


@runs_app.callback(invoke_without_command=True)
def runs(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many runs, newest first.")] = 20,
    workflow: Annotated[str | None, typer.Option("--workflow", "-w", help="Only runs of this workflow.")] = None,
    prices: PricesOption = None,
) -> None:
    """List runs, newest first: id, workflow, status, start (UTC), duration, tokens, cost and cache savings.

    A replay is marked (replay) and one that stopped at its first divergence shows as diverged, not failed;
    a run continued by `rolegraph resume` is marked (resumed). A run whose model calls the cache answered
    shows how many and the tokens they saved (``--json``: its ``cache``, as run.json records it).
    """
    if ctx.invoked_subcommand is not None:
        return
    with open_store(prices) as store:
        rows = store.list_runs(limit=limit, workflow=workflow)
    summaries = [read_run_json(Path(row.run_dir)) if row.run_dir is not None else {} for row in rows]
    lineages = [_lineage(row, summary) for row, summary in zip(rows, summaries, strict=True)]
    savings = [_savings(summary) for summary in summaries]
    if as_json:
        entries = [
            {**row.as_dict(), "lineage": lineage.as_dict(), "cache": saved.model_dump() if saved else None}
            for row, lineage, saved in zip(rows, lineages, savings, strict=True)
        ]
        print(json.dumps(entries, indent=2))
        return
    table = Table(box=None)
    # The cache column only when a listed run had hits: who never turns the cache on never sees it.
    cached = [_cached(saved) for saved in savings]
    columns = ("run", "workflow", "status", "started (UTC)", "duration", "tokens", "cost")
    for column in (*columns, "cached") if any(cached) else columns:
        # A run id is what you copy into the next command: never cut or wrapped, whatever the width.
        table.add_column(
            column,
            justify="right" if column in ("duration", "tokens", "cost", "cached") else "left",
            no_wrap=column in ("run", "started (UTC)"),
            min_width=len(rows[0].run_id) if column == "run" and rows else None,
        )
    colours = {
        "completed": "green",
        "failed": "red",
        "cancelled": "yellow",
        "unfinished": "yellow",
        "budget_exceeded": "magenta",
        DAMAGED: "red",
    }
    for row, lineage, cache_cell in zip(rows, lineages, cached, strict=True):
        status = lineage.status(row.status)  # a replay that stopped at a divergence did its job: not "failed"
        marks = [m for m, on in (("replay", lineage.replay_of is not None), ("resumed", lineage.resumed)) if on]
        shown = f"[{colours.get(status, 'cyan')}]{escape(status)}[/]" + "".join(f" ({m})" for m in marks)
        table.add_row(
            row.run_id,
            escape(row.workflow or "-"),
            shown,
            _when(row.started),
            "-" if row.duration_s is None else f"{row.duration_s:.1f}s",
            "-" if row.status == DAMAGED else f"{row.input_tokens}+{row.output_tokens}",
            "-" if row.status == DAMAGED else format_cost(row.cost_usd),
            *([cache_cell] if any(cached) else []),
        )
    out.print(table)
    for row in rows:
        if row.problem is not None:
            err.print(f"[red]damaged[/] {row.run_id}: {escape(row.problem)}", soft_wrap=True)
    if not rows:
        err.print(f"no runs in {escape(str(home_dir() / 'runs'))}")


def _parse_age(text: str) -> dt.timedelta | None:
    """The age `text` gives (None: longer than a date can go back, so no run is that old); exit 2 if malformed."""
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if match is None:
        err.print(
            "[red]error[/] --older-than expects a number and a unit (s, m, h, d, w), e.g. 30d;"
            f" got {escape(repr(text))}"
        )
        raise typer.Exit(EXIT_BAD_INPUT)
    try:
        return dt.timedelta(**{units[match[2]]: float(match[1])})
    except OverflowError:
        return None


@runs_app.command("prune")
def runs_prune(
    older_than: Annotated[str, typer.Option("--older-than", help="Age, e.g. 30d, 12h, 2w.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be deleted.")] = False,
) -> None:
    """Delete runs (their folders and index rows) started longer ago than --older-than.

    A run folder that is a symbolic link is never followed or removed: it is listed as skipped.
    """
    age = _parse_age(older_than)
    now = dt.datetime.now(dt.UTC)
    try:
        cut = now - age if age is not None else _EARLIEST
    except OverflowError:
        cut = _EARLIEST
    with open_store() as store:
        pruned = store.prune(cut, dry_run=dry_run)
    for row in pruned.deleted:
        print(row.run_id)
    for row, reason in pruned.skipped:
        err.print(f"[yellow]skipped[/] {row.run_id}: {escape(reason)}", soft_wrap=True)
    verb = "would delete" if dry_run else "deleted"
    skipped = f", skipped {len(pruned.skipped)}" if pruned.skipped else ""
    err.print(f"{verb} {len(pruned.deleted)} run(s){skipped} started before {cut:%Y-%m-%d %H:%M:%S} UTC")


def _lineage(row: RunRow, summary: dict[str, Any]) -> Lineage:
    """Whether `row`'s run replays another or was resumed (nothing known without its folder)."""
    if row.run_dir is None:
        return Lineage()
    return read_lineage(Path(row.run_dir), summary)


def _savings(summary: dict[str, Any]) -> CacheSavings | None:
    """What the cache saved the run, as its run.json records it (None: it did not use the cache, or the
    record is missing or damaged)."""
    recorded = summary.get("cache")
    if not isinstance(recorded, dict):
        return None
    try:
        return CacheSavings.model_validate(recorded)
    except ValidationError:
        return None


def _cached(saved: CacheSavings | None) -> str:
    """The cache column: calls answered from the cache and the tokens they saved; empty when there were none."""
    if saved is None or saved.hits <= 0:
        return ""
    return f"{saved.hits} calls, {saved.input_tokens + saved.output_tokens:,} tokens"


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
