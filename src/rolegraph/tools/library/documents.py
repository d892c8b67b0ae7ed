"""A library's documents: their bibliographic record, and ids that point at one page of one.

A `Document` is what the library knows about one file: its key (the id agents
cite), title, authors, year, venue and identifiers. Its text lives in the index
(`rolegraph.tools.library.index`), not here, so a library of long PDFs costs
memory for its catalogue only.

A paged document (a PDF) is cited page by page: its sources have ids such as
``smith2020#p4`` (`page_id`), and a report renders a citation of one as
``[3, p. 4]``. Keys never contain ``#``, so the split is unambiguous.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from rolegraph.tools.sources import Source

__all__ = ["KEY_PATTERN", "Document", "key_from_name", "page_id", "split_page_id"]

KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:/+-]*$"
"""What a document key may look like (a BibTeX citation key, or a file name without its extension)."""

_PAGE_ID = re.compile(r"^(?P<key>.+)#p(?P<page>[1-9][0-9]*)$")
_NOT_KEY = re.compile(r"[^A-Za-z0-9_.:/+-]+")


def page_id(key: str, page: int | None) -> str:
    """The id of one page of a document (``smith2020#p4``), or the key itself when `page` is None."""
    return key if page is None else f"{key}#p{page}"


def split_page_id(source_id: str) -> tuple[str, int | None]:
    """``("smith2020", 4)`` for ``smith2020#p4``; ``(source_id, None)`` for an id without a page."""
    found = _PAGE_ID.match(source_id)
    return (found["key"], int(found["page"])) if found else (source_id, None)


def key_from_name(name: str) -> str:
    """A valid key from a file's name without its extension (``"My Paper (v2)"`` -> ``"My-Paper-v2"``)."""
    key = _NOT_KEY.sub("-", name).strip("-_.:/+")
    return key or "document"


class Document(BaseModel):
    """One document of a library: its bibliographic record, not its text.

    The record comes from the file itself (a note's front matter, a PDF's
    metadata, a page's title), completed by a matching BibTeX entry.
    """

    model_config = ConfigDict(frozen=True)

    key: str
    """Stable id agents cite, e.g. ``hu2021lora`` (pages of a PDF: ``key#p4``)."""
    title: str
    authors: tuple[str, ...] = ()
    """Every known author, first author first (a note's front matter names only the first)."""
    year: int | None = None
    venue: str | None = None
    arxiv: str | None = None
    """The arXiv id (``2106.09685``), if the paper has one."""
    doi: str | None = None
    topic: str | None = None
    kind: Literal["article", "inproceedings", "misc"] = "misc"
    """Its BibTeX entry type (from the BibTeX file, else ``misc``)."""
    path: Path | None = None
    """The file the document was read from, if any."""
    pages: int | None = None
    """How many pages it has, for a paged document (a PDF); None for notes, text and HTML."""

    @property
    def first_author(self) -> str | None:
        """The first author, if any is known."""
        return self.authors[0] if self.authors else None

    @property
    def paged(self) -> bool:
        """Whether the document is cited by page (a PDF)."""
        return self.pages is not None

    @property
    def url(self) -> str | None:
        """The paper's arXiv abstract page, else its DOI link, if it has either."""
        if self.arxiv:
            return f"https://arxiv.org/abs/{self.arxiv}"
        return f"https://doi.org/{self.doi}" if self.doi else None

    def metadata(self) -> dict[str, Any]:
        """The bibliographic facts that are known (no path; ``kind`` only when not ``misc``)."""
        facts = self.model_dump(mode="json", exclude={"path"}, exclude_none=True)
        if not facts.get("authors"):
            facts.pop("authors", None)
        if facts.get("kind") == "misc":
            facts.pop("kind")
        return facts

    def cite_line(self, page: int | None = None) -> str:
        """``[id] Title (First Author, Year)``, the line that introduces the document (or one page) to a model."""
        details = ", ".join(str(part) for part in (self.first_author, self.year) if part)
        return f"[{page_id(self.key, page)}] {self.title}" + (f" ({details})" if details else "")

    def to_source(self, tool_name: str = "", *, text: str = "", page: int | None = None) -> Source:
        """This document (or one page of it) as a `Source` retrieved by `tool_name`, holding `text`."""
        return Source(
            id=page_id(self.key, page),
            title=self.title,
            authors=list(self.authors),
            year=self.year,
            venue=self.venue,
            url=self.url,
            doi=self.doi,
            arxiv=self.arxiv,
            kind=self.kind,
            tool=tool_name,
            text=text,
            page=page,
        )
