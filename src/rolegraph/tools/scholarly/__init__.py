"""Scholarly search: arXiv, OpenAlex, Crossref and Semantic Scholar as tools, one `Paper` model for all.

Each backend is a `Tool` (``arxiv_search``, ``openalex_search``,
``crossref_search``, ``semantic_scholar_search``); ``paper_search`` asks several
at once and de-duplicates. Every paper found is registered as a source with its
metadata, so a run's ``sources.bib`` gets real entries.
"""

from rolegraph.tools.scholarly.arxiv import ArxivSearchTool
from rolegraph.tools.scholarly.crossref import CrossrefSearchTool
from rolegraph.tools.scholarly.openalex import OpenAlexSearchTool
from rolegraph.tools.scholarly.paper import Paper, dedupe, paper_source, paper_source_id
from rolegraph.tools.scholarly.paper_search import PaperSearchTool
from rolegraph.tools.scholarly.search import ScholarlySearchTool
from rolegraph.tools.scholarly.semantic_scholar import SemanticScholarSearchTool

__all__ = [
    "ArxivSearchTool",
    "CrossrefSearchTool",
    "OpenAlexSearchTool",
    "Paper",
    "PaperSearchTool",
    "ScholarlySearchTool",
    "SemanticScholarSearchTool",
    "dedupe",
    "paper_source",
    "paper_source_id",
]
