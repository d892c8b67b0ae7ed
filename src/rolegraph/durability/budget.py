"""Budgets: hard limits on tokens, cost, tool calls and iterations, checked at every recorded call.

A durable run records each completed model and tool call in its journal (the
run store), an output check's model call among them (kind ``check``: its tokens
and dollars count; it is not an agent's iteration). `BudgetMeter` counts what
each record spends, per run and per step, and `MeteredJournal` is the journal an agent sees: it replays recorded calls,
checks the limits before a new call and after recording one, and raises
`BudgetExceeded` when a limit is reached. The call that crossed a limit is
recorded before the run stops, so a resume with a higher limit replays it rather
than paying for it twice. Replayed calls are never counted again: the meter
starts from the journal's totals.

Wall-time limits are timers, not counts: the run's in `workflows/durable.py`,
a step's in the scheduler.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rolegraph.agents.call_ids import MODEL_CALL_KINDS, call_kind
from rolegraph.agents.journal import RequestDigest, describe_changes, request_changes
from rolegraph.durability.store import JournalEntry, RunStore
from rolegraph.errors import BudgetExceeded
from rolegraph.models.model import Usage
from rolegraph.traces.pricing import PriceTable
from rolegraph.workflows.spec import Budget

__all__ = ["BudgetMeter", "CallCounts", "MeteredJournal", "Spent"]


@dataclass
class Spent:
    """What a run or a step has used so far."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    tool_calls: int = 0
    iterations: int = 0

    @property
    def tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    @property
    def usage(self) -> Usage:
        """The tokens as a `Usage`."""
        return Usage(input_tokens=self.input_tokens, output_tokens=self.output_tokens)


class BudgetMeter:
    """Counts recorded calls against the run's budget and each step's.

    Args:
        run_budget: The run's limits.
        step_budgets: Each step's own limits (steps without a budget may be left out).
        prices: Prices for ``max_cost_usd`` (a model without a price counts as free).
        recorded: Calls already in the journal (a resumed run): counted, never checked.
    """

    def __init__(
        self,
        run_budget: Budget,
        step_budgets: Mapping[str, Budget],
        prices: PriceTable,
        recorded: Iterable[JournalEntry] = (),
    ) -> None:
        self.run_budget = run_budget
        self.step_budgets = dict(step_budgets)
        self.prices = prices
        self.run = Spent()
        self.steps: dict[str, Spent] = {}
        self._run_limited = any(
            limit is not None
            for limit in (
                run_budget.max_tokens,
                run_budget.max_cost_usd,
                run_budget.max_iterations,
                run_budget.max_tool_calls,
            )
        )
        """Whether the run's budget sets a limit a call is checked against (`_scopes`)."""
        for entry in recorded:
            self.count(entry)

    def _step(self, step_id: str) -> Spent:
        """What `step_id` has used (a `Spent` made only for a step's first call, not at every call)."""
        spent = self.steps.get(step_id)
        if spent is None:
            spent = self.steps[step_id] = Spent()
        return spent

    def _scopes(self, step_id: str) -> list[tuple[Budget, Spent, str]]:
        """The budgets a call of `step_id` is checked against: the run's if it sets a limit, the step's if it has one
        (none at all for most calls: nothing to check)."""
        scopes = [(self.run_budget, self.run, "run")] if self._run_limited else []
        step_budget = self.step_budgets.get(step_id)
        if step_budget is not None:
            scopes.append((step_budget, self._step(step_id), f"step {step_id}"))
        return scopes

    def count(self, entry: JournalEntry, *, reserved: bool = False) -> None:
        """Add a recorded call to the run's and its step's totals.

        Args:
            entry: The call.
            reserved: `before` already counted the call itself (not its tokens).
        """
        tokens = (entry.input_tokens, entry.output_tokens)
        self.count_call(entry.step_id, entry.kind, entry.model, *tokens, reserved=reserved)

    def count_call(
        self, step_id: str, kind: str, model: str | None, input_tokens: int, output_tokens: int, *, reserved: bool
    ) -> None:
        """`count` of the call given by its fields (`JournalEntry`'s)."""
        step = self._step(step_id)
        if kind in MODEL_CALL_KINDS:
            cost = self.prices.cost(model, input_tokens, output_tokens) or 0.0
            iteration = int(not reserved and kind == "chat")
            for spent in (self.run, step):
                spent.input_tokens += input_tokens
                spent.output_tokens += output_tokens
                spent.cost_usd += cost
                spent.iterations += iteration
        elif not reserved:  # a tool call (no tokens, no price)
            self.run.tool_calls += 1
            step.tool_calls += 1

    def before(self, step_id: str, kind: str) -> None:
        """Check that a new call of `kind` (``chat``, ``check`` or ``tool``) may start in `step_id`, and count it.

        The call counts from here, not from its record: calls started together (parallel
        tool calls, parallel items) must not all pass a limit that only one of them fits.

        Raises:
            BudgetExceeded: A limit is already reached.
        """
        for budget, spent, scope in self._scopes(step_id):
            if kind in MODEL_CALL_KINDS:
                _check(budget.max_tokens, spent.tokens, "max_tokens", scope, strict=False)
                _check(budget.max_cost_usd, spent.cost_usd, "max_cost_usd", scope, strict=False)
                if kind == "chat":
                    _check(budget.max_iterations, spent.iterations, "max_iterations", scope, strict=False)
            else:
                _check(budget.max_tool_calls, spent.tool_calls, "max_tool_calls", scope, strict=False)
        for spent in (self.run, self._step(step_id)):
            if kind == "chat":
                spent.iterations += 1
            elif kind not in MODEL_CALL_KINDS:
                spent.tool_calls += 1

    def after(self, step_id: str) -> None:
        """Check the limits a just-recorded call may have crossed.

        Raises:
            BudgetExceeded: The call took the run or step past a limit.
        """
        if not self._run_limited and step_id not in self.step_budgets:  # most calls: no limit to check
            return
        for budget, spent, scope in self._scopes(step_id):
            _check(budget.max_tokens, spent.tokens, "max_tokens", scope, strict=True)
            _check(budget.max_cost_usd, spent.cost_usd, "max_cost_usd", scope, strict=True)


