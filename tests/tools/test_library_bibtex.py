"""Reading BibTeX files beside a library, and matching their entries to documents."""

from __future__ import annotations

from pathlib import Path

import pytest

from rolegraph.tools.library.bibtex import Bibliography, BibProblem, parse_bibtex

BIB = r"""
% Exported by a reference manager; text outside entries is a comment.
@string{iclr = "International Conference on Learning Representations"}

@inproceedings{hu2021lora,
  title     = {{LoRA}: Low-Rank Adaptation of Large Language Models},
  author    = {Hu, Edward J. and Shen, Yelong and Wallis, Phillip},
  booktitle = iclr # " 2022",
  year      = 2022,
  month     = apr,
  eprint    = {2106.09685},
  archivePrefix = {arXiv},
}

@article(smith2020,
  title = "Retrieval for {E}veryone",
  author = {Jane Smith and M{\"u}ller, J{\'e}r{\^o}me},
  journal = {J. Retr. \& Search},
  doi = {https://doi.org/10.5555/ABC.123},
  url = {https://example.org/~smith/paper--v2.pdf},
  file = {Full Text:storage/XYZ/Smith - Retrieval.pdf:application/pdf},
)

@comment{ this @misc{not, title = {an entry}} is a comment }

@misc{broken, title = {never closed
@misc{after2019, title = {After the Broken One}, year = {2019}, note = {mail me at a@b.org}}
"""


@pytest.fixture
def entries() -> dict[str, object]:
    found, problems = parse_bibtex(BIB, Path("refs.bib"))
    assert problems == [
        BibProblem(Path("refs.bib"), 26, "cannot read this entry: a '{' is never closed; it is skipped")
    ]
    return {entry.key: entry for entry in found}


class TestParse:
    """parse_bibtex."""

    def test_reads_entries_in_both_delimiters_and_skips_comments(self, entries: dict[str, object]) -> None:
        """Braced and parenthesised entries are read; @string, @comment and text between entries are not entries."""
        assert list(entries) == ["hu2021lora", "smith2020", "after2019"]

    def test_fields_are_cleaned(self, entries: dict[str, object]) -> None:
        """Braces and LaTeX accents go, macros and # concatenation expand, months are names, names turn around."""
        hu, smith = entries["hu2021lora"], entries["smith2020"]
        assert (hu.title, hu.authors, hu.venue, hu.year, hu.arxiv, hu.kind) == (  # type: ignore[attr-defined]
            "LoRA: Low-Rank Adaptation of Large Language Models",
            ("Edward J. Hu", "Yelong Shen", "Phillip Wallis"),
            "International Conference on Learning Representations 2022",
            2022,
            "2106.09685",
            "inproceedings",
        )
        assert hu.fields["month"] == "Apr"  # type: ignore[attr-defined]
        assert (smith.title, smith.authors, smith.venue, smith.doi, smith.kind) == (  # type: ignore[attr-defined]
            "Retrieval for Everyone",
            ("Jane Smith", "Jérôme Müller"),
            "J. Retr. & Search",
            "10.5555/abc.123",
            "article",
        )

    def test_urls_and_files_are_kept_verbatim(self, entries: dict[str, object]) -> None:
        """Identifiers and paths keep their ~ and --; a file field gives the file's base name."""
        smith = entries["smith2020"]
        assert smith.fields["url"] == "https://example.org/~smith/paper--v2.pdf"  # type: ignore[attr-defined]
        assert smith.files == ("smith - retrieval.pdf",)  # type: ignore[attr-defined]

    def test_reading_resumes_after_a_broken_entry(self, entries: dict[str, object]) -> None:
        """The entry after a malformed one is read, with an @ inside its value left alone."""
        after = entries["after2019"]
        assert (after.title, after.year, after.line) == ("After the Broken One", 2019, 27)  # type: ignore[attr-defined]

    @pytest.mark.parametrize("text", ["", "no entries at all", "@", "@misc", "@misc{", "@misc{k, title = }"])
    def test_garbage_never_raises(self, text: str) -> None:
        """Truncated or empty input gives problems or nothing, never an exception."""
        found, _ = parse_bibtex(text, Path("x.bib"))
        assert found == []


class TestMatch:
    """Bibliography.match: which entry describes a file."""

    @pytest.fixture
    def bib(self, tmp_path: Path) -> Bibliography:
        (tmp_path / "a.bib").write_text(BIB, encoding="utf-8")
        (tmp_path / "b.bib").write_text("@misc{hu2021lora, title = {A Duplicate Key}}\n@misc{short, title={LoRA}}")
        return Bibliography.read([tmp_path / "a.bib", tmp_path / "b.bib"])

    def test_first_file_wins_a_duplicate_key(self, bib: Bibliography) -> None:
        """A key defined twice keeps its first entry; problems of every file are collected."""
        assert [e.key for e in bib.entries] == ["hu2021lora", "smith2020", "after2019", "short"]
        assert [p.line for p in bib.problems] == [26]

    @pytest.mark.parametrize(
        ("arguments", "key"),
        [
            ({"name": "hu2021lora.pdf"}, "hu2021lora"),
            ({"name": "HU2021LoRA.md"}, "hu2021lora"),
            ({"name": "Smith - Retrieval.pdf"}, "smith2020"),
            ({"name": "x.pdf", "doi": "doi:10.5555/abc.123"}, "smith2020"),
            ({"name": "x.pdf", "doi": "https://doi.org/10.5555/ABC.123."}, "smith2020"),
            ({"name": "x.pdf", "title": "LoRA:  low-rank adaptation of large language models"}, "hu2021lora"),
            (
                {"name": "x.pdf", "head": "Preprint. LoRA: Low-Rank Adaptation of Large Language Models. Abstract"},
                "hu2021lora",
            ),
        ],
    )
    def test_matches_by_key_file_doi_title_or_first_page(
        self, bib: Bibliography, arguments: dict[str, str], key: str
    ) -> None:
        """Matched by file name = key (any case), file field, DOI (any prefix or case), title, or title on page 1."""
        entry = bib.match(**arguments)  # type: ignore[arg-type]
        assert entry is not None and entry.key == key

    def test_no_match(self, bib: Bibliography) -> None:
        """Unrelated files match nothing; a title of under four words is never looked for in the text."""
        assert bib.match(name="other.pdf", doi="10.1/zzz", title="Something Else", head="We use LoRA here.") is None
