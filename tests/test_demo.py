"""The README's main job, end to end: the research pipeline on the embedded model, offline, on its default topic."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rolegraph.agents.citations import sentences
from rolegraph.layout import RunFolder

REPO = Path(__file__).resolve().parent.parent
PEFT = {"hu2021lora", "dettmers2023qlora", "houlsby2019adapters", "li2021prefix", "lester2021prompttuning"}
"""The library's parameter-efficient fine-tuning papers: what the default topic is about."""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One run of `rolegraph run examples/literature_review.yaml --json`, with its files read back."""
    home = tmp_path_factory.mktemp("demo")
    env = {**os.environ, "ROLEGRAPH_HOME": str(home)}
    env.pop("OPENAI_API_KEY", None)
    proc = subprocess.run(
        [sys.executable, "-m", "rolegraph", "run", "examples/literature_review.yaml", "--json", "--quiet"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    run_dir = Path(summary["outputs"]["report"]).parent
    steps = {step: state["output"] for step, state in RunFolder(run_dir).step_states().items()}
    sources = [json.loads(line) for line in (run_dir / "sources.jsonl").read_text().splitlines() if line]
    return {
        "summary": summary,
        "report": Path(summary["outputs"]["report"]).read_text(),
        "steps": steps,
        "sources": {s["id"]: s for s in sources},
        "trace": Path(summary["trace"]),
    }


def cited(report: str) -> list[str]:
    return re.findall(r"`([^`]+)`$", report, flags=re.MULTILINE)


@pytest.mark.local_model
class TestDemo:
    def test_completes_with_every_citation_resolved(self, demo: dict[str, Any]) -> None:
        """The run completes, spends tokens, writes its files, and every citation names a retrieved source."""
        summary = demo["summary"]
        assert summary["status"] == "completed"
        assert summary["citations"]["total"] > 0 and summary["citations"]["unresolved"] == 0
        assert summary["usage"]["input_tokens"] > 0 and summary["usage"]["output_tokens"] > 0
        assert set(summary["outputs"]) == {"report", "evidence", "sources", "bibliography"}

    def test_cites_three_fine_tuning_papers_and_none_off_the_topic(self, demo: dict[str, Any]) -> None:
        """The review cites at least 3 of the library's 5 parameter-efficient fine-tuning papers, and nothing else."""
        ids = cited(demo["report"])
        assert len(set(ids) & PEFT) >= 3, demo["report"]
        assert set(ids) <= PEFT, demo["report"]

    def test_every_evidence_is_a_sentence_of_its_source(self, demo: dict[str, Any]) -> None:
        """Each gathered piece of evidence is a whole sentence of the source it cites."""
        gathered = [e for found in demo["steps"]["gather"] for e in found["evidence"]]
        assert gathered
        for evidence in gathered:
            text = demo["sources"][evidence["source_id"]]["text"]
            assert evidence["evidence"] in sentences(text, 1000), evidence

    def test_the_review_is_made_of_the_kept_evidence(self, demo: dict[str, Any]) -> None:
        """Every kept sentence is in the report, followed by its source's number; dropped ones are not."""
        body = demo["report"].split("## References")[0]
        numbers = {sid: n for n, sid in enumerate(cited(demo["report"]), start=1)}
        selected = demo["steps"]["select"]
        for group in selected["groups"]:
            for evidence in group["evidence"]:
                assert f"{evidence['evidence'][1:]} [{numbers[evidence['source_id']]}]" in body
        for dropped in selected["dropped"]:
            assert dropped["evidence"][1:] not in body

    def test_trace_has_every_kind_of_span(self, demo: dict[str, Any]) -> None:
        """The trace holds the workflow, agents, model calls, tool and function calls, plans and routes (the demo
        has no output checks, so no run_guardrail span: an answer's validation is on its react_step)."""
        kinds = {json.loads(line)["kind"] for line in demo["trace"].read_text().splitlines() if '"kind"' in line}
        assert {"invoke_workflow", "invoke_agent", "react_step", "chat", "execute_tool"} <= kinds
        assert {"plan", "route"} <= kinds
