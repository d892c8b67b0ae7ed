"""Reading a library's files: markdown notes (with or without front matter), plain text, HTML and PDF.

`read_file` turns one file into a `Reading`: what the file says about itself
(`Facts`) and its text, page by page. A PDF is read lazily, one page at a time,
so a 500-page file never sits in memory whole. `describe` then makes the
`Document` from the facts and a matching BibTeX entry.

A note's front matter is a promise the user made (``key: hu2021lora``), so a
malformed one is an error naming the file, line and field. A file that cannot
be read at all (a damaged PDF, a scanned PDF with no text layer) raises
`Unreadable`: the library skips it, says why, and indexes the rest.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rolegraph.errors import LibraryError, Problem
from rolegraph.tools.library.bibtex import Bibliography, normalise_doi
from rolegraph.tools.library.documents import KEY_PATTERN, Document, key_from_name

__all__ = ["SUFFIXES", "Facts", "Reading", "Unreadable", "describe", "read_file"]

SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".text": "text"}
SUFFIXES |= {".html": "html", ".htm": "html", ".pdf": "pdf"}
"""The files a library reads, by extension (case-insensitive)."""

_PAGES_PER_BATCH = 25
"""pypdf's cache of parsed objects is emptied every this many pages of a PDF."""

HEAD_CHARS = 2000
"""How much of a document's first page is kept for matching it to a BibTeX entry by title."""

_DOI = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>]+)", re.IGNORECASE)
_HEADING = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.MULTILINE)
_JUNK_TITLE = re.compile(r"(^untitled|\.(docx?|pdf|tex|dvi|indd)$|^microsoft word)", re.IGNORECASE)


class Unreadable(Exception):
    """A file the library cannot read; the message says why and what to do."""


@dataclass
class Facts:
    """What a file says about itself.

    Attributes:
        declared: Fields of a note's front matter (authoritative: they beat BibTeX).
        found: Guesses from the file (a PDF's metadata, a heading, a DOI in its text): BibTeX beats them.
        head: The start of its text, for matching a BibTeX entry whose title appears there.
        pages: Page count of a PDF; None for other files.
    """

    declared: dict[str, Any] = field(default_factory=dict)
    found: dict[str, Any] = field(default_factory=dict)
    head: str = ""
    pages: int | None = None

    def as_json(self) -> dict[str, Any]:
        """The facts as JSON-ready data (what the index stores)."""
        return {"declared": self.declared, "found": self.found, "head": self.head, "pages": self.pages}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Facts:
        """The facts `as_json` stored."""
        return cls(data.get("declared", {}), data.get("found", {}), data.get("head", ""), data.get("pages"))


@dataclass
class Reading:
    """One file, read: its facts, and its text as ``(page, text)`` pairs (page None when not paged)."""

    facts: Facts
    pages: Iterator[tuple[int | None, str]]


