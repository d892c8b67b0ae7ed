"""Gathering evidence by number: sentences ranked for a question, picks checked by schema, picks turned into quotes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from rolegraph.agents.citations import answer_schema
from rolegraph.agents.gathering import Candidate, candidates, compose_evidence, content_words, numbered, picks_model

QLORA = (
    "QLoRA fine-tunes a frozen 4-bit quantized model through low-rank adapters. "
    "It is widely used. "
    "QLoRA introduces the 4-bit NormalFloat data type for normally distributed weights."
)
LORA = (
    "LoRA is a parameter-efficient fine-tuning method for large language models. "
    "LoRA freezes the pretrained weights and trains low-rank matrices."
)


class TestContentWords:
    def test_stems_without_stopwords_and_hyphenated_parts(self) -> None:
        """Content words are lowercased stems; stopwords go; a hyphenated word counts as its parts."""
        assert content_words("How does LoRA reduce the trainable parameters in fine-tuning?") == {
            "lora",
            "reduce",
            "trainable",
            "parameter",
            "fine",
            "tuning",
        }


class TestCandidates:
    def test_question_words_outrank_the_topic(self) -> None:
        """A question's own words (the focus) weigh more than the topic's, which every sentence shares."""
        task = "Question: What data type does QLoRA use?\nTopic: parameter-efficient fine-tuning of language models"
        ranked = candidates(task, [("lora", LORA), ("qlora", QLORA)], focus="What data type does QLoRA use?")
        assert ranked[0] == Candidate("qlora", ranked[0].sentence, ranked[0].score)
        assert "NormalFloat data type" in ranked[0].sentence

    def test_a_sentence_opening_with_a_pronoun_ranks_lower(self) -> None:
        """ "It is ..." names nothing out of its passage: it ranks below an otherwise equal sentence."""
        first = ("a", "It is widely adopted by researchers in practice.")
        second = ("b", "Researchers widely adopted the method in practice.")
        ranked = candidates("adopted in practice", [first, second])
        assert [c.source_id for c in ranked] == ["b", "a"]

    @pytest.mark.parametrize(("opening", "kept"), [("This", False), ("The paper notes that", True), ("However,", True)])
    def test_only_a_pronoun_opening_is_marked_down(self, opening: str, kept: bool) -> None:
        """ "This ..." scores half the same sentence without it; "The paper ..." and "However, ..." keep their
        score (they name their subject or only tie themselves to the one before, and often hold findings)."""
        plain = candidates(
            "prefix tuning adopted in practice", [("a", "Prefix tuning was widely adopted in practice.")]
        )
        opened = f"{opening} prefix tuning was widely adopted in practice."
        scored = candidates("prefix tuning adopted in practice", [("a", opened)])
        assert (scored[0].score >= plain[0].score) is kept

    def test_a_passage_opening_ranks_higher(self) -> None:
        """Of two equal sentences, the one that opens its passage ranks higher (a paper's opening says what it does)."""
        text = "Researchers adopted the method in practice. Practitioners adopted the method in practice."
        ranked = candidates("adopted in practice", [("a", text)])
        assert [c.sentence[:3] for c in ranked] == ["Res", "Pra"]

    def test_limits_per_source_and_in_all(self) -> None:
        """Each source's best `per_source` first, then the best left fill the free slots; `limit` in all, once each."""
        ranked = candidates("LoRA QLoRA", [("qlora", QLORA), ("lora", LORA), ("again", LORA)], limit=4, per_source=1)
        assert [c.source_id for c in ranked[:3]] == ["qlora", "lora", "again"]
        assert len(ranked) == 4 and len({c.sentence for c in ranked}) == 4
        assert len(candidates("LoRA QLoRA", [("qlora", QLORA), ("lora", LORA)], limit=2)) == 2

    def test_one_source_fills_every_slot(self) -> None:
        """A question about one paper is offered `limit` of its sentences, not just `per_source`."""
        assert [c.source_id for c in candidates("LoRA", [("lora", LORA)], limit=2, per_source=1)] == ["lora"] * 2

    def test_no_passages_no_candidates(self) -> None:
        """Nothing to read gives nothing to offer (the gatherer then calls no model)."""
        assert candidates("LoRA", []) == []
        assert candidates("LoRA", [("empty", "")]) == []

    def test_numbered_listing(self) -> None:
        """The model sees each candidate as [n] (source) sentence."""
        offered = [Candidate("a", "One sentence here is long.", 1.0), Candidate("b", "Two sentences are long.", 0.5)]
        assert numbered(offered) == "[1] (a) One sentence here is long.\n[2] (b) Two sentences are long."


class TestPicks:
    def test_schema_offers_only_the_numbers_shown_and_a_relevance_enum(self) -> None:
        """Picks are numbers of offered sentences (an enum), 4 of them, each rated 0-10 (an enum too)."""
        schema = answer_schema(picks_model(5))
        evidence = schema["properties"]["evidence"]
        assert (evidence["minItems"], evidence["maxItems"]) == (4, 4)
        pick = evidence["items"]["properties"]
        assert pick["sentence"]["enum"] == [1, 2, 3, 4, 5]
        assert pick["relevance"]["enum"] == list(range(11))

    def test_out_of_range_picks_are_invalid(self) -> None:
        """A number that was not offered, or a relevance over 10, fails validation."""
        model = picks_model(2)
        with pytest.raises(ValidationError):
            model.model_validate({"evidence": [{"sentence": 3, "relevance": 5}, {"sentence": 1, "relevance": 5}]})
        with pytest.raises(ValidationError):
            model.model_validate({"evidence": [{"sentence": 1, "relevance": 11}, {"sentence": 2, "relevance": 5}]})

    def test_one_offered_sentence_needs_one_pick(self) -> None:
        """With one sentence offered, one pick is enough."""
        evidence = answer_schema(picks_model(1))["properties"]["evidence"]
        assert (evidence["minItems"], evidence["maxItems"]) == (1, 1)

    def test_compose_turns_numbers_into_quotes(self) -> None:
        """Picks become {source_id, evidence, relevance} with the offered sentence; a repeated number counts once."""
        offered = [Candidate("a", "Sentence one is here.", 2.0), Candidate("b", "Sentence two is here.", 1.0)]
        answer = {"evidence": [{"sentence": 2, "relevance": 7}, {"sentence": 2, "relevance": 1}]}
        assert compose_evidence(offered, answer) == {
            "evidence": [{"source_id": "b", "evidence": "Sentence two is here.", "relevance": 7}]
        }
