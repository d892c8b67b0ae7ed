"""Libraries of real PDF files (written here, or printed by Chromium), HTML and text, with a BibTeX file.

The PDFs are real files read by pypdf: `rolegraph.testing.pdf` writes plain PDF
1.4 with a text layer (or image-only pages, like a scan); one test prints HTML
to PDF with Debian's Chromium, as a browser or a word processor would.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pypdf  # imported before any memory is measured: its import is not the library's doing
import pytest
from playwright import sync_api as playwright_api

from chromium import needs_chromium
from rolegraph.testing.pdf import write_pdf
from rolegraph.tools.browser import CHROMIUM_FLAGS, find_chromium
from rolegraph.tools.library import IndexEvent, Library, ReadDocumentArgs, ReadDocumentTool

PAGES = [
    "Retrieval for Everyone\n\nJane Smith. DOI: 10.5555/retrieval.2020\n\nWe study retrieval for question answering.",
    "A dense retriever encodes questions and passages as vectors. Nearest neighbours are the candidate passages.",
    "The reader model answers from the retrieved passages. Answers cite the passage they came from.",
]
BIB = """
@article{smith2020retrieval,
  title = {Retrieval for Everyone},
  author = {Smith, Jane and Doe, John},
  journal = {Journal of Examples},
  year = {2020},
  doi = {10.5555/retrieval.2020},
}
@inproceedings{lee2021tables,
  title = {Reading Tables with Language Models},
  author = {Lee, Kim},
  booktitle = {Proceedings of Examples},
  year = {2021},
}
@misc{notes2022,
  title = {Lab Notes},
  author = {Park, Min},
  year = {2022},
}
"""


def flat(text: str) -> str:
    """`text` with whitespace runs as single spaces."""
    return " ".join(text.split())


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Indexes go under a temporary ROLEGRAPH_HOME."""
    monkeypatch.setenv("ROLEGRAPH_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def papers(tmp_path: Path) -> Path:
    """A folder of a PDF (matched to BibTeX by DOI), a PDF (by title), a note (by key), HTML and text."""
    folder = tmp_path / "papers"
    folder.mkdir()
    write_pdf(folder / "download (3).pdf", PAGES, title="Microsoft Word - final.docx")
    write_pdf(
        folder / "tables.pdf",
        ["Reading Tables with Language Models\n\nKim Lee\n\nTables are flattened row by row.", "Cells keep headers."],
    )
    (folder / "notes2022.md").write_text("# Untitled\n\nWe tried flattening tables column by column.\n")
    (folder / "page.html").write_text(
        "<html><head><title>Sparse Retrieval Revisited</title></head><body><article>"
        "<p>Sparse retrieval with BM25 remains a strong baseline for passage ranking in many benchmarks.</p>"
        "</article></body></html>"
    )
    (folder / "memo.txt").write_text("Memo on caching\n\nCaching embeddings saves most of the encoding time.\n")
    (folder / "library.bib").write_text(BIB)
    return folder


class TestPdfLibrary:
    """PDFs chunked by page, described by BibTeX, next to notes, HTML and text."""

    def test_documents_are_described_by_bibtex_and_their_files(self, papers: Path) -> None:
        """BibTeX matches by DOI on page 1, by title on page 1, and by file name; the others keep their own titles."""
        library = Library.from_dir(papers)
        described = {d.key: (d.title, d.authors, d.year, d.doi, d.kind, d.pages) for d in library}
        assert described == {
            "smith2020retrieval": (
                "Retrieval for Everyone",
                ("Jane Smith", "John Doe"),
                2020,
                "10.5555/retrieval.2020",
                "article",
                3,
            ),
            "lee2021tables": ("Reading Tables with Language Models", ("Kim Lee",), 2021, None, "inproceedings", 2),
            "notes2022": ("Lab Notes", ("Min Park",), 2022, None, "misc", None),
            "page": ("Sparse Retrieval Revisited", (), None, None, "misc", None),
            "memo": ("Memo on caching", (), None, None, "misc", None),
        }

    def test_hits_carry_their_page(self, papers: Path) -> None:
        """A passage of a PDF is found with its page, and its source id names the page."""
        library = Library.from_dir(papers)
        [hit] = library.search("dense retriever vectors", limit=1)
        assert (hit.source_id, hit.page) == ("smith2020retrieval#p2", 2)
        assert flat(hit.text) == PAGES[1]  # PDF text keeps its line breaks
        source = hit.to_source("library_search")
        assert (source.id, source.document_id, source.page, source.doi) == (
            "smith2020retrieval#p2",
            "smith2020retrieval",
            2,
            "10.5555/retrieval.2020",
        )
        assert [h.source_id for h in library.search("BM25 sparse")] == ["page"]
        assert [h.source_id for h in library.search("embeddings caching")] == ["memo"]

    async def test_read_document_reads_pages_and_registers_each(self, papers: Path) -> None:
        """A PDF is read from a page on; each page shown is a source; the observation says where to read on."""
        library = Library.from_dir(papers)
        result = await ReadDocumentTool(library, max_chars=120)(ReadDocumentArgs(source_id="[smith2020retrieval#p2]"))
        assert result.content == (
            "[smith2020retrieval] Retrieval for Everyone (Jane Smith, 2020)\n"
            "Journal of Examples · DOI 10.5555/retrieval.2020 · 3 pages\n\n"
            f"[smith2020retrieval#p2]\n{result.sources[0].text}\n\n"
            "[truncated: showing page 2 of 3; read on with source_id 'smith2020retrieval#p3']"
        )
        assert [(s.id, s.page, flat(s.text)) for s in result.sources] == [("smith2020retrieval#p2", 2, PAGES[1])]
        whole = await ReadDocumentTool(library)(ReadDocumentArgs(source_id="smith2020retrieval"))
        assert [s.id for s in whole.sources] == [f"smith2020retrieval#p{n}" for n in (1, 2, 3)]
        assert whole.data["truncated"] is False


class TestUnreadablePdfs:
    """Scanned, damaged and encrypted PDFs are skipped by name; the rest is indexed."""

    def test_bad_pdfs_are_named_and_skipped(self, papers: Path) -> None:
        """Each bad file is reported with a reason and what to do; every good document is still searchable."""
        write_pdf(papers / "scan.pdf", [None, None, None])
        (papers / "garbage.pdf").write_bytes(b"%PDF-1.4\n" + bytes(range(256)) * 4)
        (papers / "empty.pdf").write_bytes(b"")
        good = (papers / "tables.pdf").read_bytes()
        (papers / "cut.pdf").write_bytes(good[: len(good) // 3])
        writer = pypdf.PdfWriter(clone_from=papers / "tables.pdf")
        writer.encrypt(user_password="secret", algorithm="RC4-128")
        writer.write(papers / "locked.pdf")
        library = Library.from_dir(papers)
        assert library.report is not None
        skipped = {s.file.name: s.reason for s in library.report.skipped}
        assert sorted(skipped) == ["cut.pdf", "empty.pdf", "garbage.pdf", "locked.pdf", "scan.pdf"]
        assert skipped["scan.pdf"] == (
            "has no text layer on any of its 3 page(s) (a scanned PDF?); "
            "run OCR on it first (e.g. ocrmypdf) to index it"
        )
        assert skipped["locked.pdf"] == "is encrypted; save an unencrypted copy to index it"
        for name in ("garbage.pdf", "empty.pdf", "cut.pdf"):
            assert (
                skipped[name].startswith("is not a readable PDF (") and "replace it with a good copy" in skipped[name]
            )
        assert len(library) == 5
        assert [h.source_id for h in library.search("dense retriever", limit=1)] == ["smith2020retrieval#p2"]

    def test_skips_are_remembered_and_retried_when_the_file_changes(self, papers: Path) -> None:
        """A skipped file is not read again until it changes; a fixed copy is then indexed."""
        write_pdf(papers / "scan.pdf", [None])
        Library.from_dir(papers)
        read: list[str] = []
        library = Library.from_dir(papers, progress=lambda e: read.append(e.file.name) if e.page == 0 else None)
        assert read == [] and library.report is not None
        assert [s.file.name for s in library.report.skipped] == ["scan.pdf"]
        write_pdf(papers / "scan.pdf", ["Now with OCR text about optical character recognition."])
        library = Library.from_dir(papers)
        assert library.report is not None and library.report.skipped == []
        assert [h.source_id for h in library.search("optical character")] == ["scan#p1"]

    def test_a_scanned_page_inside_a_pdf_is_just_empty(self, papers: Path) -> None:
        """Image-only pages of a PDF with text elsewhere give no passages; the pages after them keep their numbers."""
        write_pdf(papers / "mixed.pdf", [None, "Text on the second page about gradient checkpointing."])
        library = Library.from_dir(papers)
        assert [h.source_id for h in library.search("gradient checkpointing")] == ["mixed#p2"]

    def test_a_library_of_only_bad_files_is_an_error(self, tmp_path: Path) -> None:
        """With nothing readable, loading fails and names every file and why."""
        write_pdf(tmp_path / "scan.pdf", [None])
        (tmp_path / "bad.pdf").write_bytes(b"not a pdf")
        from rolegraph.errors import LibraryError

        with pytest.raises(LibraryError) as caught:
            Library.from_dir(tmp_path)
        assert [p.file.name if p.file else None for p in caught.value.problems] == [
            tmp_path.name,
            "bad.pdf",
            "scan.pdf",
        ]
        assert "no document of the library could be read" in str(caught.value)


class TestLongPdf:
    """A 500-page PDF."""

    def test_500_pages_in_bounded_memory_with_progress(self, tmp_path: Path) -> None:
        """Every page is indexed and reported as it is read; memory stays below the size of the text itself."""
        filler = "Low-rank adapters train small matrices beside frozen weights. " * 130
        pages = [f"Page {n} marker{n}. {filler}" for n in range(1, 501)]
        write_pdf(tmp_path / "book.pdf", pages, line_chars=100_000)
        text_size = sum(len(p) for p in pages)
        events: list[IndexEvent] = []
        tracemalloc.start()
        try:
            library = Library.from_dir(tmp_path, progress=events.append)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert [e.page for e in events] == list(range(501))
        assert {e.pages for e in events} == {500}
        assert peak < text_size, f"peak {peak} bytes while indexing {text_size} characters of text"
        assert [h.source_id for h in library.search("marker500")] == ["book#p500"]
        assert [h.source_id for h in library.search("marker1")] == ["book#p1"]


@needs_chromium
class TestChromiumPdf:
    """A PDF printed by a browser: embedded fonts, real layout, page breaks."""

    def test_printed_pages_are_cited_by_page(self, tmp_path: Path) -> None:
        """Each printed page's text is found on its own page number."""
        html = (
            "<html><head><title>Printed Paper</title></head><body>"
            + "".join(
                f"<section style='page-break-after: always'><h1>Section {n}</h1><p>{text}</p></section>"
                for n, text in enumerate(
                    [
                        "Mixture of experts routes each token to a few experts.",
                        "Speculative decoding drafts tokens with a small model.",
                        "Distillation trains a student on the teacher's outputs.",
                    ],
                    1,
                )
            )
            + "</body></html>"
        )
        with playwright_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=find_chromium(), args=list(CHROMIUM_FLAGS))
            try:
                page = browser.new_page()
                page.set_content(html)
                page.pdf(path=str(tmp_path / "printed.pdf"))
            finally:
                browser.close()
        library = Library.from_dir(tmp_path)
        [paper] = list(library)
        assert (paper.title, paper.pages) == ("Printed Paper", 3)
        assert [h.source_id for h in library.search("speculative decoding drafts")][:1] == ["printed#p2"]
        assert [h.source_id for h in library.search("student teacher distillation")][:1] == ["printed#p3"]
