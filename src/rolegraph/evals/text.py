"""Words that carry meaning, cheaply: the content words of a text as light stems, and its negation.

The metrics compare a claim with its evidence, and a fact with a question's
inputs, by their content words: lowercased, stopwords and generic research
words out, each reduced to a stem by stripping common English suffixes
(``training``, ``trained``, ``trainable`` → ``train``; ``matrices`` →
``matric``). The stemmer is deliberately small and predictable: both sides of
a comparison go through it, so what matters is that the same word in another
form meets itself, not that the stem is a dictionary word.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "GENERIC_WORDS",
    "NEGATIONS",
    "STOPWORDS",
    "content_stems",
    "input_text",
    "is_negated",
    "stem",
    "words",
]

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have having
    he her here hers herself him himself his how i if in into is it its itself just me more most my myself
    nor of off on once only or other our ours ourselves out over own same she should so some such than that
    the their theirs them themselves then there these they this those through to too under until up very was
    we were what when where which while who whom why will with would you your yours yourself yourselves
    may might must shall one ones via per etc e g i""".split()
)
"""Function words: they say nothing about what a claim claims."""

GENERIC_WORDS = frozenset(
    """use used uses using based show shows shown showed propose proposes proposed present presents presented
    paper papers study studies work works approach approaches method methods result results technique
    techniques new allow allows allowed make makes made help helps many much well way ways thing things
    various several different important key main mainly often also first""".split()
)
"""Words any research sentence has: a claim made of them and the topic says nothing."""

NEGATIONS = frozenset("not no never without cannot nor none neither nothing nobody lack lacks".split())
"""Words that turn a statement around (``n't`` endings count too)."""

_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
_PLAIN = str.maketrans({"\u2018": "'", "\u2019": "'"})
# Longest first; each (suffix, replacement), applied once, keeping a stem of at least 3 letters.
_SUFFIXES = (
    ("ational", "ate"),
    ("ization", "ize"),
    ("isation", "ize"),
    ("fulness", ""),
    ("iveness", ""),
    ("ations", ""),
    ("ation", ""),
    ("itions", ""),
    ("ition", ""),
    ("ements", ""),
    ("ement", ""),
    ("ments", ""),
    ("ment", ""),
    ("nesses", ""),
    ("ness", ""),
    ("ities", ""),
    ("ity", ""),
    ("ively", ""),
    ("ative", ""),
    ("ive", ""),
    ("ables", ""),
    ("able", ""),
    ("ibles", ""),
    ("ible", ""),
    ("ingly", ""),
    ("ings", ""),
    ("ing", ""),
    ("edly", ""),
    ("ies", "y"),
    ("ied", "y"),
    ("ers", ""),
    ("er", ""),
    ("ed", ""),
    ("es", ""),
    ("ly", ""),
    ("als", ""),
    ("al", ""),
    ("s", ""),
)
_KEEP_S = ("ss", "us", "is")
_SKIP = STOPWORDS | GENERIC_WORDS | NEGATIONS
_VOWELS = frozenset("aeiouy")


def words(text: str) -> list[str]:
    """The words of `text`, Unicode-folded and lowercased (an apostrophe stays inside a word: ``don't``)."""
    folded = unicodedata.normalize("NFKC", text).translate(_PLAIN).casefold()
    return _TOKEN.findall(folded)


def stem(word: str) -> str:
    """A light stem of a lowercased word: one common suffix off, a final ``e`` and a doubled consonant undone."""
    if len(word) <= 3 or not word.isalpha():
        return word
    for suffix, replacement in _SUFFIXES:
        if not word.endswith(suffix):
            continue
        if suffix == "s" and word.endswith(_KEEP_S):
            break
        base = word[: -len(suffix)] + replacement
        if len(base) >= 3 and any(c in _VOWELS for c in base):
            word = base
        break
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in _VOWELS | {"s"}:
        word = word[:-1]
    return word


def content_stems(text: str, *, ignore: Iterable[str] = ()) -> set[str]:
    """The stems of `text`'s content words: no stopwords, generic words, negations or `ignore` stems."""
    stems = {stem(w) for w in words(text) if w not in _SKIP and not w.endswith("n't")}
    return stems - set(ignore) - _GENERIC_STEMS


_GENERIC_STEMS = frozenset(stem(w) for w in GENERIC_WORDS)


def is_negated(text: str) -> bool:
    """Whether `text` holds a negation (``not``, ``no``, ``never``, ``without``, a ``n't`` word, ...)."""
    return any(w in NEGATIONS or w.endswith("n't") for w in words(text))


def input_text(inputs: Mapping[str, Any]) -> str:
    """The text of a question's inputs: every string value (and string in a list), joined."""
    parts: list[str] = []
    for value in inputs.values():
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, list | tuple):
            parts += [v for v in value if isinstance(v, str)]
    return " ".join(parts)
