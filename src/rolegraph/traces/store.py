"""The trace index: every run and span in one SQLite file, for listing, filtering and comparing runs.

Each run's ``trace.jsonl`` stays the source of truth; the index is derived from
it and can always be rebuilt: `TraceStore.import_run` replaces a run's rows, and
`TraceStore.sync` imports run folders that are new or changed since they were
indexed (a run that crashed, or ran before the index existed). A span that was
started but never ended is indexed as ``unfinished``, like a run whose
`invoke_workflow` span never ended.

`rolegraph.traces.index_writer` indexes spans live, as they start and end, from
the home's one writer thread, through `TraceStore.write_runs`. A live run's row
records its writer (host and process id); once that process is gone, the run reads
as ``unfinished`` rather than ``running``.

A run folder whose trace or summary cannot be read is indexed as ``damaged``, with
the file, line and field at fault (`RunRow.problem`); the other runs are indexed as
usual. `rolegraph.traces.home_index.open_index` sets a damaged index file aside and
rebuilds it.

```python
with TraceStore(home / "index.sqlite") as store:
    store.sync(home / "runs")
    for run in store.list_runs(limit=20):
        print(run.run_id, run.status, run.input_tokens, run.cost_usd)
```
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import shutil
import socket
import sqlite3
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from rolegraph.errors import DamagedFileError
from rolegraph.layout import Home, RunFolder, is_run_id
from rolegraph.sqlite_wal import connect_wal
from rolegraph.traces._rows import (
    Context,
    LiveRows,
    RunEnd,
    Usage,
    add_live_rows,
    as_record,
    item_text,
    run_stamp,
    run_status,
    span_row,
    started_from_id,
    timestamp,
    writer_alive,
)
from rolegraph.traces.pricing import PriceTable
from rolegraph.traces.records import read_summary
from rolegraph.traces.trace import Trace

__all__ = [
    "DAMAGED",
    "Pruned",
    "RunRow",
    "StoredSpan",
    "TraceStore",
    "index_run",
    "run_stamp",
]

DAMAGED = "damaged"
"""The status of a run whose trace or summary cannot be read (`RunRow.problem` says why)."""

# Bump when the tables change: the index is derived data, so an old one is dropped and rebuilt.
# 4: no secondary index on spans: a run's spans are read by the primary key's prefix (run_id) and sorted; the
# two indexes on (run_id, [step_id,] start_time) cost the live writer a third of its SQLite work per span row.
SCHEMA_VERSION = 4
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, workflow TEXT, status TEXT, started REAL, ended REAL, duration_s REAL,
    input_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0, cost_usd REAL,
    run_dir TEXT, problem TEXT, source_stamp TEXT, writer TEXT
);
CREATE TABLE IF NOT EXISTS spans (
    run_id TEXT NOT NULL, span_id TEXT NOT NULL, parent_id TEXT, kind TEXT, name TEXT,
    start_time REAL, end_time REAL, duration_s REAL, status TEXT, error TEXT,
    step_id TEXT, item TEXT, role TEXT, model TEXT, tool TEXT, input_tokens INTEGER, output_tokens INTEGER,
    attributes TEXT, PRIMARY KEY (run_id, span_id)
);
CREATE INDEX IF NOT EXISTS runs_by_started ON runs (started DESC);
CREATE INDEX IF NOT EXISTS runs_by_workflow ON runs (workflow, started DESC);
"""
_RUN_COLUMNS = (
    "run_id, workflow, status, started, ended, duration_s, input_tokens, output_tokens, cost_usd, run_dir, problem"
)
_RUN_SELECT = f"{_RUN_COLUMNS}, writer"
_SPAN_COLUMNS = (
    "run_id, span_id, parent_id, kind, name, start_time, end_time, duration_s, status, error,"
    " step_id, item, role, model, tool, input_tokens, output_tokens, attributes"
)
_ROW_MARKS = f"({', '.join('?' * 18)})"
_ROWS_PER_INSERT = (48, 8, 1)  # rows per statement; 48 rows are 864 parameters, under an old SQLite's 999
_REPLACE = f"INSERT OR REPLACE INTO spans ({_SPAN_COLUMNS}) VALUES "
_REPLACE_SPANS = {size: _REPLACE + ", ".join([_ROW_MARKS] * size) for size in _ROWS_PER_INSERT}
_UPSERT_SPAN = (
    f"INSERT INTO spans ({_SPAN_COLUMNS}) VALUES ({', '.join('?' * 18)}) ON CONFLICT (run_id, span_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in (c.strip() for c in _SPAN_COLUMNS.split(",")[2:]))
)


