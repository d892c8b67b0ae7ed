"""`Library`: a folder of documents, indexed once and searched by chunk."""

from __future__ import annotations

import difflib
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rolegraph.errors import LibraryError, Problem
from rolegraph.tools.library.documents import Document, page_id, split_page_id
from rolegraph.tools.library.index import IndexReport, LibraryIndex, Progress, default_index_path, library_files
from rolegraph.tools.library.query import STOPWORDS, fts_query
from rolegraph.tools.sources import Source

__all__ = ["SNIPPET_CHARS", "Hit", "Library"]

SNIPPET_CHARS = 300
"""Roughly how much of a chunk a search hit shows."""


@dataclass(frozen=True)
class Hit:
    """One search result: a chunk of a document.

    Attributes:
        document: The document the chunk belongs to.
        score: Relevance (bm25, negated so higher is better); only comparable within one search.
        snippet: About `SNIPPET_CHARS` characters of the chunk around the best match.
        text: The whole chunk (what the registered source holds, and what evidence is quoted from).
        page: The chunk's page, for a paged document (a PDF); else None.
    """

    document: Document
    score: float
    snippet: str
    text: str
    page: int | None = None

    @property
    def source_id(self) -> str:
        """The id to cite: the document's key, or ``key#p<page>`` for a page of a PDF."""
        return page_id(self.document.key, self.page)

    def to_source(self, tool_name: str = "") -> Source:
        """The chunk as a `Source` (its page's id, the chunk's text)."""
        return self.document.to_source(tool_name, text=self.text, page=self.page)