class _FrontMatter(BaseModel):
    """A note's front matter: bibliographic facts only; every field but the title may be left out."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    key: str | None = Field(default=None, min_length=1, pattern=KEY_PATTERN)
    title: str = Field(min_length=1)
    first_author: str | None = Field(default=None, min_length=1)
    authors: list[str] | None = None
    year: int | None = Field(default=None, ge=1000, le=2999)
    venue: str | None = Field(default=None, min_length=1)
    arxiv: str | None = None
    doi: str | None = None
    topic: str | None = Field(default=None, min_length=1)


def read_file(path: Path) -> Reading:
    """Read one file of a library, by its extension.

    Raises:
        LibraryError: A note's front matter is malformed (each problem names file, line and field).
        Unreadable: The file cannot be read; skip it.
    """
    kind = SUFFIXES.get(path.suffix.lower())
    if kind == "pdf":
        return _read_pdf(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise Unreadable(f"cannot be read: {exc.strerror or exc}") from None
    if kind == "html":
        from rolegraph.tools.extract import extract_html  # trafilatura: paid only by libraries with HTML

        page = extract_html(raw, url=path.resolve().as_uri())
        found = {"title": page.title, "authors": list(page.authors)}
        return _single(Facts(found={k: v for k, v in found.items() if v}), page.text)
    text = _decode(raw)
    if kind == "markdown" and text.lstrip("\ufeff").startswith("---"):
        declared, body = _front_matter(path, text.lstrip("\ufeff"))
        return _single(Facts(declared=declared), body)
    if kind == "markdown":
        heading = _HEADING.search(text)
        return _single(Facts(found={"title": heading[1]} if heading else {}), text)
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return _single(Facts(found={"title": first} if 0 < len(first) <= 200 else {}), text)


def _single(facts: Facts, text: str) -> Reading:
    facts.head = " ".join(text[:HEAD_CHARS].split())
    if "doi" not in facts.declared and (doi := _DOI.search(facts.head)):
        facts.found["doi"] = normalise_doi(doi[1])
    return Reading(facts, iter([(None, text)]))


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")  # older text files; never fails, odd bytes become U+FFFD


def _front_matter(path: Path, text: str) -> tuple[dict[str, Any], str]:
    """The validated front matter of a note, and its body."""
    lines = text.splitlines()
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
        facts = _FrontMatter.model_validate(meta)
    except ValidationError as exc:
        problems: list[Problem] = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"])
            message = f"{name}: {error['msg']}"
            if name == "arxiv" and isinstance(meta.get("arxiv"), float):
                message = "arxiv: quote the id, e.g. arxiv: '2106.09685' (unquoted, YAML reads it as a number)"
            problems.append(Problem(message, name, path, _field_line(lines[1:end], name)))
        raise LibraryError(problems) from None
    if facts.key is not None and facts.key != path.stem:
        raise _note_error(path, f"key {facts.key!r} must match the file name ({path.stem}{path.suffix})", 1, "key")
    body = "\n".join(lines[end + 1 :]).strip()
    if not body:
        raise _note_error(path, "the note has no text after its front matter", end + 1)
    declared = facts.model_dump(exclude_none=True)
    authors = declared.pop("authors", None) or []
    if first := declared.pop("first_author", None):
        authors = [first, *(a for a in authors if a != first)]
    if authors:
        declared["authors"] = authors
    if "doi" in declared:
        declared["doi"] = normalise_doi(declared["doi"])
    return declared, body


def _field_line(front_matter: list[str], name: str) -> int | None:
    for number, line in enumerate(front_matter, start=2):
        if line.startswith(f"{name}:"):
            return number
    return None


def _note_error(path: Path, message: str, line: int | None = None, name: str = "") -> LibraryError:
    return LibraryError([Problem(message, name, path, line)])


def _read_pdf(path: Path) -> Reading:
    """A PDF's facts (its metadata and first page) and a lazy iterator over its pages' text.

    The file is read through an open stream (given a path, pypdf would read it
    into memory whole), and pypdf's cache of parsed objects is emptied every
    `_PAGES_PER_BATCH` pages, so memory stays bounded however long the file is.
    """
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    if logging.getLogger("pypdf").level == logging.NOTSET:
        # pypdf logs each oddity of a damaged file as a warning; the library reports a damaged file once, as a skip.
        logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise Unreadable(f"cannot be read: {exc.strerror or exc}") from None
    try:
        reader = PdfReader(stream)
        if reader.is_encrypted and not reader.decrypt(""):
            raise Unreadable("is encrypted; save an unencrypted copy to index it")
        count = len(reader.pages)
        first = _page_text(reader, 0) if count else ""
        meta = reader.metadata
        title = str(meta.title).strip() if meta is not None and meta.title else ""
        author = str(meta.author).strip() if meta is not None and meta.author else ""
    except Unreadable:
        stream.close()
        raise
    except (PyPdfError, OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        stream.close()
        raise Unreadable(f"is not a readable PDF ({type(exc).__name__}: {exc}); replace it with a good copy") from None
    if count == 0:
        stream.close()
        raise Unreadable("is a PDF with no pages")
    found: dict[str, Any] = {}
    if title and not _JUNK_TITLE.search(title):
        found["title"] = title
    if names := [a.strip() for a in re.split(r";|,| and ", author) if a.strip()]:
        found["authors"] = names
    head = " ".join(first[:HEAD_CHARS].split())
    if doi := _DOI.search(head):
        found["doi"] = normalise_doi(doi[1])

    def pages() -> Iterator[tuple[int | None, str]]:
        with stream:
            yield 1, first
            for index in range(1, count):
                if index % _PAGES_PER_BATCH == 0:
                    reader.resolved_objects.clear()  # parsed again on demand; the pages read so far can go
                yield index + 1, _page_text(reader, index)

    return Reading(Facts(found=found, head=head, pages=count), pages())


def _page_text(reader: Any, index: int) -> str:
    """The text of one page; a page pypdf cannot parse reads as empty (the rest of the file still counts)."""
    from pypdf.errors import PyPdfError

    try:
        return str(reader.pages[index].extract_text() or "")
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, RecursionError, OSError):
        return ""


def describe(facts: Facts, name: str, path: Path | None, bib: Bibliography) -> Document:
    """The `Document` for a file: its front matter first, then its BibTeX entry, then what was found in it.

    Args:
        facts: What the file says about itself.
        name: The file's path inside the library folder (for matching and the default key).
        path: The file on disk.
        bib: The library's BibTeX entries.
    """
    declared, found = facts.declared, facts.found
    entry = bib.match(
        name=Path(name).name,
        doi=declared.get("doi") or found.get("doi"),
        title=declared.get("title") or found.get("title"),
        head=facts.head,
    )
    from_bib: dict[str, Any] = {}
    if entry is not None:
        from_bib = {
            "key": entry.key,
            "title": entry.title,
            "authors": list(entry.authors),
            "year": entry.year,
            "venue": entry.venue,
            "doi": entry.doi,
            "arxiv": entry.arxiv,
            "kind": entry.kind,
        }
    merged: dict[str, Any] = {"key": key_from_name(Path(name).stem), "title": Path(name).stem}
    for layer in (found, from_bib, declared):
        merged |= {k: v for k, v in layer.items() if v not in (None, "", [])}
    merged["authors"] = tuple(merged.get("authors", ()))
    return Document(**merged, path=path, pages=facts.pages)
