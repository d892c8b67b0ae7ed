"""The demo's research pipeline end to end with scripted models: what the engine does around the model's choices."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

import rolegraph
from projects import isolated_home
from rolegraph.agents.evidence import sentences
from rolegraph.models.model import Completion
from rolegraph.models.scripted import ScriptedCall, ScriptedModel
from rolegraph.runtime.executor import LocalExecutor, RunContext, RunExecutor
from rolegraph.runtime.result import RunResult
from rolegraph.testing import final

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "literature_review.yaml"
PEFT = {"hu2021lora", "dettmers2023qlora", "houlsby2019adapters", "li2021prefix", "lester2021prompttuning"}

PLAN = {"questions": ["How does QLoRA save memory?", "What do adapters add?", "How does prefix-tuning work?"]}
WRITTEN = {
    "title": "Fine-tuning, cheaply",
    "paragraphs": [{"citations": ["dettmers2023qlora"], "text": "QLoRA fine-tunes quantized models."}],
}

Answer = Callable[[dict[str, Any]], Any]
"""Answers one call from the answer's JSON Schema (what the engine offered: numbers, sizes)."""


def first_picks(answer: dict[str, Any]) -> dict[str, Any]:
    """A gatherer that takes the first sentences offered, as many as it must, rating them 9, 8, 7, 6."""
    evidence = answer["properties"]["evidence"]
    offered = evidence["items"]["properties"]["sentence"]
    numbers = (offered.get("enum") or [offered["const"]])[: evidence["minItems"]]
    return {"evidence": [{"sentence": n, "relevance": 9 - i} for i, n in enumerate(numbers)]}


def rejecting(*numbers: int, verdict: str = "accept") -> Answer:
    """A critic that rejects the claims with these numbers (all of them with 0), and supports the rest."""

    def answer(schema: dict[str, Any]) -> dict[str, Any]:
        count = schema["properties"]["claims"]["minItems"]
        bad = set(numbers) if 0 not in numbers else set(range(1, count + 1))
        return {"claims": ["unsupported" if n in bad else "supported" for n in range(1, count + 1)], "verdict": verdict}

    return answer


def reversed_order(answer: dict[str, Any]) -> dict[str, Any]:
    """An extractive writer that reverses each paragraph's sentences and joins them with its first word."""
    paragraphs = []
    for paragraph in answer["properties"]["paragraphs"]["prefixItems"]:
        order = paragraph["properties"]["order"]["items"]
        numbers = order.get("enum") or [order["const"]]  # a one-sentence paragraph's only number is a const
        links = paragraph["properties"]["links"]["items"]["enum"]
        paragraphs.append({"order": numbers[::-1], "links": [links[0]] * (len(numbers) - 1)})
    return {"paragraphs": paragraphs}


def scripted(
    answers: Sequence[Answer | dict[str, Any]], name: str, seen: list[ScriptedCall] | None = None
) -> ScriptedModel:
    """A model answering its n-th call with the n-th answer (a fixed answer, or one made from the schema);
    each call it receives is appended to `seen`."""

    def respond(call: ScriptedCall) -> Completion:
        if seen is not None:
            seen.append(call)
        answer = answers[min(call.index, len(answers)) - 1]
        schema = (call.output_schema or {}).get("properties", {}).get("answer", {})
        return final(answer(schema) if callable(answer) else answer)

    return ScriptedModel(respond, name=name)


def write_demo(folder: Path, writing: str = "extractive") -> Path:
    """The demo workflow beside the library, its roles on models named after them, one agent at a time."""
    folder.mkdir(parents=True)
    (folder / "library").symlink_to(REPO / "examples" / "library")
    spec = yaml.safe_load(DEMO.read_text())
    spec["models"] = {"default": "scripted:planner", **{r: f"scripted:{r}" for r in ("gatherer", "critic", "writer")}}
    for role in ("gatherer", "critic", "writer"):
        spec["roles"].setdefault(role, {})["model"] = role
    spec["roles"]["writer"]["writing"] = writing
    spec["roles"]["critic"]["checking"] = "per_claim"  # the default on `local`; scripted models answer freely
    spec["settings"] = {"max_concurrency": 1}
    path = folder / "review.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


