"""Trace store: importing runs (idempotently, crashed ones too), listing, spans by step, pruning, the live sink."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from rolegraph.traces.pricing import PriceTable
from rolegraph.traces.store import StoreSink, TraceStore, _Context

Records = list[dict[str, Any]]


@pytest.fixture
def store(runs: Path) -> Any:
    with TraceStore(runs.parent / "index.sqlite", prices=PriceTable()) as opened:
        yield opened


def _counts(path: Path) -> tuple[int, int]:
    with sqlite3.connect(path) as db:
        counts = db.execute("SELECT (SELECT COUNT(*) FROM runs), (SELECT COUNT(*) FROM spans)").fetchone()
    db.close()
    return counts[0], counts[1]


class TestImport:
    def test_run_row(self, store: TraceStore, runs: Path, records: Records, make_run: Any) -> None:
        """A run's row has its workflow, status, times, tokens (chat spans only) and cost from the price table."""
        folder = make_run(runs, records)
        row = store.import_run(folder)
        assert row.as_dict() == {
            "run_id": "20261101-120000-aaaaaa",
            "workflow": "demo",
            "status": "completed",
            "started": "2026-11-01T12:00:00+00:00",
            "ended": row.as_dict()["ended"],
            "duration_s": 1.5,
            "input_tokens": 6000,
            "output_tokens": 600,
            "cost_usd": pytest.approx(0.00084),
            "run_dir": str(folder),
        }
        assert row.ended is not None

    def test_reimport_is_idempotent(self, store: TraceStore, runs: Path, records: Records, make_run: Any) -> None:
        """Importing a run twice replaces its rows: same run row, same spans, no duplicates."""
        folder = make_run(runs, records)
        first = (store.import_run(folder), store.spans("20261101-120000-aaaaaa"))
        second = (store.import_run(folder), store.spans("20261101-120000-aaaaaa"))
        assert first == second
        assert _counts(store.path) == (1, 13)

    def test_spans_inherit_step_role_and_item(self, store: TraceStore, runs: Path, records: Records, make_run: Any):
        """`spans(run, step=...)` gives the step's agent and everything inside it, with role, model and tool."""
        store.import_run(make_run(runs, records))
        spans = store.spans("20261101-120000-aaaaaa", step="a")
        assert [(s.kind, s.step_id, s.role, s.model, s.tool, s.input_tokens) for s in spans] == [
            ("invoke_agent", "a", "researcher", None, None, None),
            ("react_step", "a", "researcher", None, None, None),
            ("chat", "a", "researcher", "openai:gpt-4o-mini", None, 1000),
            ("execute_tool", "a", "researcher", None, "library_search", None),
        ]
        assert spans[0].attributes["rolegraph.aggregated.input_tokens"] == 1000
        assert len(store.spans("20261101-120000-aaaaaa")) == 13

    def test_crashed_run(self, store: TraceStore, runs: Path, records: Records, make_run: Any) -> None:
        """A run killed mid-way (open spans, torn last line, run.json never finalised) lists as unfinished."""
        open_ids = {r["span_id"] for r in records if r["name"] in ("invoke_workflow demo", "invoke_agent writer")}
        cut = [r for r in records if not (r["event"] == "span_end" and r["span_id"] in open_ids)]
        store.import_run(make_run(runs, cut, status="failed", torn=True))
        [row] = store.list_runs()
        assert (row.status, row.ended, row.duration_s, row.input_tokens) == ("unfinished", None, None, 6000)
        statuses = {s.name: s.status for s in store.spans(row.run_id)}
        assert statuses["invoke_workflow demo"] == statuses["invoke_agent writer"] == "unfinished"
        assert statuses["chat openai:gpt-4o-mini"] == "ok"

    def test_folder_without_run_json(self, store: TraceStore, runs: Path, records: Records, make_run: Any) -> None:
        """Without run.json, the id is the folder's name and the start the root span's."""
        folder = make_run(runs, records)
        (folder / "run.json").unlink()
        row = store.import_run(folder)
        assert (row.run_id, row.workflow, row.status) == (folder.name, "demo", "completed")
        assert row.started == records[0]["start_time"]


