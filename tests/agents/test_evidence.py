"""Evidence: one segmenter for what is offered and what is accepted; every bad quote refused with its reason."""

from __future__ import annotations

import pytest

from rolegraph.agents.evidence import (
    MIN_QUOTE_CHARS,
    is_quotable,
    quote_problem,
    segment,
    sentences,
)

LORA = """\
# LoRA

LoRA freezes the pretrained model weights and injects trainable rank decomposition matrices.
The change to a weight matrix is the product of two low-rank matrices, as Hu et al. (2021) show.

- Only the small matrices are trained.
- LoRA adds no inference latency, unlike adapter layers.
"""
QLORA = "QLoRA backpropagates gradients through a frozen, 4-bit quantized model into Low-Rank Adapters."
TEXTS = {"lora": LORA, "qlora": QLORA, "empty": "", "tiny": "Too short. Also tiny."}
FIRST = "LoRA freezes the pretrained model weights and injects trainable rank decomposition matrices."


class TestSegment:
    def test_blocks_and_sentences(self) -> None:
        """Headings and list items are blocks of their own (markers dropped); 'et al.' does not end a sentence."""
        assert segment(LORA) == (
            "LoRA",
            FIRST,
            "The change to a weight matrix is the product of two low-rank matrices, as Hu et al. (2021) show.",
            "Only the small matrices are trained.",
            "LoRA adds no inference latency, unlike adapter layers.",
        )

    def test_initials_do_not_end_a_sentence(self) -> None:
        """A capital initial ('Edward J. Hu') is not a sentence end."""
        assert segment("The paper by Edward J. Hu was widely read. It is short.") == (
            "The paper by Edward J. Hu was widely read.",
            "It is short.",
        )

    def test_quotable_sentences_are_the_grammar_offer(self) -> None:
        """`sentences` keeps the segments of at least 20 characters and 4 words: what the grammar offers."""
        assert sentences(LORA) == [s for s in segment(LORA) if is_quotable(s)]
        assert "LoRA" not in sentences(LORA)
        assert not is_quotable("Low-rank adaptation matrices")  # 28 characters, but 3 words
        assert is_quotable("Only the small matrices are trained.")
        assert not is_quotable("Twenty characters!!!")  # 20 characters, 2 words


class TestQuoteProblem:
    def test_a_whole_sentence_is_accepted(self) -> None:
        """A quotable sentence of the cited source passes, whatever its line wrapping."""
        assert quote_problem(FIRST, "lora", TEXTS) is None
        assert quote_problem("Only the small matrices are trained.", "lora", TEXTS) is None

    def test_whitespace_and_final_stop_do_not_matter(self) -> None:
        """Runs of spaces, newlines, typographic quotes and a missing final stop are not held against a quote."""
        spaced = "LoRA  freezes the pretrained\nmodel weights and injects   trainable rank decomposition matrices"
        assert quote_problem(spaced, "lora", TEXTS) is None

    @pytest.mark.parametrize("blank", ["", " ", "\n\t "])
    def test_blanks_are_refused(self, blank: str) -> None:
        """A blank quote is refused as blank."""
        assert quote_problem(blank, "lora", TEXTS) == "the evidence for lora is blank: copy a whole sentence of lora"

    @pytest.mark.parametrize("short", ["a", "LoRA", "low-rank matrices", "LoRA is good."])
    def test_short_quotes_are_refused(self, short: str) -> None:
        """Single words and phrases are too short, even when they occur in the source."""
        problem = quote_problem(short, "lora", TEXTS)
        assert problem is not None and "is too short to be evidence" in problem
        assert f"at least {MIN_QUOTE_CHARS} characters and 4 words" in problem

    def test_a_fragment_is_refused_with_its_whole_sentence(self) -> None:
        """Part of a sentence is refused, and the whole sentence is shown for the repair."""
        problem = quote_problem("injects trainable rank decomposition matrices", "lora", TEXTS)
        assert problem == (
            "'injects trainable rank decomposition matrices' is part of a sentence of lora, not a whole one: "
            f"quote the whole sentence, {FIRST!r}"
        )

    def test_a_misquote_is_refused_with_the_closest_sentence(self) -> None:
        """A changed word (here a negation) makes it no sentence of the source; the closest one is named."""
        misquote = (
            "LoRA does not freeze the pretrained model weights and injects trainable rank decomposition matrices."
        )
        problem = quote_problem(misquote, "lora", TEXTS)
        assert problem is not None and problem.endswith(f"(the closest is {FIRST!r})")
        assert "is not a sentence of lora: copy one of its sentences exactly" in problem

    def test_a_sentence_of_another_source_is_named(self) -> None:
        """A real sentence of another source, cited to this one, is refused naming the source it belongs to."""
        assert quote_problem(QLORA, "lora", TEXTS) == (
            f"{QLORA[:79] + '…'!r} is a sentence of qlora, not of lora: cite qlora with it"
        )

    def test_two_sentences_at_once_are_refused(self) -> None:
        """Two sentences glued together are not one piece of evidence."""
        both = "Only the small matrices are trained. LoRA adds no inference latency, unlike adapter layers."
        problem = quote_problem(both, "lora", TEXTS)
        assert problem is not None and "is 2 sentences of lora" in problem

    def test_a_source_with_nothing_quotable(self) -> None:
        """A source with no text, or only short sentences, cannot be quoted: the repair is to cite another."""
        for source in ("empty", "tiny"):
            assert quote_problem("Some sentence that is long enough.", source, TEXTS) == (
                f"{source} has no sentence long enough to quote: cite another source, or leave this claim out"
            )

    def test_an_unretrieved_source(self) -> None:
        """A source the agent never retrieved has nothing to quote."""
        assert quote_problem(FIRST, "ghost", TEXTS) == "ghost was never retrieved, so nothing can be quoted from it"
