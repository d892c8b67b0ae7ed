"""Trace store: importing runs (idempotently, crashed ones too), listing, spans by step, pruning, live writes."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from trace_projects import probe_project, probe_script
from typer.testing import CliRunner

from rolegraph.cli import app
from rolegraph.traces._rows import Context, RunEnd, run_stamp
from rolegraph.traces.home_index import open_index
from rolegraph.traces.pricing import PriceTable
from rolegraph.traces.store import TraceStore

Records = list[dict[str, Any]]
END = RunEnd("completed", 1_793_534_400.0, 1.5)  # 2026-11-01T12:00:00Z, as write_run's run.json says


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
            "problem": None,
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


class TestDamagedRuns:
    async def test_a_damaged_run_is_listed_as_damaged_with_why(
        self, store: TraceStore, runs: Path, make_run: Any, make_records: Any
    ) -> None:
        """A run whose trace cannot be read is indexed as damaged with its file, line and field; others as usual."""
        good = make_run(runs, await make_records("20261101-120000-aaaaaa"))
        bad = make_run(runs, await make_records("20261102-120000-bbbbbb"))
        with (bad / "trace.jsonl").open("ab") as f:
            f.write(b'{"event": "span_start", "kind": "chat", "name": "x", "start_time": 1}\n')
        store.sync(runs)
        rows = {row.run_id: row for row in store.list_runs()}
        assert rows[good.name].status == "completed" and rows[good.name].problem is None
        damaged = rows[bad.name]
        assert (damaged.status, damaged.input_tokens, damaged.cost_usd) == ("damaged", 0, None)
        assert damaged.problem is not None
        assert damaged.problem.startswith("trace.jsonl, line 27: field `span_id` is missing; ")
        assert store.spans(bad.name) == []
        (bad / "trace.jsonl").write_text((good / "trace.jsonl").read_text().replace(good.name, bad.name))
        store.sync(runs)  # repaired: read again, as a run
        assert store.run(bad.name).status == "completed"  # type: ignore[union-attr]

    async def test_a_summary_naming_another_run_is_damage(
        self, store: TraceStore, runs: Path, make_run: Any, make_records: Any
    ) -> None:
        """A run.json whose run_id is not its folder's name makes the run damaged: a run's id is its folder's."""
        folder = make_run(runs, await make_records("20261101-120000-aaaaaa"))
        (folder / "run.json").write_text(json.dumps({"run_id": "../../../x", "status": "completed"}))
        row = store.import_run(folder)
        assert row.run_id == folder.name and row.status == "damaged"
        assert "field `run_id` names another run" in (row.problem or "")

    async def test_folders_not_named_by_a_run_id_are_not_runs(
        self, store: TraceStore, runs: Path, make_run: Any, make_records: Any
    ) -> None:
        """`sync` indexes only folders named by a run id; a row with another id never comes out of the index."""
        folder = make_run(runs, await make_records("20261101-120000-aaaaaa"))
        folder.rename(runs / "not-a-run")
        assert store.sync(runs) == []
        with sqlite3.connect(store.path) as db:
            db.execute("INSERT INTO runs (run_id, status, started, run_dir) VALUES ('../../x', 'completed', 1, '/')")
        db.close()
        assert store.list_runs() == []

    async def test_a_damaged_index_is_set_aside_and_rebuilt(self, runs: Path, make_run: Any, make_records: Any) -> None:
        """An index.sqlite that is not a database any more is moved to index.sqlite.damaged and rebuilt."""
        make_run(runs, await make_records("20261101-120000-aaaaaa"))
        index = runs.parent / "index.sqlite"
        index.write_bytes(b"this is not a database, whatever it was" * 200)
        with open_index(runs.parent, PriceTable()) as store:
            assert [row.run_id for row in store.list_runs()] == ["20261101-120000-aaaaaa"]
        assert (runs.parent / "index.sqlite.damaged").read_bytes().startswith(b"this is not")


