"""Output files: cited markdown reports, source lists, BibTeX, JSON and templates, written inside the run folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rolegraph.runtime.outputs import render_bibtex, render_report, render_sources, write_outputs
from rolegraph.tools.sources import Source, SourceRegistry
from rolegraph.workflows.spec import OutputSpec

HU = Source(
    id="hu2021lora",
    title="LoRA: Low-Rank Adaptation",
    authors=["Edward J. Hu"],
    year=2021,
    venue="ICLR 2022",
    arxiv="2106.09685",
    url="https://arxiv.org/abs/2106.09685",
    tool="library_search",
    text="LoRA freezes the weights.",
)
WEB = Source(id="web-1f3a", title="A blog post", url="https://example.org/post", tool="web_search", text="Body.")
BARE = Source(id="bare", title="Untitled note")


def registry(*sources: Source) -> SourceRegistry:
    return SourceRegistry(sources)


def spec(**fields: Any) -> OutputSpec:
    return OutputSpec.model_validate(fields)


REPORT = {
    "title": "PEFT",
    "paragraphs": [
        {"citations": ["web-1f3a", "hu2021lora"], "text": "  Adapters and LoRA.  "},
        {"citations": ["hu2021lora", "ghost"], "text": "LoRA again."},
        {"citations": ["bare", "bare"], "text": "Twice the same."},
    ],
}


class TestRenderReport:
    def test_numbers_in_first_cited_order_and_reuses_them(self) -> None:
        """Sources are numbered as first cited, a repeat reuses its number, and references follow in that order."""
        text, total, unresolved = render_report(REPORT, registry(HU, WEB, BARE))
        assert text == (
            "# PEFT\n"
            "\n"
            "Adapters and LoRA. [1][2]\n"
            "\n"
            "LoRA again. [2][?ghost]\n"
            "\n"
            "Twice the same. [3]\n"
            "\n"
            "## References\n"
            "\n"
            "[1] Unknown author *A blog post*. https://example.org/post `web-1f3a`\n"
            "[2] Edward J. Hu (2021). *LoRA: Low-Rank Adaptation*. ICLR 2022. arXiv:2106.09685. `hu2021lora`\n"
            "[3] Unknown author *Untitled note*. `bare`\n"
        )
        assert (total, unresolved) == (6, 1)

    def test_unresolved_citations_are_marked_and_counted(self) -> None:
        """An id no tool returned is shown as [?id], gets no reference, and is counted as unresolved."""
        output = {"title": "T", "paragraphs": [{"citations": ["nope", "hu2021lora", "nada"], "text": "X."}]}
        text, total, unresolved = render_report(output, registry(HU))
        assert text.splitlines()[2] == "X. [?nope][1][?nada]"
        assert text.split("## References\n\n")[1].splitlines() == [
            "[1] Edward J. Hu (2021). *LoRA: Low-Rank Adaptation*. ICLR 2022. arXiv:2106.09685. `hu2021lora`"
        ]
        assert (total, unresolved) == (3, 2)

    def test_pages_of_a_pdf_share_a_reference_and_show_their_page(self) -> None:
        """Citations of pages of one PDF render as [n, p. k] with one reference entry for the document."""
        pages = [Source(id=f"smith2020#p{n}", title="Retrieval", authors=["Jane Smith"], page=n) for n in (4, 7)]
        output = {
            "title": "T",
            "paragraphs": [
                {"citations": ["smith2020#p4", "hu2021lora"], "text": "One."},
                {"citations": ["smith2020#p7", "smith2020#p4"], "text": "Two."},
            ],
        }
        text, total, unresolved = render_report(output, registry(*pages, HU))
        assert text.splitlines()[2:5] == ["One. [1, p. 4][2]", "", "Two. [1, p. 7][1, p. 4]"]
        assert text.split("## References\n\n")[1].splitlines() == [
            "[1] Jane Smith *Retrieval*. `smith2020`",
            "[2] Edward J. Hu (2021). *LoRA: Low-Rank Adaptation*. ICLR 2022. arXiv:2106.09685. `hu2021lora`",
        ]
        assert (total, unresolved) == (4, 0)

    def test_default_title_and_no_paragraphs(self) -> None:
        """An output without title or paragraphs still renders, with no citations."""
        assert render_report({}, registry()) == ("# Report\n\n## References\n", 0, 0)


class TestRenderSources:
    def test_sources_as_json_without_text(self) -> None:
        """Every source in first-seen order, all fields but the retrieved text."""
        assert json.loads(render_sources(registry(HU, BARE))) == [
            {
                "id": "hu2021lora",
                "title": "LoRA: Low-Rank Adaptation",
                "authors": ["Edward J. Hu"],
                "year": 2021,
                "venue": "ICLR 2022",
                "url": "https://arxiv.org/abs/2106.09685",
                "doi": None,
                "arxiv": "2106.09685",
                "pdf_url": None,
                "kind": "misc",
                "tool": "library_search",
                "page": None,
            },
            {
                "id": "bare",
                "title": "Untitled note",
                "authors": [],
                "year": None,
                "venue": None,
                "url": None,
                "doi": None,
                "arxiv": None,
                "pdf_url": None,
                "kind": "misc",
                "tool": "",
                "page": None,
            },
        ]

    def test_non_ascii_is_kept(self) -> None:
        """Titles are written as UTF-8 text, not \\u escapes."""
        assert '"Über Sprachmodelle"' in render_sources(registry(Source(id="u", title="Über Sprachmodelle")))


class TestRenderBibtex:
    def test_entries_with_every_field(self) -> None:
        """Each source is a @misc entry keyed by its id, with the fields it has."""
        doi = Source(id="x", title="T", authors=["A", "B"], year=2020, doi="10.1/abc")
        assert render_bibtex(registry(HU, doi)) == (
            "@misc{hu2021lora,\n"
            "  title = {{LoRA: Low-Rank Adaptation}},\n"
            "  author = {Edward J. Hu},\n"
            "  year = {2021},\n"
            "  howpublished = {ICLR 2022},\n"
            "  eprint = {2106.09685},\n"
            "  archiveprefix = {arXiv},\n"
            "  url = {https://arxiv.org/abs/2106.09685}\n"
            "}\n"
            "\n"
            "@misc{x,\n"
            "  title = {{T}},\n"
            "  author = {A and B},\n"
            "  year = {2020},\n"
            "  doi = {10.1/abc}\n"
            "}\n"
        )

    def test_pages_of_one_document_are_one_entry(self) -> None:
        """Sources for pages of a PDF give a single entry, keyed by the document's id."""
        pages = [Source(id=f"smith2020#p{n}", title="Retrieval", year=2020, page=n) for n in (4, 7)]
        assert render_bibtex(registry(*pages)) == "@misc{smith2020,\n  title = {{Retrieval}},\n  year = {2020}\n}\n"

    def test_entry_type_follows_the_kind(self) -> None:
        """A journal article is an @article with its venue as journal; a conference paper an @inproceedings."""
        article = Source(id="doi:10.1/a", title="A", venue="J. Appl. Phys.", kind="article", doi="10.1/a")
        paper = Source(id="p", title="P", venue="NeurIPS", kind="inproceedings")
        assert render_bibtex(registry(article, paper)) == (
            "@article{doi:10_1_a,\n"
            "  title = {{A}},\n"
            "  journal = {J. Appl. Phys.},\n"
            "  doi = {10.1/a}\n"
            "}\n"
            "\n"
            "@inproceedings{p,\n"
            "  title = {{P}},\n"
            "  booktitle = {NeurIPS}\n"
            "}\n"
        )

    def test_latex_specials_are_escaped(self) -> None:
        """Characters special to LaTeX are escaped in title, authors and venue, so they print as themselves."""
        source = Source(
            id="odd key/2020",
            title=r"Costs & 100% of $5: #1 a_b {set} C:\path ~x^2",
            authors=["O'Brien & Sons"],
            venue="J_1",
        )
        assert render_bibtex(registry(source)) == (
            "@misc{odd_key_2020,\n"
            r"  title = {{Costs \& 100\% of \$5: \#1 a\_b \{set\} "
            r"C:\textbackslash{}path \textasciitilde{}x\textasciicircum{}2}},"
            "\n"
            r"  author = {O'Brien \& Sons},"
            "\n"
            r"  howpublished = {J\_1}"
            "\n"
            "}\n"
        )

    def test_no_sources(self) -> None:
        """With no sources the file is empty (one newline)."""
        assert render_bibtex(registry()) == "\n"


