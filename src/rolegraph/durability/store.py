"""The run store: a run's durable state in SQLite, so a crashed, killed or cancelled run can resume.

One database per run, ``<run folder>/run.sqlite``: the run folder stays
self-contained (pruning or copying a run takes its state along) and parallel runs
never contend for one lock. WAL mode, one transaction per write: a write torn by a
crash is rolled back on the next open, leaving the previous checkpoint intact.
``synchronous=NORMAL`` makes every commit survive the process being killed; a
power cut may lose the last commits (never corrupt the database).

The run's own connection (``exclusive``, opened by the process that holds the run's
lock) holds the database from its first access until it closes (SQLite's exclusive
locking mode): the log's index is in its memory, not a ``run.sqlite-shm`` file, and a
commit makes no lock calls (a quarter of its CPU); a kill leaves the log, read back by
the next open. So no other connection can read a store while its run is being worked
on: one that tries (a resume, a replay) gets `ResumeError` at once. The log is folded
into the file (a WAL checkpoint, flushed to disk) once it holds `CHECKPOINT_PAGES`
pages, not SQLite's 1,000: the commit that does it waits on the event loop's thread
for the flushes; a run of 1,000 steps makes none before its close. The store is used
from the event loop's thread only, but for its close at the run's end, which waits for
the disk in a worker thread once the run's last commit (its status, with whatever
checkpoint was staged) left nothing for a timed flush to write.

Tables:

- ``run``: one row, the `RunInfo` (workflow file and its hash, inputs, model
  override, budget, status, root span id, invocations).
- ``steps``, ``routes``, ``routed``: the scheduler's checkpoint (each step's state
  and output, route counters, the context a route passed back). A checkpoint writes
  the rows of the steps that changed, and the (small) route tables, in one transaction.
- ``items``: outputs of the finished items of a ``for_each`` step, so a resumed
  fan-out runs only the missing items.
- ``calls``: the call journal: every completed model and tool call by its call
  id, with its result (a tool's result holds the sources it registered) and the
  digest of its request (NULL in stores from before digests; a replay then
  compares call ids only).
- ``superseded``: calls a resume sent again because their request had changed
  (an edited prompt): the recorded answer they replaced, kept because it was paid
  for (budgets count it) and for the record.

One commit per step: a journal row is committed before `RunStore.put` returns (a paid
call is never paid twice), while a checkpoint is staged and rides the next
transaction (the next journal row, ``for_each`` item or record write), or is
committed by itself `FLUSH_DELAY_S` later on the event loop, whichever comes first,
and always before the store is read or closed. A kill may lose the last few
milliseconds of checkpoints: a resume then runs those steps again, their model and
tool calls answered from the journal (a function step's code runs again).
"""

from __future__ import annotations

import asyncio
import functools
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from rolegraph.agents.journal import RequestDigest
from rolegraph.durability.killpoints import KillPoints
from rolegraph.durability.rows import as_digest, dumps, loads, request_text
from rolegraph.durability.staged import Staged
from rolegraph.errors import DamagedFileError, ResumeError
from rolegraph.layout import STORE_FILE, RunFolder, write_replacing
from rolegraph.runtime.run_info import RunInfo
from rolegraph.runtime.scheduler import OUTCOME, Checkpoint, StepOutcome, StepState
from rolegraph.tools.sources import Source

__all__ = ["CHECKPOINT_PAGES", "DAMAGE_ADVICE", "FLUSH_DELAY_S", "JournalEntry", "RunStore"]

DAMAGE_ADVICE = (
    "the run store is damaged, so the run can be neither resumed nor replayed;"
    " its trace and outputs are still readable; run the workflow again to redo it"
)

FLUSH_DELAY_S = 0.005
"""How long a staged checkpoint waits on the event loop for another write to ride along before it is
committed by itself."""

_BUSY_TIMEOUT_S = 5.0
"""How long the run's own connection waits for a reader to finish reading before it gives up (SQLite's default)."""

