"""Metrics: each pinned on hand-made run records, with no workflow or model involved."""

from __future__ import annotations

import pytest

from rolegraph.evals.metrics import (
    QUALITY,
    citation_validity,
    fact_coverage,
    fold_for_matching,
    forbidden_facts,
    report_body,
    score_run,
    source_precision,
    source_recall,
    topic_relevance,
)
from rolegraph.evals.record import ClaimRef, RunRecord
from rolegraph.evals.spec import EvalQuestion
from rolegraph.tools.sources import Source

LORA_TEXT = (
    "LoRA freezes the pretrained model weights and injects trainable rank decomposition matrices. "
    "Because the learned low-rank update can be merged into the frozen weights, LoRA adds no inference latency."
)
QLORA_TEXT = "QLoRA backpropagates gradients through a frozen, 4-bit quantized model into Low-Rank Adapters."
SOURCES = [
    Source(id="hu2021lora", title="LoRA", arxiv="2106.09685", text=LORA_TEXT),
    Source(id="dettmers2023qlora", title="QLoRA", doi="10.5555/QLORA", text=QLORA_TEXT),
    Source(id="houlsby2019adapters", title="Adapters", text="Adapters insert small modules."),
]
TRUE_QUOTE = "LoRA freezes the pretrained model weights and injects trainable rank decomposition matrices."
FAITHFUL = "LoRA keeps the pretrained weights frozen and trains injected rank decomposition matrices."


def record(**changes: object) -> RunRecord:
    base = RunRecord(
        run_id="r1",
        sources=SOURCES,
        citations=["hu2021lora", "hu2021lora", "houlsby2019adapters"],
        cited=["hu2021lora", "houlsby2019adapters"],
        claims=[ClaimRef(step="research", source_id="hu2021lora", evidence=TRUE_QUOTE, claim=FAITHFUL)],
        report_text="LoRA trains a Low\u2011Rank update;   it is fine-tuning, cheaply.",
        input_tokens=100,
        output_tokens=20,
        cost_usd=0.0,
        duration_s=1.23456,
    )
    return base.model_copy(update=changes)


class TestCitationValidity:
    def test_every_citation_resolves(self) -> None:
        """A normal run, every citation naming a retrieved source, scores 1.0."""
        assert citation_validity(record()) == 1.0

    def test_a_bad_id_lowers_it(self) -> None:
        """One citation of four naming an unretrieved source scores 0.75."""
        assert citation_validity(record(citations=["hu2021lora", "made_up", "hu2021lora", "hu2021lora"])) == 0.75

    def test_no_citations_is_not_measured(self) -> None:
        """With no citations there is nothing to measure: None, not 0."""
        assert citation_validity(record(citations=[])) is None


class TestSources:
    def test_a_missing_gold_source_lowers_recall(self) -> None:
        """Two of three gold sources cited: recall 2/3."""
        rec = record(cited=["hu2021lora", "dettmers2023qlora"])
        assert source_recall(rec, ["hu2021lora", "dettmers2023qlora", "li2021prefix"]) == pytest.approx(2 / 3)

    def test_gold_by_doi_and_arxiv(self) -> None:
        """``arxiv:`` matches Source.arxiv (version ignored), ``doi:`` Source.doi (case-insensitive)."""
        rec = record(cited=["hu2021lora", "dettmers2023qlora"])
        assert source_recall(rec, ["arxiv:2106.09685v2", "doi:10.5555/qlora"]) == 1.0
        assert source_recall(rec, ["arxiv:2106.00000"]) == 0.0

    def test_a_page_of_a_gold_document_is_that_document(self) -> None:
        """A PDF page cited as ``key#p4`` counts as the gold document ``key``; another key's page does not."""
        pages = [Source(id="hu2021lora#p4", title="LoRA", page=4), Source(id="li2021prefix#p2", title="Prefix", page=2)]
        rec = record(sources=[*SOURCES, *pages], cited=["hu2021lora#p4", "li2021prefix#p2"])
        assert source_recall(rec, ["hu2021lora"]) == 1.0
        assert source_precision(rec, ["hu2021lora"]) == 0.5

    def test_precision_counts_cited_sources_not_in_gold(self) -> None:
        """Citing one gold and one non-gold source: precision 0.5; recall is unaffected."""
        rec = record(cited=["hu2021lora", "houlsby2019adapters"])
        assert source_precision(rec, ["hu2021lora"]) == 0.5
        assert source_recall(rec, ["hu2021lora"]) == 1.0

    def test_retrieval_recall_looks_at_every_retrieved_source(self) -> None:
        """A gold source retrieved but not cited counts for retrieval recall only."""
        rec = record(cited=["hu2021lora"])
        assert source_recall(rec, ["hu2021lora", "dettmers2023qlora"]) == 0.5
        assert source_recall(rec, ["hu2021lora", "dettmers2023qlora"], retrieved=True) == 1.0

    def test_topic_relevance_is_the_share_of_cited_sources_that_are_relevant(self) -> None:
        """Citing one relevant and one irrelevant source: 0.5; nothing cited or nothing to compare with: None."""
        rec = record(cited=["hu2021lora", "houlsby2019adapters"])
        assert topic_relevance(rec, ["hu2021lora", "dettmers2023qlora"]) == 0.5
        assert topic_relevance(rec, ["arxiv:2106.09685"]) == 0.5
        assert topic_relevance(record(cited=[]), ["hu2021lora"]) is None
        assert topic_relevance(rec, []) is None

    def test_without_gold_or_citations_nothing_is_measured(self) -> None:
        """No gold: recall and precision None; nothing cited: precision None."""
        assert source_recall(record(), []) is None
        assert source_precision(record(), []) is None
        assert source_precision(record(cited=[]), ["hu2021lora"]) is None


