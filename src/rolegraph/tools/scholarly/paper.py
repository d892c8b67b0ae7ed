"""`Paper`: one scholarly record, whichever API it came from; identifiers, de-duplication, and its `Source`.

Every scholarly backend parses its API's answer into `Paper` objects, so the
rest of rolegraph (sources, citations, BibTeX) sees one shape. Two records are
the same paper when they share a DOI (compared case-insensitively), an arXiv
id (without version), or a normalised title — the title only when their years
are at most one apart and they do not carry two different publisher DOIs.
A DOI of arXiv's own (``10.48550/arXiv.<id>``) counts as that arXiv id, so a
preprint found through OpenAlex or Crossref meets the arXiv record of it.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, Field

from rolegraph.tools.sources import Source

__all__ = [
    "Paper",
    "PaperKind",
    "arxiv_from_doi",
    "dedupe",
    "normal_arxiv",
    "normal_doi",
    "normal_title",
    "paper_source",
    "paper_source_id",
]

PaperKind = Literal["article", "inproceedings", "misc"]
"""What BibTeX entry a paper becomes: a journal article, a conference paper, or anything else (preprints)."""

_DOI = re.compile(r"10\.\d{4,9}/\S+", re.IGNORECASE)
_ARXIV_DOI = re.compile(r"^10\.48550/arxiv\.(.+)$", re.IGNORECASE)
_ARXIV_ID = re.compile(r"(\d{4}\.\d{4,5}|[a-z][a-z.-]*/\d{7})(v\d+)?$", re.IGNORECASE)


class Paper(BaseModel):
    """One paper, as a scholarly API describes it (the union of what several said, after `dedupe`)."""

    title: str
    authors: list[str] = Field(default_factory=list)
    """Author names as the API gives them, in order."""
    year: int | None = None
    venue: str | None = None
    """Journal, proceedings or repository name (``Journal of Applied Physics``)."""
    doi: str | None = None
    """Bare DOI, e.g. ``10.1063/1.4938384`` (no ``https://doi.org/``)."""
    arxiv: str | None = None
    """arXiv id without version, e.g. ``2104.12255`` or ``cond-mat/0603029``."""
    abstract: str | None = None
    url: str | None = None
    """Landing page (publisher, arXiv abstract page, or the API's own page)."""
    pdf_url: str | None = None
    """An open-access PDF, when the API knows one."""
    kind: PaperKind = "misc"
    ids: dict[str, str] = Field(default_factory=dict)
    """The APIs' own ids, e.g. ``{"openalex": "W2277923667", "semantic_scholar": "4187…"}``."""
    found_by: list[str] = Field(default_factory=list)
    """The backends that returned this paper (``arxiv``, ``openalex``, ``crossref``, ``semantic_scholar``)."""


def normal_doi(value: str | None) -> str | None:
    """The bare DOI inside `value` (a DOI, a ``doi:`` string or a doi.org URL), or None."""
    if not value:
        return None
    found = _DOI.search(value.strip())
    return found.group().rstrip(".") if found else None


def arxiv_from_doi(doi: str | None) -> str | None:
    """The arXiv id of one of arXiv's own DOIs (``10.48550/arXiv.2304.05376`` → ``2304.05376``), else None."""
    found = _ARXIV_DOI.match(doi or "")
    return normal_arxiv(found.group(1)) if found else None


def normal_arxiv(value: str | None) -> str | None:
    """An arXiv id without version or URL (``http://arxiv.org/abs/cond-mat/0603029v1`` → ``cond-mat/0603029``)."""
    if not value:
        return None
    found = _ARXIV_ID.search(value.strip().rstrip("/"))
    return found.group(1).lower() if found else None


def normal_title(title: str) -> str:
    """`title` folded for comparison: accents, case, punctuation and spacing removed."""
    decomposed = unicodedata.normalize("NFKD", title)
    ascii_only = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return " ".join(re.sub(r"[^0-9a-z]+", " ", ascii_only).split())


def _publisher_doi(paper: Paper) -> str | None:
    return paper.doi.lower() if paper.doi and arxiv_from_doi(paper.doi) is None else None


def _keys(paper: Paper) -> set[str]:
    keys = set()
    if paper.doi:
        keys.add("doi:" + paper.doi.lower())
    arxiv = paper.arxiv or arxiv_from_doi(paper.doi)
    if arxiv:
        keys.add("arxiv:" + arxiv)
    return keys


def _same(a: Paper, b: Paper) -> bool:
    if _keys(a) & _keys(b):
        return True
    if normal_title(a.title) != normal_title(b.title) or not normal_title(a.title):
        return False
    if a.year is not None and b.year is not None and abs(a.year - b.year) > 1:
        return False
    doi_a, doi_b = _publisher_doi(a), _publisher_doi(b)
    return doi_a is None or doi_b is None or doi_a == doi_b


def _merge(a: Paper, b: Paper) -> Paper:
    """`a` with the gaps filled from `b`; a publisher DOI is preferred to an arXiv one, the longer abstract kept."""
    doi = next((p.doi for p in (a, b) if _publisher_doi(p)), a.doi or b.doi)
    abstracts = [t for t in (a.abstract, b.abstract) if t]
    return Paper(
        title=a.title or b.title,
        authors=a.authors or b.authors,
        year=a.year if a.year is not None else b.year,
        venue=a.venue or b.venue,
        doi=doi,
        arxiv=a.arxiv or b.arxiv or arxiv_from_doi(a.doi) or arxiv_from_doi(b.doi),
        abstract=max(abstracts, key=len) if abstracts else None,
        url=a.url or b.url,
        pdf_url=a.pdf_url or b.pdf_url,
        kind=a.kind if a.kind != "misc" else b.kind,
        ids={**b.ids, **a.ids},
        found_by=list(dict.fromkeys([*a.found_by, *b.found_by])),
    )


def dedupe(papers: Iterable[Paper]) -> list[Paper]:
    """One paper per distinct work, in first-seen order, each the merge of every record of it.

    A record that matches several earlier groups (say, the journal DOI of one and
    the arXiv id of another) joins them into one.
    """
    groups: list[Paper] = []
    for paper in papers:
        matches = [i for i, group in enumerate(groups) if _same(group, paper)]
        if not matches:
            groups.append(paper)
            continue
        merged = groups[matches[0]]
        for i in matches[1:]:
            merged = _merge(merged, groups[i])
        groups[matches[0]] = _merge(merged, paper)
        for i in reversed(matches[1:]):
            del groups[i]
    return groups


def paper_source_id(paper: Paper) -> str:
    """The id agents cite: ``doi:<doi>`` for a published paper, else ``arxiv:<id>``, else ``paper-<hash of title>``.

    The same paper gets the same id whichever backend found it, so a second sighting
    in a run is the same source.
    """
    publisher = _publisher_doi(paper)
    if publisher:
        return f"doi:{publisher}"
    arxiv = paper.arxiv or arxiv_from_doi(paper.doi)
    if arxiv:
        return f"arxiv:{arxiv}"
    digest = hashlib.sha1(f"{normal_title(paper.title)}|{paper.year}".encode(), usedforsecurity=False).hexdigest()
    return f"paper-{digest[:10]}"


def paper_source(paper: Paper, tool: str) -> Source:
    """`paper` as a run source: its metadata for the bibliography, title and abstract as its text."""
    text = paper.title if not paper.abstract else f"{paper.title}\n\n{paper.abstract}"
    return Source(
        id=paper_source_id(paper),
        title=paper.title,
        authors=paper.authors,
        year=paper.year,
        venue=paper.venue,
        url=paper.url,
        doi=paper.doi,
        arxiv=paper.arxiv or arxiv_from_doi(paper.doi),
        pdf_url=paper.pdf_url,
        kind=paper.kind,
        tool=tool,
        text=text,
    )
