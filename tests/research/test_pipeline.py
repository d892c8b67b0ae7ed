"""The demo's research pipeline end to end with scripted models: what the engine does around the model's choices."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

import rolegraph
from projects import isolated_home
from rolegraph.agents.citations import sentences
from rolegraph.runtime.result import RunResult

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "literature_review.yaml"
PEFT = {"hu2021lora", "dettmers2023qlora", "houlsby2019adapters", "li2021prefix", "lester2021prompttuning"}

PLAN = {"questions": ["How does QLoRA save memory?", "What do adapters add?", "How does prefix-tuning work?"]}


def picks(*numbers: int) -> dict[str, Any]:
    return {"final": {"evidence": [{"sentence": n, "relevance": 9 - i} for i, n in enumerate(numbers)]}}


def verdicts(*claims: str, verdict: str = "accept") -> dict[str, Any]:
    return {"final": {"claims": list(claims), "verdict": verdict}}


ARRANGE = {  # the first question keeps one claim (the critic rejects its second); the others two
    "final": {
        "paragraphs": [
            {"order": [1], "links": []},
            {"order": [2, 1], "links": ["Moreover"]},
            {"order": [1, 2], "links": ["Also"]},
        ]
    }
}
ARRANGE_ALL = {"final": {"paragraphs": [{"order": [2, 1], "links": ["Moreover"]}] * 3}}
WRITTEN = {
    "final": {
        "title": "Fine-tuning, cheaply",
        "paragraphs": [{"citations": ["dettmers2023qlora"], "text": "QLoRA fine-tunes quantized models."}],
    }
}


def write_demo(folder: Path, scripts: dict[str, list[dict[str, Any]]], writing: str = "extractive") -> Path:
    """The demo workflow beside a copy of the library, each role on its own scripted model, one agent at a time."""
    folder.mkdir(parents=True)
    (folder / "library").symlink_to(REPO / "examples" / "library")
    spec = yaml.safe_load(DEMO.read_text())
    others = {r: f"scripted:{r}.yaml" for r in scripts if r != "planner"}
    spec["models"] = {"default": "scripted:planner.yaml", **others}
    for role in scripts:
        if role != "planner":
            spec["roles"].setdefault(role, {})["model"] = role
    spec["roles"]["writer"]["writing"] = writing
    spec["roles"]["critic"]["checking"] = "per_claim"  # the default on `local`; scripted models answer freely
    spec["settings"] = {"max_concurrency": 1}
    for role, script in scripts.items():
        (folder / f"{role}.yaml").write_text(yaml.safe_dump(script))
    path = folder / "review.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolated_home(tmp_path, monkeypatch)


def body(report: str) -> str:
    return report.split("## References")[0].split("\n", 1)[1]


@pytest.fixture
async def review(tmp_path: Path) -> RunResult:
    scripts = {
        "planner": [{"final": PLAN}],
        "gatherer": [picks(1, 2), picks(1, 2), picks(1, 2)],
        "critic": [verdicts("supported", "unsupported", "supported", "supported", "supported", "supported")],
        "writer": [ARRANGE],
    }
    result = await rolegraph.load(write_demo(tmp_path / "demo", scripts)).run()
    assert result.status == "completed", result.error
    return result


class TestPipeline:
    async def test_every_step_kind_runs_in_order(self, review: RunResult) -> None:
        """The engine's steps (tool, functions) and the model's (planner, gatherers, critic, writer) all run."""
        assert review.executed_steps == [
            "find",
            "scope",
            "plan",
            "queries",
            "search",
            "passages",
            "gather",
            "critique",
            "select",
            "write",
        ]
        assert len(review.step_outputs["gather"]) == 3

    async def test_evidence_is_sentences_of_papers_on_the_topic(self, review: RunResult) -> None:
        """Every piece of evidence is a sentence of its cited source, and every source is a paper on the topic."""
        texts = {s.id: s.text for s in review.sources}
        for found in review.step_outputs["gather"]:
            assert len(found["evidence"]) == 2
            for evidence in found["evidence"]:
                assert evidence["source_id"] in PEFT
                assert evidence["evidence"] in sentences(texts[evidence["source_id"]], 1000)

    async def test_each_question_is_searched_with_its_paper(self, review: RunResult) -> None:
        """Questions go with the paper they name (QLoRA), or the next untaken one; the query holds its title."""
        items = review.step_outputs["queries"]["items"]
        assert [i["paper"] for i in items] == ["dettmers2023qlora", "houlsby2019adapters", "li2021prefix"]
        assert items[0]["query"].startswith("How does QLoRA save memory? QLoRA: Efficient Finetuning")

    async def test_a_rejected_claim_is_left_out_of_the_report(self, review: RunResult) -> None:
        """The critic rejected claim 2: it is in evidence.json's dropped list and nowhere in the report."""
        dropped = review.step_outputs["select"]["dropped"]
        assert [d["claim"] for d in dropped] == [2]
        report = review.outputs["report"].read_text()
        assert dropped[0]["evidence"] not in report
        assert review.step_outputs["critique"]["drop"] == [2]

    async def test_report_is_the_kept_evidence_verbatim_each_sentence_cited(self, review: RunResult) -> None:
        """The extractive report holds only kept sentences and joining words; each sentence ends with its number."""
        report = review.outputs["report"].read_text()
        assert report.startswith("# A review of parameter-efficient fine-tuning of large language models\n")
        kept = [e for g in review.step_outputs["select"]["groups"] for e in g["evidence"]]
        text = body(report)
        numbers = dict(re.findall(r"^\[(\d+)\] .* `(\w+)`$", report, flags=re.MULTILINE))
        for evidence in kept:
            number = next(n for n, sid in numbers.items() if sid == evidence["source_id"])
            sentence = evidence["evidence"]
            assert sentence in text or sentence[0].lower() + sentence[1:] in text
            assert f"{sentence[1:]} [{number}]" in text
        assert set(numbers.values()) <= PEFT and len(set(numbers.values())) >= 3
        groups = review.step_outputs["select"]["groups"]
        per_paragraph = sum(len({e["source_id"] for e in g["evidence"]}) for g in groups)
        assert (review.citations.total, review.citations.unresolved) == (per_paragraph, 0)

    async def test_the_trace_keeps_offered_sentences_and_relevance(self, review: RunResult) -> None:
        """A compose span per gatherer keeps the sentences offered (with scores) and the evidence with relevance."""
        composed = [s for s in review.trace.walk() if s.name == "compose evidence"]
        assert len(composed) == 3
        offered = composed[0].attributes["rolegraph.offered"]
        assert len(offered) >= 2 and {"source_id", "sentence", "score"} <= set(offered[0])
        assert [e["relevance"] for e in composed[0].attributes["rolegraph.output"]["evidence"]] == [9, 8]
        tools = [s.attributes["rolegraph.step.id"] for s in review.trace.walk() if s.kind == "execute_tool"]
        assert sorted(set(tools)) == ["find", "passages", "queries", "scope", "search", "select"]

    async def test_evidence_file_lists_groups(self, review: RunResult) -> None:
        """evidence.json holds the groups the writer wrote from, with each question."""
        evidence = json.loads(review.outputs["evidence"].read_text())
        assert [g["question"] for g in evidence["groups"]] == PLAN["questions"]


