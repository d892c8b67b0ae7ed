"""Scoring one run against one question: pure functions of a `RunRecord` and an `EvalQuestion`.

Quality figures (each can say "bad"):

| metric | meaning |
|---|---|
| ``source_recall`` | share of the gold sources the report cites |
| ``source_precision`` | share of the sources the report cites that are gold |
| ``topic_relevance`` | share of the cited sources that are relevant: gold, else the library's best topic matches |
| ``retrieval_recall`` | share of the gold sources the run's tools retrieved at all |
| ``fact_coverage`` | share of ``must_include`` facts found in the report's body (cited works' titles taken out) |
| ``fact_coverage_judge`` | share a judge model finds stated (only with a judge, see `evals.judge`) |
| ``claim_support`` | share of the claims with words of their own that their evidence supports (`evals.support`) |

Checks (what the engine guarantees or the eval set forbids; a failure is a defect):

| metric | meaning |
|---|---|
| ``citation_validity`` | share of citations (in every step's output) naming a retrieved source |
| ``quote_validity`` | share of claims whose evidence is a whole sentence of the source it cites |
| ``forbidden_facts`` | how many ``must_not_include`` facts the report states |

Usage: ``tokens``, ``cost_usd``, ``wall_time_s``.

A ratio with nothing to count (no citations, no gold sources, no claims) is
None, not 0: "not measured" must not read as "failed".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, Field

from rolegraph.evals.judge import ClaimVerdict, FactVerdict, judge_coverage
from rolegraph.evals.record import RunRecord
from rolegraph.evals.spec import EvalQuestion
from rolegraph.evals.support import ClaimScore, claim_scores
from rolegraph.evals.text import content_stems, input_text
from rolegraph.tools.sources import Source

__all__ = [
    "CHECKS",
    "JUDGE_METRIC",
    "METRICS",
    "QUALITY",
    "USAGE",
    "ClaimScore",
    "RunScores",
    "citation_validity",
    "claim_support",
    "fact_coverage",
    "fold_for_matching",
    "forbidden_facts",
    "matches_gold",
    "metric_names",
    "quote_validity",
    "report_body",
    "score_run",
    "source_precision",
    "source_recall",
    "topic_relevance",
]

QUALITY = (
    "source_recall",
    "source_precision",
    "topic_relevance",
    "retrieval_recall",
    "fact_coverage",
    "claim_support",
)
"""The quality figures, in report order."""

CHECKS = ("citation_validity", "quote_validity", "forbidden_facts")
"""The checks: 1.0 (or 0 forbidden facts) unless something is broken."""

USAGE = ("tokens", "cost_usd", "wall_time_s")
"""What a run used."""

METRICS = (*QUALITY, *CHECKS, *USAGE)
"""Every metric's name, in report order."""

JUDGE_METRIC = "fact_coverage_judge"
"""The metric a judge model adds, reported right after ``fact_coverage``."""


def metric_names(judged: bool = False) -> tuple[str, ...]:
    """`METRICS`, with `JUDGE_METRIC` after ``fact_coverage`` when a judge scored the runs."""
    if not judged:
        return METRICS
    at = METRICS.index("fact_coverage") + 1
    return (*METRICS[:at], JUDGE_METRIC, *METRICS[at:])


_SPACE = re.compile(r"\s+")


