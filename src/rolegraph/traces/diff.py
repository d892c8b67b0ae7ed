"""Comparing two runs (normally of one workflow): per step, what changed — status, visits, tool calls,
output, tokens and time — the same for the whole run, and where the two first went apart.

```python
difference = diff_runs(home / "runs" / run_a, home / "runs" / run_b)
for step in difference.steps:
    if step.differs:
        print(step.step_id, step.tool_calls)
print(difference.first_divergence)  # step research, tool call 1: library_search {...} vs library_search {...}
```
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from rolegraph.layout import RunFolder
from rolegraph.traces.pricing import PriceTable
from rolegraph.traces.records import read_summary
from rolegraph.traces.trace import SpanRecord, Trace
from rolegraph.traces.usage import agent_of, roll_up

__all__ = ["Difference", "RecordedRun", "RunDiff", "StepDiff", "diff_runs"]


@dataclass
class RecordedRun:
    """What a run folder recorded, per step: the pieces a diff compares."""

    run_id: str
    summary: dict[str, Any]
    trace: Trace
    run_dir: Path
    step_order: list[str] = field(default_factory=list)
    tool_calls: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Per step, its tool calls: item by item, each item's in order; of each visit its last attempt only
    (the one a resumed run made again after its interruption)."""
    visits: dict[str, int] = field(default_factory=dict)
    durations: dict[str, float] = field(default_factory=dict)
    starts: dict[str, float] = field(default_factory=dict)
    """When each step's first agent started (Unix time)."""

    @classmethod
    def load(cls, run_dir: Path) -> RecordedRun:
        """Read a run folder's ``run.json`` and ``trace.jsonl``.

        Raises:
            DamagedFileError: One of them is damaged.
        """
        folder = RunFolder(run_dir)
        summary = read_summary(folder.summary)
        trace = Trace.load(folder.trace) if folder.trace.is_file() else Trace([], folder.trace)
        run = cls(run_id=run_dir.name, summary=summary, trace=trace, run_dir=run_dir)
        run._index()
        return run

    def _index(self) -> None:
        spans: dict[str, list[tuple[float, float]]] = {}
        calls: dict[str, list[tuple[float, dict[str, Any]]]] = {}
        attempts: dict[tuple[str, str, int], SpanRecord] = {}
        for span in self.trace.walk():
            agent = agent_of(self.trace, span)
            if agent is None and span.kind == "execute_tool":
                agent = span  # a tool or function step: its one call is its visit
            if agent is None or "rolegraph.step.id" not in agent.attributes:
                continue
            step = str(agent.attributes["rolegraph.step.id"])
            item = agent.attributes.get("rolegraph.step.item")
            if span is agent:
                end = span.end_time if span.end_time is not None else span.start_time
                spans.setdefault(step, []).append((span.start_time, end))
                visit = int(span.attributes.get("rolegraph.step.visit") or 1)
                self.visits[step] = max(self.visits.get(step, 0), visit)
                # A resumed run redoes the visit its interruption cut short: the last attempt is the visit.
                known = attempts.get((step, str(item), visit))
                if known is None or known.start_time <= span.start_time:
                    attempts[(step, str(item), visit)] = span
            if span.kind == "execute_tool":
                call = {
                    "name": span.attributes.get("gen_ai.tool.name"),
                    "arguments": _arguments(span.attributes.get("rolegraph.tool.arguments")),
                    "item": item,
                }
                calls.setdefault(agent.span_id, []).append((span.start_time, call))
        # Parallel items finish in any order: compare calls item by item, each item's calls in order.
        by_step: dict[str, list[tuple[str, float, dict[str, Any]]]] = {}
        for (step, item, _), agent in attempts.items():
            by_step.setdefault(step, []).extend((item, when, call) for when, call in calls.get(agent.span_id, []))
        self.tool_calls = {k: [c for _, _, c in sorted(v, key=lambda t: t[:2])] for k, v in by_step.items() if v}
        self.durations = {k: max(e for _, e in v) - min(s for s, _ in v) for k, v in spans.items()}
        self.starts = {k: min(s for s, _ in v) for k, v in spans.items()}
        recorded = list((self.summary.get("steps") or {}).keys())
        self.step_order = recorded + [s for s in spans if s not in recorded]

    @cached_property
    def step_states(self) -> dict[str, dict[str, Any]]:
        """Each completed step's last state, from ``steps.jsonl`` (or an older run's ``steps/<step>.json``)."""
        return RunFolder(self.run_dir).step_states()

    def output(self, step: str) -> tuple[bool, Any]:
        """(found, output) of a completed step, from its last saved state."""
        state = self.step_states.get(step)
        return (True, state.get("output")) if state is not None else (False, None)

    def status(self, step: str) -> str | None:
        """The step's final status, from ``run.json``."""
        value = (self.summary.get("steps") or {}).get(step)
        return None if value is None else str(value)


