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

**Claims with no words of their own are not counted.** An object with a citation
and a quote but no other text (a gatherer's evidence), or whose text is its quote,
claims nothing its source does not say by construction: it is checked (step 1,
`quote_validity`) but left out of `claim_support` (``counted`` False), so an
extractive pipeline cannot score 1.0 by quoting.

**The report's own sentences are claims.** Each sentence of a report paragraph that
cites a source (`record.report_claims`) quotes nothing: it is scored (step 2)
against the sentence of its cited sources that holds most of its content words
(its best match, kept as its ``evidence``). A report sentence that *is* a sentence
of a source it cites (an extractive writer's, a joining word such as
``Moreover,`` aside) is a quote, not the writer's words: not counted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from pydantic import BaseModel, Field

from rolegraph.agents.evidence import collapse_whitespace, quote_problem, segment
from rolegraph.agents.extractive import LINKS
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
    counted: bool = True
    """False when the claim has no words of its own beyond its quote: it is left out of ``claim_support``."""
    quoted: bool = True
    """False for a report sentence, scored against the best-matching sentence of its cited sources."""
    supported: bool
    reason: str
    """Why the claim is or is not supported, in words."""


def claim_key(claim: ClaimRef) -> tuple[str, str, str]:
    """What identifies a claim for its judge verdict: its source, evidence and text."""
    return claim.source_id, claim.evidence, claim.claim


def _texts(sources: Iterable[Source]) -> dict[str, str]:
    return {s.id: s.text for s in sources}


_LINK = re.compile(r"^(?:" + "|".join(re.escape(link) for link in LINKS if link) + r"),\s+", re.IGNORECASE)


def _plain(text: str) -> str:
    """`text` for telling a quote from a claim: casefolded, whitespace collapsed, final stop off."""
    return collapse_whitespace(text).casefold().rstrip(".!?").rstrip()


def _is_quote(claim: ClaimRef, texts: Mapping[str, str]) -> bool:
    """Whether the claim has no words of its own: no text, its quote's text, or (a report sentence)
    a sentence of a source it cites, a joining word aside."""
    own = _plain(_LINK.sub("", collapse_whitespace(claim.claim)))
    if not own:
        return True
    if claim.quoted:
        return own == _plain(claim.evidence)
    return any(own == _plain(s) for cited in claim.cites or [claim.source_id] for s in segment(texts.get(cited, "")))


def _best_match(claim: ClaimRef, texts: Mapping[str, str], titles: Mapping[str, str]) -> ClaimRef:
    """An unquoted report sentence with its evidence: the sentence of its cited sources (first best) that
    holds most of its content words. Unchanged if it is quoted, or cites nothing retrieved."""
    if claim.quoted:
        return claim
    wanted = content_stems(claim.claim)
    best: tuple[float, str, str] | None = None
    for cited in claim.cites or [claim.source_id]:
        title = content_stems(titles.get(cited, ""))
        for sentence in segment(texts.get(cited, "")):
            held = len(wanted & (content_stems(sentence) | title)) / len(wanted) if wanted else 0.0
            if best is None or held > best[0]:
                best = (held, cited, sentence)
    if best is None:
        return claim
    return claim.model_copy(update={"source_id": best[1], "evidence": best[2]})


def judgeable_claims(claims: Sequence[ClaimRef], sources: Sequence[Source]) -> list[ClaimRef]:
    """The claims worth a judge's call: with words of their own, and evidence that is a sentence of its source
    (a report sentence with the best-matching sentence of its cited sources as its evidence)."""
    texts, titles = _texts(sources), {s.id: s.title for s in sources}
    seen: set[tuple[str, str, str]] = set()
    found = []
    for claim in claims:
        resolved = _best_match(claim, texts, titles)
        key = claim_key(resolved)
        if _is_quote(claim, texts) or key in seen or not resolved.evidence:
            continue
        if not claim.quoted or quote_problem(resolved.evidence, resolved.source_id, texts) is None:
            seen.add(key)
            found.append(resolved)
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


def _unquoted_problem(claim: ClaimRef, texts: Mapping[str, str]) -> str | None:
    """Why a report sentence cannot be scored against its sources: one was never retrieved, or none has text."""
    missing = [c for c in claim.cites or [claim.source_id] if c not in texts]
    if missing:
        return f"the sentence cites {', '.join(missing)}, never retrieved"
    return None if claim.evidence else "the sources it cites have no text to compare with"


def claim_scores(
    claims: Sequence[ClaimRef],
    sources: Sequence[Source],
    topic: Iterable[str] = (),
    verdicts: Mapping[tuple[str, str, str], ClaimVerdict] | None = None,
) -> list[ClaimScore]:
    """Each claim scored against its evidence and the source it cites (see the module docstring).

    Args:
        claims: The run's claims: quoted ones, and the report's cited sentences (unquoted).
        sources: What the run retrieved (quotes are checked against their text).
        topic: Stems of the question's input words (`evals.text.content_stems` of them).
        verdicts: A judge's verdicts by `claim_key` (of a report sentence, with its best match as
            evidence, as `judgeable_claims` gives it); where one is yes or no, it decides.
    """
    texts = _texts(sources)
    titles = {s.id: s.title for s in sources}
    topic_stems = set(topic)
    scored = []
    for original in claims:
        claim = _best_match(original, texts, titles)
        base = claim.model_dump(exclude={"cites"})
        counted = not _is_quote(original, texts)
        if claim.quoted and (problem := quote_problem(claim.evidence, claim.source_id, texts)) is not None:
            scored.append(ClaimScore(**base, quote_problem=problem, supported=False, reason=problem, counted=counted))
            continue
        if not claim.quoted and (problem := _unquoted_problem(claim, texts)) is not None:
            scored.append(ClaimScore(**base, supported=False, reason=problem))
            continue
        if not counted:
            reason = "the claim is its quote" if claim.quoted else f"the sentence is a sentence of {claim.source_id}"
            scored.append(
                ClaimScore(**base, overlap=1.0, supported=True, counted=False, reason=f"not counted: {reason}")
            )
            continue
        overlap, missing, negation, reason = _lexical(claim, titles.get(claim.source_id, ""), topic_stems)
        supported = overlap >= SUPPORT_THRESHOLD and not negation
        if not claim.quoted:
            reason = f"{reason} (against its best-matching sentence of {claim.source_id})"
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