CHECKPOINT_PAGES = 4000
"""Pages (4 KiB) the write-ahead log holds before a commit folds it into the file (``wal_autocheckpoint``; SQLite's
1,000 made three checkpoints on the event loop's thread in a run of 1,000 steps, a step's commit writing 3-4 pages)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS run (id INTEGER PRIMARY KEY CHECK (id = 1), record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS steps (step_id TEXT PRIMARY KEY, state TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS routes (step_id TEXT, route INTEGER, fired INTEGER NOT NULL, PRIMARY KEY (step_id, route));
CREATE TABLE IF NOT EXISTS routed (step_id TEXT PRIMARY KEY, context TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    step_id TEXT, visit INTEGER, item INTEGER, outcome TEXT NOT NULL, PRIMARY KEY (step_id, visit, item)
);
CREATE TABLE IF NOT EXISTS calls (
    seq INTEGER PRIMARY KEY, call_id TEXT NOT NULL, step_id TEXT NOT NULL,
    kind TEXT NOT NULL, model TEXT, input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0, result TEXT NOT NULL, request TEXT
);
CREATE TABLE IF NOT EXISTS superseded (
    seq INTEGER PRIMARY KEY, call_id TEXT NOT NULL, step_id TEXT NOT NULL,
    kind TEXT NOT NULL, model TEXT, input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0, result TEXT NOT NULL, request TEXT
);
"""


@functools.cache
def _template() -> bytes:
    """The file of a new, empty store: the tables, in WAL mode (built once per process, in memory)."""
    db = sqlite3.connect(":memory:")
    try:
        db.executescript(_SCHEMA)
        image = bytearray(db.serialize())
    finally:
        db.close()
    image[18:20] = b"\x02\x02"  # the file format's write and read versions: 2 is WAL
    return bytes(image)


def _create(path: Path) -> None:
    """Make a new store's file from `_template` (written, then renamed: a crash leaves no file or a whole one)."""
    write_replacing(path, _template())


class JournalEntry(BaseModel):
    """One recorded call."""

    call_id: str
    step_id: str
    kind: str
    """``chat`` or ``tool``."""
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    result: Any = None
    request: dict[str, str] | None = None
    """The digest of the call's request (`rolegraph.agents.journal.request_digest`); None if not recorded."""


