"""What each eval metric means and which way is better, for the people reading a report.

```python
guide("source_recall")   # MetricGuide(meaning="Share of the gold sources the report cites.", better="higher")
```

The meanings follow `rolegraph.evals.metrics` (its docstring is the reference); a
metric this table does not know yet still gets an entry, saying where to look.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["METRIC_GUIDE", "MetricGuide", "guide"]


@dataclass(frozen=True)
class MetricGuide:
    """One metric, explained."""

    meaning: str
    better: Literal["higher", "lower"] | None
    """Which way is better (None: neither, e.g. a count to read in context)."""

    @property
    def direction(self) -> str:
        """``higher is better``, ``lower is better`` or ``""``."""
        return f"{self.better} is better" if self.better else ""

    @property
    def arrow(self) -> str:
        """``↑``, ``↓`` or ``""``."""
        return {"higher": "↑", "lower": "↓"}.get(self.better or "", "")


METRIC_GUIDE: dict[str, MetricGuide] = {
    "citation_validity": MetricGuide(
        "Check: share of the citations, in every step's output, that name a source the run's tools retrieved.",
        "higher",
    ),
    "quote_validity": MetricGuide(
        "Check: share of the claims whose evidence is a whole sentence of the source they cite.", "higher"
    ),
    "topic_relevance": MetricGuide(
        "Share of the sources the report cites that are relevant: gold sources, or without gold the "
        "library's best matches for the topic.",
        "higher",
    ),
    "source_recall": MetricGuide("Share of the question's gold sources the report cites.", "higher"),
    "source_precision": MetricGuide("Share of the sources the report cites that are gold sources.", "higher"),
    "retrieval_recall": MetricGuide("Share of the gold sources the run's tools retrieved at all.", "higher"),
    "fact_coverage": MetricGuide(
        "Share of the question's must_include facts found in the report's body (not its title or cited titles).",
        "higher",
    ),
    "fact_coverage_judge": MetricGuide(
        "Share of the must_include facts a judge model finds stated in the report.", "higher"
    ),
    "forbidden_facts": MetricGuide("Check: how many must_not_include facts the report states.", "lower"),
    "claim_support": MetricGuide(
        "Share of the claims with words of their own (a claim's text, the report's cited sentences) their "
        "evidence supports: a sentence of the cited source holding the claim's content words beyond the topic, "
        "with no negation on one side only (or a judge's yes). Claims that only quote are not counted.",
        "higher",
    ),
    "tokens": MetricGuide("Tokens the run's model calls read and wrote.", "lower"),
    "cost_usd": MetricGuide("What the run's model calls cost, in US dollars (n/a: a price is unknown).", "lower"),
    "wall_time_s": MetricGuide("Seconds the run took, start to end.", "lower"),
    "completed": MetricGuide("Share of the runs that completed (a failed or over-budget run counts 0).", "higher"),
}
"""Each metric's meaning and better direction. A ratio with nothing to count is n/a, not 0."""


def guide(name: str) -> MetricGuide:
    """The guide to metric `name` (a placeholder pointing to the metrics module for one it does not know)."""
    return METRIC_GUIDE.get(name) or MetricGuide(f"See rolegraph.evals.metrics for {name}.", None)
