"""What a question's relevant sources are when it names no gold: the library's best matches for its topic.

``topic_relevance`` (`evals.metrics`) is the share of a report's cited sources that
are relevant. With gold sources, relevant means gold. Without, it means the
`TOPIC_MATCHES` best-matching documents of the workflow's library for the
question's topic (its ``topic`` input, or all its text inputs joined), ranked by
the library's own BM25 search over chunks, one chunk per document: the papers a
reader searching the library for the topic would find first. A workflow without
a library has no such matches, and a question without gold on it gets no
``topic_relevance``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rolegraph.errors import LibraryError
from rolegraph.evals.spec import EvalQuestion
from rolegraph.evals.text import input_text
from rolegraph.tools.library import Library
from rolegraph.workflow import Workflow

__all__ = ["TOPIC_MATCHES", "open_library", "topic_matches", "topic_matches_of", "topic_query"]

TOPIC_MATCHES = 5
"""How many of the library's best matches for a topic count as relevant to it."""


def topic_query(inputs: Mapping[str, Any]) -> str:
    """The topic of a question: its ``topic`` input if it has one, else all its text inputs."""
    topic = inputs.get("topic")
    return topic if isinstance(topic, str) and topic.strip() else input_text(inputs)


def open_library(workflow: Workflow) -> Library | None:
    """The workflow's library, or None if it has none (or it cannot be read: its runs will say why)."""
    try:
        return workflow.library()
    except LibraryError:
        return None


def topic_matches(library: Library | None, question: EvalQuestion) -> list[str]:
    """The ids of the library's `TOPIC_MATCHES` best matches for `question`'s topic ([] with gold or no library)."""
    if library is None or question.gold_sources:
        return []
    hits = library.search(topic_query(question.inputs), limit=TOPIC_MATCHES, per_document=1)
    return [hit.document.key for hit in hits]


def topic_matches_of(workflow: Workflow, questions: Sequence[EvalQuestion]) -> dict[str, list[str]]:
    """`topic_matches` for each question without gold, by question id, from the workflow's library."""
    if all(q.gold_sources for q in questions):
        return {}
    library = open_library(workflow)
    try:
        return {q.id: topic_matches(library, q) for q in questions}
    finally:
        if library is not None:
            library.close()
