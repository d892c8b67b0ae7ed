"""The file work a durable, traced step does, done with bare ``sqlite3`` and ``os`` calls: a floor per step.

A step of a whole rolegraph run leaves on disk, at the least: one SQLite transaction
(its call's journal row and its checkpoint row, WAL, ``synchronous=NORMAL``, as the
run store commits them), its finished spans appended to the trace (four lines of
about 400 bytes: the agent, its reasoning step, its model call, its checkpoint),
and its step file written to a temporary name and renamed; per run, a folder, a
trace file, and the store created without flushing and closed (SQLite checkpoints
its WAL). `FloorRun` does exactly that for N steps with no framework around it, so
a whole run's per-step time can be read against what its disk work alone costs on
this machine.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

__all__ = ["FloorRun"]

SPAN_LINE = b'{"span": "' + b"x" * 386 + b'"}\n'
STEP_FILE = json.dumps({"step_id": "s0", "status": "completed", "output": {"value": "ok" * 200}}, indent=2).encode()
RESULT = json.dumps({"message": {"role": "assistant", "content": "x" * 160}, "usage": {"input_tokens": 22}})


class FloorRun:
    """One "run" of N steps of bare file work in `folder` (each call makes a fresh folder, as a run does)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._runs = 0

    def __call__(self, steps: int) -> None:
        self._runs += 1
        run_dir = self.folder / f"floor-{self._runs}"
        (run_dir / "steps").mkdir(parents=True)
        db = sqlite3.connect(run_dir / "store.sqlite", isolation_level=None)
        db.execute("PRAGMA synchronous=OFF")  # a new file: created without flushing, as the run store does
        db.execute("PRAGMA journal_mode=MEMORY")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE calls (seq INTEGER PRIMARY KEY, call_id TEXT NOT NULL UNIQUE, result TEXT)")
        db.execute("CREATE TABLE steps (step_id TEXT PRIMARY KEY, state TEXT NOT NULL)")
        db.execute("PRAGMA synchronous=NORMAL")
        trace = os.open(run_dir / "trace.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            for i in range(steps):
                db.execute("BEGIN IMMEDIATE")
                db.execute("INSERT INTO calls (call_id, result) VALUES (?, ?)", (f"s{i}/0", RESULT))
                db.execute("INSERT OR REPLACE INTO steps (step_id, state) VALUES (?, ?)", (f"s{i}", RESULT))
                db.execute("COMMIT")
                for _ in range(4):
                    os.write(trace, SPAN_LINE)
                tmp, final = f"{run_dir}/steps/s{i}.json.tmp", f"{run_dir}/steps/s{i}.json"
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.write(fd, STEP_FILE)
                os.close(fd)
                os.replace(tmp, final)
        finally:
            os.close(trace)
            db.close()
