"""Token usage and cost of a run, rolled up per run, step, role and model from its `chat` spans.

Only `chat` spans carry token counts, so each model call is counted exactly once
however the spans above it are nested or run in parallel. A call's step and
role are those of the nearest enclosing `invoke_agent` span. A call the model-call
cache answered (``rolegraph.cached``) spent nothing; what it would have spent is
rolled up apart, as `UsageRollup.saved`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rolegraph.traces.pricing import PriceTable
from rolegraph.traces.trace import SpanRecord, Trace

__all__ = ["UsageRollup", "UsageTotal", "agent_of", "roll_up"]


@dataclass
class UsageTotal:
    """Tokens, model calls and cost of a set of `chat` spans."""

    input_tokens: int = 0
    output_tokens: int = 0
    calls: int = 0
    cost_usd: float | None = 0.0
    """USD; None when any call's model has no known price."""

    def add(self, input_tokens: int, output_tokens: int, cost_usd: float | None) -> None:
        """Count one model call."""
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self.calls += 1
        self.cost_usd = None if cost_usd is None or self.cost_usd is None else self.cost_usd + cost_usd

    def as_dict(self) -> dict[str, Any]:
        """The total as JSON data (cost rounded to micro-dollars)."""
        cost = None if self.cost_usd is None else round(self.cost_usd, 6)
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "calls": self.calls,
            "cost_usd": cost,
        }


@dataclass
class UsageRollup:
    """A run's usage: the total, and the same split per step, role and model."""

    total: UsageTotal = field(default_factory=UsageTotal)
    by_step: dict[str, UsageTotal] = field(default_factory=dict)
    by_role: dict[str, UsageTotal] = field(default_factory=dict)
    by_model: dict[str, UsageTotal] = field(default_factory=dict)
    saved: UsageTotal = field(default_factory=UsageTotal)
    """The calls the model-call cache answered (`calls`), and the tokens and cost they did not spend."""
    saved_by_model: dict[str, UsageTotal] = field(default_factory=dict)
    """`saved`, per model."""

    def as_dict(self) -> dict[str, Any]:
        """The roll-up as JSON data."""
        return {
            "total": self.total.as_dict(),
            "saved": self.saved.as_dict(),
            "by_step": {k: v.as_dict() for k, v in self.by_step.items()},
            "by_role": {k: v.as_dict() for k, v in self.by_role.items()},
            "by_model": {k: v.as_dict() for k, v in self.by_model.items()},
        }


def agent_of(trace: Trace, span: SpanRecord) -> SpanRecord | None:
    """The nearest `invoke_agent` span enclosing `span` (itself included), if any."""
    node: SpanRecord | None = span
    seen: set[str] = set()
    while node is not None and node.span_id not in seen:
        if node.kind == "invoke_agent":
            return node
        seen.add(node.span_id)
        node = trace.spans.get(node.parent_id) if node.parent_id else None
    return None


def roll_up(trace: Trace, prices: PriceTable | None = None, *, step: str | None = None) -> UsageRollup:
    """Sum the `chat` spans of `trace` per run, step, role and model, with their cost under `prices`.

    Calls outside any agent are filed under step and role ``"-"``. With `step`, only
    that step's calls count.
    """
    prices = prices or PriceTable()
    rollup = UsageRollup()
    for span in trace.walk():
        if span.kind != "chat":
            continue
        tokens_in, tokens_out = span.input_tokens, span.output_tokens
        model = str(span.attributes.get("gen_ai.request.model") or "-")
        cost = prices.cost(model, tokens_in, tokens_out)
        agent = agent_of(trace, span)
        agent_step = str(agent.attributes.get("rolegraph.step.id") or "-") if agent else "-"
        role = str(agent.attributes.get("gen_ai.agent.name") or "-") if agent else "-"
        if step is not None and agent_step != step:
            continue
        if span.attributes.get("rolegraph.cached") is True:
            _add_saved(rollup, span, model, prices)
        rollup.total.add(tokens_in, tokens_out, cost)
        for table, key in ((rollup.by_step, agent_step), (rollup.by_role, role), (rollup.by_model, model)):
            table.setdefault(key, UsageTotal()).add(tokens_in, tokens_out, cost)
    return rollup


def _add_saved(rollup: UsageRollup, span: SpanRecord, model: str, prices: PriceTable) -> None:
    """Count a call the cache answered in `rollup.saved`: the tokens it would have spent, and their cost."""
    saved_in = _count(span.attributes.get("rolegraph.cached.input_tokens"))
    saved_out = _count(span.attributes.get("rolegraph.cached.output_tokens"))
    cost = prices.cost(model, saved_in, saved_out)
    rollup.saved.add(saved_in, saved_out, cost)
    rollup.saved_by_model.setdefault(model, UsageTotal()).add(saved_in, saved_out, cost)


def _count(value: Any) -> int:
    """A token count read from a trace: anything else (a damaged attribute) counts 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
