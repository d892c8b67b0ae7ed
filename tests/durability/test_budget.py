"""The budget meter: limits checked before a call and after its record, per run and per step."""

from __future__ import annotations

import pytest

from rolegraph.durability.budget import BudgetMeter
from rolegraph.durability.store import JournalEntry
from rolegraph.errors import BudgetExceeded
from rolegraph.traces.pricing import Price, PriceTable
from rolegraph.workflows.spec import Budget

PRICES = PriceTable({"m": Price(input_per_mtok=1_000_000, output_per_mtok=1_000_000)})
"""A dollar a token."""


def chat(step: str, tokens: int) -> JournalEntry:
    return JournalEntry(call_id=f"{step}#1/chat/1", step_id=step, kind="chat", model="m", input_tokens=tokens)


class TestBudgetMeter:
    def test_calls_started_together_cannot_all_pass_a_limit(self) -> None:
        """Two tool calls asked for at once under max_tool_calls 1: the second is refused before it starts."""
        meter = BudgetMeter(Budget(max_tool_calls=1), {}, PRICES)
        meter.before("a", "tool")
        with pytest.raises(BudgetExceeded) as info:
            meter.before("a", "tool")
        assert (info.value.limit, info.value.scope, info.value.allowed, info.value.used) == (
            "max_tool_calls",
            "run",
            1,
            1,
        )

    def test_a_call_past_the_token_limit_trips_after_its_record(self) -> None:
        """A call may start below max_tokens; the record that takes the run past it raises; no call starts after."""
        meter = BudgetMeter(Budget(max_tokens=10), {}, PRICES)
        meter.before("a", "chat")
        meter.count(chat("a", 10), reserved=True)
        meter.after("a")  # exactly at the limit: fine
        with pytest.raises(BudgetExceeded, match="max_tokens is 10, used 10"):
            meter.before("a", "chat")
        meter.count(chat("a", 1), reserved=True)
        with pytest.raises(BudgetExceeded, match="max_tokens is 10, used 11"):
            meter.after("a")

    def test_a_step_budget_only_counts_its_step(self) -> None:
        """A step's cost limit counts that step's calls only, and names the step."""
        meter = BudgetMeter(Budget(), {"b": Budget(max_cost_usd=5)}, PRICES, recorded=[chat("a", 100), chat("b", 4)])
        meter.before("a", "chat")
        meter.before("b", "chat")
        meter.count(chat("b", 2), reserved=True)
        with pytest.raises(BudgetExceeded, match=r"^step b budget exceeded: max_cost_usd is 5, used 6$"):
            meter.after("b")
        assert (meter.run.tokens, meter.run.iterations, meter.steps["b"].iterations) == (106, 4, 2)

    def test_without_limits_calls_are_counted_all_the_same(self) -> None:
        """A run with no limit to check still counts every call, per run and per step: what a run's usage and each
        step's iterations and tool calls are read from."""
        meter = BudgetMeter(Budget(max_wall_s=60), {}, PRICES)
        for _ in range(3):
            meter.before("a", "chat")
            meter.count(chat("a", 5), reserved=True)
            meter.after("a")
        meter.before("a", "tool")
        assert (meter.run.tokens, meter.run.iterations, meter.run.tool_calls, meter.run.cost_usd) == (15, 3, 1, 15.0)
        assert (meter.steps["a"].iterations, meter.steps["a"].tool_calls) == (3, 1)