def _arguments(text: Any) -> Any:
    try:
        return json.loads(text) if isinstance(text, str) else text
    except (ValueError, RecursionError):
        return text


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or a <= 0 else round(b / a, 3)


def _call_text(call: dict[str, Any]) -> str:
    item = call.get("item")
    arguments = json.dumps(call.get("arguments"), ensure_ascii=False, sort_keys=True, default=str)
    return f"{call.get('name')}{'' if item is None else f'[{item}]'} {arguments}"


@dataclass(frozen=True)
class Difference:
    """Where two runs first differ: a step, what about it, and (for tool calls) which call.

    Attributes:
        step_id: The step ("" when only the runs' final statuses differ).
        kind: ``status``, ``visits``, ``tool_call``, ``output`` or ``run_status``.
        detail: What differs, A's side first: ``library_search {"query": "a"} vs library_search {"query": "b"}``.
        call_index: The 0-based index of the first differing tool call, for ``tool_call``.
    """

    step_id: str
    kind: str
    detail: str
    call_index: int | None = None

    def describe(self) -> str:
        """One line for people: ``step research, tool call 1: ...``."""
        where = f"step {self.step_id}" if self.step_id else "the run"
        if self.call_index is not None:
            where += f", tool call {self.call_index + 1}"
        elif self.kind != "run_status":
            where += f", {self.kind.replace('_', ' ')}"
        return f"{where}: {self.detail}"

    def as_dict(self) -> dict[str, Any]:
        """The divergence as JSON data."""
        return {
            "step_id": self.step_id,
            "kind": self.kind,
            "detail": self.detail,
            "call_index": self.call_index,
            "text": self.describe(),
        }


@dataclass
class StepDiff:
    """One step in both runs; each pair is (run A, run B)."""

    step_id: str
    status: tuple[str | None, str | None]
    visits: tuple[int, int]
    tool_calls: tuple[list[dict[str, Any]], list[dict[str, Any]]]
    output_same: bool | None
    """None when either run has no saved output for the step."""
    tokens: tuple[int, int]
    duration_s: tuple[float | None, float | None]

    @property
    def tool_calls_same(self) -> bool:
        """Same tools with the same arguments, in the same order."""
        return self.tool_calls[0] == self.tool_calls[1]

    @property
    def differs(self) -> bool:
        """Anything but tokens and time differs."""
        return self.difference() is not None

    def difference(self) -> Difference | None:
        """What differs first in this step, in the order a run does things: it ran (status), how often
        (visits), its tool calls one by one, then its output; None if nothing but tokens and time does."""
        if self.status[0] != self.status[1]:
            return Difference(self.step_id, "status", f"{self.status[0] or 'not run'} vs {self.status[1] or 'not run'}")
        if self.visits[0] != self.visits[1]:
            return Difference(self.step_id, "visits", f"ran {self.visits[0]} vs {self.visits[1]} times")
        calls_a, calls_b = self.tool_calls
        for index, (one, other) in enumerate(zip(calls_a, calls_b, strict=False)):
            if one != other:
                detail = f"{_call_text(one)} vs {_call_text(other)}"
                return Difference(self.step_id, "tool_call", detail, index)
        if len(calls_a) != len(calls_b):
            index = min(len(calls_a), len(calls_b))
            extra = (calls_a or calls_b)[index] if len(calls_a) > len(calls_b) else calls_b[index]
            who = "A" if len(calls_a) > len(calls_b) else "B"
            detail = f"{len(calls_a)} vs {len(calls_b)} tool calls; only {who} called {_call_text(extra)}"
            return Difference(self.step_id, "tool_call", detail, index)
        if self.output_same is False:
            return Difference(self.step_id, "output", "same tool calls, different output")
        return None

    def as_dict(self) -> dict[str, Any]:
        """The step's comparison as JSON data."""
        return {
            "status": list(self.status),
            "visits": list(self.visits),
            "tool_calls": {"a": self.tool_calls[0], "b": self.tool_calls[1], "same": self.tool_calls_same},
            "output_same": self.output_same,
            "tokens": list(self.tokens),
            "duration_s": [None if d is None else round(d, 3) for d in self.duration_s],
            "duration_ratio": _ratio(*self.duration_s),
            "differs": self.differs,
            "difference": None if (found := self.difference()) is None else found.as_dict(),
        }


