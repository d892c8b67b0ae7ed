"""The local library: a folder of markdown notes, searched with SQLite FTS5, and the tools over it.

A note is one paper: YAML front matter with its bibliographic facts, then a
plain-text body::

    ---
    key: hu2021lora
    title: 'LoRA: Low-Rank Adaptation of Large Language Models'
    first_author: Edward J. Hu
    year: 2021
    venue: ICLR 2022
    arxiv: '2106.09685'
    topic: parameter-efficient fine-tuning
    ---

    LoRA freezes the pretrained weights and ...

`Library.from_dir` loads a folder of notes into an in-memory FTS5 index;
`LibrarySearchTool` and `ReadDocumentTool` let an agent search and read it, and
every note they return becomes a `Source` cited by its key.
"""

from __future__ import annotations

import difflib
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rolegraph.errors import LibraryError, Problem
from rolegraph.tools.sources import Source
from rolegraph.tools.tool import Tool, ToolResult

__all__ = [
    "Document",
    "Hit",
    "Library",
    "LibrarySearchArgs",
    "LibrarySearchTool",
    "ReadDocumentArgs",
    "ReadDocumentTool",
    "fts_query",
    "parse_note",
]

SNIPPET_CHARS = 300
"""Roughly how much of a note's body a search hit shows."""

_IGNORED_FILES = frozenset({"readme.md"})
_WORD = re.compile(r"[^\W_]+")
_MAX_TERMS = 24
_MAX_TERM_CHARS = 64
# Words that match nearly every note: dropped from a query unless nothing else is left.
_STOPWORDS = frozenset(
    "a about an and are as at be been by can do does for from has have how in into is it its of on or "
    "paper papers that the their this to was were what when which who why with".split()
)
# Column order of the index; bm25 weights below follow it (key is stored, not indexed).
_COLUMNS = ("key", "title", "authors", "topic", "body")
_BM25_WEIGHTS = "0.0, 10.0, 4.0, 4.0, 1.0"
_SNIPPET_TOKENS = 48


class _NoteMeta(BaseModel):
    """The front matter of a note: bibliographic facts only."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    key: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    title: str = Field(min_length=1)
    first_author: str = Field(min_length=1)
    year: int = Field(ge=1000, le=2999)
    venue: str = Field(min_length=1)
    arxiv: str | None = None
    topic: str = Field(min_length=1)


class Document(BaseModel):
    """One note of the library: a paper's bibliographic facts and a summary of it."""

    model_config = ConfigDict(frozen=True)

    key: str
    """Stable id agents cite, e.g. ``hu2021lora``; also the note's file name."""
    title: str
    first_author: str
    year: int
    venue: str
    arxiv: str | None = None
    """The arXiv id (``2106.09685``), if the paper has one."""
    topic: str
    body: str
    """The note's text (markdown without the front matter)."""
    path: Path | None = None
    """The file the note was loaded from, if any."""

    @property
    def url(self) -> str | None:
        """The paper's arXiv abstract page, if it has an arXiv id."""
        return f"https://arxiv.org/abs/{self.arxiv}" if self.arxiv else None

    def metadata(self) -> dict[str, Any]:
        """The bibliographic facts, as in the front matter (``arxiv`` only when present)."""
        return self.model_dump(mode="json", exclude={"body", "path"}, exclude_none=True)

    def to_source(self, tool_name: str = "") -> Source:
        """This note as a `Source` retrieved by the tool `tool_name`."""
        return Source(
            id=self.key,
            title=self.title,
            authors=[self.first_author],
            year=self.year,
            venue=self.venue,
            url=self.url,
            arxiv=self.arxiv,
            tool=tool_name,
            text=self.body,
        )


@dataclass(frozen=True)
class Hit:
    """One search result.

    Attributes:
        document: The matching note.
        score: Relevance (bm25, negated so higher is better); only comparable within one search.
        snippet: About `SNIPPET_CHARS` characters of the body around the best match.
    """

    document: Document
    score: float
    snippet: str


