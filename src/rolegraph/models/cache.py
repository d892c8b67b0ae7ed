"""The model-call cache: a request made before is answered from disk instead of the model.

```python
cache = RunCache(CallCache(Home.from_env().cache), redactor)
completion = cache.lookup(model, request, settings)      # None: make the call
...
cache.keep(model, request, settings, completion)          # stored if it may be reused
```

Off by default (``settings.cache: true``, a model's ``cache: true``, ``--cache``,
``Workflow.run(cache=True)``). A request is identified by the digest the call
journal already takes of it (`rolegraph.agents.journal.request_digest`: messages,
tools, answer schema, the settings that change an answer), joined with the model
string, the model it names and the revision of its weights (a local file's size and
time: new weights under the name ``local`` are another model) and the options it was
built with (`cache_key`): one definition of "the same request" for resume, replay
and the cache.

What is never kept: a failed call (nothing comes back to keep), a call cut short
(``finish_reason`` other than ``stop`` or ``tool_calls``: ``length``, an incomplete
response, a refusal), and a call that samples: temperature above 0 without a seed, or
no temperature at all on a provider whose default samples (`Model.samples_by_default`).
A kept answer passes the run's secret redactor first, as the journal's records do; the
request itself is only present as its hash.

The store is one SQLite file, ``$ROLEGRAPH_HOME/cache.sqlite``, in WAL mode with a
busy timeout. Why SQLite: runs under one home write to it at once, and WAL lets them
read while one writes; each write is one transaction, so a killed process leaves the
last committed state, never a torn entry; and the size cap's eviction (oldest first)
and ``rolegraph cache stats`` are one indexed query, where a folder of files would
need its own locking and a scan. Entries older than the TTL are misses (and removed).
Each answer is stored with a checksum, so a damaged one is told from a good one even
where the damage left valid JSON. A damaged file or entry is a miss and a warning
(`logging`, logger ``rolegraph.cache``, and a ``cache_problem`` event in the run's
trace), never a failed run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rolegraph.models.model import Completion, Model, ModelSettings, Usage
from rolegraph.sqlite_wal import connect_wal
from rolegraph.traces.redact import Redactor

__all__ = [
    "DEFAULT_MAX_MB",
    "DEFAULT_TTL_S",
    "KEPT_FINISH_REASONS",
    "CacheStats",
    "CacheTally",
    "CallCache",
    "RunCache",
    "cache_key",
    "cacheable",
]

DEFAULT_TTL_S = 7 * 24 * 3600.0
"""How long an entry answers (seconds): a week."""
DEFAULT_MAX_MB = 100.0
"""The cache's size cap (megabytes of stored answers); past it the oldest entries go."""
KEPT_FINISH_REASONS = frozenset({"stop", "tool_calls"})
"""The only ends of a call whose answer is kept: anything else was cut short or refused."""

_log = logging.getLogger("rolegraph.cache")
_BUSY_MS = 5000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    created REAL NOT NULL,
    size INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    hits INTEGER NOT NULL DEFAULT 0,
    completion TEXT NOT NULL,
    checksum TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_created ON entries (created);
"""


def cache_key(model: Model, request: Mapping[str, str]) -> str:
    """The key of a model call: the request's digest (the journal's), the model string, the model it names
    (`Model.model_id`, `Model.revision`: ``local`` after the weights changed is another model) and how it
    was built."""
    identity = {
        "model": model.name,
        "model_id": model.model_id,
        "revision": model.revision,
        "options": model.options,
        "request": dict(request),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def cacheable(settings: ModelSettings, model: Model) -> bool:
    """Whether a call with `settings` gives the same answer twice: greedy, seeded, or unsampled by default."""
    if settings.seed is not None or settings.temperature == 0:
        return True
    return settings.temperature is None and not model.samples_by_default


@dataclass(frozen=True)
class CacheStats:
    """What the cache holds (``rolegraph cache stats``).

    Attributes:
        path: The cache file.
        entries: Answers stored.
        size_bytes: Their size (the size cap counts this).
        hits: Times an entry answered a call, over the entries still stored.
        saved_input_tokens: Input tokens those hits did not spend.
        saved_output_tokens: Output tokens those hits did not spend.
        oldest: When the oldest entry was stored (Unix time), None when empty.
        newest: When the newest was.
        problem: Why the file could not be read (then every other figure is 0).
    """

    path: Path
    entries: int = 0
    size_bytes: int = 0
    hits: int = 0
    saved_input_tokens: int = 0
    saved_output_tokens: int = 0
    oldest: float | None = None
    newest: float | None = None
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The figures as JSON data."""
        return {name: str(value) if isinstance(value, Path) else value for name, value in self.__dict__.items()}


