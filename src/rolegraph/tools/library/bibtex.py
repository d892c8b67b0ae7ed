"""BibTeX files beside a library: titles, authors, years, venues and DOIs for its documents.

A small, forgiving reader of the BibTeX that reference managers export (Zotero,
JabRef, Google Scholar, DBLP): ``@type{key, field = {value} | "value" | 2021 |
macro, ...}`` with ``#`` concatenation and ``@string`` macros. An entry it
cannot read is reported by file and line and skipped; the others are used.

`Bibliography.match` finds the entry of a document by, in order: its citation
key equal to the file's name, a ``file`` field naming the file (as Zotero and
JabRef write it), its DOI, or its title (equal when normalised, or found in the
first page of the document).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["BibEntry", "BibProblem", "Bibliography", "normalise_doi", "normalise_title", "parse_bibtex"]

_MONTHS = {m: m.capitalize() for m in "jan feb mar apr may jun jul aug sep oct nov dec".split()}
_ACCENTS = {"'": "\u0301", "`": "\u0300", "^": "\u0302", '"': "\u0308", "~": "\u0303", "c": "\u0327", "=": "\u0304"}
_ACCENT = re.compile(r"\\([`'^\"~=c])\s*\{?\s*([A-Za-z])\}?")
_COMMAND = re.compile(r"\\(?:emph|textit|textbf|textsc|mathrm|text)\s*")
_ESCAPED = re.compile(r"\\([&%$#_{}])")
_DOI = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)", re.IGNORECASE)
_NOT_WORD = re.compile(r"[^0-9a-z]+")
_ARXIV_URL = re.compile(r"arxiv\.org/(?:abs|pdf)/([0-9]{4}\.[0-9]{4,5})")
_ENTRY_START = re.compile(r"^[ \t]*@", re.MULTILINE)
_VERBATIM = frozenset({"url", "doi", "file", "eprint", "pdf"})
"""Fields that are paths or identifiers: no LaTeX to clean, and ``~`` or ``--`` must stay."""
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)


def normalise_doi(doi: str) -> str:
    """A DOI without its resolver prefix, lowercased (DOIs are case-insensitive)."""
    return _DOI.sub("", doi.strip()).rstrip(".,;").lower()


def normalise_title(title: str) -> str:
    """A title reduced to lowercase words separated by single spaces, for comparing titles."""
    return _NOT_WORD.sub(" ", title.lower()).strip()


@dataclass(frozen=True)
class BibProblem:
    """An entry that could not be read: where, and why."""

    file: Path
    line: int
    message: str


@dataclass(frozen=True)
class BibEntry:
    """One BibTeX entry, its fields cleaned of braces and LaTeX accents (field names lowercased)."""

    key: str
    type: str
    fields: dict[str, str]
    file: Path | None = None
    line: int = 0

    @property
    def title(self) -> str | None:
        """The entry's title."""
        return self.fields.get("title") or None

    @property
    def authors(self) -> tuple[str, ...]:
        """Authors as ``First Last`` (``Last, First`` is turned around), or editors when there are no authors."""
        names = self.fields.get("author") or self.fields.get("editor") or ""
        people = []
        for name in _AND.split(names.strip()):
            last, comma, first = name.partition(",")
            people.append(f"{first.strip()} {last.strip()}".strip() if comma else name.strip())
        return tuple(p for p in people if p)

    @property
    def year(self) -> int | None:
        """The year, from ``year`` or the start of ``date``."""
        found = re.search(r"\b(1[0-9]{3}|2[0-9]{3})\b", self.fields.get("year") or self.fields.get("date") or "")
        return int(found[1]) if found else None

    @property
    def venue(self) -> str | None:
        """Where it appeared: journal, book title, or publisher."""
        for name in ("journal", "journaltitle", "booktitle", "howpublished", "publisher", "school", "institution"):
            if self.fields.get(name):
                return self.fields[name]
        return None

    @property
    def doi(self) -> str | None:
        """The DOI without resolver prefix."""
        return normalise_doi(self.fields["doi"]) if self.fields.get("doi") else None

    @property
    def arxiv(self) -> str | None:
        """The arXiv id, from ``eprint`` (with an arXiv ``archiveprefix``/``eprinttype``) or an arXiv URL."""
        archive = (self.fields.get("archiveprefix") or self.fields.get("eprinttype") or "").lower()
        if archive == "arxiv" and self.fields.get("eprint"):
            return self.fields["eprint"].strip()
        found = _ARXIV_URL.search(self.fields.get("url", ""))
        return found[1] if found else None

    @property
    def kind(self) -> str:
        """``article``, ``inproceedings`` or ``misc`` (how rolegraph writes sources back as BibTeX)."""
        if self.type == "article":
            return "article"
        return "inproceedings" if self.type in {"inproceedings", "conference"} else "misc"

    @property
    def files(self) -> tuple[str, ...]:
        """Base names of the files the entry links (``file = {Title:path/x.pdf:application/pdf}``)."""
        names = []
        for part in re.split(r";", self.fields.get("file", "")):
            pieces = part.split(":")
            path = pieces[1] if len(pieces) >= 3 else part
            name = re.split(r"[\\/]", path.strip())[-1]
            if name:
                names.append(name.lower())
        return tuple(names)


