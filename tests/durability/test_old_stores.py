"""Run stores written by an older rolegraph (``calls.seq`` AUTOINCREMENT, no ``request`` column, no
``superseded`` table, ``steps`` with a rowid) still resume, replay and keep their journal's order."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import rolegraph
from durable_projects import outputs_of
from rolegraph.durability.replay import replay
from rolegraph.durability.resume import resume
from rolegraph.durability.store import JournalEntry, RunStore
from rolegraph.layout import STORE_FILE
from rolegraph.runtime.result import RunResult
from rolegraph.workflows.spec import Budget

OLD_SCHEMA = """
BEGIN;
CREATE TABLE old_calls (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, call_id TEXT NOT NULL UNIQUE, step_id TEXT NOT NULL,
    kind TEXT NOT NULL, model TEXT, input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0, result TEXT NOT NULL
);
INSERT INTO old_calls (call_id, step_id, kind, model, input_tokens, output_tokens, result)
    SELECT call_id, step_id, kind, model, input_tokens, output_tokens, result FROM calls ORDER BY seq;
DROP TABLE calls;
ALTER TABLE old_calls RENAME TO calls;
CREATE TABLE old_steps (step_id TEXT PRIMARY KEY, state TEXT NOT NULL);
INSERT INTO old_steps SELECT step_id, state FROM steps;
DROP TABLE steps;
ALTER TABLE old_steps RENAME TO steps;
DROP TABLE superseded;
COMMIT;
"""


pytestmark = pytest.mark.usefixtures("home")


def make_old(path: Path) -> None:
    """Rewrite a run store in the schema of an older rolegraph."""
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(OLD_SCHEMA)
    db.close()


def schema_of(path: Path) -> dict[str, str]:
    db = sqlite3.connect(path)
    tables: dict[str, str] = dict(db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'"))
    db.close()
    return tables


def call_ids(path: Path) -> list[str]:
    store = RunStore(path, read_only=True)
    ids = [entry.call_id for entry in store.entries()]
    store.close()
    return ids


def test_a_new_store_has_the_lean_schema(tmp_path: Path) -> None:
    """A new store is a sound WAL database whose journal has a plain rowid (no AUTOINCREMENT bookkeeping) and no
    index on call ids, and whose steps have no rowid."""
    RunStore(tmp_path / STORE_FILE).close()
    tables = schema_of(tmp_path / STORE_FILE)
    assert "sqlite_sequence" not in tables
    assert "AUTOINCREMENT" not in tables["calls"] and "AUTOINCREMENT" not in tables["superseded"]
    assert "UNIQUE" not in tables["calls"]
    assert tables["steps"].endswith("WITHOUT ROWID")
    db = sqlite3.connect(tmp_path / STORE_FILE)
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()
    assert sorted(path.name for path in tmp_path.iterdir()) == [STORE_FILE]  # no temporary file left


def test_a_replaced_call_goes_last_in_the_journal_even_when_it_was_last(tmp_path: Path) -> None:
    """Replacing the newest call (its rowid freed and reused) or an older one keeps the journal in recorded
    order, the replaced record in ``superseded``."""
    store = RunStore(tmp_path / STORE_FILE)
    for call_id in ("a", "b", "c"):
        store.put(JournalEntry(call_id=call_id, step_id="s", kind="chat", result={"v": call_id}))
    store.put(JournalEntry(call_id="c", step_id="s", kind="chat", result={"v": "c2"}), replace=True)
    store.put(JournalEntry(call_id="a", step_id="s", kind="chat", result={"v": "a2"}), replace=True)
    store.put(JournalEntry(call_id="d", step_id="s", kind="chat", result={"v": "d"}))
    assert [(e.call_id, e.result) for e in store.entries()] == [
        ("b", {"v": "b"}),
        ("c", {"v": "c2"}),
        ("a", {"v": "a2"}),
        ("d", {"v": "d"}),
    ]
    assert [(e.call_id, e.result) for e in store.superseded()] == [("c", {"v": "c"}), ("a", {"v": "a"})]
    assert store.get("a") == {"v": "a2"}
    store.close()


async def test_an_old_store_resumes_and_replays(project: Path, tmp_path: Path) -> None:
    """A run stopped by its budget whose store is in the old schema resumes to the end like an unlimited run
    (its journal gaining the new calls after the old, in order) and the resumed run replays identically."""
    baseline = await rolegraph.load(project).run(home=tmp_path / "baseline")
    stopped = await rolegraph.load(project).run(budget=Budget(max_iterations=2))
    assert stopped.status == "budget_exceeded"
    path = stopped.run_dir / STORE_FILE
    before = call_ids(path)
    make_old(path)
    old = schema_of(path)
    assert "sqlite_sequence" in old and "superseded" not in old and "request" not in old["calls"]
    assert call_ids(path) == before

    result: RunResult = await resume(stopped.run_dir, budget=Budget(max_iterations=100))
    assert result.status == "completed", result.error
    assert result.usage == baseline.usage
    assert outputs_of(result.run_dir) == outputs_of(baseline.run_dir)
    after = call_ids(path)
    assert after[: len(before)] == before and len(after) == len(call_ids(baseline.run_dir / STORE_FILE))
    assert "AUTOINCREMENT" in schema_of(path)["calls"]  # an old store keeps its schema

    report = await replay(result.run_dir)
    assert report.status == "identical", report.divergence
    assert outputs_of(report.result.run_dir) == outputs_of(baseline.run_dir)