@dataclass
class RunDiff:
    """Two runs compared: per step, and in total."""

    a: RecordedRun
    b: RecordedRun
    steps: list[StepDiff]
    totals: dict[str, Any]

    @property
    def first_divergence(self) -> Difference | None:
        """The first difference in time: of the differing steps, the one that started first (in A, else
        in B); the runs' final statuses when no step differs; None for two runs that agree."""
        differing = [s for s in self.steps if s.differs]
        if differing:

            def started(step: StepDiff) -> float:
                when = self.a.starts.get(step.step_id)
                if when is None:  # not run in A: place it by its start in B, relative to B's first step
                    b_start = self.b.starts.get(step.step_id, float("inf"))
                    when = min(self.a.starts.values(), default=0.0) + b_start - min(self.b.starts.values(), default=0.0)
                return when

            return min(differing, key=started).difference()
        status = self.totals["status"]
        if status[0] != status[1]:
            return Difference("", "run_status", f"run ended {status[0]} vs {status[1]}")
        return None

    def as_dict(self) -> dict[str, Any]:
        """The comparison as JSON data (``steps`` keyed by step id, in run A's order)."""
        first = self.first_divergence
        return {
            "a": self.a.run_id,
            "b": self.b.run_id,
            "workflow": [self.a.summary.get("workflow"), self.b.summary.get("workflow")],
            "steps": {s.step_id: s.as_dict() for s in self.steps},
            "totals": self.totals,
            "first_divergence": None if first is None else first.as_dict(),
        }


def diff_runs(run_a: Path, run_b: Path, prices: PriceTable | None = None) -> RunDiff:
    """Compare two run folders step by step."""
    prices = prices or PriceTable()
    a, b = RecordedRun.load(run_a), RecordedRun.load(run_b)
    usage_a, usage_b = roll_up(a.trace, prices), roll_up(b.trace, prices)

    def tokens(rollup_steps: dict[str, Any], step: str) -> int:
        total = rollup_steps.get(step)
        return 0 if total is None else int(total.input_tokens + total.output_tokens)

    steps = []
    for step in a.step_order + [s for s in b.step_order if s not in a.step_order]:
        (found_a, out_a), (found_b, out_b) = a.output(step), b.output(step)
        steps.append(
            StepDiff(
                step_id=step,
                status=(a.status(step), b.status(step)),
                visits=(a.visits.get(step, 0), b.visits.get(step, 0)),
                tool_calls=(a.tool_calls.get(step, []), b.tool_calls.get(step, [])),
                output_same=(out_a == out_b) if found_a and found_b else None,
                tokens=(tokens(usage_a.by_step, step), tokens(usage_b.by_step, step)),
                duration_s=(a.durations.get(step), b.durations.get(step)),
            )
        )
    durations = (a.summary.get("duration_s"), b.summary.get("duration_s"))
    totals = {
        "status": [a.summary.get("status"), b.summary.get("status")],
        "tool_calls": [sum(len(s.tool_calls[0]) for s in steps), sum(len(s.tool_calls[1]) for s in steps)],
        "input_tokens": [usage_a.total.input_tokens, usage_b.total.input_tokens],
        "output_tokens": [usage_a.total.output_tokens, usage_b.total.output_tokens],
        "cost_usd": [usage_a.total.as_dict()["cost_usd"], usage_b.total.as_dict()["cost_usd"]],
        "duration_s": list(durations),
        "duration_ratio": _ratio(*durations),
        "steps_differing": [s.step_id for s in steps if s.differs],
    }
    return RunDiff(a, b, steps, totals)
