"""A library's index: its documents' records and chunks in SQLite, searched with FTS5 (BM25).

Where it lives: ``$ROLEGRAPH_HOME/libraries/<hash of the folder's path>/index.sqlite``
(`default_index_path`). Not beside the library, because the folder is the
user's: it may be read-only (a mounted share, a package's data), synced
(a reference manager's storage) or a git checkout, and an index written into
it would be a surprise there. One home holds the runs, the fetch cache and the
indexes, and deleting it loses nothing that cannot be rebuilt. If the home
cannot be written, the index is built in memory for this process.

Kept up to date incrementally: each file's size and modification time are
compared with the stored ones; a file whose stamp changed is hashed, and only
a file whose content changed is read again. Added, changed and deleted files
are handled in one pass; a change to the BibTeX files re-describes every
document without reading its text again. A file is indexed in one
transaction, so a crash mid-way leaves every other file indexed, and two
processes indexing one library take turns (SQLite's write lock). A damaged or
outdated index file is deleted and rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rolegraph.errors import LibraryError, Problem
from rolegraph.sqlite_wal import connect_wal
from rolegraph.tools.library.bibtex import Bibliography
from rolegraph.tools.library.chunking import chunk_text
from rolegraph.tools.library.documents import Document
from rolegraph.tools.library.readers import SUFFIXES, Facts, Unreadable, describe, read_file

__all__ = [
    "ChunkHit",
    "IndexEvent",
    "IndexReport",
    "LibraryIndex",
    "Progress",
    "Skipped",
    "default_index_path",
    "library_files",
]

SCHEMA_VERSION = "1"
"""Bumped whenever the tables or the chunking change: an index of another version is rebuilt."""
_IGNORED = frozenset({"readme.md"})
_BUSY_TIMEOUT_S = 600.0
"""How long the index waits for another process's lock: indexing a large library holds it for minutes."""
# Column order of the chunks table; the bm25 weights follow it (file and page are stored, not indexed).
_BM25_WEIGHTS = "0.0, 0.0, 10.0, 4.0, 4.0, 1.0"
_TEXT_COLUMN = 5
_SNIPPET_TOKENS = 48
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    facts TEXT NOT NULL,
    document TEXT,
    skipped TEXT,
    first_chunk INTEGER,
    last_chunk INTEGER
);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks USING fts5(
    file UNINDEXED, page UNINDEXED, title, authors, topic, text,
    tokenize = 'porter unicode61 remove_diacritics 2'
);
"""


class _Outdated(Exception):
    """The index file was written by another schema version."""


def default_index_path(folder: Path) -> Path:
    """Where the index of `folder` is kept: ``$ROLEGRAPH_HOME/libraries/<hash>/index.sqlite``."""
    home = Path(os.environ.get("ROLEGRAPH_HOME", ".rolegraph"))
    digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    return home / "libraries" / digest / "index.sqlite"


def library_files(folder: Path) -> tuple[list[Path], list[Path]]:
    """The documents of `folder` (any depth; hidden folders and README.md skipped) and its top-level ``*.bib`` files."""
    documents = sorted(
        path
        for path in folder.rglob("*")
        if path.suffix.lower() in SUFFIXES
        and path.name.lower() not in _IGNORED
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
        and path.is_file()
    )
    bibs = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".bib" and p.is_file())
    return documents, bibs


@dataclass(frozen=True)
class Skipped:
    """A file the library could not index, and why."""

    file: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.reason}"


@dataclass(frozen=True)
class IndexEvent:
    """Progress of an index update: a file started (`page` 0), a page read, or a file done (`page` = `pages`)."""

    file: Path
    page: int
    pages: int | None
    """The file's page count (PDFs); None for files without pages."""


Progress = Callable[[IndexEvent], None]
"""Called as the index reads files and pages (for progress bars)."""


@dataclass
class IndexReport:
    """What an update of the index did."""

    folder: Path
    index: Path | None
    """The index file, or None when it is held in memory."""
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    documents: int = 0
    chunks: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    """Every file that is not indexed (skipped now or before), with the reason."""
    notes: list[str] = field(default_factory=list)
    """Anything else worth saying (an index rebuilt, an index kept in memory, BibTeX entries not read)."""


