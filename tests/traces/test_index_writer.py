"""The home's one index writer: live rows from buffered records, a run's row completed at its end without a
re-import, and a re-import where the live rows may be incomplete."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

from rolegraph.traces._rows import RunEnd
from rolegraph.traces.index_writer import INDEX_INTERVAL_S, IndexWriter, index_writer
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
        await run.finish(END)
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
        await run.finish(dataclasses.replace(END, resumed=True))
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
        await asyncio.gather(*(run.finish(END) for run, _, _ in feeds))
        with TraceStore(home / "index.sqlite", prices=PriceTable()) as store:
            live = {folder.name: (_row(home, folder.name), _span_rows(store, folder.name)) for _, folder, _ in feeds}
            assert store.sync(runs) == []
            for run, folder, records in feeds:
                assert run.errors == 0
                imported = dataclasses.asdict(store.import_run(folder))
                assert live[folder.name] == (imported, _span_rows(store, folder.name))
                assert {s.span_id for s in store.spans(folder.name)} == store_spans(records)

    async def test_a_run_end_writes_only_that_runs_rows(self, runs: Path, make_records: Any) -> None:
        """A run's end commits its own records; another run's records wait for the interval (here: its close)."""
        home = runs.parent
        writer = IndexWriter(home / "index.sqlite", interval=3600)
        ending, open_ = await make_records("20261101-120000-aaaaaa"), await make_records("20261101-120001-bbbbbb")
        other = writer.open_run(runs / open_[0]["run_id"])
        for record in open_[:3]:
            other.emit(record)
        run = writer.open_run(runs / ending[0]["run_id"])
        for record in ending:
            run.emit(record)
        await run.finish(END)
        with TraceStore(home / "index.sqlite", prices=PriceTable()) as store:
            assert {s.span_id for s in store.spans(ending[0]["run_id"])} == store_spans(ending)
            assert store.spans(open_[0]["run_id"]) == []
        other.close()
        with TraceStore(home / "index.sqlite", prices=PriceTable()) as store:
            assert len(store.spans(open_[0]["run_id"])) == 3

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

    def test_the_trace_file_is_written_before_the_index(self) -> None:
        """Buffered span starts reach the trace file sooner than the index commits them: the index never shows
        an open span that a run killed at that moment lacks in its file (the source the index is rebuilt from)."""
        assert FLUSH_INTERVAL_S < INDEX_INTERVAL_S

    async def test_one_writer_per_home(self, tmp_path: Path) -> None:
        """Every run of a process indexing into one home shares one writer."""
        assert index_writer(tmp_path / "index.sqlite") is index_writer(tmp_path / "." / "index.sqlite")
        assert index_writer(tmp_path / "index.sqlite") is not index_writer(tmp_path / "b" / "index.sqlite")


def _span_rows(store: TraceStore, run_id: str) -> list[dict[str, Any]]:
    return sorted((dataclasses.asdict(s) for s in store.spans(run_id)), key=lambda s: str(s["span_id"]))


def store_spans(records: Records) -> set[str]:
    """The span ids among `records`."""
    return {r["span_id"] for r in records if r.get("event") in ("span_start", "span_end")}
