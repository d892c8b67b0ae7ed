"""The home's one index writer: live rows from buffered records, a run's row completed at its end without a
re-import, and a re-import where the live rows may be incomplete."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from rolegraph.traces._rows import RunEnd
from rolegraph.traces.home_index import open_index
from rolegraph.traces.index_writer import INDEX_INTERVAL_S, IndexWriter, RunIndex, index_writer
from rolegraph.traces.pricing import PriceTable
from rolegraph.traces.sinks import FLUSH_INTERVAL_S
from rolegraph.traces.store import TraceStore

Records = list[dict[str, Any]]
END = RunEnd("completed", 1_793_534_400.0, 1.5)  # 2026-11-01T12:00:00Z, as write_run's run.json says


def _row(home: Path, run_id: str) -> dict[str, Any]:
    with TraceStore(home / "index.sqlite", prices=PriceTable()) as store:
        row = store.run(run_id)
        assert row is not None
        return dataclasses.asdict(row)


class TestIndexWriter:
    async def test_a_finished_run_needs_no_reimport(self, runs: Path, records: Records, make_run: Any) -> None:
        """Records fed live and a finish give the row an import would, and `sync` then imports nothing."""
        folder = make_run(runs, records)
        home = runs.parent
        run = index_writer(home / "index.sqlite").open_run(folder)
        for record in records:
            run.emit(record)
        run.finish(END)
        run.writer.drain()
        live = _row(home, folder.name)
        with TraceStore(home / "index.sqlite", prices=PriceTable()) as store:
            assert store.sync(runs) == []
            spans = len(store.spans(folder.name))
            imported = dataclasses.asdict(store.import_run(folder))
        assert live == imported and spans == len(store_spans(records))

    async def test_records_reach_the_index_while_the_run_runs(self, runs: Path, records: Records) -> None:
        """Without a finish, buffered records are committed by the writer on its own (the run shows live)."""
        home = runs.parent
        run = index_writer(home / "index.sqlite").open_run(runs / records[0]["run_id"])
        for record in records[:3]:
            run.emit(record)
        run.close()  # waits for the writer to commit what was buffered
        with TraceStore(home / "index.sqlite", prices=PriceTable()) as store:
            assert [s.span_id for s in store.spans(records[0]["run_id"])] == [r["span_id"] for r in records[:3]]
            assert store.run(records[0]["run_id"]).status == "running"  # type: ignore[union-attr]

    async def test_a_resumed_run_is_imported_from_its_folder(self, runs: Path, records: Records, make_run: Any) -> None:
        """A resumed invocation's live rows lack the earlier invocations': the run is re-imported at its end."""
        folder = make_run(runs, records)
        home = runs.parent
        run = index_writer(home / "index.sqlite").open_run(folder)
        for record in records[-2:]:  # only the second invocation's last records went through this process
            run.emit(record)
        run.finish(dataclasses.replace(END, resumed=True))
        run.writer.drain()
        with TraceStore(home / "index.sqlite", prices=PriceTable()) as store:
            assert len(store.spans(folder.name)) == len(store_spans(records))

    async def test_runs_finishing_together_get_the_rows_an_import_would(
        self, runs: Path, make_records: Any, make_run: Any
    ) -> None:
        """Several runs fed and finished at once (one transaction for all) each get an import's row and spans."""
        home = runs.parent
        writer = IndexWriter(home / "index.sqlite")
        feeds = []
        for n in range(5):
            records = await make_records(f"20261101-12000{n}-aaaaaa")
            folder = make_run(runs, records)
            run = writer.open_run(folder)
            for record in records:
                run.emit(record)
            feeds.append((run, folder, records))
        for run, _, _ in feeds:
            run.finish(END)
        writer.drain()
        with TraceStore(home / "index.sqlite", prices=PriceTable()) as store:
            live = {folder.name: (_row(home, folder.name), _span_rows(store, folder.name)) for _, folder, _ in feeds}
            assert store.sync(runs) == []
            for run, folder, records in feeds:
                assert run.errors == 0
                imported = dataclasses.asdict(store.import_run(folder))
                assert live[folder.name] == (imported, _span_rows(store, folder.name))
                assert {s.span_id for s in store.spans(folder.name)} == store_spans(records)

    async def test_a_run_end_is_committed_within_the_interval_or_at_a_drain(
        self, runs: Path, records: Records, make_run: Any
    ) -> None:
        """`finish` returns before the row is complete (the run does not wait); a drain, as `open_index` does,
        gives the completed row."""
        folder = make_run(runs, records)
        home = runs.parent
        writer = IndexWriter(home / "index.sqlite", interval=3600)
        run = writer.open_run(folder)
        for record in records:
            run.emit(record)
        run.finish(END)
        with TraceStore(home / "index.sqlite", prices=PriceTable()) as store:
            assert store.run(folder.name) is None  # an hour's interval: nothing written yet
        writer.drain()
        assert _row(home, folder.name)["status"] == "completed"

    def test_open_index_drains_this_process_writer(self, runs: Path, records: Records, make_run: Any) -> None:
        """A reader of the home's index in the process that ran the run sees the run completed at once."""
        folder = make_run(runs, records)
        home = runs.parent
        run = index_writer(home / "index.sqlite").open_run(folder)
        for record in records[:-1]:
            run.emit(record)
        run.close()  # the run's row is in the index, running (`sync` leaves a live run to its writer)
        run.emit(records[-1])
        run.finish(END)
        with open_index(home, PriceTable()) as store:
            row = store.run(folder.name)
        assert row is not None and row.status == "completed" and row.input_tokens == 6000

    def test_the_process_exit_commits_a_finished_runs_row(self, runs: Path, records: Records, make_run: Any) -> None:
        """A process that exits right after its run ended leaves the run's row completed, not running."""
        folder = make_run(runs, records)
        home = runs.parent
        script = f"""
import json
from pathlib import Path
from rolegraph.traces._rows import RunEnd
from rolegraph.traces.home_index import open_index
from rolegraph.traces.index_writer import index_writer
folder = Path({str(folder)!r})
run = index_writer(folder.parent.parent / "index.sqlite").open_run(folder)
for line in (folder / "trace.jsonl").read_text().splitlines():
    run.emit(json.loads(line))
run.finish(RunEnd("completed", 1_793_534_400.0, 1.5))
"""
        subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
        with TraceStore(home / "index.sqlite", prices=PriceTable()) as store:
            row = store.run(folder.name)
            assert row is not None and row.status == "completed"
            assert store.sync(runs) == []  # the row carries the folder's stamp: nothing to re-import

    async def test_a_span_started_and_ended_in_one_batch_passes_its_step_on(self, runs: Path, records: Records) -> None:
        """Spans whose start and end are committed together get one finished row, and their children the
        step and role they inherit."""
        home = runs.parent
        run = IndexWriter(home / "index.sqlite", interval=3600).open_run(runs / records[0]["run_id"])
        for record in records:
            run.emit(record)
        run.close()
        with TraceStore(home / "index.sqlite", prices=PriceTable()) as store:
            spans = store.spans(records[0]["run_id"])
        chats = sorted((s.step_id, s.role, s.status) for s in spans if s.kind == "chat")
        assert chats == [("a", "researcher", "ok"), ("b", "researcher", "ok"), ("write", "writer", "ok")]
        assert len(spans) == len(store_spans(records)) and all(s.status == "ok" for s in spans)

    async def test_a_failing_write_is_counted_not_raised(self, runs: Path, records: Records) -> None:
        """A batch that fails to write stays in the writer thread: counted on the run, never raised into it."""
        writer = IndexWriter(runs.parent / "index.sqlite")
        run = writer.open_run(runs / records[0]["run_id"])
        run.emit({**records[0], "name": {"not": "bindable"}})  # SQLite cannot bind a dict: the batch fails
        run.close()
        assert run.errors == 1 and writer.errors == 0
        with TraceStore(runs.parent / "index.sqlite", prices=PriceTable()) as store:
            assert store.spans(records[0]["run_id"]) == []  # the failed batch left nothing half-written

    async def test_a_database_that_cannot_open_is_counted(self, runs: Path, records: Records) -> None:
        """An index that cannot be opened (a file where its folder should be) is counted; the run goes on."""
        (runs.parent / "blocked").write_text("a file where a folder should be")
        writer = IndexWriter(runs.parent / "blocked" / "index.sqlite")
        run = writer.open_run(runs / records[0]["run_id"])
        for record in records:
            run.emit(record)
        run.close()  # returns although nothing could be written
        assert writer.errors == 1

    def test_the_writer_is_told_once_per_batch_and_again_after_a_take(self, tmp_path: Path) -> None:
        """A run tells the writer of its first buffered record only, and again of the first one after the writer
        took the batch: no record is left untold."""
        told: list[RunIndex] = []

        class Writer(_NoWriter):
            def due(self, run: RunIndex, *, ends: bool = False) -> None:
                told.append(run)

        run = RunIndex(Writer(), tmp_path / "run")
        for n in range(3):
            run.emit({"n": n})
        assert len(told) == 1 and [r["n"] for r in run.take()] == [0, 1, 2]
        run.emit({"n": 3})
        assert len(told) == 2 and [r["n"] for r in run.take()] == [3]
        assert run.take() == []

    def test_records_emitted_while_the_writer_takes_are_each_taken_once(self, tmp_path: Path) -> None:
        """The loop emits while the writer thread takes: every record is taken exactly once, in order."""
        run = RunIndex(_NoWriter(), tmp_path / "run")  # the test's thread takes the records, as the writer's would
        taken: list[int] = []
        done = threading.Event()

        def take() -> None:
            while not done.is_set():
                taken.extend(r["n"] for r in run.take())
            taken.extend(r["n"] for r in run.take())

        taker = threading.Thread(target=take)
        taker.start()
        for n in range(50_000):
            run.emit({"n": n})
        done.set()
        taker.join()
        assert taken == list(range(50_000))

    def test_the_trace_file_is_written_before_the_index(self) -> None:
        """Buffered span starts reach the trace file sooner than the index commits them: the index never shows
        an open span that a run killed at that moment lacks in its file (the source the index is rebuilt from)."""
        assert FLUSH_INTERVAL_S < INDEX_INTERVAL_S

    async def test_one_writer_per_home(self, tmp_path: Path) -> None:
        """Every run of a process indexing into one home shares one writer."""
        assert index_writer(tmp_path / "index.sqlite") is index_writer(tmp_path / "." / "index.sqlite")
        assert index_writer(tmp_path / "index.sqlite") is not index_writer(tmp_path / "b" / "index.sqlite")


class _NoWriter(IndexWriter):
    """A writer that is told of records but never takes them (its thread is not started)."""

    def __init__(self) -> None:  # no database, no thread
        pass

    def due(self, run: RunIndex, *, ends: bool = False) -> None:
        """Told: nothing to do."""


def _span_rows(store: TraceStore, run_id: str) -> list[dict[str, Any]]:
    return sorted((dataclasses.asdict(s) for s in store.spans(run_id)), key=lambda s: str(s["span_id"]))


def store_spans(records: Records) -> set[str]:
    """The span ids among `records`."""
    return {r["span_id"] for r in records if r.get("event") in ("span_start", "span_end")}
