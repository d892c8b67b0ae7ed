"""``rolegraph cache``: what the model-call cache holds (``stats``), and emptying it (``clear``)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from rolegraph.cli._common import app, out
from rolegraph.layout import Home
from rolegraph.models.cache import CallCache

cache_app = typer.Typer(
    no_args_is_help=True,
    help="The model-call cache in $ROLEGRAPH_HOME: `cache stats` shows it, `cache clear` empties it.",
)
app.add_typer(cache_app, name="cache")


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "-"
    try:
        return dt.datetime.fromtimestamp(stamp, dt.UTC).strftime("%Y-%m-%d %H:%M")
    except (OverflowError, ValueError, OSError):  # a damaged entry's time is past the calendar
        return "?"


@cache_app.command("stats")
def cache_stats(as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False) -> None:
    """Entries, size, hits and the tokens the hits saved."""
    cache = CallCache(Home.from_env().cache)
    try:
        stats = cache.stats()
    finally:
        cache.close()
    if as_json:
        print(json.dumps(stats.as_dict(), indent=2))
        return
    table = Table(show_header=False, box=None)
    table.add_row("cache", escape(str(stats.path)))
    if stats.problem is not None:
        table.add_row("problem", f"[red]{escape(stats.problem)}[/] (`rolegraph cache clear` removes it)")
    table.add_row("entries", str(stats.entries))
    table.add_row("size", f"{stats.size_bytes / 1_000_000:.2f} MB")
    table.add_row("hits", str(stats.hits))
    table.add_row("tokens saved", f"{stats.saved_input_tokens} in, {stats.saved_output_tokens} out")
    table.add_row("stored", f"{_when(stats.oldest)} to {_when(stats.newest)} (UTC)")
    out.print(table)


@cache_app.command("clear")
def cache_clear() -> None:
    """Remove every cached answer (a damaged cache file is deleted)."""
    cache = CallCache(Home.from_env().cache)
    try:
        removed = cache.clear()
    finally:
        cache.close()
    out.print(f"removed {removed} cached answers from {escape(str(cache.path))}")