@dataclass(frozen=True)
class ChunkHit:
    """One ranked chunk: its file row, page, text, score (bm25 negated: higher is better) and snippet."""

    file_id: int
    page: int | None
    text: str
    score: float
    snippet: str


class LibraryIndex:
    """The SQLite store behind a `Library`. Not thread-safe: the library serialises access.

    Args:
        path: The index file, or None for an index in memory.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.notes: list[str] = []
        if path is None:
            self._db = self._connect(":memory:")
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._db = self._connect(str(path))
            except (_Outdated, sqlite3.DatabaseError) as exc:
                if type(exc) is sqlite3.OperationalError:
                    raise  # locked, read-only, cannot open: the file may be fine, so never delete it
                self.rebuild(f"the index {path} was damaged or outdated ({exc}); it has been rebuilt")
        except (OSError, sqlite3.OperationalError) as exc:
            self.path = None
            self.notes.append(f"the index cannot be stored at {path} ({exc}); it is kept in memory for this run")
            self._db = self._connect(":memory:")

    def _connect(self, where: str) -> sqlite3.Connection:
        # WAL: searches in other processes go on while one indexes
        if where == ":memory:":
            db = sqlite3.connect(where, isolation_level=None, check_same_thread=False)
        else:
            db = connect_wal(Path(where), timeout=_BUSY_TIMEOUT_S)
        try:
            db.executescript(_SCHEMA)
            version = db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
            if version is None:
                db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            elif version[0] != SCHEMA_VERSION:
                raise _Outdated(f"it was written with index schema {version[0]}, this is {SCHEMA_VERSION}")
            db.execute("SELECT count(*) FROM files").fetchone()
        except BaseException:
            db.close()
            raise
        return db

    def rebuild(self, note: str) -> None:
        """Delete the index file and start an empty one, noting why in `notes`."""
        assert self.path is not None
        with contextlib.suppress(AttributeError, sqlite3.Error):
            self._db.close()
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                Path(f"{self.path}{suffix}").unlink()
        self._db = self._connect(str(self.path))
        self.notes.append(note)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    # Reading.

    def documents(self, folder: Path | None = None) -> dict[int, Document]:
        """Every indexed document by file row id, in file-name order (paths resolved against `folder`)."""
        found = {}
        rows = self._db.execute("SELECT id, name, document FROM files WHERE document IS NOT NULL ORDER BY name")
        for file_id, name, record in rows:
            doc = Document.model_validate_json(record)
            found[file_id] = doc.model_copy(update={"path": folder / name}) if folder is not None else doc
        return found

    def skipped(self, folder: Path) -> list[Skipped]:
        """Every file that is not indexed, with the reason."""
        rows = self._db.execute("SELECT name, skipped FROM files WHERE skipped IS NOT NULL ORDER BY name")
        return [Skipped(folder / name, reason) for name, reason in rows]

    def chunk_count(self) -> int:
        """How many chunks the index holds."""
        return int(self._db.execute("SELECT count(*) FROM chunks").fetchone()[0])

    def search(self, match: str, limit: int) -> list[ChunkHit]:
        """The `limit` chunks best matching the FTS5 query `match`, best first."""
        rows = self._db.execute(
            f"SELECT file, page, text, bm25(chunks, {_BM25_WEIGHTS}) AS rank, "
            f"snippet(chunks, {_TEXT_COLUMN}, '', '', '…', {_SNIPPET_TOKENS}) "
            "FROM chunks WHERE chunks MATCH ? ORDER BY rank LIMIT ?",
            (match, max(1, limit)),
        ).fetchall()
        return [ChunkHit(int(f), p, text, -rank, snippet) for f, p, text, rank, snippet in rows]

    def chunks(self, file_id: int, first_page: int | None = None) -> Iterator[tuple[int | None, str]]:
        """The chunks of one document in order, as ``(page, text)``; from `first_page` on, if given."""
        span = self._db.execute("SELECT first_chunk, last_chunk FROM files WHERE id = ?", (file_id,)).fetchone()
        if span is None or span[0] is None:
            return
        query = "SELECT page, text FROM chunks WHERE rowid BETWEEN ? AND ?"
        params: tuple[int, ...] = tuple(span)
        if first_page is not None:
            query += " AND page >= ?"
            params += (first_page,)
        yield from self._db.execute(query + " ORDER BY rowid", params)

    # Writing.

    def add(self, document: Document, text: str) -> int:
        """Index one document held in memory (a library built in code); returns its file row id."""
        name = f"{document.key}\x00memory"
        self._db.execute("BEGIN IMMEDIATE")
        try:
            file_id = self._insert_file(name, (0, 0, ""), Facts())
            first, last = self._insert_chunks(file_id, document, [(None, text)])
            self._db.execute(
                "UPDATE files SET document = ?, first_chunk = ?, last_chunk = ? WHERE id = ?",
                (document.model_dump_json(), first, last, file_id),
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return file_id

    def update(self, folder: Path, *, progress: Progress | None = None) -> IndexReport:
        """Bring the index in line with the files of `folder`; see the module docstring.

        Raises:
            LibraryError: Notes with malformed front matter (every problem; the other files are indexed).
        """
        report = IndexReport(folder, self.path, notes=list(self.notes))
        files, bib_files = library_files(folder)
        bib = Bibliography.read(bib_files)
        report.notes += [f"{p.file}:{p.line}: {p.message}" for p in bib.problems]
        bib_stamp = json.dumps([[p.name, *_stamp(p)] for p in bib_files])
        bib_changed = self._meta("bibtex") != bib_stamp
        names = {path.relative_to(folder).as_posix(): path for path in files}
        rows = {row[0]: row for row in self._db.execute("SELECT name, size, mtime_ns, sha256, id FROM files")}
        for name in sorted(set(rows) - set(names)):
            self._remove(rows[name][4])
            report.removed += 1
        problems: list[Problem] = []
        for name, path in names.items():
            try:
                stamp = _stamp(path)
            except OSError:
                continue  # gone since the scan: the next update removes it
            row = rows.get(name)
            if row is not None and (row[1], row[2]) == stamp:
                report.unchanged += 1
                continue
            digest = _sha256(path)
            if row is not None and row[3] == digest:
                self._db.execute("UPDATE files SET size = ?, mtime_ns = ? WHERE id = ?", (*stamp, row[4]))
                report.unchanged += 1
                continue
            try:
                indexed = self._index_file(name, path, (*stamp, digest), bib, progress)
            except LibraryError as exc:
                if row is not None:
                    self._remove(row[4])
                problems += exc.problems
                continue
            if indexed:
                report.added += row is None
                report.changed += row is not None
        if bib_changed:
            self._redescribe(folder, bib)
            self._set_meta("bibtex", bib_stamp)
        report.documents = len(self.documents())
        report.chunks = self.chunk_count()
        report.skipped = self.skipped(folder)
        if problems:
            raise LibraryError(problems)
        return report

    def _index_file(
        self, name: str, path: Path, stamp: tuple[int, int, str], bib: Bibliography, progress: Progress | None
    ) -> bool:
        """Read and index one file in one transaction; False if it was skipped or another process did it."""
        try:
            reading = read_file(path)
        except Unreadable as exc:
            self._record_skip(name, stamp, Facts(), str(exc))
            return False
        document = describe(reading.facts, name, path, bib)
        pages = reading.facts.pages
        if progress:
            progress(IndexEvent(path, 0, pages))
        self._db.execute("BEGIN IMMEDIATE")
        try:
            row = self._db.execute("SELECT id, sha256, document FROM files WHERE name = ?", (name,)).fetchone()
            if row is not None and row[1] == stamp[2]:  # another process indexed this very content meanwhile
                self._db.execute("ROLLBACK")
                return row[2] is not None
            if (owner := self._owner_of(document.key, name)) is not None:
                self._db.execute("ROLLBACK")
                reason = f"its key {document.key!r} is already used by {owner}; rename it or give it a BibTeX entry"
                self._record_skip(name, stamp, reading.facts, reason)
                return False
            if row is not None:
                self._delete_chunks(row[0])
            file_id = self._insert_file(name, stamp, reading.facts)

            def reported() -> Iterator[tuple[int | None, str]]:
                for page, text in reading.pages:
                    if progress and page is not None:
                        progress(IndexEvent(path, page, pages))
                    yield page, text

            first, last = self._insert_chunks(file_id, document, reported())
            if first is None:
                self._db.execute("ROLLBACK")
                reason = (
                    f"has no text layer on any of its {pages} page(s) (a scanned PDF?); run OCR on it "
                    "first (e.g. ocrmypdf) to index it"
                    if pages
                    else "has no text"
                )
                self._record_skip(name, stamp, reading.facts, reason)
                return False
            self._db.execute(
                "UPDATE files SET document = ?, first_chunk = ?, last_chunk = ? WHERE id = ?",
                (document.model_dump_json(exclude={"path"}), first, last, file_id),
            )
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        if progress and pages is None:
            progress(IndexEvent(path, 1, None))
        return True

    def _insert_file(self, name: str, stamp: tuple[int, int, str], facts: Facts) -> int:
        cursor = self._db.execute(
            "INSERT INTO files (name, size, mtime_ns, sha256, facts) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns, "
            "sha256 = excluded.sha256, facts = excluded.facts, document = NULL, skipped = NULL, "
            "first_chunk = NULL, last_chunk = NULL RETURNING id",
            (name, *stamp, json.dumps(facts.as_json())),
        )
        return int(cursor.fetchone()[0])

    def _insert_chunks(
        self, file_id: int, document: Document, pages: Iterable[tuple[int | None, str]]
    ) -> tuple[int | None, int | None]:
        """Chunk and insert text page by page (nothing but the current page is held); the rowid span used."""
        start = next_id = int(self._meta("next_chunk") or 1)
        columns = (document.title, " ".join(document.authors), document.topic or "")
        for page, text in pages:
            for chunk in chunk_text(text):
                self._db.execute(
                    "INSERT INTO chunks (rowid, file, page, title, authors, topic, text) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (next_id, file_id, page, *columns, chunk),
                )
                next_id += 1
        if next_id == start:
            return None, None
        self._set_meta("next_chunk", str(next_id))
        return start, next_id - 1

    def _record_skip(self, name: str, stamp: tuple[int, int, str], facts: Facts, reason: str) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        row = self._db.execute("SELECT id FROM files WHERE name = ?", (name,)).fetchone()
        if row is not None:
            self._delete_chunks(row[0])
        file_id = self._insert_file(name, stamp, facts)
        self._db.execute("UPDATE files SET skipped = ? WHERE id = ?", (reason, file_id))
        self._db.execute("COMMIT")

    def _owner_of(self, key: str, name: str) -> str | None:
        """The other file whose document has `key`, if any."""
        row = self._db.execute(
            "SELECT name FROM files WHERE json_extract(document, '$.key') = ? AND name != ?", (key, name)
        ).fetchone()
        return None if row is None else str(row[0])

    def _delete_chunks(self, file_id: int) -> None:
        span = self._db.execute("SELECT first_chunk, last_chunk FROM files WHERE id = ?", (file_id,)).fetchone()
        if span is not None and span[0] is not None:
            self._db.execute("DELETE FROM chunks WHERE rowid BETWEEN ? AND ?", span)

    def _remove(self, file_id: int) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        self._delete_chunks(file_id)
        self._db.execute("DELETE FROM files WHERE id = ?", (file_id,))
        self._db.execute("COMMIT")

    def _redescribe(self, folder: Path, bib: Bibliography) -> None:
        """Describe every indexed document again from its stored facts and the current BibTeX entries."""
        self._db.execute("BEGIN IMMEDIATE")
        rows = self._db.execute(
            "SELECT id, name, facts, document, first_chunk, last_chunk FROM files WHERE document IS NOT NULL"
        ).fetchall()
        for file_id, name, facts, record, first, last in rows:
            document = describe(Facts.from_json(json.loads(facts)), name, folder / name, bib)
            if document.model_dump_json(exclude={"path"}) == record:
                continue
            if self._owner_of(document.key, name) is not None:
                continue  # keep the record it had rather than clash with another file's key
            self._db.execute(
                "UPDATE files SET document = ? WHERE id = ?", (document.model_dump_json(exclude={"path"}), file_id)
            )
            self._db.execute(
                "UPDATE chunks SET title = ?, authors = ?, topic = ? WHERE rowid BETWEEN ? AND ?",
                (document.title, " ".join(document.authors), document.topic or "", first, last),
            )
        self._db.execute("COMMIT")

    def _meta(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, name: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, value))


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
