"""Write small, real PDF files: for testing workflows over your own PDF library without shipping papers.

```python
from rolegraph.testing.pdf import write_pdf

write_pdf(tmp_path / "smith2020.pdf", ["Page one text.", "Page two text."], title="Retrieval for Everyone")
write_pdf(tmp_path / "scan.pdf", [None, None])  # image-only pages, like a scan without OCR
```

The files are plain PDF 1.4: one Helvetica text object per page (a text layer
any reader extracts), or an image and no text for a page given as None. A
`PdfReader` reads them as it reads any other PDF; nothing is mocked.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

__all__ = ["LINE_CHARS", "pdf_bytes", "write_pdf"]

LINE_CHARS = 88
"""Characters per line: Helvetica at 10 pt on a US Letter page with 1-inch margins."""


def _literal(text: str) -> bytes:
    """`text` as a PDF string literal in WinAnsi (characters outside Latin-1 become ``?``)."""
    raw = text.encode("cp1252", errors="replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def _text_stream(text: str, line_chars: int) -> bytes:
    """A content stream showing `text` line by line, a blank line between paragraphs."""
    lines: list[str] = []
    for paragraph in text.split("\n\n"):
        lines += textwrap.wrap(" ".join(paragraph.split()), line_chars, break_on_hyphens=False) or [""]
        lines.append("")
    shown = b" T* ".join(_literal(line) + b" Tj" for line in lines)
    return b"BT /F1 10 Tf 12 TL 72 730 Td " + shown + b" ET"


_IMAGE_STREAM = b"q 400 0 0 500 106 146 cm /Im1 Do Q"
_IMAGE = bytes(range(0, 256, 4))  # an 8x8 grey gradient: a page that is a picture, not text


def pdf_bytes(
    pages: Sequence[str | None],
    *,
    title: str | None = None,
    author: str | None = None,
    line_chars: int = LINE_CHARS,
) -> bytes:
    """The bytes of a PDF with one page per item of `pages` (text, or None for an image-only page).

    Args:
        pages: Each page's text (paragraphs separated by blank lines; wrapped to fit), or None.
            Text longer than a page runs off its bottom edge: readers still extract it.
        title: The document's ``/Title`` metadata, if any.
        author: The document's ``/Author`` metadata, if any.
        line_chars: Wrap lines at this many characters.
    """
    objects: list[bytes] = []  # object n is objects[n - 1]

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    def stream(data: bytes, extra: bytes = b"") -> int:
        return add(b"<< " + extra + b"/Length %d >>\nstream\n" % len(data) + data + b"\nendstream")

    catalog = add(b"")  # filled in once the page tree exists
    tree = add(b"")
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    image = stream(
        _IMAGE, b"/Type /XObject /Subtype /Image /Width 8 /Height 8 /ColorSpace /DeviceGray /BitsPerComponent 8 "
    )
    kids = []
    for text in pages:
        contents = stream(_IMAGE_STREAM if text is None else _text_stream(text, line_chars))
        resources = b"/XObject << /Im1 %d 0 R >>" % image if text is None else b"/Font << /F1 %d 0 R >>" % font
        kids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Resources << %s >> /Contents %d 0 R >>"
                % (tree, resources, contents)
            )
        )
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % tree
    objects[tree - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids),
        len(kids),
    )
    info_fields = b"".join(
        b"/%s %s " % (name, _literal(value)) for name, value in ((b"Title", title), (b"Author", author)) if value
    )
    info = add(b"<< " + info_fields + b"/Producer (rolegraph.testing.pdf) >>")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R >>\n" % (len(objects) + 1, catalog, info)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def write_pdf(
    path: Path,
    pages: Sequence[str | None],
    *,
    title: str | None = None,
    author: str | None = None,
    line_chars: int = LINE_CHARS,
) -> Path:
    """Write `pdf_bytes` of `pages` to `path`; returns `path`."""
    path.write_bytes(pdf_bytes(pages, title=title, author=author, line_chars=line_chars))
    return path