class TestConsequences:
    async def test_all_claims_rejected_sends_the_gatherers_back_once(self, tmp_path: Path) -> None:
        """A critic rejecting every claim routes back to gather (once, with its verdict in the task)."""
        scripts = {
            "planner": [{"final": PLAN}],
            "gatherer": [picks(1, 2)] * 6,
            "critic": [verdicts(*["unsupported"] * 6, verdict="revise"), verdicts(*["supported"] * 6)],
            "writer": [ARRANGE_ALL],
        }
        result = await rolegraph.load(write_demo(tmp_path / "demo", scripts)).run()
        assert result.status == "completed", result.error
        assert result.steps["gather"].visits == 2 and result.steps["critique"].visits == 2
        tasks = [s.attributes["rolegraph.task"] for s in result.trace.walk() if s.kind == "invoke_agent"]
        assert sum("A reviewer rejected the evidence chosen before" in t for t in tasks) == 3
        assert result.step_outputs["select"]["dropped"] == []


class TestAbstractive:
    async def test_a_capable_writer_writes_prose_under_the_same_citation_rules(self, tmp_path: Path) -> None:
        """With writing: abstractive the writer's own paragraphs are the report; its citations must be kept evidence."""
        scripts = {
            "planner": [{"final": PLAN}],
            "gatherer": [picks(1, 2)] * 3,
            "critic": [verdicts(*["supported"] * 6)],
            "writer": [WRITTEN],
        }
        result = await rolegraph.load(write_demo(tmp_path / "demo", scripts, writing="abstractive")).run()
        assert result.status == "completed", result.error
        assert result.step_outputs["write"] == WRITTEN["final"]
        assert "QLoRA fine-tunes quantized models. [1]" in result.outputs["report"].read_text()
