"""Scoring one run against one question: pure functions of a `RunRecord` and an `EvalQuestion`.

| metric | meaning |
|---|---|
| ``citation_validity`` | share of citations (in every step's output) naming a retrieved source |
| ``source_recall`` | share of the gold sources the report cites |
| ``source_precision`` | share of the sources the report cites that are gold |
| ``retrieval_recall`` | share of the gold sources the run's tools retrieved at all |
| ``fact_coverage`` | share of ``must_include`` facts found in the report |
| ``fact_coverage_judge`` | share a judge model finds stated (only with a judge, see `evals.judge`) |
| ``forbidden_facts`` | how many ``must_not_include`` facts the report states |
| ``claim_support`` | share of quoted claims whose quote is in the cited source's text |
| ``tokens``, ``cost_usd``, ``wall_time_s`` | what the run used |

A ratio with nothing to count (no citations, no gold sources, no claims) is
None, not 0: "not measured" must not read as "failed".
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Sequence

from pydantic import BaseModel, Field

from rolegraph.evals.judge import FactVerdict, judge_coverage
from rolegraph.evals.record import ClaimRef, RunRecord
from rolegraph.evals.spec import EvalQuestion
from rolegraph.tools.sources import Source

__all__ = [
    "FUZZY_THRESHOLD",
    "JUDGE_METRIC",
    "METRICS",
    "ClaimScore",
    "RunScores",
    "citation_validity",
    "claim_scores",
    "fact_coverage",
    "forbidden_facts",
    "matches_gold",
    "metric_names",
    "normalise",
    "quote_support",
    "score_run",
    "source_precision",
    "source_recall",
]

FUZZY_THRESHOLD = 0.9
"""Similarity (difflib ratio over the best window of the source) at which a quote counts as present."""

METRICS = (
    "citation_validity",
    "source_recall",
    "source_precision",
    "retrieval_recall",
    "fact_coverage",
    "forbidden_facts",
    "claim_support",
    "tokens",
    "cost_usd",
    "wall_time_s",
)
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


def normalise(text: str) -> str:
    """`text` for matching: Unicode-folded, casefolded, punctuation as spaces, whitespace collapsed."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    spaced = "".join(" " if unicodedata.category(c).startswith("P") else c for c in folded)
    return _SPACE.sub(" ", spaced).strip()


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def citation_validity(record: RunRecord) -> float | None:
    """Share of all citations that name a source the run retrieved (1.0 by construction)."""
    known = {s.id for s in record.sources}
    return _ratio(sum(c in known for c in record.citations), len(record.citations))


def matches_gold(source: Source, gold: str) -> bool:
    """Whether `source` is the gold entry: a library id, ``doi:<doi>`` or ``arxiv:<id>`` (version ignored)."""
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


def _found(fact: str, text: str) -> bool:
    needle = normalise(fact)
    return bool(needle) and f" {needle} " in f" {text} "


def fact_coverage(report_text: str, facts: Sequence[str]) -> float | None:
    """Share of `facts` found in `report_text` (whole words, after `normalise`); None without facts."""
    text = normalise(report_text)
    return _ratio(sum(_found(f, text) for f in facts), len(facts))


def forbidden_facts(report_text: str, facts: Sequence[str]) -> list[str]:
    """The `facts` that `report_text` states (each should not be there)."""
    text = normalise(report_text)
    return [f for f in facts if _found(f, text)]


def quote_support(quote: str, source_text: str) -> float:
    """How well `source_text` contains `quote`: 1.0 if verbatim after `normalise`, else the best difflib
    ratio of the quote against a same-length window of the text starting at a word."""
    needle, text = normalise(quote), normalise(source_text)
    if not needle or not text:
        return 0.0
    if needle in text:
        return 1.0
    starts = [0, *(m.end() for m in re.finditer(" ", text))]
    best = 0.0
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(needle)  # difflib caches details about the second sequence
    for start in starts:
        matcher.set_seq1(text[start : start + len(needle)])
        if matcher.real_quick_ratio() > best and matcher.quick_ratio() > best:
            best = max(best, matcher.ratio())
    return best


class ClaimScore(BaseModel):
    """How well one claim's quote is supported by the source it cites."""

    step: str
    source_id: str
    evidence: str
    similarity: float
    """`quote_support`: 1.0 verbatim, else the best fuzzy ratio (0 if the source was never retrieved)."""
    supported: bool
    """Similarity at least `FUZZY_THRESHOLD`."""
    score: float
    """The similarity if supported, else 0."""


def claim_scores(claims: Sequence[ClaimRef], sources: Sequence[Source]) -> list[ClaimScore]:
    """Each claim scored against the text of the source it cites."""
    texts = {s.id: s.text for s in sources}
    scored = []
    for claim in claims:
        similarity = quote_support(claim.evidence, texts.get(claim.source_id, ""))
        supported = similarity >= FUZZY_THRESHOLD
        scored.append(
            ClaimScore(
                **claim.model_dump(),
                similarity=round(similarity, 4),
                supported=supported,
                score=round(similarity, 4) if supported else 0.0,
            )
        )
    return scored


class RunScores(BaseModel):
    """Every metric of one run against one question, with the details behind them."""

    citation_validity: float | None
    source_recall: float | None
    source_precision: float | None
    retrieval_recall: float | None
    fact_coverage: float | None
    forbidden_facts: int
    claim_support: float | None
    """Share of claims supported (verbatim or fuzzy); None when the run made no claims."""
    tokens: int
    cost_usd: float | None
    wall_time_s: float
    missing_sources: list[str] = Field(default_factory=list)
    missing_facts: list[str] = Field(default_factory=list)
    forbidden_found: list[str] = Field(default_factory=list)
    claims: list[ClaimScore] = Field(default_factory=list)
    fact_coverage_judge: float | None = None
    """Share of the facts with a verdict that the judge found stated; None without a judge or verdicts."""
    fact_verdicts: list[FactVerdict] = Field(default_factory=list)
    """The judge's verdict on each ``must_include`` fact (empty without a judge)."""

    def metrics(self, judged: bool = False) -> dict[str, float | int | None]:
        """The metrics alone, by name (`metric_names` order)."""
        values: dict[str, float | int | None] = {name: getattr(self, name) for name in metric_names(judged)}
        return values


def score_run(record: RunRecord, question: EvalQuestion, verdicts: Sequence[FactVerdict] = ()) -> RunScores:
    """Score one run of `question` (with `verdicts`, a judge's on its ``must_include`` facts, too)."""
    gold = question.gold_sources
    cited = _sources(record, record.cited)
    claims = claim_scores(record.claims, record.sources)
    forbidden = forbidden_facts(record.report_text, question.must_not_include)
    text = normalise(record.report_text)
    return RunScores(
        citation_validity=citation_validity(record),
        source_recall=source_recall(record, gold),
        source_precision=source_precision(record, gold),
        retrieval_recall=source_recall(record, gold, retrieved=True),
        fact_coverage=fact_coverage(record.report_text, question.must_include),
        forbidden_facts=len(forbidden),
        claim_support=_ratio(sum(c.supported for c in claims), len(claims)),
        tokens=record.input_tokens + record.output_tokens,
        cost_usd=record.cost_usd,
        wall_time_s=round(record.duration_s, 3),
        missing_sources=[g for g in gold if not any(matches_gold(s, g) for s in cited)],
        missing_facts=[f for f in question.must_include if not _found(f, text)],
        forbidden_found=forbidden,
        claims=claims,
        fact_coverage_judge=judge_coverage(verdicts),
        fact_verdicts=list(verdicts),
    )
