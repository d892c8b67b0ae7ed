"""The SQLite files a home shares between processes open through `connect_wal`, and wait out a process making one.

A process that opens one of these files while another process creates it (holding the new file's lock as it
switches it to WAL) gets "database is locked" from SQLite at once. Before `connect_wal`, the trace index failed
its open, the model-call cache ran uncached with a warning, and a library's index fell back to memory.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from rolegraph.models.cache import CallCache
from rolegraph.models.model import Completion, Usage
from rolegraph.sqlite_wal import connect_wal
from rolegraph.tools.library.index import LibraryIndex
from rolegraph.traces.pricing import PriceTable
from rolegraph.traces.store import TraceStore


@contextmanager
def _being_made(path: Path) -> Iterator[sqlite3.Connection]:
    """Another connection holding a new file's write lock, as a first process creating it does."""
    first = sqlite3.connect(path, isolation_level=None)
    first.execute("BEGIN IMMEDIATE")
    first.execute("CREATE TABLE made_first (x)")
    try:
        yield first
    finally:
        first.close()


def _open_while_made(path: Path, open_it: Callable[[], object]) -> object:
    """`open_it()` started while the file is being made, the lock released 0.2 s later; what it returned."""
    opened: list[object] = []
    failed: list[BaseException] = []

    def opener() -> None:
        try:
            opened.append(open_it())
        except BaseException as exc:
            failed.append(exc)

    with _being_made(path) as first:
        thread = threading.Thread(target=opener)
        thread.start()
        time.sleep(0.2)  # the opener meets the lock (without the wait, it has failed by now)
        first.execute("COMMIT")
    thread.join()
    assert failed == []
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("SELECT name FROM sqlite_master WHERE name = 'made_first'").fetchone() == ("made_first",)
    db.close()
    return opened[0]


def test_the_trace_index_waits_for_another_process_making_it(tmp_path: Path) -> None:
    store = _open_while_made(tmp_path / "index.sqlite", lambda: TraceStore(tmp_path / "index.sqlite", PriceTable()))
    assert isinstance(store, TraceStore)
    with store:
        assert store.list_runs() == []


def test_the_call_cache_waits_for_another_process_making_it(tmp_path: Path) -> None:
    """The cache opens on its first use: it then works, with no problem reported (it ran uncached before)."""
    problems: list[str] = []
    cache = CallCache(tmp_path / "cache.sqlite", on_problem=problems.append)
    assert _open_while_made(tmp_path / "cache.sqlite", lambda: cache.get("key")) is None
    answer = Completion(text="kept", usage=Usage(input_tokens=3, output_tokens=1))
    assert cache.put("key", "m", answer)
    assert cache.get("key") == answer
    cache.close()
    assert problems == []


def test_a_library_index_waits_for_another_process_making_it(tmp_path: Path) -> None:
    """The index stays on disk (it fell back to memory before), with no note."""
    path = tmp_path / "library.sqlite"
    index = _open_while_made(path, lambda: LibraryIndex(path))
    assert isinstance(index, LibraryIndex)
    assert (index.path, index.notes) == (path, [])
    index.close()


def test_a_lock_held_past_the_timeout_fails_the_open(tmp_path: Path) -> None:
    """The wait is bounded: a lock held past the busy timeout fails the open with SQLite's error."""
    with _being_made(tmp_path / "x.sqlite"), pytest.raises(sqlite3.OperationalError, match="database is locked"):
        connect_wal(tmp_path / "x.sqlite", timeout=0.05)
