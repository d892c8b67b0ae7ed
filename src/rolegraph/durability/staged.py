"""Checkpoints saved to the run store but not yet committed (`rolegraph.durability.store`), merged into one write."""

from __future__ import annotations

import sqlite3
import time

__all__ = ["Staged"]

_SAVE_STEP = "INSERT OR REPLACE INTO steps (step_id, state) VALUES (?, ?)"


class Staged:
    """Checkpoints saved but not yet committed, merged: the last state of each step, the last route tables
    and elapsed time, how many checkpoints they hold (each is a ``checkpoint`` kill point) and when the first
    was staged."""

    def __init__(self) -> None:
        self.count = 0
        self.since = 0.0
        """When the first checkpoint was staged (`time.monotonic`, the event loop's clock)."""
        self.steps: dict[str, str] = {}
        self.routes: tuple[list[tuple[str, int, int]], list[tuple[str, str]]] | None = None
        self.elapsed_s: float | None = None

    def add(
        self,
        rows: list[tuple[str, str]],
        routes: tuple[list[tuple[str, int, int]], list[tuple[str, str]]] | None,
        elapsed_s: float | None,
    ) -> None:
        if not self.count:
            self.since = time.monotonic()
        self.count += 1
        self.steps.update(rows)
        if routes is not None:
            self.routes = routes
        if elapsed_s is not None:
            self.elapsed_s = elapsed_s

    def write(self, db: sqlite3.Connection) -> None:
        """Write the staged rows (inside the caller's transaction)."""
        if len(self.steps) == 1:  # the usual checkpoint: one step's row
            db.execute(_SAVE_STEP, next(iter(self.steps.items())))
        else:
            db.executemany(_SAVE_STEP, self.steps.items())
        if self.routes is not None:
            fired, routed = self.routes
            db.execute("DELETE FROM routes")
            db.executemany("INSERT INTO routes (step_id, route, fired) VALUES (?, ?, ?)", fired)
            db.execute("DELETE FROM routed")
            db.executemany("INSERT INTO routed (step_id, context) VALUES (?, ?)", routed)
        if self.elapsed_s is not None:  # the one field that changes: not the whole record again
            sql = "UPDATE run SET record = json_set(record, '$.elapsed_s', ?) WHERE id = 1"
            db.execute(sql, (self.elapsed_s,))
