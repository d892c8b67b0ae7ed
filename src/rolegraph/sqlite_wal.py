"""Opening a SQLite file that several processes share in WAL mode, waiting out another process that is converting it.

Three files under a home are shared that way: the trace index (`rolegraph.traces.store`),
the model-call cache (`rolegraph.models.cache`) and a library's search index
(`rolegraph.tools.library.index`). SQLite answers ``PRAGMA journal_mode=WAL`` with
"database is locked" at once, without calling its busy handler, when another connection
holds the file's lock while it switches a new database to WAL (the busy handler is
skipped there to avoid a deadlock between two connections that both hold a read lock).
That happens when two processes open such a file as the first of them creates it: the
second then ran without the file (an in-memory index, no cache). `connect_wal` retries
the switch until the connection's busy timeout is spent, as SQLite's own busy handler
would for any other lock.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

__all__ = ["BUSY_TIMEOUT_S", "connect_wal"]

BUSY_TIMEOUT_S = 30.0
"""How long an open, or a statement, waits for another connection's lock before it fails."""
_RETRY_S = 0.005
"""The pause between two attempts to switch to WAL (SQLite's busy handler starts with pauses of 1-5 ms too)."""


def connect_wal(path: Path, timeout: float = BUSY_TIMEOUT_S) -> sqlite3.Connection:
    """A connection to `path` (created if missing) in WAL mode with ``synchronous=NORMAL``, in autocommit mode,
    usable from any one thread at a time.

    It blocks for up to `timeout` seconds while another connection holds the file's lock, as every statement on the
    connection may: the trace index opens it off the event loop (the index writer's thread, a CLI command, the
    viewer's thread pool); the cache and a library index open it where they already wait on their busy timeouts.

    Raises:
        sqlite3.OperationalError: The lock was still held after `timeout`, or the file cannot be opened.
        sqlite3.DatabaseError: The file is not a database.
    """
    db = sqlite3.connect(path, timeout=timeout, check_same_thread=False, isolation_level=None)
    try:
        _switch_to_wal(db, time.monotonic() + timeout)
        db.execute("PRAGMA synchronous=NORMAL")
    except BaseException:
        db.close()
        raise
    return db


def _switch_to_wal(db: sqlite3.Connection, deadline: float) -> None:
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                raise
        time.sleep(_RETRY_S)  # noqa: TID251  # bounded by the busy timeout, as any statement's wait is