async def run_demo(
    folder: Path,
    answers: dict[str, Sequence[Answer | dict[str, Any]]],
    writing: str = "extractive",
    seen: dict[str, list[ScriptedCall]] | None = None,
) -> RunResult:
    """Run the demo with a scripted model per role (`answers` by role); each role's calls go to `seen`."""
    seen = {} if seen is None else seen
    models = {
        f"scripted:{role}": scripted(list(given), f"scripted:{role}", seen.setdefault(role, []))
        for role, given in answers.items()
    }

    def executor(context: RunContext) -> RunExecutor:
        return LocalExecutor.for_run(dataclasses.replace(context, models=lambda name, _base, *_options: models[name]))

    return await rolegraph.load(write_demo(folder, writing)).run(executor=executor)


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolated_home(tmp_path, monkeypatch)


def body(report: str) -> str:
    return report.split("## References")[0].split("\n", 1)[1]


@pytest.fixture
async def review(tmp_path: Path) -> RunResult:
    answers = {
        "planner": [PLAN],
        "gatherer": [first_picks],
        "critic": [rejecting(2, verdict="revise")],
        "writer": [reversed_order],
    }
    result = await run_demo(tmp_path / "demo", answers)
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
            assert len(found["evidence"]) == 4
            for evidence in found["evidence"]:
                assert evidence["source_id"] in PEFT
                assert evidence["evidence"] in sentences(texts[evidence["source_id"]], None)

    async def test_each_question_is_searched_with_its_paper(self, review: RunResult) -> None:
        """Questions go with the paper they name (QLoRA), or the next untaken one; the query holds its title."""
        items = review.step_outputs["queries"]["items"]
        assert [i["paper"] for i in items] == ["dettmers2023qlora", "houlsby2019adapters", "li2021prefix"]
        assert items[0]["query"].startswith("How does QLoRA save memory? QLoRA: Efficient Finetuning")

    async def test_a_rejected_claim_is_left_out_of_the_report(self, review: RunResult) -> None:
        """The critic rejected claim 2 and asked for revision: claim 2 is dropped and nowhere in the report."""
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
        assert [e["relevance"] for e in composed[0].attributes["rolegraph.output"]["evidence"]] == [9, 8, 7, 6]
        tools = [s.attributes["rolegraph.step.id"] for s in review.trace.walk() if s.kind == "execute_tool"]
        assert sorted(set(tools)) == ["find", "passages", "queries", "scope", "search", "select"]

    async def test_evidence_file_lists_groups(self, review: RunResult) -> None:
        """evidence.json holds the groups the writer wrote from, with each question."""
        evidence = json.loads(review.outputs["evidence"].read_text())
        assert [g["question"] for g in evidence["groups"]] == PLAN["questions"]


class TestConsequences:
    async def test_all_claims_rejected_sends_the_gatherers_back_once(self, tmp_path: Path) -> None:
        """A critic rejecting every claim routes back to gather (once, with its verdict in the task)."""
        answers = {
            "planner": [PLAN],
            "gatherer": [first_picks],
            "critic": [rejecting(0, verdict="revise"), rejecting()],
            "writer": [reversed_order],
        }
        result = await run_demo(tmp_path / "demo", answers)
        assert result.status == "completed", result.error
        assert result.steps["gather"].visits == 2 and result.steps["critique"].visits == 2
        tasks = [s.attributes["rolegraph.task"] for s in result.trace.walk() if s.kind == "invoke_agent"]
        assert sum("A reviewer rejected the evidence chosen before" in t for t in tasks) == 3
        assert result.step_outputs["select"]["dropped"] == []


class TestAbstractive:
    async def test_a_capable_writer_writes_prose_under_the_same_citation_rules(self, tmp_path: Path) -> None:
        """With writing: abstractive the writer's own paragraphs are the report; its citations must be kept evidence."""
        answers = {"planner": [PLAN], "gatherer": [first_picks], "critic": [rejecting()], "writer": [WRITTEN]}
        seen: dict[str, list[ScriptedCall]] = {}
        result = await run_demo(tmp_path / "demo", answers, writing="abstractive", seen=seen)
        assert result.status == "completed", result.error
        assert result.step_outputs["write"] == WRITTEN
        assert "QLoRA fine-tunes quantized models. [1]" in result.outputs["report"].read_text()
        # It wrote from the evidence: its task listed the kept sentences, grouped by question, as [@id] to cite
        (call,) = seen["writer"]
        task = call.messages[1].content
        assert "End each sentence with the id of the paper it comes from, as [@id]." in task
        for group in result.step_outputs["select"]["groups"]:
            assert f"(question: {group['question']})" in task
            assert all(e["evidence"] in task for e in group["evidence"])
