"""Metrics: each pinned on hand-made run records, with no workflow or model involved."""

from __future__ import annotations

import pytest

from rolegraph.evals.metrics import (
    citation_validity,
    claim_scores,
    fact_coverage,
    forbidden_facts,
    normalise,
    quote_support,
    score_run,
    source_precision,
    source_recall,
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


def record(**changes: object) -> RunRecord:
    base = RunRecord(
        run_id="r1",
        sources=SOURCES,
        citations=["hu2021lora", "hu2021lora", "houlsby2019adapters"],
        cited=["hu2021lora", "houlsby2019adapters"],
        claims=[ClaimRef(step="research", source_id="hu2021lora", evidence=TRUE_QUOTE)],
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

    def test_without_gold_or_citations_nothing_is_measured(self) -> None:
        """No gold: recall and precision None; nothing cited: precision None."""
        assert source_recall(record(), []) is None
        assert source_precision(record(), []) is None
        assert source_precision(record(cited=[]), ["hu2021lora"]) is None


class TestFacts:
    def test_normalise(self) -> None:
        """Casefolded, punctuation (also non-ASCII hyphens) as spaces, whitespace collapsed."""
        assert normalise("  Low\u2011Rank\tADAPTATION, (LoRA)! ") == "low rank adaptation lora"

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

    def test_forbidden_facts_are_reported(self) -> None:
        """Each must_not_include fact the report states is listed."""
        assert forbidden_facts("LoRA adds inference latency.", ["LoRA adds inference latency", "RLHF"]) == [
            "LoRA adds inference latency"
        ]


class TestClaimSupport:
    def test_verbatim_quote_scores_one(self) -> None:
        """A quote copied from its source (modulo case and spacing) is supported with score 1."""
        assert quote_support("lora  FREEZES the pretrained model weights", LORA_TEXT) == 1.0

    def test_fabricated_quote_scores_zero(self) -> None:
        """A quote that is not in the cited source is unsupported: score 0."""
        claims = [ClaimRef(step="research", source_id="hu2021lora", evidence="LoRA was invented in 1850 by Gauss.")]
        (scored,) = claim_scores(claims, SOURCES)
        assert (scored.supported, scored.score) == (False, 0.0)
        assert scored.similarity < 0.9

    def test_quote_with_a_typo_is_supported_fuzzily(self) -> None:
        """One wrong letter: not verbatim, but similar enough (≥ 0.9) to count, its score kept below 1."""
        typo = TRUE_QUOTE.replace("injects", "injepts")
        (scored,) = claim_scores([ClaimRef(step="research", source_id="hu2021lora", evidence=typo)], SOURCES)
        assert scored.supported
        assert 0.9 <= scored.score < 1.0

    def test_a_true_quote_attributed_to_the_wrong_source_is_unsupported(self) -> None:
        """The quote is checked against the source it cites, not any source."""
        claims = [ClaimRef(step="research", source_id="dettmers2023qlora", evidence=TRUE_QUOTE)]
        assert not claim_scores(claims, SOURCES)[0].supported

    def test_an_unretrieved_source_supports_nothing(self) -> None:
        """A claim citing a source the run never retrieved scores 0."""
        claims = [ClaimRef(step="research", source_id="ghost", evidence=TRUE_QUOTE)]
        assert claim_scores(claims, SOURCES)[0].similarity == 0.0


class TestScoreRun:
    def test_whole_scores(self) -> None:
        """One run, every metric: one fabricated claim of two gives support 0.5; no claims would give None."""
        rec = record(
            claims=[
                ClaimRef(step="research", source_id="hu2021lora", evidence=TRUE_QUOTE),
                ClaimRef(step="research", source_id="hu2021lora", evidence="LoRA retrains every weight."),
            ]
        )
        question = EvalQuestion(
            id="lora",
            gold_sources=["hu2021lora", "dettmers2023qlora"],
            must_include=["low-rank", "quantized"],
            must_not_include=["fine-tuning"],
        )
        scores = score_run(rec, question)
        assert scores.metrics() == {
            "citation_validity": 1.0,
            "source_recall": 0.5,
            "source_precision": 0.5,
            "retrieval_recall": 1.0,
            "fact_coverage": 0.5,
            "forbidden_facts": 1,
            "claim_support": 0.5,
            "tokens": 120,
            "cost_usd": 0.0,
            "wall_time_s": 1.235,
        }
        assert (scores.missing_sources, scores.missing_facts, scores.forbidden_found) == (
            ["dettmers2023qlora"],
            ["quantized"],
            ["fine-tuning"],
        )
        assert [c.supported for c in scores.claims] == [True, False]
        assert score_run(record(claims=[]), question).claim_support is None