class CallCache:
    """The cache file under a home: get, put, stats, clear. Every failure of the file is a miss and a warning.

    Args:
        path: The SQLite file (`rolegraph.layout.Home.cache`); created on first use.
        ttl_s: Entries older than this many seconds are misses.
        max_mb: Size cap in megabytes; a put past it evicts the oldest entries.
        clock: The time (Unix seconds), injectable for tests of the TTL.
        on_problem: Told each problem (a damaged file or entry), besides the log.
    """

    def __init__(
        self,
        path: Path,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        max_mb: float = DEFAULT_MAX_MB,
        clock: Callable[[], float] = time.time,
        on_problem: Callable[[str], None] | None = None,
    ) -> None:
        self.path = path
        self.ttl_s = ttl_s
        self.max_bytes = int(max_mb * 1_000_000)
        self.clock = clock
        self.on_problem = on_problem
        self._db: sqlite3.Connection | None = None
        self._broken = False

    def _connect(self) -> sqlite3.Connection | None:
        """The connection, opened on first use; None once the file proved unusable."""
        if self._db is not None or self._broken:
            return self._db
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = connect_wal(self.path, timeout=_BUSY_MS / 1000)
            # A flipped bit can leave text that is not UTF-8: read it with replacements, so the entry's
            # checksum fails (a damaged entry, a miss) instead of the read raising.
            db.text_factory = lambda raw: raw.decode("utf-8", "replace")
            db.executescript(_SCHEMA)
        except (sqlite3.Error, UnicodeDecodeError, OSError) as exc:
            self._broken = True
            self._problem(f"the cache {self.path} cannot be used ({exc}); calls go to the model", exc)
            return None
        self._db = db
        return db

    def _problem(self, message: str, exc: BaseException | None = None) -> None:
        damaged = isinstance(exc, sqlite3.DatabaseError | UnicodeDecodeError)
        if damaged and not isinstance(exc, sqlite3.OperationalError):
            message += "; `rolegraph cache clear` removes a damaged cache"
        _log.warning(message)
        if self.on_problem is not None:
            self.on_problem(message)

    def get(self, key: str) -> Completion | None:
        """The stored answer under `key`, counted as a hit; None when there is none, it expired or is damaged."""
        db = self._connect()
        if db is None:
            return None
        try:
            row = db.execute("SELECT created, completion, checksum FROM entries WHERE key = ?", (key,)).fetchone()
            if row is None:
                return None
            created, stored, checksum = row
            if not isinstance(created, int | float) or not 0 <= self.clock() - created <= self.ttl_s:
                db.execute("DELETE FROM entries WHERE key = ?", (key,))
                return None
            try:
                if not isinstance(stored, str) or checksum != _checksum(stored):
                    raise ValueError("checksum")
                completion = Completion.model_validate_json(stored)
            except (ValidationError, ValueError, TypeError):
                db.execute("DELETE FROM entries WHERE key = ?", (key,))
                self._problem(f"a damaged entry of the cache {self.path} was removed; the call goes to the model")
                return None
        except (sqlite3.Error, UnicodeDecodeError) as exc:  # a damaged schema's names are not UTF-8
            self._problem(f"the cache {self.path} could not be read ({exc}); the call goes to the model", exc)
            return None
        with contextlib.suppress(sqlite3.OperationalError):  # the count is for `stats`: a busy file does not stop a hit
            db.execute("UPDATE entries SET hits = hits + 1 WHERE key = ?", (key,))
        return completion

    def put(self, key: str, model: str, completion: Completion) -> bool:
        """Store `completion` under `key` (replacing any), then evict the oldest entries past the size cap.

        Returns:
            Whether it was stored (not when larger than the whole cap, or the file failed).
        """
        db = self._connect()
        if db is None:
            return False
        text, usage = completion.model_dump_json(), completion.usage
        size = len(text.encode())
        if size > self.max_bytes:
            return False
        try:
            with _transaction(db):
                db.execute(
                    "INSERT OR REPLACE INTO entries (key, model, created, size, input_tokens, output_tokens, hits,"
                    " completion, checksum) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)",
                    (key, model, self.clock(), size, usage.input_tokens, usage.output_tokens, text, _checksum(text)),
                )
                self._evict(db)
        except (sqlite3.Error, UnicodeDecodeError) as exc:  # a damaged schema's names are not UTF-8
            self._problem(f"the cache {self.path} could not be written ({exc}); the answer is not kept", exc)
            return False
        return True

    def _evict(self, db: sqlite3.Connection) -> None:
        """Remove the oldest entries until the stored answers fit the size cap (inside the put's transaction)."""
        total = db.execute("SELECT COALESCE(SUM(size), 0) FROM entries").fetchone()[0]
        if total <= self.max_bytes:
            return
        doomed = []
        for key, size in db.execute("SELECT key, size FROM entries ORDER BY created, rowid"):
            if total <= self.max_bytes:
                break
            doomed.append((key,))
            total -= _finite(size) or 0
        db.executemany("DELETE FROM entries WHERE key = ?", doomed)

    def stats(self) -> CacheStats:
        """What the cache holds (a missing file holds nothing; a damaged one says so in `problem`)."""
        if not self.path.exists():
            return CacheStats(self.path)
        db = self._connect()
        if db is None:
            return CacheStats(self.path, problem="the file is not a readable cache")
        try:
            row = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0), COALESCE(SUM(hits), 0),"
                " COALESCE(SUM(hits * input_tokens), 0), COALESCE(SUM(hits * output_tokens), 0),"
                " MIN(created), MAX(created) FROM entries"
            ).fetchone()
        except (sqlite3.Error, UnicodeDecodeError) as exc:  # a damaged schema's names are not UTF-8
            return CacheStats(self.path, problem=str(exc))
        entries, size, hits, saved_in, saved_out = (int(_finite(v) or 0) for v in row[:5])
        oldest, newest = (_finite(v) for v in row[5:])
        return CacheStats(self.path, entries, size, hits, saved_in, saved_out, oldest, newest)

    def clear(self) -> int:
        """Remove every entry; a file that is no cache (damaged) is deleted. Returns the entries removed."""
        db = self._connect() if self.path.exists() else None
        try:
            if db is not None:
                with _transaction(db):
                    removed: int = db.execute("DELETE FROM entries").rowcount
                db.execute("VACUUM")
                return removed
        except (sqlite3.DatabaseError, UnicodeDecodeError):
            pass
        self._remove_files()
        return 0

    def _remove_files(self) -> None:
        """Delete the file and its WAL companions (a damaged cache), so the next use starts afresh."""
        self.close()
        for suffix in ("", "-wal", "-shm"):
            self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
        self._broken = False

    def close(self) -> None:
        """Close the connection (a later use opens it again)."""
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None


