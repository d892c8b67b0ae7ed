"""Splitting a document's text into chunks: the unit the library ranks and an agent quotes from.

A chunk is a run of whole paragraphs of about `CHUNK_CHARS` characters; a
paragraph longer than `MAX_CHUNK_CHARS` is cut between sentences, and a
sentence longer than that between words. Chunks never cross a page of a PDF,
so each carries the page it came from. Runs of spaces are collapsed; line
and paragraph breaks stay (quotes are compared with whitespace normalised, so
a sentence broken across lines is still one sentence).

A note of the demo library (120 to 220 words) is a single chunk.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

__all__ = ["CHUNK_CHARS", "MAX_CHUNK_CHARS", "chunk_text"]

CHUNK_CHARS = 1200
"""Paragraphs are packed into a chunk until it holds about this many characters."""
MAX_CHUNK_CHARS = 1800
"""No chunk is longer: about 450 tokens, so a few fit in a small model's context with room to spare."""

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")


def chunk_text(text: str, *, target: int = CHUNK_CHARS, limit: int = MAX_CHUNK_CHARS) -> list[str]:
    """`text` as chunks of whole paragraphs (about `target` characters, never over `limit`), in order.

    >>> chunk_text("One.\\n\\nTwo  words,\\nthree.\\n")
    ['One.\\n\\nTwo words,\\nthree.']
    """
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for piece in _pieces(text, limit):
        if current and size + len(piece) + 2 > limit:
            chunks.append("\n\n".join(current))
            current, size = [], 0
        current.append(piece)
        size += len(piece) + 2
        if size >= target:
            chunks.append("\n\n".join(current))
            current, size = [], 0
    if current:
        chunks.append("\n\n".join(current))
    return chunks


def _pieces(text: str, limit: int) -> Iterator[str]:
    """Paragraphs with whitespace collapsed; those over `limit` as runs of sentences (or words) under it."""
    for paragraph in _PARAGRAPH_BREAK.split(text):
        # Line breaks inside a paragraph stay (a note reads as it was written); runs of spaces go.
        flat = "\n".join(line for line in (" ".join(part.split()) for part in paragraph.splitlines()) if line)
        if not flat:
            continue
        if len(flat) <= limit:
            yield flat
            continue
        run = ""
        for sentence in _SENTENCE_END.split(flat):
            for part in _cut_words(sentence, limit):
                if run and len(run) + 1 + len(part) > limit:
                    yield run
                    run = ""
                run = f"{run} {part}" if run else part
        if run:
            yield run


def _cut_words(sentence: str, limit: int) -> Iterator[str]:
    """`sentence` as is, or, if longer than `limit`, cut between words (or anywhere, for a word that long)."""
    while len(sentence) > limit:
        cut = sentence.rfind(" ", 0, limit)
        cut = cut if cut > limit // 2 else limit
        yield sentence[:cut].rstrip()
        sentence = sentence[cut:].lstrip()
    if sentence:
        yield sentence