def fold_for_matching(text: str) -> str:
    """`text` for matching: Unicode-folded, casefolded, punctuation as spaces, whitespace collapsed."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    spaced = "".join(" " if unicodedata.category(c).startswith("P") else c for c in folded)
    return _SPACE.sub(" ", spaced).strip()


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def citation_validity(record: RunRecord) -> float | None:
    """Share of all citations that name a source the run retrieved (1.0 by construction: a check)."""
    known = {s.id for s in record.sources}
    return _ratio(sum(c in known for c in record.citations), len(record.citations))


def quote_validity(claims: Sequence[ClaimScore]) -> float | None:
    """Share of quoted claims whose evidence is a whole sentence of the source it cites (a check); None without any."""
    quoted = [c for c in claims if c.quoted]
    return _ratio(sum(c.quote_problem is None for c in quoted), len(quoted))


def claim_support(claims: Sequence[ClaimScore]) -> float | None:
    """Share of the counted claims (those with words of their own) that are supported; None without any."""
    counted = [c for c in claims if c.counted]
    return _ratio(sum(c.supported for c in counted), len(counted))


def matches_gold(source: Source, gold: str) -> bool:
    """Whether `source` is the gold entry: a library id, ``doi:<doi>`` or ``arxiv:<id>`` (version ignored).

    A page of a document (``smith2020#p4``) is that document (``smith2020``).
    """
    kind, _, value = gold.partition(":")
    if kind.lower() == "doi" and value:
        return source.doi is not None and source.doi.strip().lower() == value.strip().lower()
    if kind.lower() == "arxiv" and value:
        strip = re.compile(r"v\d+$")
        return source.arxiv is not None and strip.sub("", source.arxiv.strip()) == strip.sub("", value.strip())
    return gold in (source.id, source.document_id)  # a page of a PDF (``key#p4``) is its document ``key``


def _sources(record: RunRecord, ids: Sequence[str]) -> list[Source]:
    by_id = {s.id: s for s in record.sources}
    return [by_id.get(i) or Source(id=i, title="") for i in ids]


def source_recall(record: RunRecord, gold: Sequence[str], *, retrieved: bool = False) -> float | None:
    """Share of `gold` the report cites (with `retrieved`, that the run retrieved); None without gold."""
    pool = record.sources if retrieved else _sources(record, record.cited)
    return _ratio(sum(any(matches_gold(s, g) for s in pool) for g in gold), len(gold))


def source_precision(record: RunRecord, gold: Sequence[str]) -> float | None:
    """Share of the report's cited sources that are gold; None if it cites nothing or there is no gold."""
    if not gold:
        return None
    cited = _sources(record, record.cited)
    return _ratio(sum(any(matches_gold(s, g) for g in gold) for s in cited), len(cited))


def topic_relevance(record: RunRecord, relevant: Sequence[str]) -> float | None:
    """Share of the report's cited sources among `relevant` (gold entries or library ids).

    None if the report cites nothing or there is nothing to compare with. `score_run` passes the
    question's gold sources, or without gold the library's best matches for its topic.
    """
    if not relevant:
        return None
    cited = _sources(record, record.cited)
    return _ratio(sum(any(matches_gold(s, r) for r in relevant) for s in cited), len(cited))


def report_body(record: RunRecord) -> str:
    """The report's body, normalised, with the titles of the works it cites cut out (a ``|`` in their place).

    A fact stated only in a cited work's title (``Low-Rank Adaptation`` in LoRA's) is the title's, not the report's.
    """
    text = f" {fold_for_matching(record.report_text)} "
    titles = sorted({fold_for_matching(s.title) for s in _sources(record, record.cited)}, key=len, reverse=True)
    for title in titles:
        if title:
            text = text.replace(f" {title} ", " | ")
    return text.strip()


def _found(fact: str, text: str) -> bool:
    needle = fold_for_matching(fact)
    return bool(needle) and f" {needle} " in f" {text} "


def fact_coverage(report_text: str, facts: Sequence[str]) -> float | None:
    """Share of `facts` found in `report_text` (whole words, after `fold_for_matching`); None without facts."""
    text = fold_for_matching(report_text)
    return _ratio(sum(_found(f, text) for f in facts), len(facts))


def forbidden_facts(report_text: str, facts: Sequence[str]) -> list[str]:
    """The `facts` that `report_text` states (each should not be there)."""
    text = fold_for_matching(report_text)
    return [f for f in facts if _found(f, text)]


class RunScores(BaseModel):
    """Every metric of one run against one question, with the details behind them."""

    citation_validity: float | None
    source_recall: float | None
    source_precision: float | None
    retrieval_recall: float | None
    fact_coverage: float | None
    """Share of the ``must_include`` facts in the report's body (`report_body`)."""
    forbidden_facts: int
    claim_support: float | None
    """Share of the claims with words of their own that their evidence supports (`evals.support`); None when
    the run made none (every claim its quote, or no claims)."""
    tokens: int
    cost_usd: float | None
    wall_time_s: float
    topic_relevance: float | None = None
    """Share of the cited sources that are relevant (see `relevant_sources`); None if nothing was cited."""
    quote_validity: float | None = None
    """Share of claims whose evidence is a whole sentence of the cited source; None without claims."""
    relevant_sources: list[str] = Field(default_factory=list)
    """What `topic_relevance` compared with: the gold sources, or the library's best matches for the topic."""
    relevance_basis: Literal["gold", "library"] | None = None
    """Where `relevant_sources` came from (None: neither was available)."""
    missing_sources: list[str] = Field(default_factory=list)
    missing_facts: list[str] = Field(default_factory=list)
    forbidden_found: list[str] = Field(default_factory=list)
    claims: list[ClaimScore] = Field(default_factory=list)
    claims_counted: int | None = None
    """How many of `claims` `claim_support` counts: those with words of their own (the rest only quote);
    None in a report scored before claims were told apart."""
    fact_coverage_judge: float | None = None
    """Share of the facts with a verdict that the judge found stated; None without a judge or verdicts."""
    fact_verdicts: list[FactVerdict] = Field(default_factory=list)
    """The judge's verdict on each ``must_include`` fact (empty without a judge)."""

    def metrics(self, judged: bool = False) -> dict[str, float | int | None]:
        """The metrics alone, by name (`metric_names` order)."""
        values: dict[str, float | int | None] = {name: getattr(self, name) for name in metric_names(judged)}
        return values


def score_run(
    record: RunRecord,
    question: EvalQuestion,
    verdicts: Sequence[FactVerdict] = (),
    *,
    claim_verdicts: Sequence[ClaimVerdict] = (),
    topic_matches: Sequence[str] = (),
) -> RunScores:
    """Score one run of `question`.

    Args:
        record: The run.
        question: What a good answer has.
        verdicts: A judge's verdicts on the question's ``must_include`` facts.
        claim_verdicts: A judge's verdicts on the run's claims (they decide `claim_support` where given).
        topic_matches: The library's best matches for the question's topic: what `topic_relevance`
            compares with when the question has no gold sources.
    """
    gold = question.gold_sources
    cited = _sources(record, record.cited)
    topic = content_stems(input_text(question.inputs))
    by_key: Mapping[tuple[str, str, str], ClaimVerdict] = {
        (v.source_id, v.evidence, v.claim): v for v in claim_verdicts
    }
    claims = claim_scores(record.claims, record.sources, topic, by_key)
    forbidden = forbidden_facts(record.report_text, question.must_not_include)
    body = report_body(record)
    relevant, basis = (list(gold), "gold") if gold else (list(topic_matches), "library")
    return RunScores(
        citation_validity=citation_validity(record),
        source_recall=source_recall(record, gold),
        source_precision=source_precision(record, gold),
        topic_relevance=topic_relevance(record, relevant),
        retrieval_recall=source_recall(record, gold, retrieved=True),
        fact_coverage=fact_coverage(body, question.must_include),
        forbidden_facts=len(forbidden),
        claim_support=claim_support(claims),
        quote_validity=quote_validity(claims),
        tokens=record.input_tokens + record.output_tokens,
        cost_usd=record.cost_usd,
        wall_time_s=round(record.duration_s, 3),
        relevant_sources=relevant,
        relevance_basis=basis if relevant else None,
        missing_sources=[g for g in gold if not any(matches_gold(s, g) for s in cited)],
        missing_facts=[f for f in question.must_include if not _found(f, body)],
        forbidden_found=forbidden,
        claims=claims,
        claims_counted=sum(c.counted for c in claims),
        fact_coverage_judge=judge_coverage(verdicts),
        fact_verdicts=list(verdicts),
    )