class TestPrune:
    async def test_a_symlinked_run_folder_is_skipped_never_followed(
        self, store: TraceStore, runs: Path, make_run: Any, make_records: Any, tmp_path: Path
    ) -> None:
        """A run folder that is a symbolic link is reported as skipped; neither the link nor its target goes."""
        elsewhere = tmp_path / "elsewhere"
        target = make_run(elsewhere, await make_records("20261001-000000-aaaaaa"))
        (runs / target.name).symlink_to(target)
        plain = make_run(runs, await make_records("20261002-000000-bbbbbb"))
        for folder in (target, plain):
            summary = json.loads((folder / "run.json").read_text())
            (folder / "run.json").write_text(json.dumps({**summary, "started": "2026-10-01T00:00:00+00:00"}))
        store.sync(runs)
        pruned = store.prune(dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
        assert [r.run_id for r in pruned.deleted] == [plain.name]
        assert [(r.run_id, why.split(",")[0]) for r, why in pruned.skipped] == [
            (target.name, "its folder is a symbolic link")
        ]
        assert (runs / target.name).is_symlink() and (target / "trace.jsonl").is_file() and not plain.exists()
        assert [r.run_id for r in store.list_runs()] == [target.name]

    async def test_an_index_row_never_names_the_folder_to_delete(
        self, store: TraceStore, runs: Path, make_run: Any, make_records: Any, tmp_path: Path
    ) -> None:
        """Prune deletes runs/<run_id> beside the index, whatever folder the row names."""
        victim = make_run(tmp_path / "victim", await make_records("20261001-000000-aaaaaa"))
        with sqlite3.connect(store.path) as db:
            db.execute(
                "INSERT INTO runs (run_id, status, started, run_dir) VALUES (?, 'completed', 1, ?)",
                (victim.name, str(victim)),
            )
        db.close()
        pruned = store.prune(dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
        assert [r.run_id for r in pruned.deleted] == [victim.name]  # its row is forgotten ...
        assert (victim / "trace.jsonl").is_file()  # ... and the folder it named is untouched


def _dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


class TestLiveRuns:
    def test_running_until_the_writer_is_gone(self, runs: Path, records: Records) -> None:
        """A live run reads as running while its writer process exists, and as unfinished once it is gone."""
        root_end = next(r for r in records if r["event"] == "span_end" and r["parent_id"] is None)
        with TraceStore(runs.parent / "index.sqlite") as store:
            store.write_records([r for r in records if r is not root_end], run_dir=runs / "x")
            [row] = store.list_runs()
            assert (row.status, row.run_dir, row.input_tokens) == ("running", str(runs / "x"), 6000)
            with sqlite3.connect(store.path) as db:
                db.execute("UPDATE runs SET writer = ?", (f"{socket.gethostname()}:{_dead_pid()}",))
            db.close()
            assert store.run(row.run_id).status == "unfinished"  # type: ignore[union-attr]
            with sqlite3.connect(store.path) as db:
                db.execute("UPDATE runs SET writer = 'another-host:1'")
            db.close()
            assert store.run(row.run_id).status == "running"  # type: ignore[union-attr]  # trusted

    def test_sync_leaves_a_live_run_to_its_writer(self, runs: Path, records: Records, make_run: Any) -> None:
        """`sync` does not re-import a live run's folder (its JSONL would say unfinished) until its writer dies."""
        root_end = next(r for r in records if r["event"] == "span_end" and r["parent_id"] is None)
        partial = [r for r in records if r is not root_end]
        folder = make_run(runs, partial)
        with TraceStore(runs.parent / "index.sqlite") as store:
            store.write_records(partial, run_dir=folder)
            assert store.sync(runs) == []
            assert store.run(partial[0]["run_id"]).status == "running"  # type: ignore[union-attr]
            with sqlite3.connect(store.path) as db:
                db.execute("UPDATE runs SET writer = ?", (f"{socket.gethostname()}:{_dead_pid()}",))
            db.close()
            assert store.sync(runs) == [partial[0]["run_id"]]
            assert store.run(partial[0]["run_id"]).status == "unfinished"  # type: ignore[union-attr]

    def test_batches_of_any_length_index_every_span(self, runs: Path) -> None:
        """Batches of 1 to 150 spans give every span its row: open ones unfinished after the batch of their
        starts, each with its own end after the batch of ends."""
        with TraceStore(runs.parent / "index.sqlite") as store:
            for count in (1, 3, 21, 64, 85, 150):
                run_id = f"20261207-080000-{count:012x}"
                spans = [
                    {"run_id": run_id, "span_id": f"{count:04x}{n:012x}", "parent_id": None, "kind": "chat",
                     "name": f"chat {n}", "start_time": 1.0 + n, "attributes": {"gen_ai.usage.input_tokens": n}}
                    for n in range(count)
                ]  # fmt: skip
                store.write_records([{**span, "event": "span_start"} for span in spans])
                assert {s.status for s in store.spans(run_id)} == {"unfinished"}
                store.write_records(
                    [{**span, "event": "span_end", "status": "ok", "end_time": 2.0 + n} for n, span in enumerate(spans)]
                )
                indexed = store.spans(run_id)
                assert [(s.name, s.status, s.end_time, s.input_tokens) for s in indexed] == [
                    (f"chat {n}", "ok", 2.0 + n, n) for n in range(count)
                ]

    def test_totals_tallied_across_batches_are_an_imports(self, runs: Path, records: Records, make_run: Any) -> None:
        """A run fed a record per batch and finished from the writer's tally (no pass over its rows) gets the
        tokens and cost an import of its folder gives, through every batch while it runs too."""
        folder = make_run(runs, records)
        run_id = folder.name
        context = Context()
        with TraceStore(runs.parent / "index.sqlite", prices=PriceTable()) as store:
            for record in records:
                store.write_records([record], context, run_dir=folder)
                row = store.run(run_id)
                assert row is not None and row.input_tokens == sum(t[0] for t in (context.usage or {}).values())
            assert context.usage == {"openai:gpt-4o-mini": (4000, 400), "local": (2000, 200)}
            assert store.finish_run(run_id, END, run_stamp(folder), context.usage)
            live = store.run(run_id)
            imported = store.import_run(folder)
        assert live == imported and live is not None and (live.input_tokens, live.output_tokens) == (6000, 600)
        assert live.cost_usd is not None and live.cost_usd > 0

    def test_a_span_open_across_batches_ends_in_its_row(self, runs: Path, records: Records) -> None:
        """Batches cut between every start and its end (one context, as the live writer keeps): each span has one
        row, ended, in start order, as an import of the same records gives."""
        context = Context()
        with TraceStore(runs.parent / "index.sqlite") as store:
            for record in records:
                store.write_records([record], context)
            run_id = records[0]["run_id"]
            live = [(s.span_id, s.status, s.end_time, s.step_id, s.role) for s in store.spans(run_id)]
        starts = [r["span_id"] for r in records if r["event"] == "span_start"]
        assert [span[0] for span in live] == starts
        assert "unfinished" not in {span[1] for span in live} and context.open_rows == set()

    def test_a_span_indexed_again_takes_its_new_row(self, runs: Path, records: Records) -> None:
        """A span indexed already (a resumed run reopens its root span) and started and ended again within one
        batch replaces its old row."""
        root = [r for r in records if r["parent_id"] is None]
        with TraceStore(runs.parent / "index.sqlite") as store:
            store.write_records(records)
            again = [{**r, "start_time": r["start_time"] + 60} for r in root]
            again[-1] = {**again[-1], "status": "error", "error": "second time"}
            store.write_records(again)
            [indexed] = [s for s in store.spans(root[0]["run_id"]) if s.parent_id is None]
        expected = (root[0]["start_time"] + 60, "error", "second time")
        assert (indexed.start_time, indexed.status, indexed.error) == expected

    def test_open_spans_are_unfinished_until_they_end(self, runs: Path, records: Records) -> None:
        """A span that has started but not ended is indexed as unfinished; the run as running."""
        root_end = next(r for r in records if r["event"] == "span_end" and r["parent_id"] is None)
        with TraceStore(runs.parent / "index.sqlite") as store:
            store.write_records([r for r in records if r is not root_end])
            [row] = store.list_runs()
            assert row.status == "running"
            assert [s.status for s in store.spans(row.run_id) if s.parent_id is None] == ["unfinished"]


def _wait_for(predicate: Callable[[], bool], process: subprocess.Popen[bytes]) -> None:
    """Poll until `predicate` holds; fail if the process ends first (a generous safety bound, not a timing)."""
    for _ in range(1200):
        if predicate():
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError("the run never reached the awaited state")


def _statuses(store: TraceStore, run_id: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for span in store.spans(run_id):
        found.setdefault(f"{span.step_id or '-'} {span.kind} {span.tool or ''}".strip(), []).append(span.status)
    return found


class TestCrash:
    def test_killed_run_keeps_finished_spans_and_shows_open_ones_unfinished(self, tmp_path: Path) -> None:
        """SIGKILL mid-run: the index shows the run live, then its finished spans ok and its open ones unfinished."""
        script = [*probe_script("moths")[:2], {"tool": "stall", "args": {"query": "wait"}, "thought": "stall"}]
        project = tmp_path / "p"
        path = probe_project(project, script, settings="{content: metadata}")
        home = tmp_path / "home"
        env = {**os.environ, "ROLEGRAPH_HOME": str(home)}
        env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        process = subprocess.Popen(
            [sys.executable, "-m", "rolegraph", "run", str(path), "-q", "-i", "topic=moths"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            _wait_for(lambda: (project / "stalled").exists() and (home / "index.sqlite").exists(), process)
            with TraceStore(home / "index.sqlite") as store:

                def stall_indexed() -> bool:
                    rows = store.list_runs()
                    return bool(rows) and any(s.tool == "stall" for s in store.spans(rows[0].run_id))

                _wait_for(stall_indexed, process)
                [live] = store.list_runs()
                assert live.status == "running"
            listed = CliRunner().invoke(app, ["runs", "--json"], env={"ROLEGRAPH_HOME": str(home)})
            assert [r["status"] for r in json.loads(listed.stdout)] == ["running"]  # sync left it alone
        finally:
            process.kill()
            process.communicate()
        with TraceStore(home / "index.sqlite") as store:
            [row] = store.list_runs()
            assert (row.status, row.ended) == ("unfinished", None)
            assert row.input_tokens > 0  # the finished model calls are counted
            live_statuses = _statuses(store, row.run_id)
            # The live rows are the filtered records: no payload of a metadata run reaches the index.
            assert "moths" not in json.dumps([s.attributes for s in store.spans(row.run_id)])
            assert live_statuses == {
                "- invoke_workflow": ["unfinished"],
                "first invoke_agent": ["ok"],
                "first react_step": ["ok", "ok"],
                "first chat": ["ok", "ok"],
                "first execute_tool lookup": ["ok"],
                "second invoke_agent": ["unfinished"],
                "second react_step": ["unfinished"],
                "second chat": ["ok"],
                "second execute_tool stall": ["unfinished"],
            }
            # Re-importing the JSONL (the source of truth) gives the same picture.
            assert store.sync(home / "runs") == [row.run_id]
            assert _statuses(store, row.run_id) == live_statuses
            assert store.list_runs()[0].status == "unfinished"