@dataclass(frozen=True)
class RunRow:
    """One indexed run."""

    run_id: str
    workflow: str | None
    status: str
    """``completed``, ``failed`` or ``cancelled`` from ``run.json``; ``running`` while its process
    writes it; ``unfinished`` if the run never ended (crashed, killed); ``damaged`` if its trace or
    summary cannot be read (see `problem`)."""
    started: float | None
    """Unix time."""
    ended: float | None
    duration_s: float | None
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    """None when a model's price is unknown."""
    run_dir: str | None
    problem: str | None = None
    """Why a ``damaged`` run cannot be read (the file, line and field at fault); None for any other run."""

    def as_dict(self) -> dict[str, Any]:
        """The row as JSON data, with ISO 8601 UTC times."""
        data = asdict(self)
        for key in ("started", "ended"):
            value = data[key]
            data[key] = None if value is None else dt.datetime.fromtimestamp(value, dt.UTC).isoformat()
        return data


@dataclass(frozen=True)
class StoredSpan:
    """One indexed span. `step_id`, `item` and `role` are inherited from the enclosing step's spans."""

    run_id: str
    span_id: str
    parent_id: str | None
    kind: str
    name: str
    start_time: float
    end_time: float | None
    duration_s: float | None
    status: str
    error: str | None
    step_id: str | None
    item: str | None
    role: str | None
    model: str | None
    tool: str | None
    input_tokens: int | None
    """Own usage: set on `chat` spans only, so summing never counts a token twice."""
    output_tokens: int | None
    attributes: dict[str, Any]


