"""Turning fetched bytes into readable text: HTML with trafilatura, PDF with pypdf, text and JSON as is.

These functions are synchronous and CPU-bound; the fetch tool runs them in a
worker thread.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Extracted", "Kind", "content_kind", "extract", "extract_html", "extract_pdf", "extract_text"]

Kind = Literal["html", "pdf", "text", "json"]
"""What a fetched document was read as."""

_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_TEXT_TYPES = frozenset({"text/plain", "text/markdown", "text/x-markdown", "text/csv"})
_JSON_TYPES = frozenset({"application/json", "text/json"})


@dataclass(frozen=True)
class Extracted:
    """The readable text of a document and what is known about it.

    Attributes:
        kind: How the document was read.
        text: Its text (markdown for HTML; ``[page N]`` lines before each page of a PDF).
        title: Its title, if the document names one.
        authors: Its authors, if named.
        date: Its publication date as written (ISO for HTML), if known.
        pages: Number of pages, for a PDF.
    """

    kind: Kind
    text: str
    title: str | None = None
    authors: tuple[str, ...] = field(default=())
    date: str | None = None
    pages: int | None = None


def content_kind(content_type: str | None, head: bytes = b"") -> Kind | None:
    """How to read a response, from its ``Content-Type`` (sniffing `head` only when there is none).

    Returns:
        The kind, or None for a type fetch does not read (images, archives, binaries).
    """
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime in _HTML_TYPES:
        return "html"
    if mime == "application/pdf":
        return "pdf"
    if mime in _JSON_TYPES or mime.endswith("+json"):
        return "json"
    if mime in _TEXT_TYPES:
        return "text"
    if mime:
        return None
    start = head.lstrip()[:64].lower()
    if start.startswith(b"%pdf-"):
        return "pdf"
    if start.startswith((b"<!doctype html", b"<html")):
        return "html"
    if start.startswith((b"{", b"[")):
        return "json"
    return None


def _decode(body: bytes, encoding: str | None) -> str:
    try:
        return body.decode(encoding or "utf-8", errors="replace")
    except LookupError:  # an unknown charset name in the header
        return body.decode("utf-8", errors="replace")


def extract_html(body: bytes, *, url: str, encoding: str | None = None) -> Extracted:
    """The main text of a web page as markdown, with its title, authors and date where the page gives them."""
    import trafilatura  # imported here: about 0.3 s, paid only by runs that read HTML
    from trafilatura.metadata import extract_metadata

    html = _decode(body, encoding)
    text = trafilatura.extract(
        html, url=url, output_format="markdown", include_formatting=True, favor_recall=True, include_comments=False
    )
    if not text:  # too short or too odd for the main-text heuristics: take all visible text
        text = trafilatura.html2txt(html)
    meta = extract_metadata(html, default_url=url)
    authors = tuple(a.strip() for a in (meta.author or "").split(";") if a.strip())
    return Extracted("html", (text or "").strip(), meta.title or None, authors, meta.date or None)


def extract_pdf(body: bytes) -> Extracted:
    """The text of a PDF, each page after a ``[page N]`` line so evidence can cite its page.

    Raises:
        pypdf.errors.PdfReadError: The PDF is damaged or encrypted.
    """
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(body))
    parts = [f"[page {number}]\n{(page.extract_text() or '').strip()}" for number, page in enumerate(reader.pages, 1)]
    meta = reader.metadata
    title = str(meta.title).strip() if meta is not None and meta.title else None
    author = str(meta.author).strip() if meta is not None and meta.author else ""
    authors = tuple(a.strip() for a in author.replace(";", ",").split(",") if a.strip())
    return Extracted("pdf", "\n\n".join(parts), title, authors, pages=len(reader.pages))


def extract_text(body: bytes, *, kind: Kind = "text", encoding: str | None = None) -> Extracted:
    """Plain text as is; JSON as is, re-indented when it parses, so a model can read it."""
    text = _decode(body, encoding)
    if kind == "json":
        try:
            text = json.dumps(json.loads(text), indent=1, ensure_ascii=False)
        except ValueError:
            pass  # a truncated or invalid document is still worth showing as it came
    return Extracted(kind, text.strip())


def extract(body: bytes, kind: Kind, *, url: str, encoding: str | None = None) -> Extracted:
    """Read `body` as `kind`; see the functions for each kind."""
    if kind == "html":
        return extract_html(body, url=url, encoding=encoding)
    if kind == "pdf":
        return extract_pdf(body)
    return extract_text(body, kind=kind, encoding=encoding)
