"""`library_search` and `read_document`: the tools an agent uses on a `Library`.

Observations are short, because a small embedded model has about 2,000 tokens
of context: a search hit is one citation line and a snippet of its chunk; the
registered source holds the whole chunk, so evidence is quoted from the
passage that was found. Pages of a PDF are cited as ``key#p<page>``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from rolegraph.tools.library.documents import Document, page_id
from rolegraph.tools.library.library import Hit, Library
from rolegraph.tools.library.query import fts_query
from rolegraph.tools.sources import Source
from rolegraph.tools.tool import Tool, ToolResult

__all__ = ["LibrarySearchArgs", "LibrarySearchTool", "ReadDocumentArgs", "ReadDocumentTool"]

PER_DOCUMENT = 2
"""At most this many passages of one document per search, so a long PDF cannot crowd out the rest."""


def _data(doc: Document, page: int | None = None) -> dict[str, Any]:
    facts = doc.metadata()
    facts.pop("key")
    return {"id": page_id(doc.key, page), "document": doc.key, **facts} | ({"page": page} if page else {})


def _hit_data(hit: Hit) -> dict[str, Any]:
    return {**_data(hit.document, hit.page), "score": hit.score, "snippet": hit.snippet, "text": hit.text}


class LibrarySearchArgs(BaseModel):
    """Arguments of `library_search`."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=200, description="Keywords, e.g. 'low-rank adaptation fine-tuning'.")
    max_results: int = Field(default=4, ge=1, le=10, description="How many passages to return (1-10).")


class LibrarySearchTool(Tool[LibrarySearchArgs]):
    """Search a `Library` by keywords; each hit is a passage (a chunk), returned as a `Source`."""

    name = "library_search"
    description = (
        "Search the local library of papers by keywords (matches title, author, topic and text). "
        "Returns the best passages, each as [id] title (first author, year) with a snippet; "
        "an id like key#p4 is page 4 of a PDF. Read more with read_document; cite by the id shown."
    )
    args_model = LibrarySearchArgs
    timeout = 10.0

    def __init__(self, library: Library) -> None:
        self.library = library

    async def __call__(self, args: LibrarySearchArgs) -> ToolResult:
        """Search the library."""
        if fts_query(args.query) is None:
            return ToolResult.error(
                f"The query {args.query!r} has no words to search for. "
                "Search with keywords, e.g. 'chain-of-thought reasoning'."
            )
        hits = self.library.search(args.query, args.max_results, per_document=PER_DOCUMENT)
        if not hits:
            return ToolResult(
                content=f"No papers in the library match {args.query!r}. "
                "Try other keywords: synonyms, a broader topic, or an author's surname.",
                data=[],
            )
        return ToolResult(
            content="\n\n".join(f"{hit.document.cite_line(hit.page)}\n{hit.snippet}" for hit in hits),
            data=[_hit_data(hit) for hit in hits],
            sources=[hit.to_source(self.name) for hit in hits],
        )


class ReadDocumentArgs(BaseModel):
    """Arguments of `read_document`."""

    model_config = ConfigDict(extra="forbid")

    source_id: str = Field(
        min_length=1,
        max_length=200,
        description="A paper's id as library_search shows it, e.g. 'hu2021lora', or 'smith2020#p4' for page 4 on.",
    )


class ReadDocumentTool(Tool[ReadDocumentArgs]):
    """Read a document of a `Library` (up to `max_chars`); a PDF from a given page on, page by page.

    Args:
        library: The library to read from.
        max_chars: Longest text shown to the model; the observation says when it is cut
            (and, for a PDF, which page to read on from). Registered sources hold whole
            documents, or whole pages of a PDF.
    """

    name = "read_document"
    description = (
        "Read a paper from the local library by its id (as shown by library_search); "
        "for a PDF, 'key#p4' reads from page 4 on. Returns its bibliographic details and text."
    )
    args_model = ReadDocumentArgs
    timeout = 10.0

    def __init__(self, library: Library, *, max_chars: int = 2000) -> None:
        self.library = library
        self.max_chars = max_chars

    async def __call__(self, args: ReadDocumentArgs) -> ToolResult:
        """Read a document."""
        found = self.library.resolve(args.source_id)
        if found is None:
            close = self.library.close_keys(args.source_id.strip().strip("[]'\"` ").split("#")[0])
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            return ToolResult.error(
                f"No paper with id {args.source_id!r} in the library.{hint} "
                "Use library_search to find papers and their ids."
            )
        doc, page = found
        header = f"{doc.cite_line()}\n{_details(doc)}"
        if doc.pages is not None:
            return self._read_pages(doc, page or 1, header)
        text = self.library.text(doc.key)
        body, truncated = _cut(text, self.max_chars)
        content = f"{header}\n\n{body}"
        if truncated:
            content += f"\n\n[truncated: showing about {self.max_chars} of {len(text)} characters]"
        return ToolResult(
            content=content,
            data={**_data(doc), "truncated": truncated},
            sources=[doc.to_source(self.name, text=text)],
        )

    def _read_pages(self, doc: Document, first: int, header: str) -> ToolResult:
        """Whole pages from `first` on while they fit in `max_chars` (the first one cut if it alone does not).

        Each page shown is registered as a source holding the page's whole text.
        """
        parts: list[str] = []
        sources: list[Source] = []
        shown: list[int] = []
        budget = self.max_chars
        for page, text in self.library.pages(doc.key, first):
            if shown and len(text) > budget:
                break
            body, _ = _cut(text, budget)
            parts.append(f"[{page_id(doc.key, page)}]\n{body}")
            sources.append(doc.to_source(self.name, text=text, page=page))
            shown.append(page)
            budget -= len(body)
        assert doc.pages is not None
        content = "\n\n".join([header, *parts]) if parts else f"{header}\n\n[no text from page {first} on]"
        last = shown[-1] if shown else first - 1
        truncated = last < doc.pages
        if shown and truncated:
            span = f"page {shown[0]}" if len(shown) == 1 else f"pages {shown[0]}-{last}"
            more = page_id(doc.key, last + 1)
            content += f"\n\n[truncated: showing {span} of {doc.pages}; read on with source_id '{more}']"
        data = {**_data(doc), "pages_shown": shown, "truncated": truncated}
        return ToolResult(content=content, data=data, sources=sources)


def _details(doc: Document) -> str:
    parts = (
        doc.venue,
        f"arXiv {doc.arxiv}" if doc.arxiv else "",
        f"DOI {doc.doi}" if doc.doi else "",
        f"topic: {doc.topic}" if doc.topic else "",
        f"{doc.pages} pages" if doc.pages else "",
    )
    return " · ".join(part for part in parts if part)


def _cut(text: str, limit: int) -> tuple[str, bool]:
    """`text`, or its first `limit` characters cut at a word and marked with `` …``; and whether it was cut."""
    if len(text) <= limit:
        return text, False
    cut = text.rfind(" ", 0, limit)
    return text[: cut if cut > limit // 2 else limit].rstrip() + " …", True
