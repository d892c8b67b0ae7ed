"""Claim support reads the claim: its evidence must be a sentence of the source, and say what the claim says."""

from __future__ import annotations

from rolegraph.evals.judge import ClaimVerdict
from rolegraph.evals.metrics import claim_support
from rolegraph.evals.record import ClaimRef
from rolegraph.evals.support import SUPPORT_THRESHOLD, ClaimScore, claim_scores, judgeable_claims
from rolegraph.evals.text import content_stems
from rolegraph.tools.sources import Source

LORA_TEXT = (
    "LoRA freezes the pretrained model weights and injects trainable rank decomposition matrices. "
    "Because the learned low-rank update can be merged into the frozen weights, LoRA adds no inference latency. "
    "Only these small matrices are trained, greatly reducing the number of trainable parameters."
)
QUOTE = "LoRA freezes the pretrained model weights and injects trainable rank decomposition matrices."
NO_LATENCY = (
    "Because the learned low-rank update can be merged into the frozen weights, LoRA adds no inference latency."
)
SOURCES = [
    Source(id="hu2021lora", title="LoRA: Low-Rank Adaptation of Large Language Models", text=LORA_TEXT),
    Source(id="qlora", title="QLoRA", text="QLoRA quantizes the frozen base model to four bits per weight."),
]
TOPIC = content_stems("low-rank adaptation for fine-tuning large language models")


def one(evidence: str, claim: str, source_id: str = "hu2021lora", **kwargs: object) -> tuple[bool, str, float]:
    (scored,) = claim_scores(
        [ClaimRef(step="r", source_id=source_id, evidence=evidence, claim=claim)], SOURCES, TOPIC, **kwargs
    )  # type: ignore[arg-type]
    return scored.supported, scored.reason, scored.overlap


class TestClaimScores:
    def test_a_faithful_paraphrase_is_supported(self) -> None:
        """Other word forms of the evidence's words (frozen/freezes aside) carry the claim: supported, overlap high."""
        supported, reason, overlap = one(
            QUOTE, "LoRA keeps pretrained weights frozen and trains injected decomposition matrices."
        )
        assert supported and reason == "the evidence holds the claim's words"
        assert overlap >= SUPPORT_THRESHOLD

    def test_a_negated_quote_is_not_supported(self) -> None:
        """A quote negated by the model is no sentence of the source: unsupported however close the words."""
        negated = "LoRA does not freeze the pretrained model weights and injects trainable rank decomposition matrices."
        supported, reason, _ = one(negated, "LoRA does not freeze the pretrained weights.")
        assert not supported and "is not a sentence of hu2021lora" in reason

    def test_a_claim_negating_its_evidence_is_not_supported(self) -> None:
        """A real quote with a claim that turns it around: same words, one side negated, unsupported."""
        supported, reason, overlap = one(NO_LATENCY, "LoRA adds inference latency because updates are merged.")
        assert (supported, reason) == (False, "only the evidence is negated")
        assert overlap >= SUPPORT_THRESHOLD  # the words alone would have passed

    def test_an_unrelated_claim_is_not_supported(self) -> None:
        """A real quote under a claim about something else scores low."""
        supported, reason, overlap = one(QUOTE, "Scaling laws predict test loss from compute budgets.")
        assert not supported and overlap == 0.0
        assert reason.startswith("the evidence lacks ")

    def test_a_claim_that_repeats_the_topic_is_not_supported(self) -> None:
        """A claim made of the question's own words says nothing, whatever its evidence."""
        supported, reason, _ = one(QUOTE, "Low-rank adaptation is used for fine-tuning of large language models.")
        assert (supported, reason) == (False, "the claim says nothing beyond the question's own words")

    def test_a_fragment_blank_or_other_source_quote_fails_first(self) -> None:
        """The quote rule comes first: a fragment, a blank, another source's sentence are unsupported."""
        for evidence, source_id in (
            ("injects trainable rank decomposition matrices", "hu2021lora"),
            ("", "hu2021lora"),
            ("QLoRA quantizes the frozen base model to four bits per weight.", "hu2021lora"),
        ):
            supported, reason, _ = one(evidence, QUOTE, source_id)
            assert not supported and reason

    def test_the_cited_title_supports_the_subject(self) -> None:
        """The claim may name the paper's subject from its title though the sentence does not."""
        evidence = "Only these small matrices are trained, greatly reducing the number of trainable parameters."
        assert one(evidence, "LoRA trains only small matrices, reducing trainable parameters.")[2] == 1.0

    def test_a_quote_only_claim_is_not_counted(self) -> None:
        """An object with only a citation and a quote, or whose text is its quote, says nothing of its own:
        checked as a quote, left out of claim_support."""
        for text in ("", QUOTE, f"  {QUOTE.lower()} "):
            (scored,) = claim_scores([ClaimRef(step="g", source_id="hu2021lora", evidence=QUOTE, claim=text)], SOURCES)
            assert (scored.counted, scored.quote_problem, scored.reason) == (
                False,
                None,
                "not counted: the claim is its quote",
            )
        assert (
            claim_support(claim_scores([ClaimRef(step="g", source_id="hu2021lora", evidence=QUOTE)], SOURCES)) is None
        )

    def test_a_misquote_without_text_still_fails_its_check(self) -> None:
        """A quote-only claim is not counted, but a bad quote is still reported as one."""
        (scored,) = claim_scores([ClaimRef(step="g", source_id="hu2021lora", evidence="LoRA is small")], SOURCES)
        assert (scored.counted, scored.supported) == (False, False) and scored.quote_problem