def fts_query(text: str) -> str | None:
    """Turn free text into a safe FTS5 query, or None if it holds no searchable word.

    Words are quoted, so FTS5 syntax in the text (quotes, ``:``, ``*``, ``NEAR``,
    ``AND``) is searched for as plain words rather than parsed. Terms are joined
    with OR and ranked by bm25, so a note matching more (and rarer) words ranks
    higher. Common words are dropped unless nothing else is left.

    >>> fts_query('LoRA: low-rank "adaptation"')
    '"lora" OR "low" OR "rank" OR "adaptation"'
    """
    terms = list(dict.fromkeys(word[:_MAX_TERM_CHARS] for word in _WORD.findall(text.lower())))
    content = [term for term in terms if term not in _STOPWORDS] or terms
    return " OR ".join(f'"{term}"' for term in content[:_MAX_TERMS]) or None


class Library:
    """Notes held in memory and indexed with SQLite FTS5 (title weighted above the body).

    The connection is shared between threads behind a lock (``check_same_thread=False``):
    a library is often built in one thread and used in another (a notebook, a
    service, `asyncio.to_thread`), and a SQLite connection must not be used by two
    threads at once. Queries over a few hundred notes take well under a
    millisecond, so tools run them directly on the event loop: a hop to a worker
    thread would cost more than the query.

    Args:
        documents: The notes; keys must be unique.

    Raises:
        LibraryError: Two notes share a key.
    """

    def __init__(self, documents: Iterable[Document]) -> None:
        self._docs: dict[str, Document] = {}
        problems: list[Problem] = []
        for doc in documents:
            if doc.key in self._docs:
                other = self._docs[doc.key].path
                problems.append(Problem(f"duplicate key {doc.key!r} (also used by {other})", "key", doc.path))
            else:
                self._docs[doc.key] = doc
        if problems:
            raise LibraryError(problems)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._db.execute(
            f"CREATE VIRTUAL TABLE notes USING fts5({_COLUMNS[0]} UNINDEXED, {', '.join(_COLUMNS[1:])}, "
            "tokenize = 'porter unicode61 remove_diacritics 2')"
        )
        self._db.executemany(
            "INSERT INTO notes (key, title, authors, topic, body) VALUES (?, ?, ?, ?, ?)",
            [(d.key, d.title, d.first_author, d.topic, d.body) for d in self._docs.values()],
        )
        self._db.commit()

    @classmethod
    def from_dir(cls, path: str | Path) -> Library:
        """Load every ``*.md`` note in `path` (not recursive; ``README.md`` is skipped).

        Raises:
            LibraryError: The folder is missing or has no notes, or notes are malformed
                (every problem is reported, each naming its file and line).
        """
        folder = Path(path)
        if not folder.is_dir():
            raise LibraryError([Problem(f"library folder {folder} does not exist", file=folder)])
        files = sorted(p for p in folder.glob("*.md") if p.is_file() and p.name.lower() not in _IGNORED_FILES)
        if not files:
            raise LibraryError([Problem("library folder has no notes (*.md files)", file=folder)])
        documents: list[Document] = []
        problems: list[Problem] = []
        for file in files:
            try:
                documents.append(parse_note(file))
            except LibraryError as exc:
                problems.extend(exc.problems)
        if problems:
            raise LibraryError(problems)
        return cls(documents)

    def __len__(self) -> int:
        return len(self._docs)

    def __iter__(self) -> Iterator[Document]:
        return iter(self._docs.values())

    def __contains__(self, key: object) -> bool:
        return key in self._docs

    def keys(self) -> list[str]:
        """Every note's key, in loading order."""
        return list(self._docs)

    def get(self, key: str) -> Document | None:
        """The note with this key, or None."""
        return self._docs.get(key)

    def close_keys(self, key: str, n: int = 3) -> list[str]:
        """Up to `n` keys that look like `key`, best first (for did-you-mean messages).

        Keys containing a word of `key` (``lora`` in ``hu2021lora``) come first, then
        keys that are spelled alike.
        """
        wanted = key.lower()
        words = [w for w in re.findall(r"[a-z]{3,}", wanted) if w not in _STOPWORDS]
        containing = sorted(
            (k for k in self._docs if any(w in k.lower() for w in words)),
            key=lambda k: -difflib.SequenceMatcher(None, wanted, k.lower()).ratio(),
        )
        alike = difflib.get_close_matches(wanted, self._docs, n=n, cutoff=0.5)
        return list(dict.fromkeys([*containing, *alike]))[:n]

    def search(self, query: str, limit: int = 5) -> list[Hit]:
        """The notes best matching `query`, best first; [] if none match or the query has no words.

        Never raises on odd text: see `fts_query`.
        """
        match = fts_query(query)
        if match is None:
            return []
        with self._lock:
            rows = self._db.execute(
                f"SELECT key, bm25(notes, {_BM25_WEIGHTS}) AS rank, "
                f"snippet(notes, {_COLUMNS.index('body')}, '', '', '…', {_SNIPPET_TOKENS}) "
                "FROM notes WHERE notes MATCH ? ORDER BY rank LIMIT ?",
                (match, max(1, limit)),
            ).fetchall()
        return [Hit(self._docs[key], -rank, _clip(snippet, SNIPPET_CHARS)) for key, rank, snippet in rows]

    def close(self) -> None:
        """Close the index. The library cannot be searched afterwards."""
        with self._lock:
            self._db.close()


