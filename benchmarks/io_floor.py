"""The file work a durable, traced step does, done with bare ``sqlite3`` and ``os`` calls: a floor per step.

A step of a whole rolegraph run leaves on disk, at the least: one SQLite transaction
(its call's journal row and its checkpoint row, WAL, ``synchronous=NORMAL``, folded into the file
every 4,000 pages, as the run store commits them), its finished spans appended to the trace (three lines of
about 400 bytes: the agent, its reasoning step, its model call),
and its state as one line of ``steps.jsonl``, the lines gathered and appended with
one ``write()`` per `GATHER_S` (0.1 s, as the step log's writer thread gathers them)
and at the end; per run, a folder, a trace file, the step log, and the store created
without flushing and closed (SQLite checkpoints its WAL). `FloorRun` does exactly
that for N steps with no framework around it, so a whole run's per-step time can be
read against what its disk work alone costs on this machine. `FloorWholeRun` does the
same for one whole run of a small workflow, with everything a run writes around its
steps (the folder's lock, ``run.json`` twice, the index rows; a run with no sources writes no
``sources.jsonl``): what `benchmarks.many_runs` sets its 10,000 concurrent runs against.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
from pathlib import Path

from rolegraph.runtime.step_log import GATHER_S

__all__ = ["GATHER_S", "FloorRun", "FloorWholeRun"]

SPAN_LINE = b'{"span": "' + b"x" * 386 + b'"}\n'
STEP_LINE = json.dumps({"step_id": "s0", "status": "completed", "output": {"value": "ok" * 200}}).encode() + b"\n"
RESULT = json.dumps({"message": {"role": "assistant", "content": "x" * 160}, "usage": {"input_tokens": 22}})


class FloorRun:
    """One "run" of N steps of bare file work in `folder` (each call makes a fresh folder, as a run does)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._runs = 0

    def __call__(self, steps: int) -> None:
        self._runs += 1
        run_dir = self.folder / f"floor-{self._runs}"
        run_dir.mkdir(parents=True)
        db = sqlite3.connect(run_dir / "store.sqlite", isolation_level=None)
        db.execute("PRAGMA locking_mode=EXCLUSIVE")  # the run's own connection: no -shm file, no lock calls
        db.execute("PRAGMA synchronous=OFF")  # a new file: created without flushing, as the run store does
        db.execute("PRAGMA journal_mode=MEMORY")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE calls (seq INTEGER PRIMARY KEY, call_id TEXT NOT NULL UNIQUE, result TEXT)")
        db.execute("CREATE TABLE steps (step_id TEXT PRIMARY KEY, state TEXT NOT NULL)")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA wal_autocheckpoint=4000")  # the run store's CHECKPOINT_PAGES
        trace = os.open(run_dir / "trace.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        log = os.open(run_dir / "steps.jsonl", os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        gathered: list[bytes] = []
        since = 0.0
        try:
            for i in range(steps):
                db.execute("BEGIN IMMEDIATE")
                db.execute("INSERT INTO calls (call_id, result) VALUES (?, ?)", (f"s{i}/0", RESULT))
                db.execute("INSERT OR REPLACE INTO steps (step_id, state) VALUES (?, ?)", (f"s{i}", RESULT))
                db.execute("COMMIT")
                for _ in range(3):
                    os.write(trace, SPAN_LINE)
                gathered.append(STEP_LINE)
                now = time.perf_counter()
                if len(gathered) == 1:
                    since = now
                elif now - since >= GATHER_S:
                    os.write(log, b"".join(gathered))
                    gathered = []
            if gathered:
                os.write(log, b"".join(gathered))
        finally:
            os.close(log)
            os.close(trace)
            db.close()


RECORD = json.dumps({"run_id": "r", "workflow_file": None, "inputs": {}, "status": "running", "budget": {}}) * 3
SUMMARY = json.dumps({"run_id": "r", "status": "completed", "steps": {"a": "completed"}, "x": "y" * 600}).encode()
SCHEMA = """
CREATE TABLE run (id INTEGER PRIMARY KEY CHECK (id = 1), record TEXT NOT NULL);
CREATE TABLE steps (step_id TEXT PRIMARY KEY, state TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE calls (seq INTEGER PRIMARY KEY, call_id TEXT NOT NULL, step_id TEXT NOT NULL, result TEXT NOT NULL);
"""
INDEX_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, workflow TEXT, status TEXT, started REAL, record TEXT);
CREATE TABLE IF NOT EXISTS spans (run_id TEXT NOT NULL, span_id TEXT NOT NULL, name TEXT, start_time REAL,
    attributes TEXT, PRIMARY KEY (run_id, span_id));