def sentence(text: str, *cites: str) -> ClaimScore:
    (scored,) = claim_scores(
        [ClaimRef(step="w", source_id=cites[0], evidence="", claim=text, quoted=False, cites=list(cites))],
        SOURCES,
        TOPIC,
    )
    return scored


class TestReportSentences:
    def test_a_sentence_its_source_supports_is_supported(self) -> None:
        """A prose sentence is scored against the sentence of its source holding most of its words."""
        scored = sentence(
            "LoRA keeps pretrained weights frozen and trains injected decomposition matrices.", "hu2021lora"
        )
        assert (scored.counted, scored.supported, scored.evidence) == (True, True, QUOTE)
        assert (
            scored.reason == "the evidence holds the claim's words (against its best-matching sentence of hu2021lora)"
        )

    def test_a_sentence_its_source_does_not_support_is_unsupported(self) -> None:
        """A fluent sentence whose words its cited source lacks is unsupported, with the words it lacks."""
        scored = sentence("LoRA doubles benchmark accuracy on reading comprehension.", "hu2021lora")
        assert (scored.counted, scored.supported) == (True, False)
        assert {"doubl", "benchmark", "accuracy"} <= set(scored.unsupported_words)

    def test_a_negated_sentence_is_unsupported(self) -> None:
        """A sentence turning its source around (same words, one negation) is unsupported."""
        scored = sentence(
            "LoRA does not freeze the pretrained model weights or inject decomposition matrices.", "hu2021lora"
        )
        assert (scored.counted, scored.supported, scored.negation_mismatch) == (True, False, True)

    def test_the_best_sentence_of_any_cited_source_counts(self) -> None:
        """A sentence citing two sources is held against the best sentence of either."""
        scored = sentence("QLoRA quantizes the frozen base model to four bits.", "hu2021lora", "qlora")
        assert (scored.supported, scored.source_id) == (True, "qlora")

    def test_a_copied_sentence_is_not_counted(self) -> None:
        """A report sentence that is a sentence of its source (after a joining word) is a quote: not counted."""
        scored = sentence(f"Moreover, {QUOTE[0].lower()}{QUOTE[1:]}", "hu2021lora")
        assert (scored.counted, scored.reason) == (False, "not counted: the sentence is a sentence of hu2021lora")

    def test_a_sentence_citing_an_unretrieved_source_is_unsupported(self) -> None:
        """A sentence whose citation names nothing retrieved cannot be supported; it is no misquote either."""
        scored = sentence("LoRA freezes weights.", "nowhere2020")
        assert (scored.supported, scored.quote_problem, scored.reason) == (
            False,
            None,
            "the sentence cites nowhere2020, never retrieved",
        )


class TestJudge:
    def test_a_judge_verdict_decides(self) -> None:
        """Where the judge says yes or no, its verdict decides over word overlap; unknown leaves overlap in charge."""
        claim = "LoRA keeps pretrained weights frozen and trains injected decomposition matrices."
        for verdict, expected in (("no", False), ("yes", True), ("unknown", True)):
            judged = ClaimVerdict(source_id="hu2021lora", evidence=QUOTE, claim=claim, verdict=verdict, reason="r")  # type: ignore[arg-type]
            (scored,) = claim_scores(
                [ClaimRef(step="r", source_id="hu2021lora", evidence=QUOTE, claim=claim)],
                SOURCES,
                TOPIC,
                {("hu2021lora", QUOTE, claim): judged},
            )
            assert (scored.supported, scored.judge) == (expected, verdict)

    def test_a_judge_cannot_save_a_misquote(self) -> None:
        """A claim whose quote is not a sentence of its source is never sent to the judge."""
        claims = [
            ClaimRef(step="r", source_id="hu2021lora", evidence="LoRA", claim="LoRA is small."),
            ClaimRef(step="r", source_id="hu2021lora", evidence=QUOTE, claim="LoRA freezes weights."),
            ClaimRef(step="r", source_id="hu2021lora", evidence=QUOTE, claim="LoRA freezes weights."),
            ClaimRef(step="r", source_id="hu2021lora", evidence=QUOTE, claim=""),
        ]
        assert judgeable_claims(claims, SOURCES) == [claims[1]]

    def test_a_report_sentence_is_judged_against_its_best_match(self) -> None:
        """A report sentence goes to the judge with its best-matching sentence, and the verdict decides."""
        claim = "LoRA keeps pretrained weights frozen and trains injected decomposition matrices."
        ref = ClaimRef(step="w", source_id="hu2021lora", evidence="", claim=claim, quoted=False, cites=["hu2021lora"])
        (judged,) = judgeable_claims([ref], SOURCES)
        assert judged.evidence == QUOTE
        verdict = ClaimVerdict(source_id="hu2021lora", evidence=QUOTE, claim=claim, verdict="no", reason="r")
        (scored,) = claim_scores([ref], SOURCES, TOPIC, {("hu2021lora", QUOTE, claim): verdict})
        assert (scored.supported, scored.judge) == (False, "no")
