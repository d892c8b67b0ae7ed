"""The home's one index writer: live rows from buffered records, a run's row completed at its end without a
re-import, and a re-import where the live rows may be incomplete."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from rolegraph.traces._rows import RunEnd
from rolegraph.traces.index_writer import index_writer
from rolegraph.traces.pricing import PriceTable
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

    async def test_one_writer_per_home(self, tmp_path: Path) -> None:
        """Every run of a process indexing into one home shares one writer."""
        assert index_writer(tmp_path / "index.sqlite") is index_writer(tmp_path / "." / "index.sqlite")
        assert index_writer(tmp_path / "index.sqlite") is not index_writer(tmp_path / "b" / "index.sqlite")


def store_spans(records: Records) -> set[str]:
    """The span ids among `records`."""
    return {r["span_id"] for r in records if r.get("event") in ("span_start", "span_end")}