CREATE INDEX IF NOT EXISTS runs_by_started ON runs (started DESC);
"""


def _store_image() -> bytes:
    """A new store's file, as the run store makes it once per process: the tables in an in-memory database,
    serialised, marked WAL."""
    db = sqlite3.connect(":memory:")
    db.executescript(SCHEMA)
    image = bytearray(db.serialize())
    db.close()
    image[18:20] = b"\x02\x02"
    return bytes(image)


def _write_renamed(path: str, data: bytes) -> None:
    fd = os.open(f"{path}.tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, data)
    os.close(fd)
    os.replace(f"{path}.tmp", path)


class FloorWholeRun:
    """The file work of one whole run of a small workflow (`steps` agent steps of one model call each), done
    with bare calls: what `benchmarks.many_runs` compares a whole rolegraph run against.

    Per run: its folder, opened and locked (``flock``: no lock file); the store made from a template image
    (written and renamed), opened in WAL mode, its record committed without flushing; the trace file opened for
    appending; ``run.json`` written and renamed; the record updated (the run starts); per step one transaction
    (its call's journal row and the previous step's checkpoint row), the step's three spans written at their
    ends (two lines each: start and end); at the end the steps' lines appended to ``steps.jsonl`` with one
    ``write()`` (a short run's lines make one batch of the step log's writer), ``run.json`` written and renamed
    (the run retrieved no source: no ``sources.jsonl``), the record and last checkpoint committed, and the
    store closed (SQLite checkpoints its WAL into the file with its flushes: a finished run survives a power
    cut). The run's index
    rows (one run row, one per span) go to the home's shared index in one transaction of `index_batch` runs,
    as the long-lived index writer batches them.

    Thread-safe: runs may be done from several threads at once (each run its own files; the index behind a lock).
    """

    def __init__(self, folder: Path, *, steps: int = 3, index_batch: int = 32) -> None:
        self.folder = folder
        self.steps = steps
        self.index_batch = index_batch
        self._image = _store_image()
        self._lock = threading.Lock()
        self._runs = 0
        self._pending: list[tuple[str, int]] = []
        folder.mkdir(parents=True, exist_ok=True)
        self._index = sqlite3.connect(folder / "index.sqlite", isolation_level=None, check_same_thread=False)
        self._index.execute("PRAGMA journal_mode=WAL")
        self._index.execute("PRAGMA synchronous=NORMAL")
        self._index.executescript(INDEX_SCHEMA)

    def __call__(self) -> None:
        with self._lock:
            self._runs += 1
            number = self._runs
        run_dir = f"{self.folder}/run-{number}"
        os.mkdir(run_dir)
        lock = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        store = f"{run_dir}/run.sqlite"
        _write_renamed(store, self._image)
        db = sqlite3.connect(store, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA locking_mode=EXCLUSIVE")  # the run's own connection: no -shm file, no lock calls
        db.execute("PRAGMA synchronous=OFF")  # the log's first commit, unflushed, as the run store's
        db.execute("INSERT INTO run (id, record) VALUES (1, ?)", (RECORD,))
        db.execute("PRAGMA synchronous=NORMAL")
        trace = os.open(f"{run_dir}/trace.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        _write_renamed(f"{run_dir}/run.json", SUMMARY)
        db.execute("UPDATE run SET record = ? WHERE id = 1", (RECORD,))
        for i in range(self.steps):
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO calls (call_id, step_id, result) VALUES (?, ?, ?)", (f"s{i}/0", f"s{i}", RESULT))
            if i:
                db.execute("INSERT OR REPLACE INTO steps (step_id, state) VALUES (?, ?)", (f"s{i - 1}", RESULT))
            db.execute("COMMIT")
            for _ in range(3):
                os.write(trace, SPAN_LINE + SPAN_LINE)
        log = os.open(f"{run_dir}/steps.jsonl", os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        os.write(log, STEP_LINE * self.steps)
        os.close(log)
        _write_renamed(f"{run_dir}/run.json", SUMMARY)
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT OR REPLACE INTO steps (step_id, state) VALUES (?, ?)", (f"s{self.steps - 1}", RESULT))
        db.execute("UPDATE run SET record = ? WHERE id = 1", (RECORD,))
        db.execute("COMMIT")
        db.close()
        os.write(trace, SPAN_LINE + SPAN_LINE)  # the root span's end
        os.close(trace)
        os.close(lock)
        self._index_run(run_dir, number)

    def _index_run(self, run_dir: str, number: int) -> None:
        with self._lock:
            self._pending.append((run_dir, number))
            if len(self._pending) < self.index_batch:
                return
            self.flush_index()

    def flush_index(self) -> None:
        """Commit the index rows of the runs not yet indexed (call with the lock held, or at the end)."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        spans = 1 + 3 * self.steps
        self._index.execute("BEGIN IMMEDIATE")
        self._index.executemany(
            "INSERT INTO runs (run_id, workflow, status, started, record) VALUES (?, 'w', 'completed', 0, ?)",
            [(f"run-{n}", RECORD) for _, n in pending],
        )
        self._index.executemany(
            "INSERT INTO spans (run_id, span_id, name, start_time, attributes) VALUES (?, ?, 'span', 0, ?)",
            [(f"run-{n}", f"span-{s}", SPAN_LINE.decode()) for _, n in pending for s in range(spans)],
        )
        self._index.execute("COMMIT")

    def close(self) -> None:
        """Index what is pending and close the index."""
        with self._lock:
            self.flush_index()
        self._index.close()
