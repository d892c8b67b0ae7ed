"""`StoreSink`: indexes a run's spans live, as they start and end, from a background thread.

`emit` only queues a record, so the event loop never waits on SQLite; the writer
thread commits what is queued batch by batch (WAL), so `rolegraph runs` sees a run
while it runs, and a run killed mid-way keeps its finished spans (and its open ones
as ``unfinished``). The index (`rolegraph.traces.store`) is derived data: the run's
``trace.jsonl`` has every record whatever happens here.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Any

from rolegraph.traces._rows import Context
from rolegraph.traces.store import TraceStore

__all__ = ["StoreSink"]

_CLOSE = object()


class StoreSink:
    """A trace sink that indexes spans as they start and end, writing from one background thread.

    `emit` only queues the record (no lock, no I/O), so the event loop never waits on
    SQLite. The writer takes whatever is queued, up to `batch` records, and commits
    it as one transaction: rows are durable within a batch of being emitted, and a
    crash loses at most the records still queued (`TraceStore.import_run` restores
    them from the JSONL file). Call `close` at the end of the run.

    Args:
        store: The index to write to, or the path of its database (then the writer
            thread opens it, so not even opening blocks the caller). Used only by the
            writer thread until `close` returns.
        batch: Records written per transaction, at most.
        run_dir: The run's folder, recorded in its row (so `TraceStore.sync` knows it is live).
    """

    def __init__(self, store: TraceStore | Path, batch: int = 256, run_dir: Path | None = None) -> None:
        self.store = store if isinstance(store, TraceStore) else None
        self.batch = batch
        self.run_dir = run_dir
        self.errors = 0
        """Batches that failed to write, and a database that failed to open (the JSONL file has every record)."""
        self._path = store if isinstance(store, Path) else None
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._context = Context()
        self.thread = threading.Thread(target=self._work, name="rolegraph-trace-store", daemon=True)
        self.thread.start()

    def emit(self, record: dict[str, Any]) -> None:
        """Queue the record for the writer thread."""
        self._queue.put(record)

    def close(self) -> None:
        """Write every queued record, then stop the writer thread (blocks: call it from a thread or at exit).

        A store this sink opened from a path is closed too.
        """
        if self.thread.is_alive():
            self._queue.put(_CLOSE)
            self.thread.join()

    def _open(self) -> TraceStore | None:
        if self.store is None and self._path is not None:
            try:
                self.store = TraceStore(self._path)
            except Exception:  # the index is a cache: a broken or locked database must not fail a run
                self.errors += 1
                self._path = None
        return self.store

    def _work(self) -> None:
        store = self._open()
        try:
            while True:
                pending = [self._queue.get()]
                while pending[-1] is not _CLOSE and len(pending) < self.batch:
                    try:
                        pending.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                records = [r for r in pending if r is not _CLOSE]
                if records and store is not None:
                    try:
                        store.write_records(records, self._context, run_dir=self.run_dir)
                    except Exception:  # never crash the writer: the JSONL file has every record anyway
                        self.errors += 1
                if pending[-1] is _CLOSE:
                    return
        finally:
            if store is not None and self._path is not None:
                store.close()
