"""The shared shape of the scholarly search tools: arguments, construction from config, and the result.

A backend implements one method, `ScholarlySearchTool.search` (query → papers,
raising `ToolError`); the base class turns its papers into the observation
(framed as untrusted data: abstracts come from the outside world), the
structured data and the run's sources.
"""

from __future__ import annotations

import asyncio
import os
from abc import abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from typing import ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field

from rolegraph.errors import ToolError
from rolegraph.retry import RetryPolicy
from rolegraph.tools.scholarly.client import ApiClient, Sleep, mailto_from_env, user_agent
from rolegraph.tools.scholarly.paper import Paper, paper_source, paper_source_id
from rolegraph.tools.tool import Tool, ToolResult
from rolegraph.tools.untrusted import frame
from rolegraph.tools.urlpolicy import UrlPolicy

__all__ = ["ScholarlySearchArgs", "ScholarlySearchTool", "paper_result"]

_ABSTRACT_CHARS = 400
# The agent cuts observations at 4,000 characters; the whole frame, closing line included, must fit.
_LISTING_BUDGET = 3200


class ScholarlySearchArgs(BaseModel):
    """Arguments of the scholarly search tools."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(
        min_length=1, max_length=300, description="Keywords or a title, e.g. 'low-rank adaptation language models'."
    )
    max_results: int = Field(default=5, ge=1, le=25, description="How many papers to return (1-25).")


class ScholarlySearchTool(Tool[ScholarlySearchArgs]):
    """A search over one scholarly API; subclasses set the class attributes and implement `search`.

    Args:
        base_url: The API's root (default: the class's, or the environment variable it names).
        policy: Which URLs may be reached (default: `UrlPolicy.from_env()`, so loopback needs
            ``ROLEGRAPH_ALLOW_HOSTS``).
        transport: The httpx transport under the policy check (tests may pass `httpx.MockTransport`).
        retry: How transient failures (429, 5xx, dropped connections) are retried.
        timeout: Seconds for connecting and between bytes of one request.
        min_interval: Least seconds between requests to the API (default: the API's asked-for pace).
        mailto: Contact address for the polite pools (default: ``ROLEGRAPH_MAILTO``).
        sleep: How retries and the rate limit wait (tests pass a recorder).
        environ: Where configuration is read from (default: ``os.environ``).
    """

    api: ClassVar[str]
    """Display name of the API (``arXiv``)."""
    backend: ClassVar[str]
    """Short name recorded in `Paper.found_by` (``arxiv``)."""
    default_base_url: ClassVar[str]
    base_url_env: ClassVar[str]
    """Environment variable that overrides the base URL (a mirror, a loopback test server)."""
    default_interval: ClassVar[float] = 1.0
    args_model = ScholarlySearchArgs
    timeout = 60.0

    def __init__(
        self,
        *,
        base_url: str | None = None,
        policy: UrlPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 20.0,
        min_interval: float | None = None,
        mailto: str | None = None,
        sleep: Sleep = asyncio.sleep,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self.base_url = (base_url or env.get(self.base_url_env) or self.default_base_url).rstrip("/")
        self.mailto = mailto if mailto is not None else mailto_from_env(env)
        headers = {"User-Agent": user_agent(self.mailto), **self.extra_headers(env)}
        self.client = ApiClient(
            self.api,
            policy=policy,
            transport=transport,
            retry=retry,
            timeout=timeout,
            min_interval=self.default_interval if min_interval is None else min_interval,
            headers=headers,
            sleep=sleep,
        )

    def extra_headers(self, environ: Mapping[str, str]) -> dict[str, str]:
        """Headers this API needs beyond the User-Agent (an API key); none by default."""
        return {}

    @abstractmethod
    async def search(self, query: str, max_results: int) -> list[Paper]:
        """The papers the API finds for `query`, best first.

        Raises:
            ToolError: The API could not be reached, refused, or answered something unreadable.
        """

    async def __call__(self, params: ScholarlySearchArgs) -> ToolResult:
        """Search, and list the papers found as untrusted data with their source ids; failures are error results."""
        try:
            papers = await self.search(params.query.strip(), params.max_results)
        except ToolError as exc:
            return ToolResult.error(f"{self.name}: {exc}")
        return paper_result(self.name, f"{self.api} search for {params.query!r}", papers[: params.max_results])

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.client.aclose()


def _describe(paper: Paper, source_id: str) -> str:
    head = f"[{source_id}] {paper.title}" + (f" ({paper.year})" if paper.year else "")
    byline = ", ".join(paper.authors[:6]) + (" et al." if len(paper.authors) > 6 else "")
    lines = [head]
    if byline or paper.venue:
        lines.append(" — ".join(part for part in (byline, paper.venue or "") if part))
    ids = [f"DOI {paper.doi}" if paper.doi else "", f"arXiv {paper.arxiv}" if paper.arxiv else ""]
    ids += [f"PDF {paper.pdf_url}" if paper.pdf_url else "", f"found by {', '.join(paper.found_by)}"]
    lines.append(" · ".join(i for i in ids if i))
    if paper.abstract:
        cut = paper.abstract if len(paper.abstract) <= _ABSTRACT_CHARS else paper.abstract[:_ABSTRACT_CHARS] + "…"
        lines.append(f"Abstract: {cut}")
    return "\n".join(lines)


def paper_result(tool: str, origin: str, papers: Sequence[Paper], notes: Iterable[str] = ()) -> ToolResult:
    """The result of a paper search: the papers listed (framed as untrusted), as data, and as sources.

    Args:
        tool: The tool's name (recorded on each source).
        origin: What was searched, for the frame's label.
        papers: The papers, best first.
        notes: Lines shown before the listing (e.g. a backend that failed).
    """
    shown = list(notes)
    if not papers:
        shown.append(f"No papers found ({origin}). Try other or fewer keywords.")
        return ToolResult(content="\n".join(shown), data=[])
    sources = [paper_source(p, tool) for p in papers]
    listing = "\n\n".join(_describe(p, s.id) for p, s in zip(papers, sources, strict=True))
    content = "\n".join(
        [
            *shown,
            f"{tool}: {len(papers)} papers",
            frame(listing, origin=origin, budget=_LISTING_BUDGET),
            "Cite a paper by the id in brackets; read an open-access PDF in full with fetch_url.",
        ]
    )
    data = [{"id": paper_source_id(p), **p.model_dump(mode="json")} for p in papers]
    return ToolResult(content=content, data=data, sources=sources)