def _check(limit: float | None, used: float, name: str, scope: str, *, strict: bool) -> None:
    """Raise if `used` is past `limit` (strict) or has reached it (a new call could only go past it)."""
    if limit is not None and (used > limit if strict else used >= limit):
        raise BudgetExceeded(name, scope, limit, used)


@dataclass
class CallCounts:
    """What the journals of one invocation did with the calls recorded before it."""

    replayed: int = 0
    """Recorded calls answered from the journal."""
    resent: int = 0
    """Recorded calls sent again: their request had changed, or an earlier call of their agent run's had."""
    first_resent: str | None = None
    """The first call sent again, and why: ``write#1/chat/1: prompt changed``."""


class MeteredJournal:
    """The call journal one agent run sees: the run store's, metered against the budgets.

    A recorded call is replayed only while it was recorded with the same request (the
    same digest: `rolegraph.agents.journal`). The first recorded call whose request
    changed — an edited prompt, other tools — is sent again, and so is every later call
    of the same agent run (its answers follow from the changed one); the new record
    replaces the old (kept as superseded: it was paid for).

    Args:
        store: The run store.
        meter: The run's budget meter.
        step_id: The step the agent works on.
        model: The agent's model string (for prices).
        counts: Where replayed and re-sent calls are counted (shared by an invocation's journals).
    """

    def __init__(
        self, store: RunStore, meter: BudgetMeter, step_id: str, model: str, counts: CallCounts | None = None
    ) -> None:
        self.store = store
        self.meter = meter
        self.step_id = step_id
        self.model = model
        self.counts = counts if counts is not None else CallCounts()
        self.stale = False
        """Whether a recorded call of this agent run was sent again (so every later one is)."""
        self._resending: set[str] = set()

    def get(self, call_id: str, *, request: RequestDigest | None = None) -> Any | None:
        """The recorded result (made with this request), or None after checking that a new call is within budget."""
        recorded = self.store.get(call_id)
        if recorded is not None:
            changed = request_changes(self.store.request(call_id), request)
            if not changed and not self.stale:
                self.counts.replayed += 1
                return recorded
            if not self.stale:
                self.counts.first_resent = self.counts.first_resent or f"{call_id}: {describe_changes(changed)}"
            self.stale = True
            self._resending.add(call_id)
            self.counts.resent += 1
        self.meter.before(self.step_id, call_kind(call_id))
        return None

    def put(self, call_id: str, result: Any, *, request: RequestDigest | None = None) -> None:
        """Record the call (with its request's digest), count it, and check it did not go past a limit.

        The call goes to the store and the meter as its fields: a `JournalEntry` (pydantic, validated)
        is what reading the journal gives; one built per call here was never read."""
        step_id, kind = self.step_id, call_kind(call_id)
        model_call = kind in MODEL_CALL_KINDS
        usage = (result.get("usage") or {}) if model_call and isinstance(result, dict) else {}
        model = self.model if model_call else None
        tokens_in, tokens_out = int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))
        replace = call_id in self._resending
        self.store.put_call(call_id, step_id, kind, model, tokens_in, tokens_out, result, request, replace=replace)
        self.meter.count_call(step_id, kind, model, tokens_in, tokens_out, reserved=True)
        self.meter.after(step_id)
