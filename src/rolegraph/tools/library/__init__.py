"""The local library: a folder of papers (notes, text, HTML, PDF), indexed with SQLite FTS5, and the tools over it.

A library is a folder. Each file is one document:

- a markdown note, with YAML front matter giving its bibliographic facts
  (``key``, ``title``, ``first_author`` or ``authors``, ``year``, ``venue``,
  ``arxiv``, ``doi``, ``topic``; only ``title`` is required) then its text;
- any other markdown, plain text or HTML file (its title from its first heading,
  first line or ``<title>``);
- a PDF, read page by page and cited by page (``smith2020#p4``).

``*.bib`` files in the folder complete the records: an entry belongs to a file
whose name is its citation key, that its ``file`` field names, or whose DOI or
title it shares.

`Library.from_dir` indexes the folder into a stored index, updated
incrementally (`rolegraph.tools.library.index`); `Library.search` ranks chunks
(BM25), and `LibrarySearchTool` and `ReadDocumentTool` let an agent search and
read, registering every passage it sees as a `Source`.
"""

from rolegraph.tools.library.bibtex import BibEntry, Bibliography
from rolegraph.tools.library.chunking import chunk_text
from rolegraph.tools.library.documents import Document, page_id, split_page_id
from rolegraph.tools.library.index import IndexEvent, IndexReport, Skipped, default_index_path
from rolegraph.tools.library.library import SNIPPET_CHARS, Hit, Library
from rolegraph.tools.library.query import fts_query
from rolegraph.tools.library.tools import LibrarySearchArgs, LibrarySearchTool, ReadDocumentArgs, ReadDocumentTool

__all__ = [
    "SNIPPET_CHARS",
    "BibEntry",
    "Bibliography",
    "Document",
    "Hit",
    "IndexEvent",
    "IndexReport",
    "Library",
    "LibrarySearchArgs",
    "LibrarySearchTool",
    "ReadDocumentArgs",
    "ReadDocumentTool",
    "Skipped",
    "chunk_text",
    "default_index_path",
    "fts_query",
    "page_id",
    "split_page_id",
]