class TestWriteOutputs:
    def write(
        self, outputs: dict[str, OutputSpec], run_dir: Path, steps: dict[str, Any], sources: SourceRegistry
    ) -> tuple[dict[str, Path], dict[str, int]]:
        return write_outputs(outputs, run_dir, step_outputs=steps, inputs={"topic": "PEFT"}, sources=sources)

    def test_writes_every_kind(self, tmp_path: Path) -> None:
        """Report, JSON, sources, BibTeX and template outputs are written to their paths; citations are summed."""
        sources = registry(HU, WEB, BARE)
        steps = {"write": REPORT, "plan": {"questions": ["Ünïcode?"]}}
        outputs = {
            "report": spec(path="report.md", render="report", **{"from": "write"}),
            "again": spec(path="nested/dir/again.md", render="report", **{"from": "write"}),
            "plan": spec(path="plan.json", render="json", **{"from": "plan"}),
            "sources": spec(path="sources.json", render="sources"),
            "bib": spec(path="sources.bib", render="bibtex"),
            "summary": spec(
                path="summary.txt",
                render="template",
                template="{{ inputs.topic }}: {{ steps.write.title }} ({{ sources|map(attribute='id')|join(',') }})",
            ),
        }
        written, citations = self.write(outputs, tmp_path, steps, sources)
        assert written == {
            "report": tmp_path / "report.md",
            "again": tmp_path / "nested" / "dir" / "again.md",
            "plan": tmp_path / "plan.json",
            "sources": tmp_path / "sources.json",
            "bib": tmp_path / "sources.bib",
            "summary": tmp_path / "summary.txt",
        }
        report = render_report(REPORT, sources)[0]
        assert written["report"].read_text() == written["again"].read_text() == report
        assert written["plan"].read_text() == '{\n  "questions": [\n    "Ünïcode?"\n  ]\n}\n'
        assert written["sources"].read_text() == render_sources(sources)
        assert written["bib"].read_text() == render_bibtex(sources)
        assert written["summary"].read_text() == "PEFT: PEFT (hu2021lora,web-1f3a,bare)"
        assert citations == {"total": 12, "unresolved": 2}

    def test_skips_outputs_of_steps_that_did_not_finish(self, tmp_path: Path) -> None:
        """Outputs from a step without output, and templates reading one, are skipped; the others are written."""
        outputs = {
            "report": spec(path="report.md", render="report", **{"from": "write"}),
            "title": spec(path="title.txt", render="template", template="{{ steps.write.title }}"),
            "topic": spec(path="topic.txt", render="template", template="{{ inputs.topic }}"),
            "sources": spec(path="sources.json", render="sources"),
        }
        written, citations = self.write(outputs, tmp_path, {"plan": {"questions": []}}, registry(HU))
        assert written == {"topic": tmp_path / "topic.txt", "sources": tmp_path / "sources.json"}
        assert sorted(p.name for p in tmp_path.iterdir()) == ["sources.json", "topic.txt"]
        assert citations == {"total": 0, "unresolved": 0}

    @pytest.mark.parametrize("path", ["../escaped.txt", "sub/../../escaped.txt", "{tmp}/escaped.txt"])
    def test_refuses_a_path_leaving_the_run_folder(self, tmp_path: Path, path: str) -> None:
        """A relative or absolute path outside the run folder raises ValueError and nothing is written."""
        run_dir = tmp_path / "run"
        run_dir.mkdir()
        outputs = {"out": spec(path=path.format(tmp=tmp_path), render="template", template="x")}
        with pytest.raises(ValueError, match=r"output 'out': path .* leaves the run folder"):
            self.write(outputs, run_dir, {}, registry())
        assert not (tmp_path / "escaped.txt").exists()
        assert list(run_dir.iterdir()) == []
