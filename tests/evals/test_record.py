"""Run records: what scoring reads from a finished run, found through each role's output schema."""

from __future__ import annotations

from pathlib import Path

import rolegraph
from rolegraph.evals.record import ClaimRef, record_of

from .conftest import ALPHA_QUOTE, BETA_QUOTE


class TestRecordOf:
    async def test_record_of_a_run(self, project: Path) -> None:
        """Citations from every step, the report's cited sources and prose, claims, sources with text, usage."""
        workflow = rolegraph.load(project / "review.yaml")
        result = await workflow.run(model="scripted:good.yaml")
        record = record_of(result, workflow)
        assert (record.run_id, record.status, record.error) == (result.run_id, "completed", None)
        assert record.citations == ["alpha2020", "beta2021", "alpha2020", "beta2021"]
        assert record.cited == ["alpha2020", "beta2021"]
        assert record.claims == [
            ClaimRef(step="research", source_id="alpha2020", evidence=ALPHA_QUOTE),
            ClaimRef(step="research", source_id="beta2021", evidence=BETA_QUOTE),
        ]
        assert record.report_text == "Review\nAdapters train few weights.\nLow-rank updates merge after training."
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
        assert record.report_text.startswith("Review\n")
