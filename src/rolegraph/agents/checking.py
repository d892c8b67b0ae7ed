"""Checking claims one by one: the engine numbers the claims, the model gives a verdict on each.

A critic (a role answering `CritiqueOutput`) on the embedded model that reads
evidence is shown every claim numbered (its task lists them, as `numbered_claims`
does: counting across questions in order), with the question it answers and its
evidence, and answers with one verdict per claim, in order, then its overall verdict::

    {"claims": ["supported", "unsupported", "supported"], "verdict": "revise"}

The engine turns that into the critic's answer: ``drop`` lists the numbers of the
unsupported claims (a later step leaves them out, see `rolegraph.research.select`),
``issues`` says which claim failed. A verdict per claim, not a list of numbers to
drop, because a small model asked for numbers writes the first one it sees.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from rolegraph.agents.extractive import Group

__all__ = ["VERDICTS", "checks_model", "compose_critique", "numbered_claims"]

VERDICTS = ("supported", "unsupported")
"""A claim's verdict: its evidence supports it (and answers its question), or not."""


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


@functools.lru_cache(maxsize=32)
def checks_model(count: int) -> type[BaseModel]:
    """The answer of a critic shown `count` claims: a verdict for each, in order, then accept or revise."""
    verdicts: Any = list[Literal[VERDICTS]]  # type: ignore[valid-type]  # a Literal of the verdicts
    overall: Any = Literal["accept", "revise"]
    return create_model(
        "Checks",
        __base__=_Answer,
        claims=(verdicts, Field(min_length=count, max_length=count)),
        verdict=(overall, ...),
    )


def numbered_claims(groups: Sequence[Group]) -> str:
    """The claims as the critic sees them: ``[n]`` (counting across groups), the question, the evidence."""
    lines = []
    number = 0
    for group in groups:
        for source_id, sentence in group.evidence:
            number += 1
            question = f" answers: {group.question}" if group.question else ""
            lines.append(f"[{number}]{question}\n    evidence ({source_id}): {sentence}")
    return "\n".join(lines)


def compose_critique(answer: Mapping[str, Any]) -> dict[str, Any]:
    """The critic's answer (`CritiqueOutput` data) from its verdicts: the unsupported claims' numbers to drop."""
    drop = [number for number, verdict in enumerate(answer.get("claims", []), start=1) if verdict == "unsupported"]
    issues = [f"claim {number} is not supported by its evidence or does not answer its question" for number in drop]
    return {"drop": drop, "verdict": answer.get("verdict", "accept"), "issues": issues[:5]}
