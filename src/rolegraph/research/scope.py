"""What a review is about: the papers on its topic, the topic's key terms, and one search per question.

A search for the topic ranks the whole library; the papers *on* the topic are the
head of that ranking, up to its largest relative drop in score (the natural
break). They bound the review: the planner is shown their titles and the terms
they name, each question is searched with its paper's title and the topic, and
only their passages are offered as evidence (`rolegraph.research.evidence`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["key_terms", "natural_break", "queries", "scope"]

BREAK_RATIO = 0.85
"""A drop to less than this share of the score before it is a break; with no such drop, all papers stay."""
MAX_TERMS = 8

_NAME = re.compile(r"^\s*([^:]{2,40}):")
_HYPHENATED = re.compile(r"\b[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)+\b")
_ACRONYM = re.compile(r"\b[A-Z][A-Za-z]*[A-Z][A-Za-z]*s?\b")


def natural_break(scores: Sequence[float], *, at_most: int, ratio: float = BREAK_RATIO) -> int:
    """How many of `scores` (best first) to keep: up to the largest relative drop among the first `at_most`,
    if that drop goes below `ratio` of the score before it; else `at_most` (at least 1 when there is a score).

    >>> natural_break([11.7, 7.0, 3.9, 2.8], at_most=6)
    2
    >>> natural_break([3.8, 3.8, 3.7, 3.6, 3.5, 2.8, 2.3], at_most=6)
    5
    """
    head = [max(s, 1e-9) for s in scores[:at_most]]
    if len(head) <= 1:
        return len(head)
    drops = [(head[i + 1] / head[i], i + 1) for i in range(len(head) - 1)]
    deepest, cut = min(drops)
    return cut if deepest < ratio else len(head)


def _terms_of(title: str) -> list[str]:
    name = _NAME.match(title)
    names = [name.group(1).strip()] if name and len(name.group(1).split()) <= 3 else []
    return names + _HYPHENATED.findall(title) + _ACRONYM.findall(title)


def key_terms(titles: Sequence[str], limit: int = MAX_TERMS) -> list[str]:
    """Terms the titles name, best paper first: each title's short name before a colon (``LoRA``),
    hyphenated terms (``Parameter-Efficient``) and acronyms (``NLP``); the first term of each title
    before any title's second (so ``terms[i]`` is the i-th paper's own, while every title has one);
    each term once, whatever its case."""
    per_title = [_terms_of(title) for title in titles]
    found: dict[str, str] = {}
    for depth in range(max((len(t) for t in per_title), default=0)):
        for terms in per_title:
            if depth < len(terms):
                found.setdefault(terms[depth].lower(), terms[depth])
    return list(found.values())[:limit]


def _document(hit: Mapping[str, Any]) -> str:
    return str(hit.get("document") or hit.get("id"))


def scope(hits: list[dict[str, Any]], topic: str, max_papers: int = 6) -> dict[str, Any]:
    """The papers on `topic` among a topic search's `hits` (best first), their titles and key terms.

    Args:
        hits: ``library_search``'s data for the topic: ``id``, ``title``, ``score`` (and ``document``
            when a hit is a passage of a longer document).
        topic: The topic (kept in the output for the steps after).
        max_papers: At most this many papers.

    Returns:
        ``{"topic", "papers": [{"id", "title", "score"}], "titles": {id: title}, "terms": [...],
        "sources": [ids]}``; ``id`` is the best hit's id of each paper (what is cited).
    """
    best: dict[str, dict[str, Any]] = {}
    for hit in sorted(hits, key=lambda h: -float(h.get("score", 0.0))):
        best.setdefault(_document(hit), {"score": 0.0, **hit})
    ranked = list(best.values())
    kept = ranked[: natural_break([float(h.get("score", 0.0)) for h in ranked], at_most=max_papers)]
    papers = [{"id": h["id"], "title": str(h.get("title", "")), "score": round(float(h["score"]), 3)} for h in kept]
    return {
        "topic": topic,
        "papers": papers,
        "titles": {p["id"]: p["title"] for p in papers},
        "terms": key_terms([p["title"] for p in papers]),
        "sources": [p["id"] for p in papers],
    }


_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_COMMON = frozenset("a an and are as by do does for from how in is it of on or the to what which why with".split())


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _COMMON and len(w) > 1}


def _paper_for(question: str, titles: Mapping[str, str], taken: set[str]) -> str | None:
    """The untaken paper whose title shares the most words with `question` (scope order breaks ties)."""
    free = [p for p in titles if p not in taken]
    if not free:
        return None
    asked = _words(question)
    best = max(free, key=lambda p: (len(asked & _words(titles[p])), -free.index(p)))
    return best if asked & _words(titles[best]) else free[0]


def _clipped(text: str, limit: int) -> str:
    """`text` cut at a word boundary to at most `limit` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0]


def queries(
    questions: list[str],
    scope: dict[str, Any],
    topic: str,
    papers: list[str] | None = None,
    limit: int = 5,
    max_chars: int = 200,
) -> dict[str, Any]:
    """One search per question: the question, the title of the paper it is about, and the topic.

    A question's paper is the one `papers` names for it (a planner that answers with papers), if
    that paper is in scope and not taken by an earlier question; else the paper not yet taken
    whose title shares the most words with the question, or, sharing none, the first not yet
    taken in scope order (the planner was asked one question per paper, in order). So the
    questions spread over the topic's papers. Repeated questions are asked once. A query is cut
    at a word to `max_chars` (``library_search`` takes 200), the topic's end first.

    Returns:
        ``{"items": [{"question", "paper", "title", "query"}]}``, at most `limit` items.
    """
    titles: dict[str, str] = dict(scope.get("titles", {}))
    papers = papers or []
    taken: set[str] = set()
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, question in enumerate(questions):
        if question.strip().lower() in seen or len(items) >= limit:
            continue
        seen.add(question.strip().lower())
        named = papers[index] if index < len(papers) else None
        if named not in titles or named in taken:
            named = _paper_for(question, titles, taken)
        if named is not None:
            taken.add(named)
        title = titles.get(named or "", "")
        query = _clipped(f"{question} {title} {topic}", max_chars)
        items.append({"question": question, "paper": named, "title": title, "query": query})
    return {"items": items}