class TestSyncAndList:
    async def test_sync_imports_new_and_changed_folders_only(
        self, store: TraceStore, runs: Path, make_run: Any, make_records: Any
    ) -> None:
        """`sync` imports folders it has not seen or that changed, and forgets deleted ones."""
        first = make_run(runs, await make_records("20261101-120000-aaaaaa"))
        make_run(runs, await make_records("20261102-120000-bbbbbb"), started=dt.datetime(2026, 11, 2, tzinfo=dt.UTC))
        assert store.sync(runs) == ["20261101-120000-aaaaaa", "20261102-120000-bbbbbb"]
        assert store.sync(runs) == []
        with (first / "trace.jsonl").open("a") as f:
            f.write("\n")
        assert store.sync(runs) == ["20261101-120000-aaaaaa"]
        (first / "trace.jsonl").unlink()
        (first / "run.json").unlink()
        first.rmdir()
        store.sync(runs)
        assert [r.run_id for r in store.list_runs()] == ["20261102-120000-bbbbbb"]

    async def test_list_newest_first_by_workflow(
        self, store: TraceStore, runs: Path, make_run: Any, make_records: Any
    ) -> None:
        """Runs list newest first (by start, not by id), with a limit and a workflow filter."""
        for day, run_id in [
            (3, "20261101-000000-cccccc"),
            (1, "20261103-000000-aaaaaa"),
            (2, "20261102-000000-bbbbbb"),
        ]:
            make_run(runs, await make_records(run_id), started=dt.datetime(2026, 11, day, tzinfo=dt.UTC))
        store.sync(runs)
        assert [r.run_id[-6:] for r in store.list_runs()] == ["cccccc", "bbbbbb", "aaaaaa"]
        assert [r.run_id[-6:] for r in store.list_runs(limit=1)] == ["cccccc"]
        assert len(store.list_runs(workflow="demo")) == 3
        assert store.list_runs(workflow="other") == []

    def test_costs_follow_the_current_prices(self, runs: Path, records: Records, make_run: Any) -> None:
        """Listing prices tokens at the store's current table: an unknown model's cost is None."""
        folder = make_run(runs, records)
        with TraceStore(runs.parent / "index.sqlite") as store:
            store.import_run(folder)
        (runs.parent / "prices.yaml").write_text("openai:gpt-4o-mini: {input: 1000000, output: 0}\n")
        with TraceStore(runs.parent / "index.sqlite") as store:
            assert store.list_runs()[0].cost_usd == pytest.approx(4000.0)
        with TraceStore(runs.parent / "index.sqlite", prices=PriceTable({})) as store:
            assert store.list_runs()[0].cost_usd is None


class TestDelete:
    async def test_older_runs_and_their_folders_go(
        self, store: TraceStore, runs: Path, make_run: Any, make_records: Any
    ) -> None:
        """`delete_runs` removes the rows and folders of runs started before the cut, and keeps the rest."""
        old = make_run(
            runs, await make_records("20261001-000000-aaaaaa"), started=dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
        )
        new = make_run(
            runs, await make_records("20261120-000000-bbbbbb"), started=dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
        )
        store.sync(runs)
        deleted = store.delete_runs(dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
        assert [r.run_id for r in deleted] == ["20261001-000000-aaaaaa"]
        assert not old.exists() and new.exists()
        assert [r.run_id for r in store.list_runs()] == ["20261120-000000-bbbbbb"]
        assert store.spans("20261001-000000-aaaaaa") == []


class _GatedStore(TraceStore):
    """Records the thread of each write, and holds writes until `gate` is set."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, prices=PriceTable())
        self.gate = threading.Event()
        self.threads: set[int] = set()

    def write_records(
        self, records: list[dict[str, Any]], context: _Context | None = None, *, run_dir: Path | None = None
    ) -> None:
        self.threads.add(threading.get_ident())
        assert self.gate.wait(timeout=10)
        super().write_records(records, context, run_dir=run_dir)


class TestStoreSink:
    def test_writes_on_its_own_thread_and_flushes_on_close(self, runs: Path, records: Records) -> None:
        """`emit` returns while the writer is held; `close` writes everything, from the sink's thread."""
        with _GatedStore(runs.parent / "index.sqlite") as store:
            sink = StoreSink(store)
            for record in records:
                sink.emit(record)  # would hang here if emit waited for the (held) writer
            assert _counts(store.path) == (0, 0)
            store.gate.set()
            sink.close()
            assert store.threads == {sink.thread.ident} and threading.get_ident() not in store.threads
            [row] = store.list_runs()
            assert (row.status, row.input_tokens, row.output_tokens) == ("completed", 6000, 600)
            assert len(store.spans(row.run_id)) == 13
            assert {s.step_id for s in store.spans(row.run_id) if s.kind == "chat"} == {"a", "b", "write"}

    def test_open_spans_are_unfinished_until_they_end(self, runs: Path, records: Records) -> None:
        """A span that has started but not ended is indexed as unfinished; the run as running."""
        root_end = next(r for r in records if r["event"] == "span_end" and r["parent_id"] is None)
        with TraceStore(runs.parent / "index.sqlite") as store:
            sink = StoreSink(store)
            for record in records:
                if record is not root_end:
                    sink.emit(record)
            sink.close()
            [row] = store.list_runs()
            assert row.status == "running"
            assert [s.status for s in store.spans(row.run_id) if s.parent_id is None] == ["unfinished"]

    def test_a_failing_write_is_counted_not_raised(self, runs: Path) -> None:
        """A write error stays in the writer thread: counted, never raised into the run."""
        with TraceStore(runs.parent / "index.sqlite") as store:
            store.close()  # every write now fails
            sink = StoreSink(store)
            sink.emit({"event": "span_start", "run_id": "r", "span_id": "1", "kind": "chat", "name": "x"})
            sink.close()
            assert sink.errors == 1
