"""Turning free text into a safe SQLite FTS5 query."""

from __future__ import annotations

import re

__all__ = ["STOPWORDS", "fts_query"]

_WORD = re.compile(r"[^\W_]+")
_MAX_TERMS = 24
_MAX_TERM_CHARS = 64
STOPWORDS = frozenset(
    "a about an and are as at be been by can do does for from has have how in into is it its of on or "
    "paper papers that the their this to was were what when which who why with".split()
)
"""Words that match nearly every document: dropped from a query unless nothing else is left."""


def fts_query(text: str) -> str | None:
    """Turn free text into a safe FTS5 query, or None if it holds no searchable word.

    Words are quoted, so FTS5 syntax in the text (quotes, ``:``, ``*``, ``NEAR``,
    ``AND``) is searched for as plain words rather than parsed. Terms are joined
    with OR and ranked by bm25, so a chunk matching more (and rarer) words ranks
    higher. Common words are dropped unless nothing else is left.

    >>> fts_query('LoRA: low-rank "adaptation"')
    '"lora" OR "low" OR "rank" OR "adaptation"'
    """
    terms = list(dict.fromkeys(word[:_MAX_TERM_CHARS] for word in _WORD.findall(text.lower())))
    content = [term for term in terms if term not in STOPWORDS] or terms
    return " OR ".join(f'"{term}"' for term in content[:_MAX_TERMS]) or None