def parse_note(path: Path) -> Document:
    """Read one note.

    Raises:
        LibraryError: The note is malformed; the problems name the file and line.
    """
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        raise _note_error(path, "a note starts with a '---' line, then YAML front matter, then a closing '---'", 1)
    end = next((i for i, line in enumerate(lines[1:], start=1) if line.strip() == "---"), None)
    if end is None:
        raise _note_error(path, "the front matter has no closing '---' line", 1)
    try:
        meta = yaml.safe_load("\n".join(lines[1:end]))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        reason = getattr(exc, "problem", None) or str(exc)
        raise _note_error(path, f"the front matter is not valid YAML: {reason}", line) from None
    if not isinstance(meta, dict):
        raise _note_error(path, "the front matter must be a mapping of fields (key: value)", 2)
    try:
        facts = _NoteMeta.model_validate(meta)
    except ValidationError as exc:
        problems: list[Problem] = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            message = f"{field}: {error['msg']}"
            if field == "arxiv" and isinstance(meta.get("arxiv"), float):
                message = "arxiv: quote the id, e.g. arxiv: '2106.09685' (unquoted, YAML reads it as a number)"
            problems.append(_problem(path, message, _field_line(lines[1:end], field), field))
        raise LibraryError(problems) from None
    if facts.key != path.stem:
        raise _note_error(path, f"key {facts.key!r} must match the file name ({path.stem}.md)", 1, "key")
    body = "\n".join(lines[end + 1 :]).strip()
    if not body:
        raise _note_error(path, "the note has no text after its front matter", end + 1)
    return Document(**facts.model_dump(), body=body, path=path)


def _field_line(front_matter: list[str], field: str) -> int | None:
    for number, line in enumerate(front_matter, start=2):
        if line.startswith(f"{field}:"):
            return number
    return None


def _problem(path: Path, message: str, line: int | None = None, field: str = "") -> Problem:
    return Problem(message, field, path, line)


def _note_error(path: Path, message: str, line: int | None = None, field: str = "") -> LibraryError:
    return LibraryError([_problem(path, message, line, field)])


def _clip(text: str, limit: int) -> str:
    """`text` with whitespace collapsed, cut at a word boundary to at most about `limit` characters."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    return text[: cut if cut > limit // 2 else limit].rstrip(" ,;:…") + "…"


def _data(doc: Document) -> dict[str, Any]:
    facts = doc.metadata()
    return {"id": facts.pop("key"), **facts}


def _cite(doc: Document) -> str:
    return f"[{doc.key}] {doc.title} ({doc.first_author}, {doc.year})"


class LibrarySearchArgs(BaseModel):
    """Arguments of `library_search`."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=200, description="Keywords, e.g. 'low-rank adaptation fine-tuning'.")
    max_results: int = Field(default=4, ge=1, le=10, description="How many papers to return (1-10).")


