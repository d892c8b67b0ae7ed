"""Usage roll-ups: per run, step, role and model, from chat spans only, with parallel branches."""

from __future__ import annotations

from typing import Any

import pytest

from rolegraph.traces.pricing import PriceTable
from rolegraph.traces.trace import Trace
from rolegraph.traces.usage import roll_up


class TestRollUp:
    def test_parallel_branches_count_each_call_once(self, records: list[dict[str, Any]]) -> None:
        """Two agents running at once and a third after: every chat call counts once, in its own step and role."""
        trace = Trace(records)
        rollup = roll_up(trace, PriceTable())
        total = rollup.as_dict()["total"]
        assert total == {"input_tokens": 6000, "output_tokens": 600, "calls": 3, "cost_usd": pytest.approx(0.00084)}
        assert {k: (v.input_tokens, v.output_tokens) for k, v in rollup.by_step.items()} == {
            "a": (1000, 100),
            "b": (2000, 200),
            "write": (3000, 300),
        }
        assert {k: v.calls for k, v in rollup.by_role.items()} == {"researcher": 2, "writer": 1}
        assert rollup.by_model["local"].cost_usd == 0.0
        assert rollup.by_model["openai:gpt-4o-mini"].input_tokens == 4000
        # The root's own aggregate agrees with the sum over chat spans: no double counting.
        [root] = trace.roots
        usage = trace.usage()
        assert (root.input_tokens, root.output_tokens) == (6000, 600) == (usage.input_tokens, usage.output_tokens)

    def test_unknown_price_makes_cost_unknown(self, records: list[dict[str, Any]]) -> None:
        """One call to a model without a price makes its step's, role's and the run's cost None."""
        for record in records:
            if record["attributes"].get("gen_ai.request.model") == "local":
                record["attributes"]["gen_ai.request.model"] = "hf:mystery"
        rollup = roll_up(Trace(records), PriceTable())
        assert rollup.total.cost_usd is None
        assert rollup.by_step["b"].cost_usd is None and rollup.by_step["a"].cost_usd is not None
        assert rollup.by_role["researcher"].cost_usd is None

    def test_one_step(self, records: list[dict[str, Any]]) -> None:
        """With `step`, only that step's calls count, in every split."""
        rollup = roll_up(Trace(records), PriceTable(), step="b")
        assert (rollup.total.input_tokens, list(rollup.by_step), list(rollup.by_model)) == (2000, ["b"], ["local"])