@dataclass
class Bibliography:
    """The entries of a library's BibTeX files, indexed for matching documents to them."""

    entries: list[BibEntry] = field(default_factory=list)
    problems: list[BibProblem] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._by_key = {e.key.lower(): e for e in self.entries}
        self._by_file = {name: e for e in self.entries for name in e.files}
        self._by_doi = {e.doi: e for e in self.entries if e.doi}
        self._by_title = {normalise_title(e.title): e for e in self.entries if e.title}

    @classmethod
    def read(cls, files: Iterable[Path]) -> Bibliography:
        """Read BibTeX files (entries of later files do not replace earlier ones with the same key)."""
        entries: list[BibEntry] = []
        problems: list[BibProblem] = []
        for path in files:
            found, trouble = parse_bibtex(path.read_text(encoding="utf-8", errors="replace"), path)
            entries += found
            problems += trouble
        unique: dict[str, BibEntry] = {}
        for entry in entries:
            unique.setdefault(entry.key.lower(), entry)
        return cls(list(unique.values()), problems)

    def match(self, *, name: str, doi: str | None = None, title: str | None = None, head: str = "") -> BibEntry | None:
        """The entry for the file `name`: by citation key = file stem, ``file`` field, DOI, title, or title in `head`.

        Args:
            name: The file's name (``hu2021lora.pdf``).
            doi: A DOI the file declares or contains.
            title: A title the file declares (front matter, PDF metadata, a heading).
            head: The start of its text (a PDF's first page), searched for an entry's title.
        """
        stem = Path(name).stem.lower()
        if stem in self._by_key:
            return self._by_key[stem]
        if Path(name).name.lower() in self._by_file:
            return self._by_file[Path(name).name.lower()]
        if doi and normalise_doi(doi) in self._by_doi:
            return self._by_doi[normalise_doi(doi)]
        if title and normalise_title(title) in self._by_title:
            return self._by_title[normalise_title(title)]
        text = f" {normalise_title(head)} "
        for wanted, entry in self._by_title.items():
            if len(wanted.split()) >= 4 and f" {wanted} " in text:  # short titles match too much by chance
                return entry
        return None


def _clean(value: str) -> str:
    value = _COMMAND.sub("", value)
    value = _ACCENT.sub(lambda m: m[2] + _ACCENTS[m[1]], value)
    value = _ESCAPED.sub(r"\1", value).replace("\\\\", " ").replace("~", " ").replace("--", "\u2013")
    return " ".join(unicodedata.normalize("NFC", value.replace("{", "").replace("}", "")).split())