def _finite(value: object) -> float | None:
    """A stored number as a float; None for text, blobs, NULL or a damaged infinity (a SUM past 1e308)."""
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def _checksum(text: str) -> str:
    """What tells a stored answer from one damaged on disk (a flipped bit can leave valid JSON)."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Any:
    """One write transaction (``BEGIN IMMEDIATE``: takes the write lock first, so concurrent writers queue)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


@dataclass
class CacheTally:
    """The calls of one run the cache answered, and the tokens they did not spend, per model string."""

    hits: int = 0
    saved: dict[str, Usage] = field(default_factory=dict)

    def add(self, model: str, usage: Usage, hits: int = 1) -> None:
        """Count `hits` answered calls of `model` that would have used `usage`."""
        self.hits += hits
        self.saved[model] = self.saved.get(model, Usage()) + usage

    @property
    def usage(self) -> Usage:
        """The tokens saved, over every model."""
        return sum(self.saved.values(), Usage())


class RunCache:
    """One run's use of the cache: which calls may be kept, their answers redacted, and the run's tally.

    Args:
        store: The home's cache.
        redactor: The run's secret redaction; every kept answer passes it.
        tally: Where hits are counted (a resumed run starts from its trace's).
    """

    def __init__(self, store: CallCache, redactor: Redactor, tally: CacheTally | None = None) -> None:
        self.store = store
        self.redactor = redactor
        self.tally = tally or CacheTally()

    def lookup(self, model: Model, request: Mapping[str, str], settings: ModelSettings) -> Completion | None:
        """The cached answer to this call, counted in the tally; None when the call must be made.

        The answer's usage is what the call used when it was made: the tokens saved.
        """
        if not cacheable(settings, model):
            return None
        return self.answer(cache_key(model, request), model.name)

    def keep(self, model: Model, request: Mapping[str, str], settings: ModelSettings, completion: Completion) -> bool:
        """Store the answer to this call if it may answer the same call again; returns whether it was."""
        if not cacheable(settings, model) or completion.finish_reason not in KEPT_FINISH_REASONS:
            return False
        return self.store_answer(cache_key(model, request), model.name, completion)

    def answer(self, key: str, model_name: str) -> Completion | None:
        """The answer stored under `key` (a `cache_key`), counted in the tally as `model_name`'s."""
        completion = self.store.get(key)
        if completion is not None:
            self.tally.add(model_name, completion.usage)
        return completion

    def store_answer(self, key: str, model_name: str, completion: Completion) -> bool:
        """Store `completion` under `key`, redacted; returns whether it was."""
        redacted = Completion.model_validate(self.redactor.value(completion.model_dump(mode="json")))
        return self.store.put(key, model_name, redacted)

    def close(self) -> None:
        """Close the store."""
        self.store.close()