class Library:
    """Documents indexed with SQLite FTS5 (title weighted above authors and topic, above the text).

    `Library.from_dir` is the usual way in: it indexes a folder (incrementally,
    into a stored index). The constructor builds a library in memory from
    documents and their text, for code and tests.

    The connection is shared between threads behind a lock: a library is often
    built in one thread and used in another (a notebook, a service,
    `asyncio.to_thread`). Searches take about a millisecond, so tools run them
    directly on the event loop.

    Args:
        entries: Documents with their text; keys must be unique.

    Raises:
        LibraryError: Two documents share a key.
    """

    def __init__(self, entries: Iterable[tuple[Document, str]] = ()) -> None:
        index = LibraryIndex(None)
        problems: list[Problem] = []
        seen: dict[str, Document] = {}
        for document, text in entries:
            if document.key in seen:
                other = seen[document.key].path
                problems.append(Problem(f"duplicate key {document.key!r} (also used by {other})", "key", document.path))
                continue
            seen[document.key] = document
            index.add(document, text)
        if problems:
            index.close()
            raise LibraryError(problems)
        self._attach(index, None, None)

    def _attach(self, index: LibraryIndex, folder: Path | None, report: IndexReport | None) -> None:
        self._index = index
        self._lock = threading.Lock()
        self._by_file = index.documents(folder)
        self._file_of = {doc.key: file_id for file_id, doc in self._by_file.items()}
        self._docs = {doc.key: doc for doc in self._by_file.values()}
        self.report = report
        """What indexing the folder did (None for a library built in memory)."""

    @classmethod
    def from_dir(
        cls, path: str | Path, *, index: str | Path | None = None, progress: Progress | None = None
    ) -> Library:
        """Index the documents of a folder (any depth) and open the library over them.

        Reads markdown notes (``*.md``, with or without front matter), plain text
        (``*.txt``), HTML (``*.html``) and PDF (``*.pdf``); ``README.md`` files and
        hidden folders are left out; ``*.bib`` files in the folder describe the
        documents. Files unchanged since the last call are not read again.

        Args:
            path: The folder.
            index: Where to keep the index (default: `default_index_path`).
            progress: Called as files and pages are read.

        Raises:
            LibraryError: The folder is missing or holds no readable document, or
                notes are malformed (every problem is reported, each naming its file and line).
        """
        folder = Path(path)
        if not folder.is_dir():
            raise LibraryError([Problem(f"library folder {folder} does not exist", file=folder)])
        if not library_files(folder)[0]:
            raise LibraryError(
                [Problem("library folder has no documents (*.md, *.txt, *.html or *.pdf files)", file=folder)]
            )
        store = LibraryIndex(Path(index) if index is not None else default_index_path(folder))
        try:
            try:
                report = store.update(folder, progress=progress)
            except sqlite3.DatabaseError as exc:
                if store.path is None or type(exc) is sqlite3.OperationalError:
                    raise
                store.rebuild(f"the index {store.path} was damaged ({exc}); it has been rebuilt")
                report = store.update(folder, progress=progress)
            library = cls.__new__(cls)
            library._attach(store, folder, report)
        except BaseException:
            store.close()
            raise
        if not library._docs:
            store.close()
            reasons = [Problem(f"not indexed: {s.reason}", file=s.file) for s in report.skipped]
            raise LibraryError([Problem("no document of the library could be read", file=folder), *reasons])
        return library

    def __len__(self) -> int:
        return len(self._docs)

    def __iter__(self) -> Iterator[Document]:
        return iter(self._docs.values())

    def __contains__(self, key: object) -> bool:
        return key in self._docs

    def keys(self) -> list[str]:
        """Every document's key, in file-name order."""
        return list(self._docs)

    def get(self, key: str) -> Document | None:
        """The document with this key, or None."""
        return self._docs.get(key)

    def resolve(self, source_id: str) -> tuple[Document, int | None] | None:
        """The document and page an id names (``key``, ``key#p4``), forgiving brackets, quotes and case.

        A page number past the end of the document, or on a document without pages, resolves to no page.
        """
        wanted = source_id.strip().strip("[]'\"` ").strip()  # models copy ids with the brackets they saw
        key, page = split_page_id(wanted)
        doc = self._docs.get(key) or next((d for d in self._docs.values() if d.key.lower() == key.lower()), None)
        if doc is None:
            return None
        return doc, page if doc.pages is not None and page is not None and page <= doc.pages else None

    def close_keys(self, key: str, n: int = 3) -> list[str]:
        """Up to `n` keys that look like `key`, best first (for did-you-mean messages).

        Keys containing a word of `key` (``lora`` in ``hu2021lora``) come first, then
        keys that are spelled alike.
        """
        wanted = key.lower()
        words = [w for w in re.findall(r"[a-z]{3,}", wanted) if w not in STOPWORDS]
        containing = sorted(
            (k for k in self._docs if any(w in k.lower() for w in words)),
            key=lambda k: -difflib.SequenceMatcher(None, wanted, k.lower()).ratio(),
        )
        alike = difflib.get_close_matches(wanted, self._docs, n=n, cutoff=0.5)
        return list(dict.fromkeys([*containing, *alike]))[:n]

    def search(self, query: str, limit: int = 5, *, per_document: int | None = None) -> list[Hit]:
        """The chunks best matching `query`, best first; [] if none match or the query has no words.

        Args:
            query: Free text; never raises on odd text (see `fts_query`).
            limit: At most this many hits.
            per_document: At most this many chunks of any one document (None: no cap).
        """
        match = fts_query(query)
        if match is None:
            return []
        fetch = limit if per_document is None else min(max(limit, 1) * 5, 200)
        with self._lock:
            rows = self._index.search(match, fetch)
        hits: list[Hit] = []
        counts: dict[int, int] = {}
        for row in rows:
            counts[row.file_id] = counts.get(row.file_id, 0) + 1
            if per_document is not None and counts[row.file_id] > per_document:
                continue
            snippet = _clip(row.snippet, SNIPPET_CHARS)
            hits.append(Hit(self._by_file[row.file_id], row.score, snippet, row.text, row.page))
            if len(hits) >= limit:
                break
        return hits

    def text(self, key: str) -> str:
        """The whole text of a document, its chunks joined by blank lines ("" for an unknown key)."""
        return "\n\n".join(text for _, text in self.passages(key))

    def passages(self, key: str, first_page: int | None = None) -> list[tuple[int | None, str]]:
        """The chunks of a document in order as ``(page, text)``, from `first_page` on if given."""
        if key not in self._file_of:
            return []
        with self._lock:
            return list(self._index.chunks(self._file_of[key], first_page))

    def pages(self, key: str, first_page: int = 1) -> Iterator[tuple[int, str]]:
        """The pages of a paged document from `first_page` on, as ``(page, text)``, read one page at a time."""
        page = first_page
        doc = self._docs.get(key)
        while doc is not None and doc.pages is not None and page <= doc.pages:
            with self._lock:
                parts = [t for p, t in self._index.chunks(self._file_of[key], page) if p == page]
            if parts:
                yield page, "\n\n".join(parts)
            page += 1

    def close(self) -> None:
        """Close the index. The library cannot be searched afterwards."""
        with self._lock:
            self._index.close()


def _clip(text: str, limit: int) -> str:
    """`text` with whitespace collapsed, cut at a word boundary to at most about `limit` characters."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    return text[: cut if cut > limit // 2 else limit].rstrip(" ,;:…") + "…"