class _Reader:
    """A cursor over BibTeX text; raises ValueError with a message on malformed input."""

    def __init__(self, text: str, start: int) -> None:
        self.text, self.pos = text, start

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def expect(self, chars: str) -> str:
        self.skip_space()
        if self.pos >= len(self.text) or self.text[self.pos] not in chars:
            got = self.text[self.pos] if self.pos < len(self.text) else "end of file"
            raise ValueError(f"expected {' or '.join(repr(c) for c in chars)}, found {got!r}")
        self.pos += 1
        return self.text[self.pos - 1]

    def name(self) -> str:
        self.skip_space()
        found = re.compile(r"[^\s,={}()\"#]+").match(self.text, self.pos)
        if not found:
            raise ValueError("expected a name")
        self.pos = found.end()
        return found[0]

    def braced(self) -> str:
        depth, start = 1, self.pos
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if char == "\\":
                self.pos += 1
            elif char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
                if depth == 0:
                    return self.text[start : self.pos - 1]
        raise ValueError("a '{' is never closed")

    def quoted(self) -> str:
        start, depth = self.pos, 0
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
            elif char == '"' and depth == 0:
                return self.text[start : self.pos - 1]
        raise ValueError("a '\"' is never closed")

    def value(self, macros: dict[str, str]) -> str:
        parts = []
        while True:
            self.skip_space()
            if self.text.startswith("{", self.pos):
                self.pos += 1
                parts.append(self.braced())
            elif self.text.startswith('"', self.pos):
                self.pos += 1
                parts.append(self.quoted())
            else:
                word = self.name()
                parts.append(macros.get(word.lower(), word))
            self.skip_space()
            if not self.text.startswith("#", self.pos):
                return "".join(parts)
            self.pos += 1


def parse_bibtex(text: str, file: Path) -> tuple[list[BibEntry], list[BibProblem]]:
    """The entries of BibTeX `text`, and a problem for each entry that could not be read (named by line).

    Text between entries is a comment, as in BibTeX. After an entry that cannot be
    read, reading resumes at the next line that starts with ``@``.
    """
    entries: list[BibEntry] = []
    problems: list[BibProblem] = []
    macros = dict(_MONTHS)
    pos = 0
    while (at := text.find("@", pos)) != -1:
        reader = _Reader(text, at + 1)
        try:
            entry = _entry(reader, macros)
        except ValueError as exc:
            line = text.count("\n", 0, at) + 1
            problems.append(BibProblem(file, line, f"cannot read this entry: {exc}; it is skipped"))
            resume = _ENTRY_START.search(text, at + 1)
            pos = resume.start() if resume else len(text)
            continue
        pos = reader.pos
        if entry is not None:
            entries.append(BibEntry(entry[0], entry[1], entry[2], file, text.count("\n", 0, at) + 1))
    return entries, problems


def _entry(reader: _Reader, macros: dict[str, str]) -> tuple[str, str, dict[str, str]] | None:
    """Read one ``@...`` block after its ``@``: an entry as (key, type, fields), or None for comments and macros."""
    kind = reader.name().lower()
    close = "}" if reader.expect("{(") == "{" else ")"
    if kind in {"comment", "preamble"}:
        if close == "}":
            reader.braced()
        else:
            end = reader.text.find(")", reader.pos)
            reader.pos = len(reader.text) if end == -1 else end + 1
        return None
    if kind == "string":
        name = reader.name().lower()
        reader.expect("=")
        macros[name] = _clean(reader.value(macros))
        reader.expect(close)
        return None
    key = reader.name()
    fields: dict[str, str] = {}
    while reader.expect("," + close) == ",":
        reader.skip_space()
        if reader.text.startswith(close, reader.pos):
            reader.pos += 1
            break
        name = reader.name().lower()
        reader.expect("=")
        value = reader.value(macros)
        fields[name] = " ".join(value.split()) if name in _VERBATIM else _clean(value)
    return key, kind, fields
