"""Sources: the documents tools retrieve, and the run's registry of them.

Every document a tool returns is registered here under a stable id. Agents cite
ids; a citation to an id the registry does not hold is a detectable defect.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["Source", "SourceRegistry"]


class Source(BaseModel):
    """One retrieved document.

    The id is stable across runs (a library key such as ``hu2021lora``, or a
    hash of a URL), so traces of two runs can be compared source by source.
    """

    id: str
    """Stable id agents cite, e.g. ``hu2021lora``."""
    title: str
    authors: list[str] = Field(default_factory=list)
    year: int | None = None
    venue: str | None = None
    url: str | None = None
    doi: str | None = None
    arxiv: str | None = None
    pdf_url: str | None = None
    """An open-access PDF of the document, when a scholarly API knows one."""
    kind: Literal["article", "inproceedings", "misc"] = "misc"
    """Its BibTeX entry type: a journal article, a conference paper, or anything else."""
    tool: str = ""
    """Name of the tool that retrieved it."""
    text: str = ""
    """The retrieved text (what evidence quotes are checked against)."""
    page: int | None = None
    """For one page of a paged document (a PDF): its page number; the id then names the page (``smith2020#p4``)."""

    @property
    def document_id(self) -> str:
        """The id of the whole document: the id without its ``#p<page>`` suffix (the id itself if it has none)."""
        return self.id.removesuffix(f"#p{self.page}") if self.page is not None else self.id


class SourceRegistry:
    """The sources a run has retrieved, in first-seen order."""

    def __init__(self, sources: Iterable[Source] = ()) -> None:
        self._by_id: dict[str, Source] = {}
        for source in sources:
            self.add(source)

    def add(self, source: Source) -> Source:
        """Register `source`; a second sighting keeps the first record and adds text it did not hold.

        Text already held is kept as is; text that contains it replaces it; other
        text (another retrieved chunk of the same document) is appended, so every
        passage a tool returned stays quotable.
        """
        known = self._by_id.get(source.id)
        if known is None:
            self._by_id[source.id] = source
            return source
        if source.text and source.text not in known.text:
            text = source.text if known.text in source.text else f"{known.text}\n\n{source.text}"
            known = known.model_copy(update={"text": text})
            self._by_id[source.id] = known
        return known

    def get(self, source_id: str) -> Source | None:
        """The source with this id, or None if no tool returned it."""
        return self._by_id.get(source_id)

    def __contains__(self, source_id: object) -> bool:
        return source_id in self._by_id

    def __iter__(self) -> Iterator[Source]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def ids(self) -> list[str]:
        """All registered ids, in first-seen order."""
        return list(self._by_id)
