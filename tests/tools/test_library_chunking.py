"""Splitting text into chunks: whole paragraphs, bounded size, nothing lost."""

from __future__ import annotations

import random

import pytest

from rolegraph.tools.library.chunking import MAX_CHUNK_CHARS, chunk_text


def words(text: str) -> list[str]:
    return text.split()


class TestChunkText:
    """chunk_text."""

    def test_short_text_is_one_chunk_with_paragraphs_kept(self) -> None:
        """A note-sized text is one chunk; runs of spaces collapse, line and paragraph breaks stay."""
        text = "First  line\n  same paragraph.\n\n\n  Second.  \n"
        assert chunk_text(text) == ["First line\nsame paragraph.\n\nSecond."]

    @pytest.mark.parametrize("text", ["", "   ", "\n\n\n"])
    def test_blank_text_has_no_chunks(self, text: str) -> None:
        """Nothing to index gives no chunk."""
        assert chunk_text(text) == []

    def test_paragraphs_are_packed_up_to_the_target(self) -> None:
        """Paragraphs fill a chunk until it reaches about the target size, then a new chunk starts."""
        paragraphs = [f"Paragraph {i} " + "x" * 400 for i in range(9)]
        chunks = chunk_text("\n\n".join(paragraphs), target=1200, limit=1800)
        assert [c.count("Paragraph") for c in chunks] == [3, 3, 3]

    def test_a_long_paragraph_is_cut_between_sentences(self) -> None:
        """A paragraph over the limit becomes several chunks, each ending at a sentence end."""
        paragraph = " ".join(f"Sentence number {i} says something of moderate length here." for i in range(100))
        chunks = chunk_text(paragraph)
        assert len(chunks) > 2
        assert all(len(c) <= MAX_CHUNK_CHARS and c.endswith(".") for c in chunks)
        assert words(" ".join(chunks)) == words(paragraph)

    def test_a_sentence_longer_than_the_limit_is_cut_between_words(self) -> None:
        """Even a text with no sentence ends or spaces comes out in bounded chunks."""
        assert all(len(c) <= 100 for c in chunk_text("word " * 500, target=80, limit=100))
        assert [len(c) for c in chunk_text("y" * 250, target=80, limit=100)] == [100, 100, 50]

    def test_random_text_keeps_every_word_and_the_bound(self) -> None:
        """On random paragraphs, chunks never exceed the limit and hold every word in order."""
        rng = random.Random(3)
        for _ in range(50):
            text = "\n\n".join(
                " ".join("".join(rng.choices("abc.! ", k=rng.randint(1, 30))) for _ in range(rng.randint(0, 80)))
                for _ in range(rng.randint(0, 8))
            )
            chunks = chunk_text(text, target=200, limit=300)
            assert all(0 < len(c) <= 300 for c in chunks)
            assert words(" ".join(chunks)) == words(text)
