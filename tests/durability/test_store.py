"""The run store: checkpoints replaced atomically, the call journal, for_each items and sources survive reopening."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from durable_projects import store_as_a_kill_leaves
from rolegraph.durability.killpoints import KillPoints
from rolegraph.durability.store import CHECKPOINT_PAGES, JournalEntry, RunStore
from rolegraph.errors import DamagedFileError, ResumeError
from rolegraph.layout import STORE_FILE
from rolegraph.models.model import Usage
from rolegraph.runtime.run_info import RunInfo
from rolegraph.runtime.scheduler import Checkpoint, StepOutcome, StepState
from rolegraph.tools.sources import Source


def checkpoint(**outputs: object) -> Checkpoint:
    states = {k: StepState(step_id=k, status="completed", output=v, visits=1) for k, v in outputs.items()}
    return Checkpoint(states=states, route_fired={("b", 0): 1}, routed={"a": {"from": "b", "times": 1}})


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / STORE_FILE)


class TestCheckpoints:
    def test_a_checkpoint_round_trips_through_a_reopen(self, store: RunStore, tmp_path: Path) -> None:
        """States, route counters and routed contexts come back equal after closing and reopening."""
        saved = checkpoint(a={"x": 1}, b=[{"y": 2}])
        store.save(saved)
        store.close()
        again = RunStore.open_existing(tmp_path)
        assert again.load() == saved

    def test_a_failed_write_leaves_the_previous_checkpoint(self, store: RunStore) -> None:
        """A checkpoint that fails half-way through its transaction is rolled back: the last good one stays."""
        good = checkpoint(a={"x": 1})
        store.save(good)
        bad = checkpoint(a={"x": 2}, b=object())  # the second row cannot be serialised
        with pytest.raises(Exception, match="serializ"):
            store.save(bad)
        assert store.load() == good

    def test_a_checkpoint_writes_only_the_steps_it_holds(self, store: RunStore) -> None:
        """A save replaces the rows of the steps it holds and leaves the other steps' rows as they were."""
        store.save(checkpoint(a={"x": 1}, b={"y": 1}))
        store.save(checkpoint(b={"y": 2}))
        loaded = store.load()
        assert loaded is not None
        assert {k: s.output for k, s in loaded.states.items()} == {"a": {"x": 1}, "b": {"y": 2}}

    def test_route_tables_follow_the_last_save_that_changed_them(self, store: RunStore, tmp_path: Path) -> None:
        """Saves with the same route counters keep them; a save with new counters (or none) replaces them."""
        state = {"a": StepState(step_id="a", status="completed", visits=1)}
        first = Checkpoint(states=state, route_fired={("b", 0): 1}, routed={"a": {"times": 1}})
        second = Checkpoint(states=state, route_fired={("b", 0): 2}, routed={"a": {"times": 2}})
        for saved in (first, first, second, second, first):
            store.save(saved)
            loaded = store.load()
            assert loaded is not None
            assert (loaded.route_fired, loaded.routed) == (saved.route_fired, saved.routed)
        store.save(Checkpoint(states=state))
        store.close()
        again = RunStore.open_existing(tmp_path).load()
        assert again is not None and (again.route_fired, again.routed) == ({}, {})

    def test_a_checkpoint_sets_the_elapsed_time_in_the_record(self, store: RunStore) -> None:
        """The elapsed wall time saved with a checkpoint is the record's, the rest of the record unchanged."""
        store.write_record(RunInfo(run_id="20261101-120000-aaaaaa", workflow="w", inputs={"q": "x"}))
        store.save(checkpoint(a={"x": 1}), elapsed_s=2.5)
        assert store.record() == RunInfo(
            run_id="20261101-120000-aaaaaa", workflow="w", inputs={"q": "x"}, elapsed_s=2.5
        )

    def test_no_checkpoint_yet(self, store: RunStore) -> None:
        """A store with no checkpoint loads None."""
        assert store.load() is None

    def test_items_are_kept_per_visit(self, store: RunStore) -> None:
        """Finished for_each items are recorded per step and visit."""
        store.save_item("r", 1, 0, StepOutcome(output={"a": 1}, usage=Usage(input_tokens=3)))
        store.save_item("r", 2, 1, StepOutcome(output={"a": 2}))
        assert store.items("r", 1) == {0: StepOutcome(output={"a": 1}, usage=Usage(input_tokens=3))}
        assert list(store.items("r", 2)) == [1]
        assert store.items("q", 1) == {}


