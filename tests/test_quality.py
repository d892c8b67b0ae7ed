"""The README's quality table is generated from kept eval reports, never typed, and says "bad" when runs are bad."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from benchmarks import quality

from eval_projects import ALPHA_QUOTE, write_eval_project
from projects import isolated_home, write_script

EVALSET = """\
rolegraph_eval: 1
name: tiny
questions:
  - id: adapters
    inputs: {topic: adapters}
    gold_sources: [alpha2020, beta2021]
    must_include: [few weights, low-rank]
  - id: updates
    inputs: {topic: weight updates}
    must_include: [merges after training]
"""


def script(claim: str, paragraphs: list[str]) -> list[dict[str, Any]]:
    """A run that searches, makes one claim quoting alpha2020, and writes paragraphs citing it."""
    return [
        {"tool": "library_search", "args": {"query": "adapters"}},
        {"final": {"claims": [{"source_id": "alpha2020", "evidence": ALPHA_QUOTE, "claim": claim}]}},
        {"final": {"title": "Review", "paragraphs": [{"citations": ["alpha2020"], "text": p} for p in paragraphs]}},
    ]


def run_eval(project: Path, name: str, folder: Path, **options: Any) -> Path:
    """`quality.run_eval` of the project's workflow and eval set on its scripted model, kept in `folder`."""
    return quality.run_eval(
        name,
        workflow=project / "review.yaml",
        evalset=project / "set.yaml",
        models=["scripted:model.yaml"],
        folder=folder,
        **options,
    )


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A two-note library, the review workflow, a two-question eval set and a scripted model that repeats itself."""
    isolated_home(tmp_path, monkeypatch)
    # The same script for every run: the first question is answered well, the second (about updates) badly.
    model = script(
        "Adapters train only a few weights.", ["Adapters train few weights.", "Small adapter layers are inserted."]
    )
    return write_eval_project(tmp_path / "project", {"model": model}, EVALSET)


class TestKeptReports:
    def test_readme_and_docs_are_what_the_kept_reports_give(self) -> None:
        """The README's quality block and docs/quality.md equal what `render` makes of benchmarks/results/quality."""
        assert quality.stale() == []

    def test_kept_reports_are_of_the_bundled_set_on_the_demo(self) -> None:
        """Every kept report is an eval of the bundled questions on the demo workflow, with how it was made."""
        for kept in quality.load_kept():
            assert (kept.report.evalset, kept.report.workflow) == ("library_questions", "literature_review")
            assert kept.meta["command"].startswith("python -m benchmarks.quality run")
            assert kept.report.runs


class TestRunAndRender:
    def test_run_keeps_the_report_and_render_writes_both_files(self, project: Path, tmp_path: Path) -> None:
        """`run_eval` keeps the whole JSON report with its meta; `render` puts its table in the README and docs."""
        folder = tmp_path / "kept"
        path = run_eval(project, "before", folder, command="python -m benchmarks.quality run before")
        data = json.loads(path.read_text())
        assert [r["question"] for r in data["runs"]] == ["adapters", "updates"]
        assert {"command", "started", "finished", "seconds", "cpu_count", "commit"} <= set(data["meta"])
        readme, docs = tmp_path / "README.md", tmp_path / "docs" / "quality.md"
        readme.write_text(f"# Project\n\n{quality.BEGIN}\nold, typed table\n{quality.END}\n\nmore\n")
        assert quality.render(folder, readme, docs) == [readme, docs]
        text = readme.read_text()
        assert "old, typed table" not in text and text.endswith(f"{quality.END}\n\nmore\n")
        assert "| metric | `before` |" in text
        assert "| source_recall | 0.50 (1) |" in text  # one gold source of two cited; the other question has none
        assert "| completed | 1.00 ± 0.00 (2) |" in text
        assert "| adapters | completed | 0.50 | 1.00 | 1.00 | 0.50 | 1.00 | 3/3 | 1.00 |" in docs.read_text()
        assert quality.stale(folder, readme, docs) == []
        assert quality.render(folder, readme, docs) == []  # nothing changed, nothing written

    def test_a_bad_run_reads_bad(self, project: Path, tmp_path: Path) -> None:
        """A run whose claim repeats its topic and whose report states no fact scores 0 on both, in the table too."""
        write_script(project, "model", script("Adapters are adapters.", ["Adapters are useful.", "They help."]))
        folder = tmp_path / "kept"
        run_eval(project, "bad", folder)
        (kept,) = quality.load_kept(folder)
        first = kept.report.runs[0].scores
        assert (first.fact_coverage, first.claim_support, first.quote_validity) == (0.0, 0.0, 1.0)
        assert first.claims[0].reason == "the claim says nothing beyond the question's own words"
        table = "\n".join(quality.summary_table([kept]))
        assert "| fact_coverage | 0.00 ± 0.00 (2) |" in table

    def test_rescore_scores_the_kept_runs_again(self, project: Path, tmp_path: Path) -> None:
        """`rescore_kept` re-reads the kept report's run folders: same scores, how it was made kept, date added."""
        folder = tmp_path / "kept"
        path = run_eval(project, "before", folder, command="python -m benchmarks.quality run before")
        before = json.loads(path.read_text())
        before["runs"][0]["scores"]["claim_support"] = 0.123  # a stale score, as an older metric gave it
        path.write_text(json.dumps(before))
        after = json.loads(quality.rescore_kept("before", folder=folder).read_text())
        assert after["runs"][0]["scores"]["claim_support"] == 1.0
        assert [r["run_id"] for r in after["runs"]] == [r["run_id"] for r in before["runs"]]
        assert after["meta"]["command"] == before["meta"]["command"] and "rescored" in after["meta"]

    def test_failed_runs_are_explained(self, project: Path, tmp_path: Path) -> None:
        """A run that failed is listed under its question's table with its error, and counts 0 in completed."""
        write_script(project, "model", [{"text": "not an answer"}] * 12)
        folder = tmp_path / "kept"
        run_eval(project, "broken", folder, limit=1)
        page = quality.docs_page(quality.load_kept(folder))
        assert (
            "Runs that did not complete:\n\n- `adapters` (scripted:model.yaml) failed: step 'research' failed" in page
        )
        assert "| completed | 0.00 (1) |" in page

    def test_markers_are_required(self) -> None:
        """A README without the markers is an error naming them, not a silent no-op."""
        with pytest.raises(ValueError, match="quality:begin"):
            quality.replace_block("no markers here", "table")

    def test_check_command(self) -> None:
        """`check` exits 0 when the files are current (as they are in the repository)."""
        assert quality.main(["check"]) == 0
