"""Gathering evidence by number: the engine offers ranked sentences, the model picks and rates them.

A gatherer (a role answering `EvidenceOutput`) is not asked to copy a quote. The
engine cuts the passages its step was given into sentences, ranks them by the
words they share with the task (the question and the topic; rarer words count
more, earlier passages a little more), and shows the best ones numbered. The
model answers with numbers and a relevance score for each::

    {"evidence": [{"sentence": 2, "relevance": 8}, {"sentence": 1, "relevance": 6}]}

which the engine turns into evidence: ``{source_id, evidence, relevance}``, each
a real sentence of its source by construction. A number costs a small model one
token where a copied sentence costs forty, and it cannot be misquoted.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from rolegraph.agents.evidence import opens_with_pronoun, sentences
from rolegraph.tools.library.documents import split_page_id

__all__ = [
    "MAX_CANDIDATES",
    "Candidate",
    "candidates",
    "compose_evidence",
    "content_words",
    "numbered",
    "picks_model",
]

MAX_CANDIDATES = 8
"""Sentences shown to the model: enough to choose from, few enough for a short prompt."""
PER_SOURCE = 5
"""At most this many sentences of one source are shown while other sources have sentences to show, so one
passage cannot crowd out the rest; slots still free are then filled with the best sentences left (a
question about one paper is offered `MAX_CANDIDATES` of its sentences, not `PER_SOURCE`)."""
MAX_PICKS = 4
"""At most this many pieces of evidence per question."""
MIN_PICKS = 4
"""At least this many (when as many are offered): a small model left free picks one, and one sentence
is a thin answer; a paragraph holds up to four (`extractive.MAX_SENTENCES`), and a question's evidence
should fill it."""
FOCUS_WEIGHT = 2.0
"""Weight of a word of the focus (the question) in ranking sentences."""
PASSAGE_WEIGHT = 0.5
"""Bonus of the search's best passage's sentences (falling to 0 for the last passage)."""
POSITION_WEIGHT = 4.0
"""Bonus of a passage's first sentence, falling to 0 at its `POSITION_SPAN`-th: a paper's (or a
note's) opening sentences state what it does."""
POSITION_SPAN = 6
NEWS_WEIGHT = 0.4
"""Bonus per content word a sentence adds beyond the query's (up to `NEWS_CAP`): a sentence that only
restates the question tells the reader nothing new."""
NEWS_CAP = 12
PAPER_WEIGHT = 3.0
"""Bonus of the sentences of the paper a question is about: the engine paired the question with it,
so its evidence should come from it first (two questions on one topic would otherwise pick the
same best sentences, and one of them would be left with nothing new)."""
OTHER_WEIGHT = 0.5
"""Weight of the task's other words (the topic, which every question shares: it says little about which
sentence answers this question, and the passages are on the topic already)."""

_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_STOPWORDS = frozenset(
    "a about above after all also an and any are as at be been being but by can could did do does doing "
    "each for from had has have how however if in into is it its itself may more most much no nor not of "
    "on one or other our out over own same should so some such than that the their them then there these "
    "they this those through to too under up very was we were what when where which while who whom why "
    "will with would you your question questions topic paper papers research study studies use used using".split()
)


def _stem(word: str) -> str:
    for suffix in ("ations", "ation", "ings", "ing", "ies", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    """The stems of `text`'s content words (lowercased, stopwords and one-letter words left out).

    >>> sorted(content_words("How does LoRA reduce the trainable parameters in fine-tuning?"))
    ['fine', 'lora', 'parameter', 'reduce', 'trainable', 'tuning']
    """
    found: set[str] = set()
    for word in _WORD.findall(text.lower()):
        # A hyphenated word counts as its parts: "fine-tuning" is "fine tuning" written another way.
        found.update(_stem(part) for part in word.split("-") if len(part) > 1 and part not in _STOPWORDS)
    return found


@dataclass(frozen=True)
class Candidate:
    """A sentence offered as evidence: its source, the sentence, and its rank score (higher is better)."""

    source_id: str
    sentence: str
    score: float


def candidates(
    query: str,
    passages: Sequence[tuple[str, str]],
    *,
    focus: str = "",
    prefer: str | None = None,
    limit: int | None = None,
    per_source: int | None = None,
) -> list[Candidate]:
    """The sentences of `passages` best matching `query`, best first.

    Args:
        query: What the evidence is for (the task: its question and topic).
        passages: ``(source id, text)`` in retrieval order (the first is the search's best match).
        focus: Words that matter most (the question): each weighs
            `FOCUS_WEIGHT`, the query's other words `OTHER_WEIGHT`.
        prefer: The source the question is about (its paper, or any page of that paper's
            document): its sentences get `PAPER_WEIGHT` more.
        limit: How many to keep (default `MAX_CANDIDATES`).
        per_source: How many of one source to keep before every source has had its turn (default
            `PER_SOURCE`); free slots are then filled with the best sentences left.

    A sentence scores the inverse document frequency (over all the sentences) of each
    query word it holds (weighted: `focus` words most), plus a little for coming from an
    earlier passage, more for opening its passage (a paper's first sentences say what it
    does), for each content word it adds beyond the query's (a sentence that restates the
    question says nothing new) and for being of the paper it should `prefer`; half that if it opens
    with a pronoun (``It``, ``This``, ``They`` ...), which out of its passage names nothing. A sentence
    opening "The paper ..." or "However, ..." is not marked down: it names its subject or only ties
    itself to the one before, and such sentences often hold a paper's findings (marking them down lost
    facts in the bundled eval: fact_coverage 0.68 → 0.50 over its 17 questions).
    """
    pool = [
        (rank, index, source_id, s)
        for rank, (source_id, text) in enumerate(passages)
        for index, s in enumerate(sentences(text, None))
    ]
    if not pool:
        return []
    words = [content_words(s) for _, _, _, s in pool]
    preferred = split_page_id(prefer)[0] if prefer else None
    focused = content_words(focus)
    wanted = content_words(query) | focused
    frequency = {w: sum(w in ws for ws in words) for w in wanted}
    weight = {w: FOCUS_WEIGHT if w in focused else OTHER_WEIGHT for w in wanted}
    idf = {w: (math.log((1 + len(pool)) / (1 + n)) + 1) * weight[w] for w, n in frequency.items()}
    scored = []
    for (rank, index, source_id, sentence), ws in zip(pool, words, strict=True):
        score = sum(idf[w] for w in wanted & ws)
        score += PASSAGE_WEIGHT * (len(passages) - rank) / len(passages)
        score += POSITION_WEIGHT * max(0.0, 1 - index / POSITION_SPAN)
        score += NEWS_WEIGHT * min(len(ws - wanted), NEWS_CAP)
        if preferred is not None and split_page_id(source_id)[0] == preferred:
            score += PAPER_WEIGHT
        if opens_with_pronoun(sentence):  # "It is ..." read out of its passage names nothing
            score /= 2
        scored.append(Candidate(source_id, sentence, round(score, 4)))
    limit = limit or MAX_CANDIDATES
    per_source = per_source or PER_SOURCE
    ranked = sorted(scored, key=lambda c: -c.score)
    kept: list[Candidate] = []
    taken: dict[str, int] = {}
    seen: set[str] = set()
    for capped in (True, False):  # each source up to its share first, then the best of what is left
        for candidate in ranked:
            if len(kept) == limit:
                return kept
            if (capped and taken.get(candidate.source_id, 0) >= per_source) or candidate.sentence in seen:
                continue
            taken[candidate.source_id] = taken.get(candidate.source_id, 0) + 1
            seen.add(candidate.sentence)
            kept.append(candidate)
    return kept


def numbered(offered: Sequence[Candidate], titles: Mapping[str, str] | None = None) -> str:
    """The candidates as the model sees them: ``[n] (source id) sentence``, one a line."""
    titles = titles or {}
    lines = []
    for number, candidate in enumerate(offered, start=1):
        title = titles.get(candidate.source_id)
        source = f"{candidate.source_id}, {title}" if title else candidate.source_id
        lines.append(f"[{number}] ({source}) {candidate.sentence}")
    return "\n".join(lines)


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


@functools.lru_cache(maxsize=32)
def picks_model(count: int) -> type[BaseModel]:
    """The answer a gatherer's model gives when `count` sentences are offered: up to `MAX_PICKS` numbers,
    each with a relevance of 0 to 10 (one model class per `count`, so its schema is built once)."""
    numbers: Any = Literal[tuple(range(1, count + 1))]  # the offered numbers, built at runtime
    # Relevance as an enum, not a range: grammars built from JSON Schema do not bound integers.
    relevance: Any = Literal[tuple(range(11))]
    pick: Any = create_model("Pick", __base__=_Answer, sentence=(numbers, ...), relevance=(relevance, ...))
    picks: Any = list[pick]
    return create_model(
        "Picks",
        __base__=_Answer,
        evidence=(picks, Field(min_length=min(MIN_PICKS, count), max_length=min(MAX_PICKS, count))),
    )


def compose_evidence(offered: Sequence[Candidate], answer: Mapping[str, Any]) -> dict[str, Any]:
    """The evidence a gatherer's picks name: ``{"evidence": [{source_id, evidence, relevance}]}``.

    A number picked twice counts once (its first rating); numbers are valid by the answer's schema.
    """
    evidence = []
    seen: set[int] = set()
    for pick in answer.get("evidence", []):
        number = int(pick["sentence"])
        if number in seen or not 1 <= number <= len(offered):
            continue
        seen.add(number)
        chosen = offered[number - 1]
        evidence.append({"source_id": chosen.source_id, "evidence": chosen.sentence, "relevance": pick["relevance"]})
    return {"evidence": evidence}
