"""Run records: what scoring reads from a finished run, found through each role's output schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import rolegraph
from eval_projects import ALPHA_QUOTE, BETA_QUOTE, CLAIMS
from rolegraph.evals.record import ClaimRef, RunFolderError, cited_sentences, record_from_dir, record_of, report_claims


class TestRecordOf:
    async def test_record_of_a_run(self, project: Path) -> None:
        """Citations from every step, the report's cited sources and body (no title), claims, sources, usage."""
        workflow = rolegraph.load(project / "review.yaml")
        result = await workflow.run(model="scripted:good.yaml")
        record = record_of(result, workflow)
        assert (record.run_id, record.status, record.error) == (result.run_id, "completed", None)
        assert record.citations == ["alpha2020", "beta2021", "alpha2020", "beta2021"]
        assert record.cited == ["alpha2020", "beta2021"]
        assert record.claims == [
            ClaimRef(step="research", source_id="alpha2020", evidence=ALPHA_QUOTE, claim=CLAIMS[ALPHA_QUOTE]),
            ClaimRef(step="research", source_id="beta2021", evidence=BETA_QUOTE, claim=CLAIMS[BETA_QUOTE]),
            *(  # the report's cited sentences are claims too, quoting nothing
                ClaimRef(step="write", source_id=s, evidence="", claim=text, quoted=False, cites=[s])
                for s, text in (
                    ("alpha2020", "Adapters train few weights."),
                    ("beta2021", "Low-rank updates merge after training."),
                )
            ),
        ]
        assert record.report_text == "Adapters train few weights.\nLow-rank updates merge after training."
        assert record.report_title == "Review"  # kept apart: facts are looked for in the body only
        assert all(ALPHA_QUOTE in s.text or BETA_QUOTE in s.text for s in record.sources)
        assert (record.input_tokens, record.output_tokens) == (result.usage.input_tokens, result.usage.output_tokens)
        assert (record.cost_usd, record.duration_s) == (0.0, result.duration_s)

    async def test_without_a_report_output_the_last_steps_are_the_answer(self, project: Path) -> None:
        """A workflow that writes no report is judged on its final steps' outputs."""
        text = (project / "review.yaml").read_text().split("outputs:")[0]
        (project / "review.yaml").write_text(text)
        workflow = rolegraph.load(project / "review.yaml")
        record = record_of(await workflow.run(model="scripted:good.yaml"), workflow)
        assert record.cited == ["alpha2020", "beta2021"]
        assert record.report_text.startswith("Adapters train few weights.\n")


class TestReportClaims:
    def test_inline_markers_cite_the_sentence_they_follow(self) -> None:
        """``[@id]`` cites the sentence before it (before or after its stop); the markers leave the text."""
        text = "LoRA freezes weights [@hu2021lora]. Adapters add layers. [@houlsby2019] [@hu2021lora] Both are cheap."
        assert cited_sentences(text) == [
            ("LoRA freezes weights.", ["hu2021lora"]),
            ("Adapters add layers.", ["houlsby2019", "hu2021lora"]),
            ("Both are cheap.", []),
        ]

    def test_a_sentence_without_a_marker_rests_on_its_paragraph(self) -> None:
        """A sentence with no marker cites its paragraph's citations (listed and inline); no text, no claim."""
        output = {
            "title": "Review",
            "paragraphs": [
                {"citations": ["a2020"], "text": "One thing holds [@b2021]. Another thing holds."},
                {"citations": [], "text": "Nothing cited here."},
                {"citations": ["a2020"]},
            ],
        }
        assert [(c.claim, c.cites) for c in report_claims("write", output)] == [
            ("One thing holds.", ["b2021"]),
            ("Another thing holds.", ["a2020", "b2021"]),
        ]


class TestRecordFromDir:
    async def test_same_record_as_in_memory(self, project: Path) -> None:
        """A run folder gives the record the finished run gave, plus the inputs and overrides it ran with."""
        workflow = rolegraph.load(project / "review.yaml")
        result = await workflow.run({"topic": "adapters"}, model="scripted:good.yaml")
        from_disk = record_from_dir(result.run_dir, workflow)
        in_memory = record_of(result, workflow)
        assert from_disk.model_dump(exclude={"inputs", "overrides", "duration_s"}) == in_memory.model_dump(
            exclude={"inputs", "overrides", "duration_s"}
        )
        assert from_disk.duration_s == round(result.duration_s, 3)
        assert from_disk.inputs == {"topic": "adapters"}
        assert from_disk.overrides == {"model": "scripted:good.yaml", "settings": {}}
        assert all(s.text for s in from_disk.sources)  # claim support needs the text

    async def test_a_folder_without_sources_text_is_refused(self, project: Path) -> None:
        """A run made before sources.jsonl existed (its run.json does not count its sources) cannot be re-scored:
        the error says so and what to do."""
        workflow = rolegraph.load(project / "review.yaml")
        result = await workflow.run(model="scripted:good.yaml")
        (result.run_dir / "sources.jsonl").unlink()
        summary = json.loads((result.run_dir / "run.json").read_text())
        del summary["sources"]
        (result.run_dir / "run.json").write_text(json.dumps(summary))
        with pytest.raises(RunFolderError, match=r"has no sources\.jsonl .* run the question again"):
            record_from_dir(result.run_dir, workflow)

    async def test_a_run_of_another_workflow_is_refused(self, project: Path) -> None:
        """Scoring a run against the wrong workflow would misread its steps: refused, naming both."""
        workflow = rolegraph.load(project / "review.yaml")
        result = await workflow.run(model="scripted:good.yaml")
        other = project / "other.yaml"
        other.write_text((project / "review.yaml").read_text().replace("name: review", "name: other"))
        with pytest.raises(RunFolderError, match="workflow 'review', not 'other'"):
            record_from_dir(result.run_dir, rolegraph.load(other))

    def test_not_a_run_folder(self, project: Path, tmp_path: Path) -> None:
        """A folder without run.json is not a run."""
        with pytest.raises(RunFolderError, match="is not a run folder"):
            record_from_dir(tmp_path, rolegraph.load(project / "review.yaml"))

    async def test_a_damaged_summary_is_refused_naming_the_field(self, project: Path) -> None:
        """A run.json whose inputs are not an object is a RunFolderError naming the file and field, not a TypeError."""
        workflow = rolegraph.load(project / "review.yaml")
        result = await workflow.run(model="scripted:good.yaml")
        summary = json.loads((result.run_dir / "run.json").read_text())
        (result.run_dir / "run.json").write_text(json.dumps({**summary, "inputs": [1]}))
        with pytest.raises(RunFolderError, match=r"run\.json: field `inputs` is not an object but a list"):
            record_from_dir(result.run_dir, workflow)
