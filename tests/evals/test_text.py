"""Content words and negation: the cheap language model under claim support and the eval set's fact check."""

from __future__ import annotations

import pytest

from rolegraph.evals.text import content_stems, input_text, is_negated, stem


class TestStem:
    @pytest.mark.parametrize(
        "forms",
        [
            ("train", "trains", "trained", "training", "trainable"),
            ("model", "models", "modeling", "modelling"),
            ("matrices", "matrices"),
            ("adapt", "adaptation", "adapter", "adapters"),
            ("tokenizer", "tokenization", "tokenize"),
            ("freeze", "freezes"),
            ("retrieval", "retrieved", "retrieve"),
            ("language", "languages"),
        ],
    )
    def test_forms_of_a_word_meet(self, forms: tuple[str, ...]) -> None:
        """Inflected and derived forms of one word share a stem."""
        assert len({stem(f) for f in forms}) == 1

    def test_different_words_stay_apart(self) -> None:
        """Words that are not forms of each other keep different stems."""
        assert len({stem(w) for w in ("train", "transformer", "trace", "rank", "ranking")}) == 4  # rank = ranking


class TestContentStems:
    def test_stopwords_generic_words_and_ignored_out(self) -> None:
        """Function words, generic research words and the ignored stems are left out."""
        assert content_stems("The paper shows that LoRA is used for the fine-tuning of models") == {
            "lora",
            "fin",
            "tun",
            "model",
        }
        assert content_stems("LoRA fine-tunes models", ignore={"model"}) == {"lora", "fin", "tun"}

    def test_punctuation_and_case(self) -> None:
        """Hyphens split words, case and typographic apostrophes do not matter."""
        assert content_stems("Low-Rank") == content_stems("low rank") == {"low", "rank"}


class TestNegation:
    @pytest.mark.parametrize(
        "text",
        [
            "LoRA adds no latency.",
            "It does not help.",
            "It doesn't help.",
            "It doesn\u2019t help.",
            "never",
            "without it",
        ],
    )
    def test_negated(self, text: str) -> None:
        """'no', 'not', 'never', 'without' and n't forms negate a text."""
        assert is_negated(text)

    def test_not_negated(self) -> None:
        """Words merely containing 'no' (knowledge, note) do not."""
        assert not is_negated("Knowledge notes annotate the text of a node.")


def test_input_text() -> None:
    """Every text input, and text in list inputs, joined; numbers left out."""
    assert input_text({"topic": "LoRA", "questions": 2, "extra": ["adapters", 3]}) == "LoRA adapters"
