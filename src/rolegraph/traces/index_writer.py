"""The live index's one writer per home: every run of this process indexes its spans through it.

`index_writer(path)` is the process's long-lived writer for one ``index.sqlite``
(one SQLite connection, one daemon thread, opened on first use). A run opens a
`RunIndex` on it, a trace sink whose `emit` only appends to the run's buffer (no
I/O, no thread woken per record): the writer picks the buffers up within
`INDEX_INTERVAL_S` and commits them batch by batch, so `rolegraph runs` sees a run,
and its open spans, while it runs. At the run's end `RunIndex.finish` hands the
run's end to the writer and returns at once: the writer's next pass writes the last
records and completes the run's row (status, times, totals, the stamp that tells
`TraceStore.sync` the folder is indexed) without reading the run back from disk.
Until then the row reads as running; `drain` waits for the pass (`open_index` drains
this process's writer before it reads, and the process's exit drains every writer).
A run whose live rows may be incomplete (a write failed, or a resumed run, whose
earlier invocations another process indexed) is re-imported from its folder
instead. The index is derived data: the run's ``trace.jsonl`` holds every record
whatever happens here.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections import deque
from pathlib import Path
from typing import Any

from rolegraph.traces._rows import Context, RunEnd, run_stamp
from rolegraph.traces.store import TraceStore

__all__ = ["INDEX_INTERVAL_S", "IndexWriter", "RunEnd", "RunIndex", "drain", "index_writer"]

INDEX_INTERVAL_S = 0.05
"""How long a record, or a run's end, may wait in the writer's hands before it is committed: longer gathers
bigger batches (fewer commits), shorter shows a live run's spans and a finished run's row sooner. A run does not
wait for its row: timed at the end of a 100-step agent chain, the wait was 3.6 ms (a tenth of the run)."""


class RunIndex:
    """One run's trace sink into the home's index (see the module docstring). Made by `IndexWriter.open_run`."""

    def __init__(self, writer: IndexWriter, run_dir: Path) -> None:
        self.writer = writer
        self.run_dir = run_dir.absolute()
        self.context = Context()
        self.errors = 0
        """Batches of this run that failed to write."""
        self._records: deque[dict[str, Any]] = deque()
        """Records emitted and not yet taken. A deque, not a list under a lock: its ``append`` (the loop's) and
        ``popleft`` (the writer's) are atomic, so a record costs the loop no lock taken and released."""
        self._told = False
        """Whether the writer was told (`IndexWriter.due`) of records not yet taken: told once per batch."""
        self._end: tuple[RunEnd, str] | None = None

    def emit(self, record: dict[str, Any]) -> None:
        """Buffer the record for the writer (telling it, if it was not told since it last took the records)."""
        self._records.append(record)
        if not self._told:
            self._told = True
            self.writer.due(self)

    def take(self) -> list[dict[str, Any]]:
        """The records buffered so far (for the writer thread).

        The flag is cleared before the records are taken: a record appended after it is taken now or tells the
        writer again, never left behind untold.
        """
        self._told = False
        records: list[dict[str, Any]] = []
        pop = self._records.popleft
        while True:
            try:
                records.append(pop())
            except IndexError:
                return records

    def finish(self, end: RunEnd) -> None:
        """Have the writer write what is buffered and complete the run's row, within its interval; return at once.

        Call it once the run's files are written: the row records their stamp, taken now (a later invocation
        of the run that changes them then reads as changed to `TraceStore.sync`). Until the writer's next pass
        the row reads as running; `IndexWriter.drain` waits for it (`open_index` does, for this process's
        runs), and the process's exit drains every writer.
        """
        self._end = (end, run_stamp(self.run_dir))
        self.writer.due(self, ends=True)

    def close(self) -> None:
        """Write what is buffered, without completing the run's row (blocks until it is committed)."""
        self.writer.due(self)
        self.writer.drain()

    @property
    def end(self) -> RunEnd | None:
        """How the run ended, once `finish` was called."""
        return None if self._end is None else self._end[0]

    @property
    def stamp(self) -> str | None:
        """The stamp of the run's files when `finish` was called."""
        return None if self._end is None else self._end[1]


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
        """The runs with records to write, each with whether its end is to be written too."""
        self._asked = 0
        """Drains asked for (`drain`): each waits until a pass that began after it was asked is done."""
        self._served = 0
        """The drains the last finished pass answered."""
        self._thread = threading.Thread(target=self._work, name="rolegraph-index-writer", daemon=True)
        self._thread.start()

    def open_run(self, run_dir: Path) -> RunIndex:
        """A sink indexing the run in `run_dir`."""
        return RunIndex(self, run_dir)

    def due(self, run: RunIndex, *, ends: bool = False) -> None:
        """`run` has records, or with `ends` its end, to write within the interval."""
        with self._wake:
            idle = not self._due
            self._due[run] = self._due.get(run, False) or ends
            if idle:
                self._wake.notify_all()

    def drain(self) -> None:
        """Block until everything handed to this writer so far (records, run ends) is committed."""
        if threading.current_thread() is self._thread:
            return
        with self._wake:
            self._asked += 1
            ticket = self._asked
            self._wake.notify_all()
            while self._served < ticket and self._thread.is_alive():
                self._wake.wait(1.0)

    def _work(self) -> None:
        store = self._open()
        while True:
            with self._wake:
                while not self._due and self._asked == self._served:
                    self._wake.wait()
                # Gather a batch for the interval, unless a drain waits.
                self._wake.wait_for(lambda: self._asked != self._served, self.interval)
                asked = self._asked
                due, self._due = self._due, {}
            self._write(store, list(due))
            closing = [run for run, ends in due.items() if ends]
            if closing:
                self._end(store, closing)
            with self._wake:
                self._served = asked
                self._wake.notify_all()

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
                (run.run_dir.name, run.end, run.stamp or "", run.context.usage) for run in live if run.end is not None
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


def drain(path: Path) -> None:
    """Wait for this process's writer of the index at `path`, if it has one, to commit what it was handed."""
    writer = _WRITERS.get(path.absolute())
    if writer is not None:
        writer.drain()


def _drain_all() -> None:
    """At the process's exit: the writers' threads end with it, so what they hold is committed first."""
    for writer in list(_WRITERS.values()):
        writer.drain()


atexit.register(_drain_all)


def _forget_writers() -> None:
    """In a forked child the parent's writer threads do not exist: start afresh."""
    global _WRITERS_LOCK
    _WRITERS.clear()
    _WRITERS_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_writers)