def column_of(path: Path, sql: str, column: int = 0) -> set[Any]:
    """One column of a query's rows, read by another connection (what a kill would leave)."""
    database = sqlite3.connect(path)
    try:
        return {row[column] for row in database.execute(sql)}
    finally:
        database.close()


def committed_steps(path: Path) -> set[str]:
    """The step ids whose checkpoint rows another connection sees."""
    return column_of(path, "SELECT step_id FROM steps")


class TestOneCommitPerStep:
    async def test_a_checkpoint_rides_the_next_journal_write(self, tmp_path: Path) -> None:
        """On an event loop a checkpoint is staged, and committed with the next call recorded: once `put`
        returns, both are on disk, and the checkpoint's kill point has been counted then, not before."""
        kills = KillPoints("checkpoint", 1000)
        store = RunStore(tmp_path / STORE_FILE, kill_points=kills)
        store.save(checkpoint(a={"x": 1}))
        store.save(checkpoint(a={"x": 2}, b={"y": 1}))
        assert (committed_steps(store.path), kills.seen) == (set(), 0)
        store.put(JournalEntry(call_id="c#1/chat/1", step_id="c", kind="chat", result={"text": "hi"}))
        assert (committed_steps(store.path), kills.seen) == ({"a", "b"}, 2)
        reader = RunStore.open_existing(tmp_path, read_only=True)
        loaded = reader.load()
        reader.close()
        store.close()
        assert loaded is not None and loaded.states["a"].output == {"x": 2}

    async def test_a_staged_checkpoint_is_committed_by_itself_soon_after(self, tmp_path: Path) -> None:
        """With no other write coming, a staged checkpoint is committed by the event loop a moment later."""
        store = RunStore(tmp_path / STORE_FILE)
        store.save(checkpoint(a={"x": 1}))
        for _ in range(500):  # a generous bound: the flush is due after a few milliseconds
            if committed_steps(store.path):
                break
            await asyncio.sleep(0.01)
        assert committed_steps(store.path) == {"a"}
        store.close()

    async def test_a_checkpoint_staged_after_the_timer_was_set_waits_its_own_delay(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The timer set by a checkpoint that a call then carried does not commit a checkpoint staged since on its
        own before that one has waited `FLUSH_DELAY_S` (the next call would carry it): it is set again for it."""
        clock = [100.0]
        monkeypatch.setattr("time.monotonic", lambda: clock[0])  # the loop's clock and the store's
        store = RunStore(tmp_path / STORE_FILE)
        store.save(checkpoint(a={"x": 1}))  # sets the timer: due at 100.005
        store.put(JournalEntry(call_id="b#1/chat/1", step_id="b", kind="chat", result={"text": "hi"}))
        clock[0] = 100.004
        store.save(checkpoint(b={"y": 1}))  # staged at 100.004: due at 100.009
        clock[0] = 100.006
        await asyncio.sleep(0)  # the loop runs the timer set for the first checkpoint
        await asyncio.sleep(0)
        assert committed_steps(store.path) == {"a"}
        clock[0] = 100.010
        for _ in range(3):
            await asyncio.sleep(0)
        assert committed_steps(store.path) == {"a", "b"}
        store.close()

    async def test_items_records_and_close_carry_the_staged_checkpoint(self, tmp_path: Path) -> None:
        """A for_each item or the run's record written commits the staged checkpoint with it; so does closing."""
        store = RunStore(tmp_path / STORE_FILE)
        store.write_record(RunInfo(run_id="20261101-120000-aaaaaa", workflow="w"))
        store.save(checkpoint(a={"x": 1}), elapsed_s=1.5)
        store.save_item("r", 1, 0, StepOutcome(output={"a": 1}))
        assert committed_steps(store.path) == {"a"}
        store.save(checkpoint(b={"y": 1}), elapsed_s=2.5)
        store.write_record(RunInfo(run_id="20261101-120000-aaaaaa", workflow="w", status="completed"))
        assert committed_steps(store.path) == {"a", "b"}
        store.save(checkpoint(c={"z": 1}))
        store.close()
        assert committed_steps(tmp_path / STORE_FILE) == {"a", "b", "c"}

    async def test_a_call_recorded_with_nothing_staged_is_on_disk_when_put_returns(self, tmp_path: Path) -> None:
        """A call recorded while no checkpoint waits (its own one-statement commit) is read by another connection
        once `put` returns, and counts no checkpoint kill point; a checkpoint staged after it rides the next call."""
        kills = KillPoints("checkpoint", 1000)
        store = RunStore(tmp_path / STORE_FILE, kill_points=kills)
        store.put(JournalEntry(call_id="a#1/chat/1", step_id="a", kind="chat", result={"text": "hi"}))
        assert (column_of(store.path, "SELECT call_id FROM calls"), kills.seen) == ({"a#1/chat/1"}, 0)
        store.save(checkpoint(a={"x": 1}))
        store.put(JournalEntry(call_id="b#1/chat/1", step_id="b", kind="chat", result={"text": "ho"}))
        assert column_of(store.path, "SELECT call_id FROM calls") == {"a#1/chat/1", "b#1/chat/1"}
        assert (committed_steps(store.path), kills.seen) == ({"a"}, 1)
        store.close()

    def test_without_an_event_loop_a_checkpoint_is_committed_at_once(self, store: RunStore) -> None:
        """Saved outside an event loop (nothing would come back to flush it), a checkpoint is on disk at once."""
        store.save(checkpoint(a={"x": 1}))
        assert committed_steps(store.path) == {"a"}


class TestWriteAheadLog:
    def test_the_log_is_folded_into_the_file_only_past_checkpoint_pages(self, tmp_path: Path) -> None:
        """Commits leave their pages in the write-ahead log until it holds `CHECKPOINT_PAGES` (SQLite folds it
        at 1,000 by default); closing the store folds it and removes it."""
        store = RunStore(tmp_path / STORE_FILE)
        wal = Path(f"{store.path}-wal")
        for i in range(1100):  # a commit each: at least one page each
            store.put(JournalEntry(call_id=f"s{i}#1/chat/1", step_id=f"s{i}", kind="chat", result={"text": "x"}))
        frames = (wal.stat().st_size - 32) // (4096 + 24)  # the log's header, then a header and a page per frame
        assert 1100 <= frames < CHECKPOINT_PAGES
        store.close()
        assert not wal.exists()
        assert len(RunStore.open_existing(tmp_path, read_only=True).entries()) == 1100


class TestTheRunsOwnConnection:
    def test_it_keeps_no_shm_file_and_refuses_readers_until_it_closes(self, tmp_path: Path) -> None:
        """Opened by the run (``exclusive``), the store makes no -shm file and holds the database: a reader,
        read-only or not, is refused at once with a `ResumeError` naming the run, while what the run committed
        is in its file and log (a kill would leave it); once closed, the log is folded in and the store reads."""
        run_dir = tmp_path / "20261101-120000-aaaaaa"
        run_dir.mkdir()
        record = RunInfo(run_id=run_dir.name, workflow="w")
        store = RunStore(run_dir / STORE_FILE, record=record, exclusive=True)
        store.put(JournalEntry(call_id="a#1/chat/1", step_id="a", kind="chat", result={"text": "hi"}))
        assert sorted(p.name for p in run_dir.iterdir()) == [STORE_FILE, f"{STORE_FILE}-wal"]
        for read_only in (True, False):
            with pytest.raises(ResumeError) as refused:
                RunStore.open_existing(run_dir, read_only=read_only)
            assert str(refused.value) == f"run {run_dir.name} is being worked on by another process; wait for it to end"
        left = store_as_a_kill_leaves(run_dir, tmp_path / "left")
        assert column_of(left / STORE_FILE, "SELECT call_id FROM calls") == {"a#1/chat/1"}
        store.close()
        assert [p.name for p in run_dir.iterdir()] == [STORE_FILE]
        reader = RunStore.open_existing(run_dir, read_only=True)
        assert (reader.record(), [e.call_id for e in reader.entries()]) == (record, ["a#1/chat/1"])
        reader.close()

    def test_a_store_left_by_a_killed_run_opens_with_its_log(self, tmp_path: Path) -> None:
        """A process killed while its run held the store leaves the write-ahead log (and no -shm file): the next
        open reads every call committed before the kill, and the run's own connection goes on from there."""
        path = tmp_path / STORE_FILE
        killed = subprocess.run(
            [sys.executable, "-c", _KILLED_RUN, str(path)], capture_output=True, text=True, timeout=60, check=False
        )
        assert killed.returncode == 9, killed.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == [STORE_FILE, f"{STORE_FILE}-wal"]
        resumed = RunStore.open_existing(tmp_path, exclusive=True)
        assert [e.call_id for e in resumed.entries()] == [f"s{i}#1/chat/1" for i in range(50)]
        resumed.put(JournalEntry(call_id="s50#1/chat/1", step_id="s50", kind="chat", result={}))
        resumed.close()
        assert [p.name for p in tmp_path.iterdir()] == [STORE_FILE]
        assert len(RunStore.open_existing(tmp_path, read_only=True).entries()) == 51


_KILLED_RUN = """
import os, sys
from pathlib import Path
from rolegraph.durability.store import JournalEntry, RunStore
store = RunStore(Path(sys.argv[1]), exclusive=True)
for i in range(50):
    store.put(JournalEntry(call_id=f"s{i}#1/chat/1", step_id=f"s{i}", kind="chat", result={"text": "x"}))
os._exit(9)
"""


class TestJournal:
    def test_recorded_calls_survive_a_reopen_in_order(self, store: RunStore, tmp_path: Path) -> None:
        """Entries come back by id and in the order recorded; a second record under one id is ignored."""
        store.put(JournalEntry(call_id="a#1/chat/1", step_id="a", kind="chat", input_tokens=5, result={"text": "hi"}))
        store.put(JournalEntry(call_id="a#1/tool/1/0", step_id="a", kind="tool", result={"content": "ok"}))
        store.put(JournalEntry(call_id="a#1/chat/1", step_id="a", kind="chat", result={"text": "other"}))
        store.close()
        again = RunStore.open_existing(tmp_path)
        assert again.get("a#1/chat/1") == {"text": "hi"}
        assert again.get("a#1/chat/2") is None
        assert [(e.call_id, e.input_tokens) for e in again.entries()] == [("a#1/chat/1", 5), ("a#1/tool/1/0", 0)]

    def test_sources_come_from_recorded_tool_results(self, store: RunStore) -> None:
        """The sources registered by recorded tool calls come back in recording order, with their text."""
        one, two = Source(id="s1", title="One", text="t1"), Source(id="s2", title="Two")
        store.put(
            JournalEntry(call_id="a#1/tool/1/0", step_id="a", kind="tool", result={"sources": [one.model_dump()]})
        )
        store.put(JournalEntry(call_id="a#1/chat/2", step_id="a", kind="chat", result={"text": "x"}))
        store.put(
            JournalEntry(call_id="b#1/tool/1/0", step_id="b", kind="tool", result={"sources": [two.model_dump()]})
        )
        assert store.sources() == [one, two]

    def test_request_digests_round_trip_and_old_stores_gain_the_column(self, store: RunStore, tmp_path: Path) -> None:
        """A call's request digest comes back after a reopen; a store from before digests is migrated on a
        read-write open (its calls read back with no digest) and left as it is on a read-only one."""
        digest = {"messages": "ab", "tools": "cd"}
        store.put(JournalEntry(call_id="a#1/chat/1", step_id="a", kind="chat", result={"text": "x"}, request=digest))
        store.close()
        reopened = RunStore.open_existing(tmp_path, read_only=True)
        assert [e.request for e in reopened.entries()] == [digest]
        reopened.close()
        database = sqlite3.connect(tmp_path / STORE_FILE)
        database.execute("ALTER TABLE calls DROP COLUMN request")
        database.commit()
        database.close()
        read_only = RunStore.open_existing(tmp_path, read_only=True)
        assert [e.request for e in read_only.entries()] == [None]
        read_only.close()
        assert "request" not in _columns(tmp_path / STORE_FILE)
        migrated = RunStore.open_existing(tmp_path)
        migrated.put(JournalEntry(call_id="a#1/chat/2", step_id="a", kind="chat", result={}, request=digest))
        assert [e.request for e in migrated.entries()] == [None, digest]
        migrated.close()


def _columns(path: Path) -> set[str]:
    return column_of(path, "PRAGMA table_info(calls)", 1)


class TestRecord:
    def test_the_run_record_round_trips(self, store: RunStore) -> None:
        """The run's record is saved and read back whole."""
        record = RunInfo(run_id="r", workflow="w", inputs={"topic": "x"}, budget={"max_tokens": 10}, invocations=2)
        store.write_record(record)
        assert store.record() == record

    def test_missing_store_or_record_is_a_resume_error(self, store: RunStore, tmp_path: Path) -> None:
        """No store file, or a store without a record (the run died starting), cannot be resumed."""
        with pytest.raises(ResumeError, match="no run store"):
            RunStore.open_existing(tmp_path / "elsewhere")
        with pytest.raises(ResumeError, match="never started"):
            store.record()

    def test_a_new_store_is_a_wal_database_that_keeps_its_writes(self, tmp_path: Path) -> None:
        """A store made in a fresh or an empty file is in WAL mode and holds what was written after a reopen."""
        (tmp_path / "empty").mkdir()
        (tmp_path / "empty" / STORE_FILE).write_bytes(b"")  # a run killed while its store was being made
        for folder in (tmp_path / "fresh", tmp_path / "empty"):
            folder.mkdir(exist_ok=True)
            made = RunStore(folder / STORE_FILE)
            made.write_record(RunInfo(run_id=folder.name, workflow="w", inputs={}))
            made.close()
            with sqlite3.connect(folder / STORE_FILE) as database:
                assert database.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            database.close()
            assert RunStore.open_existing(folder).record().run_id == folder.name

    def test_a_store_opened_with_a_record_holds_it_and_its_journal_works(self, tmp_path: Path) -> None:
        """A record given when the store opens is in a new store (its first commit) and replaces an existing
        store's; the new store's journal and checkpoints work and survive a reopen."""
        first = RunInfo(run_id="r", workflow="w", inputs={"topic": "x"}, invocations=1)
        made = RunStore(tmp_path / STORE_FILE, record=first)
        assert made.record() == first
        made.put(JournalEntry(call_id="a/chat/1", step_id="a", kind="chat", result={"text": "hi"}, request={"m": "d"}))
        made.save(checkpoint(a={"x": 1}))
        made.close()
        again = RunStore(tmp_path / STORE_FILE, record=first.model_copy(update={"invocations": 2}))
        assert again.record().invocations == 2
        assert [e.call_id for e in again.entries()] == ["a/chat/1"]
        assert again.request("a/chat/1") == {"m": "d"} and again.get("a/chat/1") == {"text": "hi"}
        assert again.load() == checkpoint(a={"x": 1})
        again.close()


def damage(path: Path, how: str) -> None:
    """Damage a run store file the way a disk, a copy or a user might."""
    data = path.read_bytes()
    if how == "garbage":
        path.write_bytes(bytes((i * 37 + 11) % 256 for i in range(len(data))))
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 3])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "bad record":
        with sqlite3.connect(path) as db:
            db.execute("UPDATE run SET record = '{\"run_id\": 5}'")
        db.close()
    elif how == "bad result":
        with sqlite3.connect(path) as db:
            db.execute("UPDATE calls SET result = 'not json'")
        db.close()


