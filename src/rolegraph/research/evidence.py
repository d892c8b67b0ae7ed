"""Between the searches and the writer: passages narrowed to the topic, and the evidence the critic kept."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["passages", "select"]


def _document(hit: Mapping[str, Any]) -> str:
    return str(hit.get("document") or hit.get("id"))


def passages(found: dict[str, Any], question: dict[str, Any], scope: dict[str, Any], limit: int = 4) -> dict[str, Any]:
    """A question's search hits that are passages of papers in scope, best first.

    Args:
        found: The question's ``library_search`` step output (``data``: its hits).
        question: The question's item from `rolegraph.research.queries` (``question``, ``paper``).
        scope: The output of `rolegraph.research.scope`.
        limit: At most this many passages.

    Returns:
        ``{"question", "paper", "title", "passages": [{"source_id", "title", "score", "text"?}], "sources": [ids]}``:
        a passage has ``text`` when the search returned the passage's text (else its source's text is used).
    """
    in_scope = {_document(p) for p in scope.get("papers", [])} | {p["id"] for p in scope.get("papers", [])}
    kept = []
    for hit in found.get("data") or []:
        if _document(hit) not in in_scope and hit.get("id") not in in_scope:
            continue
        passage = {"source_id": hit["id"], "title": hit.get("title", ""), "score": hit.get("score", 0.0)}
        if isinstance(hit.get("text"), str):
            passage["text"] = hit["text"]
        kept.append(passage)
        if len(kept) == limit:
            break
    return {
        "question": question.get("question", ""),
        "paper": question.get("paper"),
        "title": question.get("title", ""),
        "passages": kept,
        "sources": list(dict.fromkeys(p["source_id"] for p in kept)),
    }


def select(
    gathered: list[dict[str, Any]],
    drop: list[int] | None = None,
    questions: list[str] | None = None,
    verdict: str = "revise",
) -> dict[str, Any]:
    """The evidence the critic kept, grouped by question, each group most relevant first.

    Args:
        gathered: The gatherers' outputs, one per question (``question``, ``evidence``:
            ``{source_id, evidence, relevance}``).
        drop: Numbers of the claims the critic rejected, counting 1, 2, ... across `gathered` in order
            (as the critic's task lists them).
        questions: The questions, in the same order, where the outputs do not say them.
        verdict: The critic's verdict on the findings: with ``revise`` the rejected claims are left
            out; with ``accept`` the critic let the findings stand, and its rejections are kept as
            ``flagged`` (in the output, not the report's text).

    A sentence chosen for two questions is kept for the first only. A question whose every claim
    the critic rejected keeps its best-rated one, listed in ``contested`` too: the review keeps an
    answer to each question, and says which the critic doubted. Questions with no evidence get no group.

    Returns:
        ``{"groups": [{"question", "evidence": [...]}], "kept": n, "dropped": [...], "contested": [...],
        "flagged": [numbers]}`` (a dropped or contested claim keeps its ``claim`` number).
    """
    flagged_only = verdict != "revise"
    rejected = set() if flagged_only else set(drop or [])
    flagged = sorted(set(drop or [])) if flagged_only else []
    groups, dropped, contested, seen = [], [], [], set()
    number = 0
    for index, output in enumerate(gathered):
        kept: list[dict[str, Any]] = []
        lost: list[dict[str, Any]] = []
        for evidence in (output or {}).get("evidence", []):
            number += 1
            if evidence["evidence"] in seen:
                continue
            seen.add(evidence["evidence"])
            (lost if number in rejected else kept).append({"claim": number, **evidence})
        if lost and not kept:
            best = max(lost, key=lambda e: int(e.get("relevance", 0)))
            lost.remove(best)
            kept.append(best)
            contested.append(best)
        dropped += lost
        kept = [{k: v for k, v in e.items() if k != "claim"} for e in kept]
        if kept:
            given = questions[index] if questions and index < len(questions) else ""
            question = (output or {}).get("question") or given
            ranked = sorted(kept, key=lambda e: -int(e.get("relevance", 0)))
            groups.append({"question": question, "evidence": ranked})
    kept_count = sum(len(g["evidence"]) for g in groups)
    return {"groups": groups, "kept": kept_count, "dropped": dropped, "contested": contested, "flagged": flagged}