class RunStore:
    """A run's durable state (see the module docstring). Used from the event loop's thread only.

    A store that cannot be read — not a database any more, cut short, a row that does not
    decode — raises `DamagedFileError` (naming the file, and what to do) from the constructor
    and every reading method, never SQLite's or JSON's own errors; one that another process's run
    holds (see `exclusive`) raises `ResumeError` from them, at once.

    Args:
        path: The database file.
        kill_points: Fault-injection hook for tests (``ROLEGRAPH_KILL_AT``); None in normal use.
        redact: Applied to every JSON value before it is written (the run's secret redaction:
            a checkpoint must never hold a key a model or tool echoed).
        read_only: Open an existing store for reading only (a replay reads the run it replays
            this way, so the recording is never changed).
        record: The run's record, written as the store opens: in a new store, by the first transaction,
            the one that starts its write-ahead log (see `_prepare`).
        exclusive: The run's own connection, opened by the process that holds the run's lock: it holds the
            database until it closes (see the module docstring), waiting for a reader that is reading (SQLite's
            busy timeout). Any other connection gives up at once on a held store, with `ResumeError`.
    """

    def __init__(
        self,
        path: Path,
        *,
        kill_points: KillPoints | None = None,
        redact: Callable[[Any], Any] | None = None,
        read_only: bool = False,
        record: RunInfo | None = None,
        exclusive: bool = False,
    ) -> None:
        self.path = path
        self.kill_points = kill_points
        self._redact: Callable[[Any], Any] = redact or (lambda value: value)
        if read_only and path.is_file() and path.stat().st_size == 0:
            raise DamagedFileError(path, "the file is empty (the run died while creating it)", advice=DAMAGE_ADVICE)
        new = not read_only and (not path.is_file() or path.stat().st_size == 0)
        timeout = _BUSY_TIMEOUT_S if exclusive else 0.0
        if read_only:
            self._db = sqlite3.connect(
                path.absolute().as_uri() + "?mode=ro",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
                timeout=timeout,
            )
        else:
            if new:
                _create(path)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=timeout)
            if exclusive:  # before the first access, or SQLite maps the log's index to a -shm file
                self._db.execute("PRAGMA locking_mode=EXCLUSIVE")
            self._db.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_PAGES}")
        try:
            if new:  # its first commit, the record's if there is one: a write of ours, not a read of the file
                self._start_log(None if record is None else self._json(record.model_dump(mode="json")))
            with self._reading():
                if not read_only and not new:
                    self._migrate()
                self._open(read_only=read_only, new=new)
            if record is not None and not new:
                self.write_record(record)
        except BaseException:
            self._db.close()
            raise

    def _start_log(self, record: str | None) -> None:
        """A new store's first commit, which starts its write-ahead log; it writes the run's `record` if given.

        A new store's file is made from a template (`_create`), not by SQLite statement by statement:
        the tables, already in WAL mode, in one write and a rename. That took SQLite about a millisecond
        of CPU and, unless told not to, six flushes to disk. Its write-ahead log is started by a first
        commit made without flushing (with ``synchronous`` on, SQLite flushes a new log's header and its
        folder at the first commit): only a power cut in these milliseconds could damage a store that holds
        no more than its record (a commit with ``synchronous=NORMAL`` is not flushed either).
        """
        self._db.execute("PRAGMA synchronous=OFF")
        if record is None:
            self._db.execute("PRAGMA user_version=0")  # a write: the log's first commit
        else:
            self._db.execute("INSERT INTO run (id, record) VALUES (1, ?)", (record,))
        self._db.execute("PRAGMA synchronous=NORMAL")

    def _migrate(self) -> None:
        """An existing store: ``synchronous=NORMAL``, WAL, and the tables it lacks (one transaction: a store from
        an older rolegraph may lack the newer ones)."""
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(f"BEGIN;\n{_SCHEMA}COMMIT;\n")
        self._db.execute("PRAGMA synchronous=NORMAL")

    def _open(self, *, read_only: bool, new: bool) -> None:
        """Migrate the tables (unless `read_only`), and load the journal's results (a `new` store, made from
        `_template`, has the current tables and no calls: nothing is read from it)."""
        if new:
            self._request_column, self._has_superseded = "request", True
        else:
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(calls)")}
            if "request" not in columns and not read_only:  # a store from before request digests
                self._db.execute("ALTER TABLE calls ADD COLUMN request TEXT")
                columns.add("request")
            self._request_column = "request" if "request" in columns else "NULL"
            tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            self._has_superseded = "superseded" in tables
        self._routes_saved: tuple[dict[tuple[str, int], int], dict[str, Any]] | None = ({}, {}) if new else None
        """The route counters and routed contexts last staged (None: unknown, so the next save writes them). A new
        store's are empty: a run that never routes leaves its tables untouched (four pages fewer to write)."""
        self._staged = Staged()
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._cache: dict[str, Any] = {}
        """The results of the calls recorded before this store was opened, decoded (a damaged row fails the open)."""
        self._texts: dict[str, str] = {}
        """The results of the calls recorded since, as written."""
        self._requests: dict[str, RequestDigest | None] = {}
        self._seqs: dict[str, int] = {}
        """Each recorded call's row (its ``seq``): no index on disk finds a call by its id."""
        if new:
            return
        rows = self._db.execute(f"SELECT seq, call_id, result, {self._request_column} FROM calls")
        for seq, call_id, result, request in rows:
            self._seqs[str(call_id)] = int(seq)
            self._cache[str(call_id)] = json.loads(result)
            self._requests[str(call_id)] = None if request is None else as_digest(json.loads(request))

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """Inside: what a damaged store raises (SQLite's errors, undecodable rows) becomes `DamagedFileError`."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            if any(word in str(exc) for word in ("locked", "busy")):  # the run's own connection holds it: not damage
                raise ResumeError(
                    f"run {self.path.parent.name} is being worked on by another process; wait for it to end"
                ) from None
            raise DamagedFileError(self.path, f"{exc}", advice=DAMAGE_ADVICE) from None
        except sqlite3.DatabaseError as exc:
            raise DamagedFileError(self.path, f"{exc}", advice=DAMAGE_ADVICE) from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            reason = f"a {exc.title} row does not fit: {where or 'the value'}: {first['msg']}"
            raise DamagedFileError(self.path, reason, advice=DAMAGE_ADVICE) from None
        except (ValueError, TypeError, KeyError, RecursionError) as exc:  # JSON, UTF-8, a value of the wrong type
            raise DamagedFileError(
                self.path, f"a row cannot be read ({type(exc).__name__}: {exc})"[:300], advice=DAMAGE_ADVICE
            ) from None

    @classmethod
    def open_existing(
        cls,
        run_dir: Path,
        *,
        kill_points: KillPoints | None = None,
        redact: Callable[[Any], Any] | None = None,
        read_only: bool = False,
        exclusive: bool = False,
    ) -> RunStore:
        """The store of an existing run folder.

        Raises:
            ResumeError: The folder has no run store (a run from before run stores, or not a run), or
                (unless `exclusive`) another process is working on the run.
        """
        path = RunFolder(run_dir).store
        if not path.is_file():
            raise ResumeError(f"{run_dir}: no run store ({STORE_FILE}); this run cannot be resumed")
        return cls(path, kill_points=kill_points, redact=redact, read_only=read_only, exclusive=exclusive)

    def close(self) -> None:
        """Commit the staged checkpoint, if any, and close the database."""
        try:
            self.flush()
        finally:
            self._closed = True
            self._db.close()

    def _json(self, value: Any, *, strict: bool = False) -> str:
        return dumps(self._redact(value), strict=strict)

    def _hit(self, kind: str) -> None:
        if self.kill_points is not None:
            self.kill_points.hit(kind)

    # The run

    def write_record(self, record: RunInfo) -> None:
        """Save the run's record (with the staged checkpoint, in one transaction)."""
        text = self._json(record.model_dump(mode="json"))
        self._commit(lambda db: db.execute("INSERT OR REPLACE INTO run (id, record) VALUES (1, ?)", (text,)))

    def record(self) -> RunInfo:
        """The run's record.

        Raises:
            ResumeError: The store holds no record (the run died while starting).
        """
        self.flush()
        with self._reading():
            row = self._db.execute("SELECT record FROM run WHERE id = 1").fetchone()
            if row is None:
                raise ResumeError(f"{self.path}: the run store holds no run record; the run never started")
            return RunInfo.model_validate(loads(row[0]))

    # Checkpoints (the scheduler's `Checkpointer`)

    def save(
        self,
        checkpoint: Checkpoint,
        *,
        elapsed_s: float | None = None,
        serialised: Callable[[StepState], str | None] | None = None,
    ) -> None:
        """Stage a checkpoint's changes (serialised now): the states it holds (the steps that changed since
        the last save) replace those steps' rows, its route counters and routed contexts replace theirs.

        They are committed with the next write, or by themselves `FLUSH_DELAY_S` later on the running
        event loop (at once without one); checkpoints staged meanwhile make one transaction.

        Args:
            checkpoint: What changed (see `rolegraph.runtime.scheduler.Checkpointer.save`).
            elapsed_s: The run's wall time so far, set in the run's record in the same transaction.
            serialised: A state's row if it is already serialised, with this store's redaction, or None
                (the step log's `rolegraph.runtime.step_log.StepLog.take`).
        """
        rows = [(s.step_id, self._row(s, serialised)) for s in checkpoint.states.values()]
        routes = (checkpoint.route_fired, checkpoint.routed)
        staged_routes = None
        if routes != self._routes_saved:  # the route tables are rewritten only when they changed
            fired = [(step, route, n) for (step, route), n in checkpoint.route_fired.items()]
            staged_routes = (fired, [(step, self._json(context)) for step, context in checkpoint.routed.items()])
        self._staged.add(rows, staged_routes, elapsed_s)
        if staged_routes is not None:
            self._routes_saved = (dict(checkpoint.route_fired), dict(checkpoint.routed))
        if self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no event loop to come back on: commit now
                self.flush()
                return
            self._timer = loop.call_later(FLUSH_DELAY_S, self._flush_due)

    def _row(self, state: StepState, serialised: Callable[[StepState], str | None] | None) -> str:
        text = None if serialised is None else serialised(state)
        return self._json(state.as_data(), strict=True) if text is None else text

    def _flush_due(self) -> None:
        """The timer's flush, once the staged checkpoint has waited `FLUSH_DELAY_S` (one staged since the timer was
        set is given its own due time: the next call may carry it). A write error leaves it staged: the next write
        raises it."""
        self._timer = None
        if not self._staged.count or self._closed:
            return
        wait = self._staged.since + FLUSH_DELAY_S - time.monotonic()
        if wait > 0:
            self._timer = asyncio.get_running_loop().call_later(wait, self._flush_due)
            return
        with suppress(sqlite3.Error):
            self.flush()

    def flush(self) -> None:
        """Commit the staged checkpoint now (nothing if none is staged or the store is closed)."""
        if self._staged.count and not self._closed:
            self._commit()

    def _commit(self, statements: Callable[[sqlite3.Connection], Any] | None = None) -> Any:
        """One write transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``) that carries the staged checkpoint and runs
        `statements`; its ``checkpoint`` kill points are counted once it is committed. (A plain method, not a
        context manager: it runs once per call the run records.)"""
        db = self._db
        done = None
        staged = self._staged
        db.execute("BEGIN IMMEDIATE")
        try:
            if staged.count:
                staged.write(db)
            if statements is not None:
                done = statements(db)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        if staged.count:
            self._staged = Staged()
        for _ in range(staged.count):
            self._hit("checkpoint")
        return done

    def _insert_call(self, row: tuple[Any, ...]) -> int | None:
        """Commit a new journal row (with the staged checkpoint, if any); its ``seq``.

        With nothing staged, the row is one statement in autocommit (a transaction of its own, as durable as
        `_commit`'s): one call into SQLite instead of three, each of which lets go of the GIL and takes it back."""
        if self._staged.count:
            seq: int | None = self._commit(lambda db: db.execute(_INSERT_CALL, row).lastrowid)
            return seq
        return self._db.execute(_INSERT_CALL, row).lastrowid

    def load(self) -> Checkpoint | None:
        """The last scheduler checkpoint, or None if none was written."""
        self.flush()
        with self._reading():
            rows = self._db.execute("SELECT step_id, state FROM steps")
            states = {str(step): StepState.model_validate(loads(state)) for step, state in rows}
            if not states:
                return None
            fired = {
                (step, route): n for step, route, n in self._db.execute("SELECT step_id, route, fired FROM routes")
            }
            routed = {step: json.loads(c) for step, c in self._db.execute("SELECT step_id, context FROM routed")}
            return Checkpoint(states=states, route_fired=fired, routed=routed)

    def save_item(self, step_id: str, visit: int, index: int, outcome: StepOutcome) -> None:
        """Record a finished item of a ``for_each`` step (with the staged checkpoint, in one transaction)."""
        text = self._json(OUTCOME.dump_python(outcome, mode="json"))
        sql = "INSERT OR REPLACE INTO items (step_id, visit, item, outcome) VALUES (?, ?, ?, ?)"
        self._commit(lambda db: db.execute(sql, (step_id, visit, index, text)))
        self._hit("item")

    def items(self, step_id: str, visit: int) -> dict[int, StepOutcome]:
        """The recorded items of one visit of a ``for_each`` step, by index."""
        with self._reading():
            rows = self._db.execute("SELECT item, outcome FROM items WHERE step_id = ? AND visit = ?", (step_id, visit))
            return {int(index): OUTCOME.validate_python(loads(outcome)) for index, outcome in rows}

    # The call journal

    def get(self, call_id: str) -> Any | None:
        """The recorded result of `call_id`, or None."""
        text = self._texts.get(call_id)
        return self._cache.get(call_id) if text is None else loads(text)

    def request(self, call_id: str) -> RequestDigest | None:
        """The digest of the request `call_id` was recorded with (None if unknown or not recorded)."""
        return self._requests.get(call_id)

    def put(self, entry: JournalEntry, *, replace: bool = False) -> None:
        """Record a completed call: committed (with the staged checkpoint) before this returns.

        Args:
            entry: The call.
            replace: The call was sent again because its request changed: its earlier record
                moves to ``superseded``. Otherwise a second record under the same id is ignored.
        """
        self.put_call(
            entry.call_id,
            entry.step_id,
            entry.kind,
            entry.model,
            entry.input_tokens,
            entry.output_tokens,
            entry.result,
            entry.request,
            replace=replace,
        )

    def put_call(
        self,
        call_id: str,
        step_id: str,
        kind: str,
        model: str | None,
        input_tokens: int,
        output_tokens: int,
        result: Any,
        request: RequestDigest | None,
        *,
        replace: bool = False,
    ) -> None:
        """`put` of the call given by its fields (`JournalEntry`'s), for the run's own calls: no entry is built."""
        recorded = call_id in self._cache or call_id in self._texts
        if recorded and not replace:
            return
        text = self._json(result)
        row = (call_id, step_id, kind, model, input_tokens, output_tokens, text, request_text(request))
        if recorded:
            seq = self._commit(lambda db: _replace_call(db, self._seqs[call_id], row))
        else:
            seq = self._insert_call(row)
        self._seqs[call_id] = seq
        self._cache.pop(call_id, None)
        self._texts[call_id] = text  # decoded when asked for: a live run seldom asks
        self._requests[call_id] = request
        self._hit("journal")

    def entries(self) -> list[JournalEntry]:
        """Every recorded call, in the order recorded."""
        with self._reading():
            rows = self._db.execute(
                "SELECT call_id, step_id, kind, model, input_tokens, output_tokens, result,"
                f" {self._request_column} FROM calls ORDER BY seq"
            )
            return _journal_entries(rows)

    def superseded(self) -> list[JournalEntry]:
        """The recorded calls a resume sent again (their requests had changed), in the order recorded."""
        if not self._has_superseded:
            return []
        with self._reading():
            rows = self._db.execute(
                "SELECT call_id, step_id, kind, model, input_tokens, output_tokens, result, request"
                " FROM superseded ORDER BY seq"
            )
            return _journal_entries(rows)

    def sources(self) -> list[Source]:
        """The sources the recorded tool calls returned, in the order they were recorded."""
        found: list[Source] = []
        for entry in self.entries():
            if entry.kind == "tool" and isinstance(entry.result, dict):
                with self._reading():
                    found += [Source.model_validate(s) for s in entry.result.get("sources") or ()]
        return found


