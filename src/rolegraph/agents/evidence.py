"""Evidence is a sentence of its source: one segmenter, used to offer quotes and to check them.

A source's text is cut into sentences once (`segment`): blocks at blank lines
and markdown block starts (headings, list items, quotes, table rows), then
sentences at ``.``, ``!`` or ``?`` followed by a space and a capital, digit,
quote or bracket, except after an abbreviation (``et al.``, ``e.g.``) or an
initial (``J.``). The quotable sentences (`sentences`) are those of at least
`MIN_QUOTE_CHARS` characters and `MIN_QUOTE_WORDS` words, and at most
`MAX_QUOTE_CHARS`. The grammar offers a model the first few of them; validation
(`quote_problem`) accepts any of them, for every model, and says what is wrong
with anything else: a blank, a fragment of a sentence, a sentence of another
source, or words the source does not have.

Quotes are compared with whitespace collapsed, typographic quotes made plain
and the final ``.``, ``!`` or ``?`` optional; everything else must match.
"""

from __future__ import annotations

import difflib
import functools
import re
import unicodedata
from collections.abc import Mapping

__all__ = [
    "MAX_QUOTE_CHARS",
    "MAX_SENTENCES_PER_SOURCE",
    "MIN_QUOTE_CHARS",
    "MIN_QUOTE_WORDS",
    "collapse_whitespace",
    "is_quotable",
    "leans_on_context",
    "opens_with_connective",
    "opens_with_pronoun",
    "quote_problem",
    "segment",
    "sentences",
]

MIN_QUOTE_CHARS = 20
"""A quote shorter than this is not evidence of anything."""
MIN_QUOTE_WORDS = 4
"""Nor is one of fewer words (``"Low-rank adaptation matrices"`` is a phrase, not a finding)."""
MAX_QUOTE_CHARS = 400
"""Longer sentences are not offered (nor can a `Quote` field hold them)."""
MAX_SENTENCES_PER_SOURCE = 12
"""Quotable sentences offered per source: enough to choose from, few enough for a small grammar."""

_SPACE = re.compile(r"\s+")
_BLOCK_BREAK = re.compile(r"\n[ \t]*\n|\n(?=[ \t]*(?:#{1,6}\s|[-*+>|]\s|\d{1,3}[.)]\s))")
_BLOCK_MARKER = re.compile(r"^(?:#{1,6}|[-*+>|]|\d{1,3}[.)])\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[\u201c\u2018])")
_ABBREVIATIONS = frozenset(
    "al e.g i.e etc cf vs fig figs eq eqs sec no vol pp ch approx resp dr mr mrs ms prof st jr sr".split()
)
_INITIAL = re.compile(r"(?:^|\s)[A-Z]\.$")
_PLAIN_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})
_HINT_CHARS = 160


def collapse_whitespace(text: str) -> str:
    """`text` with runs of whitespace collapsed, for comparing quotes with sources."""
    return _SPACE.sub(" ", text).strip()


def _ends_in_abbreviation(piece: str) -> bool:
    last = piece.rsplit(maxsplit=1)[-1] if piece.strip() else ""
    return last.rstrip(".").lstrip("(").lower() in _ABBREVIATIONS or bool(_INITIAL.search(piece))


def _split_block(block: str) -> list[str]:
    found: list[str] = []
    for piece in _SENTENCE_END.split(block):
        if found and _ends_in_abbreviation(found[-1]):
            found[-1] = f"{found[-1]} {piece}"
        else:
            found.append(piece)
    return found


@functools.lru_cache(maxsize=512)
def segment(text: str) -> tuple[str, ...]:
    """Every sentence of `text`, in order, whitespace collapsed (any length; see `sentences`)."""
    found: list[str] = []
    for block in _BLOCK_BREAK.split(text):
        flat = _BLOCK_MARKER.sub("", collapse_whitespace(block))
        if flat:
            found += [s for s in _split_block(flat) if s]
    return tuple(found)


def is_quotable(sentence: str) -> bool:
    """Whether a sentence is long enough (and short enough) to be offered and accepted as evidence."""
    return MIN_QUOTE_CHARS <= len(sentence) <= MAX_QUOTE_CHARS and len(sentence.split()) >= MIN_QUOTE_WORDS


_CONNECTIVE = re.compile(
    r"^(?:However|Instead|Similarly|Likewise|Moreover|Furthermore|Also|Additionally|Thus|Hence|Therefore"
    r"|Consequently|Finally|Then|Second|Secondly|Third|Lastly|Nevertheless|Nonetheless|Conversely"
    r"|In (?:addition|contrast|particular|turn|practice)|As a result|On the other hand|By contrast)\b"
)
_PRONOUN = re.compile(r"^(?:It|Its|This|These|They|Their|Them|Such|That|Those|He|She|His|Her)\b")
_REFERENCE = re.compile(r"^The (?:authors?|paper|former|latter|same|method|approach|proposed|above)\b")