class TraceStore:
    """The SQLite index of runs and spans (WAL mode, so readers never wait on a writer).

    Args:
        path: The database file (conventionally ``$ROLEGRAPH_HOME/index.sqlite``); created if missing.
        prices: Prices for the cost columns (default: the built-in table, overridden by a
            ``prices.yaml`` beside the database).

    A store may be used from one thread at a time; the live index writer keeps one on its own thread. Opening
    waits for another process's lock on the file (`connect_wal`): open a store off the event loop.
    """

    def __init__(self, path: Path, prices: PriceTable | None = None) -> None:
        self.path = path
        self.prices = prices or PriceTable.load(Home(path.parent).prices)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = connect_wal(path)
        try:
            if self._db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                with self._transaction():
                    # Asked again under the write lock: another process (a live run) may have just
                    # built the tables, and dropping them would lose its first rows.
                    if self._db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                        self._db.execute("DROP TABLE IF EXISTS runs")
                        self._db.execute("DROP TABLE IF EXISTS spans")
                        for statement in filter(str.strip, _SCHEMA.split(";")):
                            self._db.execute(statement)
                        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __enter__(self) -> TraceStore:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    # Importing

    def import_run(self, run_dir: Path) -> RunRow:
        """Index a run folder from its ``trace.jsonl`` and ``run.json``, replacing any rows it had.

        A damaged folder (`DamagedFileError` from either file) is indexed as a run with status
        ``damaged``, the error as its `RunRow.problem`, and no spans.

        Raises:
            ValueError: The folder's name is not a run id.
        """
        folder = RunFolder(run_dir)
        run_id = run_dir.name
        if not is_run_id(run_id):
            raise ValueError(f"{run_dir}: the folder's name is not a run id")
        try:
            summary = read_summary(folder.summary)
            trace = Trace.load(folder.trace) if folder.trace.is_file() else Trace([])
        except DamagedFileError as exc:
            return self._import_damaged(run_dir, exc.describe(run_dir))
        context = Context()
        rows = [span_row(run_id, record, context, ended) for record, ended in map(as_record, trace.walk())]
        root = next((s for s in trace.roots if s.kind == "invoke_workflow"), None)
        ended = root is not None and root.status != "unfinished"
        started = timestamp(summary.get("started"))
        if started is None:
            started = root.start_time if root else started_from_id(run_id)
        workflow = summary.get("workflow") or (item_text(root.attributes.get("rolegraph.workflow")) if root else None)
        duration = summary.get("duration_s") if ended else None
        if ended and not duration and root is not None:
            duration = root.duration_s
        # Parents come before children in the walk, so a child inherits its step and role.
        with self._transaction():
            self._db.execute("DELETE FROM spans WHERE run_id = ?", (run_id,))
            self._db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
            self._insert_rows(rows)
            tokens_in, tokens_out, cost = self._usage(run_id)
            self._db.execute(
                f"INSERT INTO runs ({_RUN_COLUMNS}, source_stamp) VALUES ({_marks(12)})",
                (
                    run_id,
                    workflow,
                    run_status(summary, root) if ended and root else "unfinished",
                    started,
                    root.end_time if ended and root else None,
                    duration,
                    tokens_in,
                    tokens_out,
                    cost,
                    str(run_dir.absolute()),
                    None,
                    run_stamp(run_dir),
                ),
            )
        return self.run(run_id)  # type: ignore[return-value]  # just written

    def _import_damaged(self, run_dir: Path, problem: str) -> RunRow:
        """Index a run whose files cannot be read: listed as ``damaged``, with why, and no spans."""
        run_id = run_dir.name
        with self._transaction():
            self._forget([(run_id,)])
            self._db.execute(
                f"INSERT INTO runs ({_RUN_COLUMNS}, source_stamp) VALUES ({_marks(12)})",
                (
                    run_id,
                    None,
                    DAMAGED,
                    started_from_id(run_id),
                    None,
                    None,
                    0,
                    0,
                    None,
                    str(run_dir.absolute()),
                    problem,
                    run_stamp(run_dir),
                ),
            )
        return self.run(run_id)  # type: ignore[return-value]  # just written

    def sync(self, runs_dir: Path) -> list[str]:
        """Import run folders under `runs_dir` that are new or changed; forget rows whose folder is gone.

        Returns:
            The ids of the runs (re)imported.
        """
        known = dict(self._db.execute("SELECT run_dir, source_stamp FROM runs").fetchall())
        live = {
            run_dir
            for run_dir, writer in self._db.execute("SELECT run_dir, writer FROM runs WHERE status = 'running'")
            if writer_alive(writer)
        }
        imported = []
        folders = sorted(p for p in runs_dir.iterdir() if p.is_dir()) if runs_dir.is_dir() else []
        for folder in folders:
            # A run's id is its folder's name: a folder named otherwise is not a run rolegraph made.
            if not is_run_id(folder.name) or not RunFolder(folder).has_run_files():
                continue
            where = str(folder.absolute())
            # A live run's rows come from its own writer; its JSONL would say "unfinished".
            if where not in live and known.get(where) != run_stamp(folder):
                imported.append(self.import_run(folder).run_id)
        prefix = str(runs_dir.absolute())
        with self._transaction():
            for run_dir in known:
                if run_dir and run_dir.startswith(prefix) and not Path(run_dir).exists():
                    self._forget(self._db.execute("SELECT run_id FROM runs WHERE run_dir = ?", (run_dir,)))
        return imported

    # Reading

    def run(self, run_id: str) -> RunRow | None:
        """One run's row, if indexed."""
        rows = self._runs(f"SELECT {_RUN_SELECT} FROM runs WHERE run_id = ?", (run_id,))
        return rows[0] if rows else None

    def list_runs(
        self,
        limit: int | None = 50,
        workflow: str | None = None,
        *,
        since: float | None = None,
        until: float | None = None,
        run_ids: Iterable[str] | None = None,
    ) -> list[RunRow]:
        """Runs, newest first; costs at this store's prices.

        Args:
            limit: At most this many (None: all).
            workflow: Only runs of this workflow.
            since: Only runs started at or after this Unix time.
            until: Only runs started before this Unix time.
            run_ids: Only these runs (e.g. those `search` found).
        """
        clauses: list[str] = []
        params: list[Any] = []
        for clause, value in (("workflow = ?", workflow), ("started >= ?", since), ("started < ?", until)):
            if value is not None and value != "":
                clauses.append(clause)
                params.append(value)
        if run_ids is not None:
            wanted = list(run_ids)
            clauses.append(f"run_id IN ({_marks(len(wanted))})" if wanted else "0")
            params.extend(wanted)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT {_RUN_SELECT} FROM runs {where} ORDER BY started DESC, run_id DESC LIMIT ?"
        return self._runs(sql, (*params, -1 if limit is None else limit))

    def search(self, text: str) -> dict[str, int]:
        """Runs matching `text` (case-insensitive for ASCII): by id, workflow or status, or because their spans
        hold it in a name, an error or an attribute value; with how many of their spans do (0: the run's own
        fields matched)."""
        # Attributes are stored as JSON: look for the text as JSON writes it too (quotes, newlines escaped).
        needles = dict.fromkeys([text, json.dumps(text, ensure_ascii=False)[1:-1]])
        patterns = ["%" + n.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%" for n in needles]

        def like(columns: tuple[str, ...]) -> tuple[str, list[str]]:
            sql = " OR ".join(f"{column} LIKE ? ESCAPE '!'" for column in columns for _ in patterns)
            return sql, [pattern for _ in columns for pattern in patterns]

        where, params = like(("name", "error", "attributes"))
        found = {
            str(run_id): int(count)
            for run_id, count in self._db.execute(
                f"SELECT run_id, COUNT(*) FROM spans WHERE {where} GROUP BY run_id", params
            )
        }
        where, params = like(("run_id", "workflow", "status"))
        for (run_id,) in self._db.execute(f"SELECT run_id FROM runs WHERE {where}", params):
            found.setdefault(str(run_id), 0)
        return found

    def spans(self, run_id: str, step: str | None = None) -> list[StoredSpan]:
        """A run's spans in start order; with `step`, only that step's spans and the spans inside them."""
        sql = f"SELECT {_SPAN_COLUMNS} FROM spans WHERE run_id = ?"
        params: tuple[Any, ...] = (run_id,)
        if step is not None:
            sql, params = sql + " AND step_id = ?", (*params, step)
        cursor = self._db.execute(sql + " ORDER BY start_time, rowid", params)
        names = [c.strip() for c in _SPAN_COLUMNS.split(",")][:-1]
        return [StoredSpan(**dict(zip(names, row[:-1], strict=True)), attributes=json.loads(row[-1])) for row in cursor]

    def _runs(self, sql: str, params: tuple[Any, ...]) -> list[RunRow]:
        rows = []
        for *columns, writer in self._db.execute(sql, params).fetchall():
            row = RunRow(*columns)
            if not isinstance(row.run_id, str) or not is_run_id(row.run_id):
                continue  # not a row rolegraph wrote: its id must never reach a path
            status = "unfinished" if row.status == "running" and not writer_alive(writer) else row.status
            # Cost at the current prices (the stored column used those of the import).
            cost = None if row.status == DAMAGED else self._usage(row.run_id)[2]
            rows.append(RunRow(**{**asdict(row), "status": status, "cost_usd": cost}))
        return rows

    def _usage(self, run_id: str) -> tuple[int, int, float | None]:
        return self.prices.totals(self._tokens(run_id))

    def _tokens(self, run_id: str) -> Usage:
        """The tokens of a run's ended chat spans by model, summed over its rows."""
        rows = self._db.execute(
            "SELECT model, COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0) FROM spans"
            " WHERE run_id = ? AND kind = 'chat' AND status != 'unfinished' GROUP BY model",
            (run_id,),
        )
        return {model: (tokens_in, tokens_out) for model, tokens_in, tokens_out in rows}

    # Deleting

    def prune(self, older_than: dt.datetime, *, dry_run: bool = False) -> Pruned:
        """Delete the runs started before `older_than`: their folders and their rows.

        A run's folder is ``runs/<run_id>`` beside this index, whatever its row says. A folder
        that is a symbolic link is never followed nor removed, and a folder that no longer holds
        a run's files is left alone: both are reported as skipped, and keep their rows.

        Args:
            older_than: The cut.
            dry_run: Only say what would be deleted and skipped.
        """
        doomed = self._runs(f"SELECT {_RUN_SELECT} FROM runs WHERE started < ?", (older_than.timestamp(),))
        runs = Home(self.path.parent)
        pruned = Pruned()
        for row in doomed:
            folder = runs.run(row.run_id).path
            reason = _why_kept(folder)
            if reason is None and not dry_run and folder.exists():
                reason = _remove(folder)
            if reason is not None:
                pruned.skipped.append((row, reason))
                continue
            pruned.deleted.append(row)
        if not dry_run:
            with self._transaction():
                self._forget((row.run_id,) for row in pruned.deleted)
        return pruned

    def delete_runs(self, older_than: dt.datetime) -> list[RunRow]:
        """`prune`, returning the runs deleted."""
        return self.prune(older_than).deleted

    def _forget(self, run_ids: Iterable[tuple[str]]) -> None:
        for (run_id,) in list(run_ids):
            self._db.execute("DELETE FROM spans WHERE run_id = ?", (run_id,))
            self._db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))

    # Live writes (from the index writer's thread)

    def write_records(
        self, records: list[dict[str, Any]], context: Context | None = None, *, run_dir: Path | None = None
    ) -> None:
        """Index live trace `records` (span starts and ends, in emission order) in one transaction, with the
        `context` (step/role inheritance, open rows) of earlier batches of the same runs; `run_dir` is recorded."""
        self.write_runs([(records, context or Context(), run_dir)])

    def write_runs(self, batches: Iterable[tuple[list[dict[str, Any]], Context, Path | None]]) -> None:
        """Index several runs' live records, each with its context and folder, in one transaction."""
        rows = LiveRows()
        for records, context, run_dir in batches:
            add_live_rows(rows, records, context, run_dir)
        with self._transaction():
            self._db.executemany(f"INSERT OR IGNORE INTO spans ({_SPAN_COLUMNS}) VALUES ({_marks(18)})", rows.starts)
            # An end updates its start's row in place (cheaper than REPLACE: no index entry moves).
            self._db.executemany(_UPSERT_SPAN, rows.ends)
            # Most spans start and end within one batch: their one row is inserted (REPLACE only for a span
            # an earlier invocation of a resumed run indexed), many rows per statement.
            self._insert_rows(rows.whole)
            for run_id, (record, ended, run_dir, context) in rows.roots.items():
                if context.usage is None:  # the run's first row: its tokens so far (an earlier invocation's too)
                    context.usage = self._tokens(run_id)
                self._write_run(run_id, record, context.usage, ended=ended, run_dir=run_dir)
            # A live run's totals grow as its model calls end; added, not re-summed, so a batch costs O(batch).
            self._db.executemany(
                "UPDATE runs SET input_tokens = input_tokens + ?, output_tokens = output_tokens + ? WHERE run_id = ?",
                [(i, o, run_id) for run_id, (i, o) in rows.tokens.items() if run_id not in rows.roots],
            )

    def _insert_rows(self, rows: list[tuple[Any, ...]]) -> None:
        """Insert (or replace) span rows, up to 48 per statement: `sqlite3` gives the GIL up and takes it back for
        each statement, and a statement per row had the writer take it from the event loop three times a step."""
        at = 0
        for size in _ROWS_PER_INSERT:
            while len(rows) - at >= size:
                self._db.execute(_REPLACE_SPANS[size], list(itertools.chain.from_iterable(rows[at : at + size])))
                at += size

    def _write_run(self, run_id: str, root: dict[str, Any], usage: Usage, *, ended: bool, run_dir: Path | None) -> None:
        attributes = root.get("attributes") or {}
        tokens_in, tokens_out, cost = self.prices.totals(usage)
        status = attributes.get("rolegraph.status") or {"ok": "completed"}.get(root.get("status", ""), "failed")
        self._db.execute(
            f"INSERT OR REPLACE INTO runs ({_RUN_COLUMNS}, writer) VALUES ({_marks(12)})",
            (
                run_id,
                attributes.get("rolegraph.workflow"),
                status if ended else "running",
                root.get("start_time"),
                root.get("end_time") if ended else None,
                root.get("duration_s") if ended else None,
                tokens_in,
                tokens_out,
                cost,
                str(run_dir) if run_dir else self._known_dir(run_id),
                None,
                f"{socket.gethostname()}:{os.getpid()}",
            ),
        )

    def finish_run(self, run_id: str, end: RunEnd, stamp: str, usage: Usage | None = None) -> bool:
        """Complete a live run's row at its end (status, start, duration) with its totals (from `usage`, the
        writer's `Context.usage`, else its rows) and the folder's `stamp`, so `sync` leaves it be. False if no row."""
        return not self.finish_runs([(run_id, end, stamp, usage)])

    def finish_runs(self, ends: Iterable[tuple[str, RunEnd, str, Usage | None]]) -> list[str]:
        """`finish_run` for several runs (id, end, stamp, usage) in one transaction; the ids of those with no row."""
        missing: list[str] = []
        with self._transaction():
            for run_id, end, stamp, usage in ends:
                tokens_in, tokens_out, cost = self.prices.totals(self._tokens(run_id) if usage is None else usage)
                cursor = self._db.execute(
                    "UPDATE runs SET status = ?, started = COALESCE(?, started), duration_s = ?, input_tokens = ?,"
                    " output_tokens = ?, cost_usd = ?, source_stamp = ?, writer = NULL WHERE run_id = ?",
                    (end.status, end.started, end.duration_s, tokens_in, tokens_out, cost, stamp, run_id),
                )
                if cursor.rowcount != 1:
                    missing.append(run_id)
        return missing

    def _known_dir(self, run_id: str) -> str | None:
        row = self._db.execute("SELECT run_dir FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else row[0]


class _Transaction:
    """BEGIN IMMEDIATE (take the write lock up front), COMMIT on success, ROLLBACK on error."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")


@dataclass
class Pruned:
    """What `TraceStore.prune` did."""

    deleted: list[RunRow] = field(default_factory=list)
    """Runs whose folders and rows are gone (or would be, in a dry run)."""
    skipped: list[tuple[RunRow, str]] = field(default_factory=list)
    """Runs kept, each with why."""


def _why_kept(folder: Path) -> str | None:
    """Why a run's folder must not be removed (None: it may be)."""
    if folder.is_symlink():
        return "its folder is a symbolic link, which prune never follows; remove the link (and its target) yourself"
    if folder.exists() and not RunFolder(folder).has_run_files():
        return "its folder holds no run.json or trace.jsonl any more; left alone"
    return None


def _remove(folder: Path) -> str | None:
    """Remove a run's folder; why it could not be (None: it is gone)."""
    try:
        shutil.rmtree(folder)
    except OSError as exc:
        return f"its folder could not be removed ({exc.strerror or exc})"
    return None


def _marks(n: int) -> str:
    return ", ".join("?" * n)


def index_run(home: Path, run_dir: Path) -> RunRow | None:
    """Index a finished run into ``home/index.sqlite``; never raises (the JSONL stays the source of truth)."""
    try:
        with TraceStore(Home(home).index) as store:
            return store.import_run(run_dir)
    except Exception:  # the index is a cache: a locked or broken database must not fail a run
        return None
