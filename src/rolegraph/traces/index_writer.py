"""The live index's one writer per home: every run of this process indexes its spans through it.

`index_writer(path)` is the process's long-lived writer for one ``index.sqlite``
(one SQLite connection, one daemon thread, opened on first use). A run opens a
`RunIndex` on it, a trace sink whose `emit` only appends to the run's buffer (no
I/O, no thread woken per record): the writer picks the buffers up within
`INDEX_INTERVAL_S` and commits them batch by batch, so `rolegraph runs` sees a run,
and its open spans, while it runs. At the run's end `RunIndex.finish` writes the
last records and completes the run's row (status, times, totals, the stamp that
tells `TraceStore.sync` the folder is indexed) without reading the run back from
disk. A run whose live rows may be incomplete (a write failed, or a resumed run,
whose earlier invocations another process indexed) is re-imported from its folder
instead. The index is derived data: the run's ``trace.jsonl`` holds every record
whatever happens here.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from typing import Any

from rolegraph.traces._rows import Context, RunEnd, run_stamp
from rolegraph.traces.store import TraceStore

__all__ = ["INDEX_INTERVAL_S", "IndexWriter", "RunEnd", "RunIndex", "index_writer"]

INDEX_INTERVAL_S = 0.05
"""How long a record may wait in a run's buffer before the writer commits it. A run's end waits for the rows of
what is left in its buffer: the shorter the interval, the less is left (timing `RunIndex.finish` at the end of
100- and 1,000-step agent chains: a median of about 12 ms at 0.2 s, about 3 ms at 0.05 s), for a few more,
smaller commits while runs run."""


class RunIndex:
    """One run's trace sink into the home's index (see the module docstring). Made by `IndexWriter.open_run`."""

    def __init__(self, writer: IndexWriter, run_dir: Path) -> None:
        self.writer = writer
        self.run_dir = run_dir.absolute()
        self.context = Context()
        self.errors = 0
        """Batches of this run that failed to write."""
        self._records: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._end: RunEnd | None = None
        self._done = threading.Event()
        self._waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None = None

    def emit(self, record: dict[str, Any]) -> None:
        """Buffer the record for the writer."""
        with self._lock:
            self._records.append(record)
            first = len(self._records) == 1
        if first:
            self.writer.due(self)

    def take(self) -> list[dict[str, Any]]:
        """The records buffered so far (for the writer thread)."""
        with self._lock:
            records, self._records = self._records, []
        return records

    async def finish(self, end: RunEnd) -> None:
        """Write what is buffered and complete the run's row; return once it is committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._waiter = (loop, future)
        self._end = end
        self.writer.due(self, now=True)
        await future

    def close(self) -> None:
        """Write what is buffered, without completing the run's row (blocks until it is committed)."""
        self.writer.due(self, now=True)
        self._done.wait()

    @property
    def end(self) -> RunEnd | None:
        """How the run ended, once `finish` was called."""
        return self._end

    def done(self) -> None:
        """Called by the writer once this run's last records are committed."""
        self._done.set()
        if self._waiter is not None:
            loop, future = self._waiter
            try:
                loop.call_soon_threadsafe(_resolve, future)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class IndexWriter:
    """The long-lived writer of one index file (see the module docstring). Get it from `index_writer`.

    Args:
        path: The index database (``$ROLEGRAPH_HOME/index.sqlite``).
        interval: How long a buffered record may wait.
    """

    def __init__(self, path: Path, interval: float = INDEX_INTERVAL_S) -> None:
        self.path = path
        self.interval = interval
        self.errors = 0
        """Failures to open the database (then nothing is indexed live; `TraceStore.sync` catches up)."""
        self._wake = threading.Condition()
        self._due: dict[RunIndex, bool] = {}
        self._urgent = False
        self._thread = threading.Thread(target=self._work, name="rolegraph-index-writer", daemon=True)
        self._thread.start()

    def open_run(self, run_dir: Path) -> RunIndex:
        """A sink indexing the run in `run_dir`."""
        return RunIndex(self, run_dir)

    def due(self, run: RunIndex, *, now: bool = False) -> None:
        """`run` has records (or its end) to write: within the interval, or at once when `now`."""
        with self._wake:
            idle = not self._due
            self._due[run] = self._due.get(run, False) or now
            if now and not self._urgent:
                self._urgent = True
                self._wake.notify()
            elif idle:
                self._wake.notify()

    def _work(self) -> None:
        store = self._open()
        written = time.monotonic()  # when every due run was last written
        left = False  # whether runs were left due at the last pass (a run's end wrote only its own rows)
        while True:
            with self._wake:
                while not self._due:
                    self._wake.wait()
                if not self._urgent:  # gather a batch (what is left from a run's end: the rest of it)
                    self._wake.wait(max(0.0, self.interval - (time.monotonic() - written)) if left else self.interval)
                left = False
                if self._urgent and time.monotonic() - written < self.interval:
                    # A run's end waits only on its own rows: the others keep gathering until the interval is up.
                    due = {run: True for run, closing in self._due.items() if closing}
                    self._due = {run: False for run, closing in self._due.items() if not closing}
                    left = bool(self._due)
                else:
                    due, self._due = self._due, {}
                    written = time.monotonic()
                self._urgent = False
            self._write(store, list(due))
            closing = [run for run, ends in due.items() if ends]
            if closing:
                self._end(store, closing)
                for run in closing:
                    run.done()

    def _open(self) -> TraceStore | None:
        try:
            return TraceStore(self.path)
        except Exception:  # the index is a cache: a broken or locked database must not fail a run
            self.errors += 1
            return None

    @staticmethod
    def _write(store: TraceStore | None, runs: list[RunIndex]) -> None:
        """Every run's buffered records in one transaction (one commit for all the runs of the home)."""
        batches = [(records, run.context, run.run_dir) for run in runs if (records := run.take())]
        if not batches or store is None:
            return
        try:
            store.write_runs(batches)
        except Exception:  # never crash the writer: the JSONL file has every record anyway
            for run in runs:
                run.errors += 1

    @staticmethod
    def _end(store: TraceStore | None, runs: list[RunIndex]) -> None:
        """Complete the rows of the runs that ended, in one transaction; re-import those whose rows may be short."""
        if store is None:
            return
        live = [run for run in runs if run.end is not None and not run.errors and not run.end.resumed]
        again = [run for run in runs if run.end is not None and run not in live]
        try:
            ends = [
                (run.run_dir.name, run.end, run_stamp(run.run_dir), run.context.usage)
                for run in live
                if run.end is not None
            ]
            missing = set(store.finish_runs(ends))
        except Exception:  # as below: `TraceStore.sync` re-imports a folder whose row is not current
            for run in live:
                run.errors += 1
            return
        again += [run for run in live if run.run_dir.name in missing]
        for run in again:
            try:
                store.import_run(run.run_dir)
            except Exception:  # as above: `TraceStore.sync` re-imports a folder whose row is not current
                run.errors += 1


_WRITERS: dict[Path, IndexWriter] = {}
_WRITERS_LOCK = threading.Lock()


def index_writer(path: Path) -> IndexWriter:
    """This process's writer of the index at `path` (started on first use, kept for the process's life)."""
    key = path.absolute()
    with _WRITERS_LOCK:
        writer = _WRITERS.get(key)
        if writer is None:
            writer = _WRITERS[key] = IndexWriter(key)
        return writer


def _forget_writers() -> None:
    """In a forked child the parent's writer threads do not exist: start afresh."""
    global _WRITERS_LOCK
    _WRITERS.clear()
    _WRITERS_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_writers)