class TestFacts:
    def test_normalise(self) -> None:
        """Casefolded, punctuation (also non-ASCII hyphens) as spaces, whitespace collapsed."""
        assert fold_for_matching("  Low\u2011Rank\tADAPTATION, (LoRA)! ") == "low rank adaptation lora"

    def test_coverage_ignores_case_space_and_punctuation(self) -> None:
        """'low-rank' matches 'Low\\u2011Rank', 'fine tuning' matches 'fine-tuning'; a missing fact lowers it."""
        text = record().report_text
        assert fact_coverage(text, ["low-rank", "FINE TUNING"]) == 1.0
        assert fact_coverage(text, ["low-rank", "quantization", "adapters", "cheaply"]) == 0.5

    def test_whole_words_only(self) -> None:
        """A fact matches whole words: 'rank' is not found inside 'ranking'."""
        assert fact_coverage("ranking models", ["rank"]) == 0.0

    def test_no_facts_is_not_measured(self) -> None:
        """No must_include facts: None."""
        assert fact_coverage("anything", []) is None

    def test_the_body_leaves_out_cited_titles(self) -> None:
        """A fact found only in the title of a cited work is not the report's: the title is cut out of the body."""
        sources = [Source(id="hu2021lora", title="LoRA: Low-Rank Adaptation of Large Language Models", text="")]
        rec = record(
            sources=sources,
            cited=["hu2021lora"],
            report_text="As LoRA: Low-Rank Adaptation of Large Language Models shows, weights stay frozen.",
        )
        assert report_body(rec) == "as | shows weights stay frozen"
        assert fact_coverage(report_body(rec), ["low-rank", "frozen"]) == 0.5

    def test_forbidden_facts_are_reported(self) -> None:
        """Each must_not_include fact the report states is listed."""
        assert forbidden_facts("LoRA adds inference latency.", ["LoRA adds inference latency", "RLHF"]) == [
            "LoRA adds inference latency"
        ]


class TestScoreRun:
    def test_whole_scores(self) -> None:
        """One run, every metric: a fragment claim of two gives quote validity and support 0.5."""
        rec = record(
            claims=[
                ClaimRef(step="research", source_id="hu2021lora", evidence=TRUE_QUOTE, claim=FAITHFUL),
                ClaimRef(step="research", source_id="hu2021lora", evidence="LoRA retrains every weight.", claim="x"),
            ]
        )
        question = EvalQuestion(
            id="lora",
            inputs={"topic": "parameter-efficient fine-tuning"},
            gold_sources=["hu2021lora", "dettmers2023qlora"],
            must_include=["low-rank", "quantized"],
            must_not_include=["fine-tuning"],
        )
        scores = score_run(rec, question)
        assert scores.metrics() == {
            "source_recall": 0.5,
            "source_precision": 0.5,
            "topic_relevance": 0.5,
            "retrieval_recall": 1.0,
            "fact_coverage": 0.5,
            "claim_support": 0.5,
            "citation_validity": 1.0,
            "quote_validity": 0.5,
            "forbidden_facts": 1,
            "tokens": 120,
            "cost_usd": 0.0,
            "wall_time_s": 1.235,
        }
        assert (scores.missing_sources, scores.missing_facts, scores.forbidden_found) == (
            ["dettmers2023qlora"],
            ["quantized"],
            ["fine-tuning"],
        )
        assert (scores.relevant_sources, scores.relevance_basis) == (["hu2021lora", "dettmers2023qlora"], "gold")
        assert [c.supported for c in scores.claims] == [True, False]
        assert score_run(record(claims=[]), question).claim_support is None
        assert score_run(record(claims=[]), question).quote_validity is None

    def test_a_bad_report_scores_low_on_every_quality_figure(self) -> None:
        """A report that repeats its topic, cites off-topic work and quotes fragments is bad on every figure."""
        bad = record(
            cited=["houlsby2019adapters"],
            citations=["houlsby2019adapters"],
            sources=[*SOURCES, Source(id="vaswani2017attention", title="Attention", text="Attention is all.")],
            claims=[
                ClaimRef(step="research", source_id="hu2021lora", evidence="LoRA", claim="LoRA is fine-tuning."),
                ClaimRef(
                    step="research",
                    source_id="hu2021lora",
                    evidence=TRUE_QUOTE,
                    claim="Parameter-efficient fine-tuning is used for large language models.",
                ),
            ],
            report_text="Parameter-efficient fine-tuning is parameter-efficient fine-tuning of language models.",
        )
        question = EvalQuestion(
            id="peft",
            inputs={"topic": "parameter-efficient fine-tuning of large language models"},
            gold_sources=["hu2021lora", "dettmers2023qlora"],
            must_include=["frozen", "trainable"],
        )
        scores = score_run(bad, question)
        quality = {k: scores.metrics()[k] for k in QUALITY if k != "retrieval_recall"}
        assert quality == {
            "source_recall": 0.0,
            "source_precision": 0.0,
            "topic_relevance": 0.0,
            "fact_coverage": 0.0,
            "claim_support": 0.0,
        }
        assert scores.quote_validity == 0.5
        assert [c.reason for c in scores.claims][1] == "the claim says nothing beyond the question's own words"

    def test_without_gold_relevance_uses_the_topic_matches(self) -> None:
        """A question without gold compares the cited sources with the library's matches for its topic."""
        question = EvalQuestion(id="q", inputs={"topic": "adapters"})
        scores = score_run(record(), question, topic_matches=["houlsby2019adapters", "li2021prefix"])
        assert (scores.topic_relevance, scores.relevance_basis) == (0.5, "library")
        assert (scores.source_recall, scores.source_precision) == (None, None)
        assert score_run(record(), question).topic_relevance is None
