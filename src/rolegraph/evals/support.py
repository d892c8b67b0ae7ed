"""Whether a claim is supported by its evidence: a real sentence of the cited source that says what the claim says.

A claim is scored in two steps, each able to fail it:

1. **The evidence is a sentence of the cited source**, by the same rule agents are
   held to (`rolegraph.agents.evidence.quote_problem`): a whole quotable sentence
   of the source the claim cites, compared with whitespace collapsed. A misquote,
   a fragment, a blank, a sentence of another source or an unretrieved source
   fails here, however close the words.
2. **The claim says what the evidence says.** Without a judge: the claim's content
   words (`evals.text.content_stems`, stems without stopwords or generic research
   words), less the words of the question's inputs (its topic), must be found
   among the evidence's words or the cited source's title words — at least
   `SUPPORT_THRESHOLD` of them. A claim with nothing left after the topic is taken
   out only repeats its topic and is not supported; a negation on one side only
   (``not``, ``no``, ``never``, ``without``, ``n't`` ...) fails the claim outright.
   With a judge (`evals.judge.Judge.claim_verdicts`), its yes/no verdict decides
   instead, wherever it gave one.

An object with a citation and a quote but no other text (a user's role may have no
claim field) claims its quote: step 1 alone decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from pydantic import BaseModel, Field

from rolegraph.agents.evidence import quote_problem
from rolegraph.evals.judge import ClaimVerdict
from rolegraph.evals.record import ClaimRef
from rolegraph.evals.text import content_stems, is_negated
from rolegraph.tools.sources import Source

__all__ = ["SUPPORT_THRESHOLD", "ClaimScore", "claim_key", "claim_scores", "judgeable_claims"]

SUPPORT_THRESHOLD = 0.7
"""Share of a claim's content words (beyond its topic) its evidence must hold for the claim to count."""


class ClaimScore(BaseModel):
    """How well one claim is supported by the evidence it quotes."""

    step: str
    source_id: str
    evidence: str
    claim: str = ""
    quote_problem: str | None = None
    """What is wrong with the evidence as a sentence of the cited source; None when it is one."""
    overlap: float = 0.0
    """Share of the claim's content words (beyond the topic) found in its evidence or the source's title."""
    unsupported_words: list[str] = Field(default_factory=list)
    """The claim's content stems its evidence lacks."""
    negation_mismatch: bool = False
    """One of claim and evidence is negated, the other not."""
    judge: str | None = None
    """The judge's verdict (``yes``, ``no``, ``unknown``), when a judge read the claim."""
    supported: bool
    reason: str
    """Why the claim is or is not supported, in words."""


def claim_key(claim: ClaimRef) -> tuple[str, str, str]:
    """What identifies a claim for its judge verdict: its source, evidence and text."""
    return claim.source_id, claim.evidence, claim.claim


def _texts(sources: Iterable[Source]) -> dict[str, str]:
    return {s.id: s.text for s in sources}


def judgeable_claims(claims: Sequence[ClaimRef], sources: Sequence[Source]) -> list[ClaimRef]:
    """The claims worth a judge's call: with text of their own, and evidence that is a sentence of its source."""
    texts = _texts(sources)
    seen: set[tuple[str, str, str]] = set()
    found = []
    for claim in claims:
        key = claim_key(claim)
        if claim.claim.strip() and key not in seen and quote_problem(claim.evidence, claim.source_id, texts) is None:
            seen.add(key)
            found.append(claim)
    return found


def _lexical(claim: ClaimRef, title: str, topic: set[str]) -> tuple[float, list[str], bool, str]:
    """``(overlap, unsupported stems, negation mismatch, reason)`` for a claim whose quote is valid."""
    wanted = content_stems(claim.claim, ignore=topic)
    if not wanted:
        return 0.0, [], False, "the claim says nothing beyond the question's own words"
    held = content_stems(claim.evidence) | content_stems(title)
    missing = sorted(wanted - held)
    overlap = round(1 - len(missing) / len(wanted), 4)
    if is_negated(claim.claim) != is_negated(claim.evidence):
        side = "claim" if is_negated(claim.claim) else "evidence"
        return overlap, missing, True, f"only the {side} is negated"
    if overlap < SUPPORT_THRESHOLD:
        return overlap, missing, False, f"the evidence lacks {', '.join(missing)}"
    return overlap, missing, False, "the evidence holds the claim's words"


def claim_scores(
    claims: Sequence[ClaimRef],
    sources: Sequence[Source],
    topic: Iterable[str] = (),
    verdicts: Mapping[tuple[str, str, str], ClaimVerdict] | None = None,
) -> list[ClaimScore]:
    """Each claim scored against its evidence and the source it cites.

    Args:
        claims: The run's quoted claims.
        sources: What the run retrieved (quotes are checked against their text).
        topic: Stems of the question's input words (`evals.text.content_stems` of them).
        verdicts: A judge's verdicts by `claim_key`; where one is yes or no, it decides.
    """
    texts = _texts(sources)
    titles = {s.id: s.title for s in sources}
    topic_stems = set(topic)
    scored = []
    for claim in claims:
        base = claim.model_dump()
        problem = quote_problem(claim.evidence, claim.source_id, texts)
        if problem is not None:
            scored.append(ClaimScore(**base, quote_problem=problem, supported=False, reason=problem))
            continue
        if not claim.claim.strip():
            scored.append(ClaimScore(**base, overlap=1.0, supported=True, reason="the claim is its quote"))
            continue
        overlap, missing, negation, reason = _lexical(claim, titles.get(claim.source_id, ""), topic_stems)
        supported = overlap >= SUPPORT_THRESHOLD and not negation
        verdict = (verdicts or {}).get(claim_key(claim))
        if verdict is not None and verdict.verdict != "unknown":
            supported = verdict.verdict == "yes"
            reason = f"judge: {verdict.reason or verdict.verdict}"
        scored.append(
            ClaimScore(
                **base,
                overlap=overlap,
                unsupported_words=missing,
                negation_mismatch=negation,
                judge=verdict.verdict if verdict is not None else None,
                supported=supported,
                reason=reason,
            )
        )
    return scored