_CALL_COLUMNS = "call_id, step_id, kind, model, input_tokens, output_tokens, result, request"
_INSERT_CALL = f"INSERT INTO calls ({_CALL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


def _replace_call(db: sqlite3.Connection, seq: int, row: tuple[Any, ...]) -> int | None:
    """Move the call's earlier record (row `seq`) to ``superseded`` and record `row` as the journal's newest (a
    resume sent it again); its ``seq``."""
    db.execute(f"INSERT INTO superseded ({_CALL_COLUMNS}) SELECT {_CALL_COLUMNS} FROM calls WHERE seq = ?", (seq,))
    db.execute("DELETE FROM calls WHERE seq = ?", (seq,))
    return db.execute(_INSERT_CALL, row).lastrowid


def _journal_entries(rows: Iterable[tuple[Any, ...]]) -> list[JournalEntry]:
    """Journal entries from rows of ``call_id, step_id, kind, model, input_tokens, output_tokens, result,
    request`` (the calls table's columns and the superseded table's)."""
    return [
        JournalEntry(
            call_id=call_id,
            step_id=step_id,
            kind=kind,
            model=model,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            result=json.loads(result),
            request=None if request is None else json.loads(request),
        )
        for call_id, step_id, kind, model, tokens_in, tokens_out, result, request in rows
    ]
