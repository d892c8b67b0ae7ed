"""The index of a home, ready to read: opened, brought up to date with the run folders, rebuilt if damaged.

The index (`rolegraph.traces.store`) is derived data. One that is no longer a
database (cut short, overwritten) is set aside as ``index.sqlite.damaged``, for a
look, and rebuilt from the run folders, which hold the truth.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from rolegraph.layout import Home
from rolegraph.traces.index_writer import drain
from rolegraph.traces.pricing import PriceTable
from rolegraph.traces.store import TraceStore

__all__ = ["open_index"]


def open_index(home: Path, prices: PriceTable | None = None) -> TraceStore:
    """The index of `home`, brought up to date with its run folders (and with the runs of this process that
    ended, whose rows its index writer may still hold).

    The index is derived data: one that is not a database any more (cut short, overwritten)
    is set aside as ``index.sqlite.damaged`` and rebuilt from the run folders.
    """
    try:
        return _synced(Home(home), prices)
    except sqlite3.DatabaseError as exc:
        if not _is_damage(exc):
            raise
    _set_aside(Home(home).index)
    return _synced(Home(home), prices)


def _synced(home: Home, prices: PriceTable | None) -> TraceStore:
    drain(home.index)  # this process's runs that ended are in the index before it is read
    store = TraceStore(home.index, prices)
    try:
        store.sync(home.runs)
    except BaseException:
        store.close()
        raise
    return store


def _is_damage(exc: sqlite3.DatabaseError) -> bool:
    """Whether SQLite says the file is damaged (not busy, locked or out of space)."""
    return type(exc) is sqlite3.DatabaseError or "malformed" in str(exc)


def _set_aside(path: Path) -> None:
    """Move a damaged database (and its WAL files) out of the way, keeping it for a look."""
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    path.replace(path.with_name(path.name + ".damaged"))