class TestDamagedStore:
    @pytest.mark.parametrize("how", ["garbage", "truncated", "empty", "bad record", "bad result"])
    def test_a_damaged_store_raises_one_error_naming_it(self, how: str, tmp_path: Path) -> None:
        """Garbage, a cut-short file, an empty file, or rows that do not decode: DamagedFileError naming the file
        and what to do, from opening (read-only or not) or reading the record, never SQLite's or JSON's errors."""
        store = RunStore(tmp_path / STORE_FILE)
        store.write_record(RunInfo(run_id="20261101-120000-aaaaaa", workflow="w"))
        store.save(checkpoint(a={"x": 1}))
        store.put(JournalEntry(call_id="a#1/chat/1", step_id="a", kind="chat", result={"text": "t"}))
        store.close()
        (tmp_path / f"{STORE_FILE}-wal").unlink(missing_ok=True)
        damage(tmp_path / STORE_FILE, how)
        for read_only in (True, False):
            with pytest.raises((DamagedFileError, ResumeError)) as raised:
                opened = RunStore.open_existing(tmp_path, read_only=read_only)
                opened.record(), opened.load(), opened.entries()
            message = str(raised.value)
            assert str(tmp_path / STORE_FILE) in message and "\n" not in message
            if isinstance(raised.value, ResumeError):  # writable, an empty file is a new store without a record
                assert (how, read_only) == ("empty", False) and "holds no run record" in message
            else:
                assert "run the workflow again" in message
