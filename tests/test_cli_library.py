"""`rolegraph library index` and `rolegraph library search` on a folder of real PDFs and notes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rolegraph.cli import app
from rolegraph.testing.pdf import write_pdf
from rolegraph.tools.library import default_index_path

DEMO = Path(__file__).resolve().parent.parent / "examples" / "library"


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("ROLEGRAPH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "250")
    return CliRunner()


@pytest.fixture
def papers(tmp_path: Path) -> Path:
    folder = tmp_path / "papers"
    folder.mkdir()
    pages = [f"Page {n} of the manual. Section {n} covers topic number {n}." for n in range(1, 61)]
    pages[41] = "Page 42 explains gradient checkpointing: recompute activations instead of storing them."
    write_pdf(folder / "manual.pdf", pages, title="The Training Manual")
    write_pdf(folder / "scan.pdf", [None])
    (folder / "note.md").write_text("---\ntitle: A Note on Adapters\nyear: 2021\n---\n\nAdapters are small layers.\n")
    return folder


class TestIndexCommand:
    """rolegraph library index."""

    def test_first_index_reports_progress_counts_and_skips(self, runner: CliRunner, papers: Path) -> None:
        """Files and long PDFs' pages are reported as read; counts go to stdout, skipped files to stderr by name."""
        result = runner.invoke(app, ["library", "index", str(papers)])
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines() == [
            "2 documents, 61 chunks: 2 added, 0 changed, 0 removed, 0 unchanged, 1 skipped",
            f"index: {default_index_path(papers)}",
        ]
        assert result.stderr.splitlines() == [
            "reading manual.pdf (60 pages)",
            "  manual.pdf: page 50/60",
            "  manual.pdf: page 60/60",
            "reading note.md",
            "reading scan.pdf (1 page)",
            f"skipped {papers / 'scan.pdf'}: has no text layer on any of its 1 page(s) (a scanned PDF?); "
            "run OCR on it first (e.g. ocrmypdf) to index it",
        ]

    def test_second_index_reads_only_what_changed(self, runner: CliRunner, papers: Path) -> None:
        """Run again after a change: only the changed file is read, and the counts say so."""
        runner.invoke(app, ["library", "index", str(papers)])
        (papers / "note.md").write_text("---\ntitle: A Note on Adapters\n---\n\nAdapters are tiny layers.\n")
        (papers / "scan.pdf").unlink()
        result = runner.invoke(app, ["library", "index", str(papers)])
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines()[0] == (
            "2 documents, 61 chunks: 0 added, 1 changed, 1 removed, 1 unchanged, 0 skipped"
        )
        assert result.stderr.splitlines() == ["reading note.md"]

    def test_index_option(self, runner: CliRunner, papers: Path, tmp_path: Path) -> None:
        """--index keeps the index where the user says."""
        result = runner.invoke(app, ["library", "index", str(papers), "--index", str(tmp_path / "i.sqlite")])
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines()[1] == f"index: {tmp_path / 'i.sqlite'}"

    def test_bad_notes_and_missing_folders_exit_2(self, runner: CliRunner, papers: Path, tmp_path: Path) -> None:
        """A malformed note is named with its line; a missing folder is named; both exit 2."""
        (papers / "bad.md").write_text("---\ntitle: [\n---\nx\n")
        result = runner.invoke(app, ["library", "index", str(papers)])
        assert result.exit_code == 2
        assert f"error {papers / 'bad.md'}:2: the front matter is not valid YAML" in result.stderr
        result = runner.invoke(app, ["library", "index", str(tmp_path / "nowhere")])
        assert result.exit_code == 2
        assert "does not exist" in result.stderr


class TestSearchCommand:
    """rolegraph library search."""

    def test_passages_with_their_page(self, runner: CliRunner, papers: Path) -> None:
        """The best passages are listed with id, title and score, the PDF's page in the id."""
        result = runner.invoke(app, ["library", "search", str(papers), "gradient checkpointing", "--limit", "1"])
        assert result.exit_code == 0, result.output
        first, snippet = result.stdout.splitlines()
        assert first.startswith("1. [manual#p42] The Training Manual  score ")
        assert snippet == "   Page 42 explains gradient checkpointing: recompute activations instead of storing them."

    def test_json(self, runner: CliRunner, papers: Path) -> None:
        """--json gives id, document, title, authors, year, page, score and the passage's whole text."""
        result = runner.invoke(app, ["library", "search", str(papers), "adapters layers", "--json"])
        assert result.exit_code == 0, result.output
        [hit] = json.loads(result.stdout)
        assert hit.pop("score") > 0
        assert hit == {
            "id": "note",
            "document": "note",
            "title": "A Note on Adapters",
            "authors": [],
            "year": 2021,
            "page": None,
            "text": "Adapters are small layers.",
        }

    def test_limit_on_the_demo_library(self, runner: CliRunner) -> None:
        """--limit bounds the passages; the demo library's notes keep their ids."""
        result = runner.invoke(app, ["library", "search", str(DEMO), "low-rank adaptation", "--limit", "2", "--json"])
        assert result.exit_code == 0, result.output
        assert [h["id"] for h in json.loads(result.stdout)] == ["hu2021lora", "dettmers2023qlora"]

    def test_no_match_and_empty_query(self, runner: CliRunner, papers: Path) -> None:
        """No match is said on stderr (exit 0); an empty query is bad input (exit 2)."""
        result = runner.invoke(app, ["library", "search", str(papers), "zyzzyva"])
        assert (result.exit_code, result.stdout) == (0, "")
        assert result.stderr.splitlines()[-1] == "No passages match 'zyzzyva'."
        result = runner.invoke(app, ["library", "search", str(papers), "  "])
        assert result.exit_code == 2
        assert "the query is empty" in result.stderr