class LibrarySearchTool(Tool[LibrarySearchArgs]):
    """Search a `Library` by keywords; each hit is returned as a `Source`."""

    name = "library_search"
    description = (
        "Search the local library of papers by keywords (matches title, author, topic and text). "
        "Returns each paper as [id] title (first author, year) with a snippet. "
        "Read a paper with read_document; cite papers by their id."
    )
    args_model = LibrarySearchArgs
    timeout = 10.0

    def __init__(self, library: Library) -> None:
        self.library = library

    async def __call__(self, args: BaseModel) -> ToolResult:
        """Search the library."""
        params = args if isinstance(args, LibrarySearchArgs) else LibrarySearchArgs.model_validate(args.model_dump())
        if fts_query(params.query) is None:
            return ToolResult.error(
                f"The query {params.query!r} has no words to search for. "
                "Search with keywords, e.g. 'chain-of-thought reasoning'."
            )
        hits = self.library.search(params.query, params.max_results)
        if not hits:
            return ToolResult(
                content=f"No papers in the library match {params.query!r}. "
                "Try other keywords: synonyms, a broader topic, or an author's surname.",
                data=[],
            )
        return ToolResult(
            content="\n\n".join(f"{_cite(hit.document)}\n{hit.snippet}" for hit in hits),
            data=[{**_data(hit.document), "score": hit.score, "snippet": hit.snippet} for hit in hits],
            sources=[hit.document.to_source(self.name) for hit in hits],
        )


class ReadDocumentArgs(BaseModel):
    """Arguments of `read_document`."""

    model_config = ConfigDict(extra="forbid")

    source_id: str = Field(
        min_length=1, max_length=200, description="A paper's id, as library_search shows it, e.g. 'hu2021lora'."
    )


class ReadDocumentTool(Tool[ReadDocumentArgs]):
    """Read one note of a `Library` in full (up to `max_chars`), registering it as a `Source`.

    Args:
        library: The library to read from.
        max_chars: Longest body shown to the model; longer notes are cut, and the
            observation says so. The registered source always holds the full text.
    """

    name = "read_document"
    description = (
        "Read a paper's note from the local library by its id (as shown by library_search). "
        "Returns its bibliographic details and full text."
    )
    args_model = ReadDocumentArgs
    timeout = 10.0

    def __init__(self, library: Library, *, max_chars: int = 2000) -> None:
        self.library = library
        self.max_chars = max_chars

    async def __call__(self, args: BaseModel) -> ToolResult:
        """Read a note."""
        params = args if isinstance(args, ReadDocumentArgs) else ReadDocumentArgs.model_validate(args.model_dump())
        # Models often copy ids with the brackets or quotes they were shown in.
        wanted = params.source_id.strip().strip("[]'\"` ").strip()
        doc = self.library.get(wanted) or next((d for d in self.library if d.key.lower() == wanted.lower()), None)
        if doc is None:
            close = self.library.close_keys(wanted)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            return ToolResult.error(
                f"No paper with id {params.source_id!r} in the library.{hint} "
                "Use library_search to find papers and their ids."
            )
        body, truncated = doc.body, False
        if len(body) > self.max_chars:
            cut = body.rfind(" ", 0, self.max_chars)
            body = body[: cut if cut > self.max_chars // 2 else self.max_chars].rstrip() + " …"
            truncated = True
        details = " · ".join(
            part for part in (doc.venue, f"arXiv {doc.arxiv}" if doc.arxiv else "", f"topic: {doc.topic}") if part
        )
        content = f"{_cite(doc)}\n{details}\n\n{body}"
        if truncated:
            content += f"\n\n[truncated: showing about {self.max_chars} of {len(doc.body)} characters]"
        return ToolResult(
            content=content,
            data={**_data(doc), "truncated": truncated},
            sources=[doc.to_source(self.name)],
        )