def opens_with_connective(sentence: str) -> bool:
    """Whether `sentence` opens with a word tying it to a sentence before (``However``, ``In addition`` ...).

    >>> opens_with_connective("However, adapters add latency."), opens_with_connective("Adapters add latency.")
    (True, False)
    """
    return _CONNECTIVE.match(sentence.lstrip()) is not None


def opens_with_pronoun(sentence: str) -> bool:
    """Whether `sentence` opens with a pronoun (``It``, ``This``, ``They`` ...): out of its passage it names nothing.

    >>> opens_with_pronoun("These reflections are kept."), opens_with_pronoun("The paper shows it.")
    (True, False)
    """
    return _PRONOUN.match(sentence.lstrip()) is not None


def leans_on_context(sentence: str) -> bool:
    """Whether `sentence`, read out of its passage, leans on one before it: it opens with a pronoun or a
    reference (``It``, ``This``, ``The authors`` ...) or a connective (`opens_with_connective`), so it names
    nothing or ties itself to something the reader was not shown.

    >>> leans_on_context("The authors further report better robustness."), leans_on_context("LoRA freezes W.")
    (True, False)
    """
    return (
        opens_with_pronoun(sentence)
        or _REFERENCE.match(sentence.lstrip()) is not None
        or opens_with_connective(sentence)
    )


def sentences(text: str, limit: int | None = MAX_SENTENCES_PER_SOURCE) -> list[str]:
    """The quotable sentences of a source text (`is_quotable`), in order, without repeats; the first `limit`."""
    found = list(dict.fromkeys(s for s in segment(text) if is_quotable(s)))
    return found if limit is None else found[:limit]


def _key(text: str) -> str:
    """What two quotes must share to be the same: whitespace, typographic quotes and the final stop aside."""
    plain = collapse_whitespace(unicodedata.normalize("NFKC", text).translate(_PLAIN_QUOTES))
    return plain.rstrip(".!?").rstrip()


@functools.lru_cache(maxsize=512)
def _keyed(text: str) -> dict[str, str]:
    return {_key(s): s for s in segment(text)}


def _show(text: str, limit: int = 80) -> str:
    flat = collapse_whitespace(text)
    return repr(flat if len(flat) <= limit else flat[: limit - 1] + "…")


def quote_problem(quote: str, source_id: str, texts: Mapping[str, str]) -> str | None:
    """What is wrong with `quote` as evidence from `source_id`, or None if it is one of its quotable sentences.

    Args:
        quote: The evidence an answer gives.
        source_id: The source it cites.
        texts: Source id -> text, for the cited source and any others the answer could have
            meant (a sentence of another source is named as such).
    """
    key = _key(quote)
    if not key:
        return f"the evidence for {source_id} is blank: copy a whole sentence of {source_id}"
    text = texts.get(source_id)
    if text is None:
        return f"{source_id} was never retrieved, so nothing can be quoted from it"
    found = _keyed(text).get(key)
    if found is not None and is_quotable(found):
        return None
    flat = collapse_whitespace(quote)
    if len(flat) < MIN_QUOTE_CHARS or len(flat.split()) < MIN_QUOTE_WORDS:
        return (
            f"{_show(quote)} is too short to be evidence ({len(flat)} characters, {len(flat.split())} words): "
            f"quote a whole sentence of {source_id} of at least {MIN_QUOTE_CHARS} characters and "
            f"{MIN_QUOTE_WORDS} words"
        )
    if found is not None:
        return f"{_show(quote)} is over {MAX_QUOTE_CHARS} characters: quote a shorter sentence of {source_id}"
    parts = segment(quote)
    if len(parts) > 1 and all(_key(p) in _keyed(text) for p in parts):
        return f"{_show(quote)} is {len(parts)} sentences of {source_id}: quote one sentence as each piece of evidence"
    quotable = sentences(text, limit=None)
    whole = next((s for s in quotable if key in _key(s)), None)
    if whole is not None:
        return (
            f"{_show(quote)} is part of a sentence of {source_id}, not a whole one: "
            f"quote the whole sentence, {_show(whole, _HINT_CHARS)}"
        )
    elsewhere = next((other for other, t in texts.items() if other != source_id and key in _keyed(t)), None)
    if elsewhere is not None:
        return f"{_show(quote)} is a sentence of {elsewhere}, not of {source_id}: cite {elsewhere} with it"
    if not quotable:
        return f"{source_id} has no sentence long enough to quote: cite another source, or leave this claim out"
    close = difflib.get_close_matches(flat, quotable, n=1, cutoff=0.6)
    hint = f"the closest is {_show(close[0], _HINT_CHARS)}" if close else f"e.g. {_show(quotable[0], _HINT_CHARS)}"
    return f"{_show(quote)} is not a sentence of {source_id}: copy one of its sentences exactly ({hint})"
