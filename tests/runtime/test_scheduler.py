"""Scheduler: eager ordering, parallel fan-out, concurrency caps, failures, cancellation, routes.

Tests wait on observable state (events set by the fake executor), never on elapsed time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from rolegraph.agents.model_calls import STEP_DEADLINE
from rolegraph.errors import BudgetExceeded
from rolegraph.models.model import Usage
from rolegraph.runtime.scheduler import Scheduler, StepCall, StepOutcome, StepState
from rolegraph.traces.redact import Redactor
from rolegraph.traces.sinks import MemorySink
from rolegraph.traces.tracer import Tracer
from rolegraph.workflows.graph import compile_graph
from rolegraph.workflows.loader import parse_spec

Handler = Callable[[StepCall], Awaitable[dict[str, Any]]]


class FunctionExecutor:
    """An executor backed by a function, recording every call."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.calls: list[StepCall] = []

    async def execute(self, call: StepCall) -> StepOutcome:
        self.calls.append(call)
        return StepOutcome(output=await self.handler(call))


ROLES = """
roles:
  worker:
    instructions: Do the task.
    output: {value: string, items: "list[string]", verdict: "enum[ok, again]"}
"""


def spec_of(steps: str, settings: str = "") -> Any:
    return parse_spec(f"rolegraph: 1\nname: t\n{ROLES}\nsteps:\n{steps}\n{settings}")


async def run(
    spec: Any, handler: Handler, sink: MemorySink | None = None
) -> tuple[dict[str, StepState], FunctionExecutor]:
    executor = FunctionExecutor(handler)
    tracer = Tracer("run", sinks=[sink] if sink else [], redactor=Redactor())
    scheduler = Scheduler(spec, compile_graph(spec), executor, run_id="run", inputs={}, tracer=tracer)
    return await scheduler.run(), executor


def answer(value: str = "v", items: list[str] | None = None, verdict: str = "ok") -> dict[str, Any]:
    return {"value": value, "items": items or [], "verdict": verdict}


def slow_until_after_fast() -> Handler:
    """Answers each step with its id; step ``slow`` waits until step ``after_fast`` starts, which it can only do
    if it started while ``slow`` still ran."""
    release_slow = asyncio.Event()

    async def handler(call: StepCall) -> dict[str, Any]:
        if call.step_id == "slow":
            await release_slow.wait()
        if call.step_id == "after_fast":
            release_slow.set()
        return answer(value=call.step_id)

    return handler


class TestOrdering:
    async def test_dependencies_run_first_and_feed_templates(self) -> None:
        """A step runs after its dependencies and its task sees their outputs."""
        spec = spec_of(
            """
  a: {role: worker, task: "start"}
  b: {role: worker, task: "after {{ steps.a.value }}", depends_on: [a]}
"""
        )

        async def handler(call: StepCall) -> dict[str, Any]:
            return answer(value=f"out-{call.step_id}")

        states, executor = await run(spec, handler)
        assert [c.step_id for c in executor.calls] == ["a", "b"]
        assert executor.calls[1].task == "after out-a"
        assert executor.calls[1].upstream == {"a": answer(value="out-a")}
        assert {k: s.status for k, s in states.items()} == {"a": "completed", "b": "completed"}

    async def test_eager_start_without_superstep_barrier(self) -> None:
        """A step starts as soon as its own inputs are ready, while an unrelated slow step still runs."""
        spec = spec_of(
            """
  slow: {role: worker, task: s}
  fast: {role: worker, task: f}
  after_fast: {role: worker, task: x, depends_on: [fast]}
  join: {role: worker, task: j, depends_on: [slow, after_fast]}
"""
        )
        states, executor = await run(spec, slow_until_after_fast())
        order = [c.step_id for c in executor.calls]
        assert order.index("after_fast") < order.index("join")
        assert all(s.status == "completed" for s in states.values())

    async def test_each_step_runs_in_a_task_named_for_it(self) -> None:
        """A step's task is named ``step <id>`` while it runs, also when a chain's next step runs in the task its
        dependency ran in."""
        spec = spec_of(
            """
  a: {role: worker, task: t}
  b: {role: worker, task: t, depends_on: [a]}
  c: {role: worker, task: t, depends_on: [b]}
"""
        )
        names: dict[str, str] = {}

        async def handler(call: StepCall) -> dict[str, Any]:
            task = asyncio.current_task()
            assert task is not None
            names[call.step_id] = task.get_name()
            return answer()

        states, _ = await run(spec, handler)
        assert names == {"a": "step a", "b": "step b", "c": "step c"}
        assert {s.status for s in states.values()} == {"completed"}


class TestLoopTurns:
    CHAIN = """
  a: {role: worker, task: t}
  b: {role: worker, task: t, depends_on: [a]}
  c: {role: worker, task: t, depends_on: [b]}
"""

    async def _loop_ran_before(self) -> dict[str, bool]:
        """Run a chain of steps that never wait; for each step, whether a callback the first step scheduled
        had run by the time the step started."""
        ran: list[bool] = []
        seen: dict[str, bool] = {}

        async def handler(call: StepCall) -> dict[str, Any]:
            if call.step_id == "a":
                asyncio.get_running_loop().call_soon(ran.append, True)
            seen[call.step_id] = bool(ran)
            return answer()

        states, _ = await run(spec_of(self.CHAIN), handler)
        assert {s.status for s in states.values()} == {"completed"}
        return seen

    async def test_a_chain_gives_the_loop_a_turn_before_each_step(self) -> None:
        """A chain of steps that never wait yields to the loop before each step after the first, so the loop's
        other work (and parallel branches) runs between its steps, whatever the timing."""
        assert await self._loop_ran_before() == {"a": False, "b": True, "c": True}


class TestFanOut:
    async def test_for_each_runs_items_in_parallel_and_keeps_order(self) -> None:
        """Every item runs; all are in flight together; outputs keep item order."""
        spec = spec_of(
            """
  plan: {role: worker, task: p}
  each:
    role: worker
    depends_on: [plan]
    for_each: {items: steps.plan.items, as: q}
    task: "item {{ q }} #{{ index }}"
"""
        )
        in_flight = 0
        all_in = asyncio.Event()

        async def handler(call: StepCall) -> dict[str, Any]:
            nonlocal in_flight
            if call.step_id == "plan":
                return answer(items=["x", "y", "z"])
            in_flight += 1
            if in_flight == 3:
                all_in.set()
            await all_in.wait()  # deadlocks (and the test times out) unless all three run at once
            return answer(value=call.task)

        states, executor = await run(spec, handler)
        assert [o["value"] for o in states["each"].output] == ["item x #0", "item y #1", "item z #2"]
        assert sorted(c.item_index for c in executor.calls if c.step_id == "each") == [0, 1, 2]

    @pytest.mark.parametrize(("step_cap", "run_cap", "expected"), [(2, 10, 2), (10, 3, 3), (1, 10, 1)])
    async def test_concurrency_caps(self, step_cap: int, run_cap: int, expected: int) -> None:
        """Neither the for_each cap nor the run-wide cap is ever exceeded, and both are reached."""
        spec = spec_of(
            f"""
  plan: {{role: worker, task: p}}
  each:
    role: worker
    depends_on: [plan]
    for_each: {{items: steps.plan.items, max_concurrency: {step_cap}}}
    task: "{{{{ item }}}}"
""",
            f"settings: {{max_concurrency: {run_cap}}}",
        )
        current = peak = 0

        async def handler(call: StepCall) -> dict[str, Any]:
            nonlocal current, peak
            if call.step_id == "plan":
                return answer(items=[str(i) for i in range(8)])
            current += 1
            peak = max(peak, current)
            for _ in range(5):
                await asyncio.sleep(0)  # yield so that others can start if the caps allow
            current -= 1
            return answer()

        states, _ = await run(spec, handler)
        assert states["each"].status == "completed"
        assert peak == expected

    async def test_for_each_over_non_list_fails_the_step(self) -> None:
        """for_each items that are not a list fail the step with a message saying so."""
        spec = spec_of(
            """
  plan: {role: worker, task: p}
  each: {role: worker, depends_on: [plan], for_each: {items: steps.plan.value}, task: t}
"""
        )

        async def handler(call: StepCall) -> dict[str, Any]:
            return answer(value="not a list")

        states, _ = await run(spec, handler)
        assert states["each"].status == "failed"
        assert "not a list" in (states["each"].error or "")


ITEMS = """
  plan: {{role: worker, task: p}}
  each:
    role: worker
    depends_on: [plan]
    for_each: {{items: steps.plan.items, on_item_error: "{policy}"}}
    task: "{{{{ item }}}}"
"""


def flaky(failures: dict[str, int]) -> Handler:
    """A handler under which each item named in `failures` fails that many times before it answers."""

    async def handler(call: StepCall) -> dict[str, Any]:
        if call.step_id == "plan":
            return answer(items=["a", "b", "c", "d"])
        if failures.get(call.task, 0) > 0:
            failures[call.task] -= 1
            raise RuntimeError(f"item {call.task} broke")
        return answer(value=call.task.upper())

    return handler


class TestItemErrors:
    async def test_skip_leaves_failed_items_out_and_records_them(self) -> None:
        """With `skip`, the step completes without its failed items; its state and plan span list them."""
        sink = MemorySink()
        states, _ = await run(spec_of(ITEMS.format(policy="skip")), flaky({"b": 9, "d": 9}), sink)
        each = states["each"]
        assert each.status == "completed"
        assert [o["value"] for o in each.output] == ["A", "C"]
        assert each.skipped_items == [
            {"index": 1, "item": "b", "error": "item b broke"},
            {"index": 3, "item": "d", "error": "item d broke"},
        ]
        (plan,) = [r for r in sink.records if r["event"] == "span_end" and r["name"] == "plan each"]
        assert plan["attributes"]["rolegraph.items_skipped"] == [
            {"index": 1, "error": "item b broke"},
            {"index": 3, "error": "item d broke"},
        ]

    async def test_retry_runs_a_failed_item_again_with_new_calls(self) -> None:
        """With `retry:2`, an item failing twice is run a third time and answers; each try is its own call."""
        states, executor = await run(spec_of(ITEMS.format(policy="retry:2")), flaky({"b": 2}))
        assert states["each"].status == "completed"
        assert [o["value"] for o in states["each"].output] == ["A", "B", "C", "D"]
        tries = [(c.item_index, c.attempt) for c in executor.calls if c.step_id == "each" and c.item_index == 1]
        assert tries == [(1, 1), (1, 2), (1, 3)]

    async def test_retries_run_out(self) -> None:
        """An item that fails more often than `retry:N` allows fails the step with its error."""
        states, executor = await run(spec_of(ITEMS.format(policy="retry:1")), flaky({"c": 5}))
        assert states["each"].status == "failed"
        assert "item c broke" in (states["each"].error or "")
        assert sum(1 for c in executor.calls if c.item_index == 2) == 2

    async def test_fail_is_the_default(self) -> None:
        """Without `on_item_error`, one failed item fails the whole step."""
        spec = spec_of(ITEMS.format(policy="fail").replace(', on_item_error: "fail"', ""))
        states, _ = await run(spec, flaky({"a": 1}))
        assert states["each"].status == "failed" and states["each"].skipped_items == []

    async def test_a_budget_stop_is_never_skipped(self) -> None:
        """A budget running out in an item stops the run even under `skip`."""

        async def handler(call: StepCall) -> dict[str, Any]:
            if call.step_id == "plan":
                return answer(items=["a", "b"])
            raise BudgetExceeded("max_tokens", "run", 10, 12)

        states, _ = await run(spec_of(ITEMS.format(policy="skip")), handler)
        assert states["each"].status == "budget_exceeded"


class TestFailure:
    async def test_fail_fast_cancels_running_steps_and_skips_dependants(self) -> None:
        """By default a failure cancels the rest of the run; dependants of the failed step are skipped."""
        spec = spec_of(
            """
  bad: {role: worker, task: b}
  hang: {role: worker, task: h}
  after_bad: {role: worker, task: a, depends_on: [bad]}
"""
        )
        hang_started = asyncio.Event()

        async def handler(call: StepCall) -> dict[str, Any]:
            if call.step_id == "hang":
                hang_started.set()
                await asyncio.Event().wait()  # never finishes on its own
            await hang_started.wait()
            raise RuntimeError("tool exploded")

        states, _ = await run(spec, handler)
        assert states["bad"].status == "failed" and states["bad"].error == "tool exploded"
        assert states["hang"].status == "cancelled"
        assert states["after_bad"].status == "skipped"

    async def test_without_fail_fast_independent_branches_finish(self) -> None:
        """With fail_fast off, only the failed step's dependants are skipped."""
        spec = spec_of(
            """
  bad: {role: worker, task: b}
  good: {role: worker, task: g}
  after_bad: {role: worker, task: a, depends_on: [bad]}
  after_good: {role: worker, task: a, depends_on: [good]}
""",
            "settings: {fail_fast: false}",
        )

        async def handler(call: StepCall) -> dict[str, Any]:
            if call.step_id == "bad":
                raise RuntimeError("no")
            return answer()

        states, _ = await run(spec, handler)
        assert {k: s.status for k, s in states.items()} == {
            "bad": "failed",
            "good": "completed",
            "after_bad": "skipped",
            "after_good": "completed",
        }

    async def test_cancelling_the_run_cancels_every_step(self) -> None:
        """Cancelling the scheduler's task cancels steps in flight and leaves none running."""
        spec = spec_of(
            """
  a: {role: worker, task: a}
  b: {role: worker, task: b}
"""
        )
        started = asyncio.Event()
        executor = FunctionExecutor(lambda call: _forever(started))
        scheduler = Scheduler(spec, compile_graph(spec), executor, run_id="r", inputs={}, tracer=Tracer("r"))
        task = asyncio.create_task(scheduler.run())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert {s.status for s in scheduler.states.values()} == {"cancelled"}


async def _forever(started: asyncio.Event) -> dict[str, Any]:
    started.set()
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


class TestRoutes:
    async def test_route_loops_back_until_bound(self) -> None:
        """A matching route re-runs its loop at most max_times, then the run goes on."""
        spec = spec_of(
            """
  draft: {role: worker, task: "draft{% if routed %} again after {{ routed.output.value }}{% endif %}"}
  review:
    role: worker
    task: r
    depends_on: [draft]
    routes: [{when: "output.verdict == 'again'", goto: draft, max_times: 2}]
  publish: {role: worker, task: p, depends_on: [review]}
"""
        )
        sink = MemorySink()

        async def handler(call: StepCall) -> dict[str, Any]:
            return answer(value=f"{call.step_id}{call.visit}", verdict="again")

        states, executor = await run(spec, handler, sink)
        assert [c.step_id for c in executor.calls] == ["draft", "review"] * 3 + ["publish"]
        assert [c.task for c in executor.calls if c.step_id == "draft"] == [
            "draft",
            "draft again after review1",
            "draft again after review2",
        ]
        assert states["draft"].visits == 3 and states["publish"].status == "completed"
        taken = [
            r["attributes"]["rolegraph.route.taken"]
            for r in sink.records
            if r["kind"] == "route" and r["event"] == "span_end"
        ]
        assert taken == [True, True, False]

    async def test_route_not_matching_goes_on(self) -> None:
        """A route whose condition is false does not loop."""
        spec = spec_of(
            """
  draft: {role: worker, task: d}
  review:
    role: worker
    task: r
    depends_on: [draft]
    routes: [{when: "output.verdict == 'again'", goto: draft, max_times: 5}]
"""
        )

        async def handler(call: StepCall) -> dict[str, Any]:
            return answer(verdict="ok")

        states, executor = await run(spec, handler)
        assert len(executor.calls) == 2 and states["draft"].visits == 1


class RecordingCheckpointer:
    """A checkpointer that keeps, for each save, the step ids it was given, and replays what it was given."""

    def __init__(self) -> None:
        self.saves: list[list[str]] = []
        self.rows: dict[str, dict[str, Any]] = {}
        self.history: list[dict[str, dict[str, Any]]] = []
        """The rows after each save."""

    def save(self, checkpoint: Any) -> None:
        self.saves.append(list(checkpoint.states))
        for step_id, state in checkpoint.states.items():
            self.rows[step_id] = state.model_dump(mode="json")
        self.history.append({step_id: dict(row) for step_id, row in self.rows.items()})

    def save_item(self, step_id: str, visit: int, index: int, outcome: StepOutcome) -> None:
        pass

    def items(self, step_id: str, visit: int) -> dict[int, StepOutcome]:
        return {}

    async def run(self, spec: Any, handler: Handler) -> dict[str, StepState]:
        """Run `spec` with `handler` answering every step, checkpointed here."""
        scheduler = Scheduler(
            spec,
            compile_graph(spec),
            FunctionExecutor(handler),
            run_id="run",
            inputs={},
            tracer=Tracer("run", redactor=Redactor()),
            checkpointer=self,
        )
        return await scheduler.run()


class TestCheckpoints:
    async def test_a_checkpoint_carries_only_the_steps_that_changed(self) -> None:
        """Along a chain, each save holds the step that finished (not the one it started, nor the whole run),
        and the saves together hold every step's final state."""
        steps = "\n".join(
            f"  s{i}: {{role: worker, task: t{', depends_on: [s' + str(i - 1) + ']' if i else ''}}}" for i in range(30)
        )
        spec = spec_of(steps)

        async def handler(call: StepCall) -> dict[str, Any]:
            return answer(value=call.step_id)

        checkpointer = RecordingCheckpointer()
        states = await checkpointer.run(spec, handler)
        assert checkpointer.saves == [[f"s{i}"] for i in range(30)]
        assert checkpointer.rows == {k: s.model_dump(mode="json") for k, s in states.items()}

    async def test_a_route_saves_the_steps_it_sends_back(self) -> None:
        """When a route sends work back, the steps of its loop body are saved as pending again."""
        spec = spec_of(
            """
  draft: {role: worker, task: d}
  review:
    role: worker
    task: r
    depends_on: [draft]
    routes: [{when: "output.verdict == 'again'", goto: draft, max_times: 1}]
"""
        )

        async def handler(call: StepCall) -> dict[str, Any]:
            return answer(verdict="again")

        checkpointer = RecordingCheckpointer()
        await checkpointer.run(spec, handler)
        assert "review" in checkpointer.saves[1] and "draft" in checkpointer.saves[1]
        sent_back = checkpointer.history[1]["draft"]
        assert (sent_back["status"], sent_back["visits"]) == ("pending", 1)
        assert checkpointer.rows["draft"]["visits"] == 2 and checkpointer.rows["review"]["status"] == "completed"

    async def test_no_save_holds_a_running_step(self) -> None:
        """A step's start is not saved (a resume runs its visit again either way): across parallel branches that
        start and end at different times, no saved row is ever a running one."""
        spec = spec_of(
            """
  a: {role: worker, task: a}
  slow: {role: worker, task: s, depends_on: [a]}
  fast: {role: worker, task: f, depends_on: [a]}
  after_fast: {role: worker, task: x, depends_on: [fast]}
  join: {role: worker, task: j, depends_on: [slow, after_fast]}
"""
        )
        checkpointer = RecordingCheckpointer()
        states = await checkpointer.run(spec, slow_until_after_fast())
        assert all(row["status"] != "running" for rows in checkpointer.history for row in rows.values())
        assert checkpointer.history[1] == {k: states[k].model_dump(mode="json") for k in ("a", "fast")}
        assert checkpointer.rows == {k: s.model_dump(mode="json") for k, s in states.items()}


class TestStepStateData:
    def test_as_data_is_the_json_dump(self) -> None:
        """A state's `as_data` (what checkpoints and step files hold) is exactly its pydantic JSON dump."""
        state = StepState(
            step_id="s",
            status="completed",
            output=[{"a": 1, "b": ["x", None, 2.5]}],
            error="e",
            visits=2,
            usage=Usage(input_tokens=3, output_tokens=4),
            tool_calls=1,
            skipped_items=[{"index": 1, "item": "q", "error": "boom"}],
        )
        assert state.as_data() == state.model_dump(mode="json")
        assert StepState.model_validate(state.as_data()) == state


class TestTimeouts:
    async def test_a_step_past_its_wall_budget_stops_the_run_as_budget_exceeded(self) -> None:
        """A step's max_wall_s firing (sooner than the step timeout) makes it budget_exceeded, not a failure."""
        spec = spec_of("  slow: {role: worker, task: t, budget: {max_wall_s: 0.05}}")

        async def handler(call: StepCall) -> dict[str, Any]:
            await asyncio.Event().wait()  # never answers
            return answer()

        states, _ = await run(spec, handler)
        assert states["slow"].status == "budget_exceeded"
        assert "max_wall_s" in (states["slow"].error or "")

    async def test_a_step_past_the_step_timeout_fails_as_timed_out(self) -> None:
        """The step timeout firing (sooner than any budget) fails the step with 'timed out'."""
        spec = spec_of(
            "  slow: {role: worker, task: t, budget: {max_wall_s: 60}}", settings="settings: {step_timeout: 0.05}"
        )

        async def handler(call: StepCall) -> dict[str, Any]:
            await asyncio.Event().wait()
            return answer()

        states, _ = await run(spec, handler)
        assert (states["slow"].status, states["slow"].error) == ("failed", "timed out")

    async def test_each_step_tells_its_calls_when_its_timer_fires(self) -> None:
        """Inside a step, STEP_DEADLINE is its own timer's deadline (the sooner of the step timeout and its
        wall budget), so the model calls it makes need no timer of their own."""
        spec = spec_of(
            "  a: {role: worker, task: t, budget: {max_wall_s: 5}}\n  b: {role: worker, task: t, depends_on: [a]}",
            settings="settings: {step_timeout: 600}",
        )
        seen: dict[str, tuple[float | None, float]] = {}

        async def handler(call: StepCall) -> dict[str, Any]:
            seen[call.step_id] = (STEP_DEADLINE.get(), asyncio.get_running_loop().time())
            return answer()

        await run(spec, handler)
        assert STEP_DEADLINE.get() is None  # set in each step's own task, not around the run
        for step_id, limit in (("a", 5), ("b", 600)):
            deadline, now = seen[step_id]
            assert deadline is not None and now < deadline <= now + limit

    async def test_a_later_step_with_a_sooner_deadline_times_out_first(self) -> None:
        """Steps share one timer: a step started later whose deadline is sooner still times out on time,
        while the step started first runs on."""
        spec = spec_of(
            "  long: {role: worker, task: t}\n  short: {role: worker, task: t, budget: {max_wall_s: 0.05}}",
            settings="settings: {step_timeout: 600}",
        )
        short_done = asyncio.Event()

        async def handler(call: StepCall) -> dict[str, Any]:
            if call.step_id == "short":
                try:
                    await asyncio.Event().wait()
                finally:
                    short_done.set()
            await short_done.wait()  # `long` finishes only once `short` was stopped
            return answer()

        async with asyncio.timeout(30):  # a deadline that never fires would hang the run
            states, _ = await run(spec, handler)
        assert states["short"].status == "budget_exceeded"
        assert states["long"].status == "cancelled"  # a budget stop stops the run

    async def test_a_deadline_left_by_a_finished_step_passes_the_timer_on(self) -> None:
        """When the timer fires for a step that has finished, the next running step's deadline still fires."""
        spec = spec_of(
            "  a: {role: worker, task: t}\n  b: {role: worker, task: t, depends_on: [a]}",
            settings="settings: {step_timeout: 0.2}",
        )

        async def handler(call: StepCall) -> dict[str, Any]:
            if call.step_id == "a":
                await asyncio.sleep(0.1)  # b starts after a, so its deadline is later than a's
                return answer()
            await asyncio.Event().wait()
            return answer()

        async with asyncio.timeout(30):  # a deadline that never fires would hang the run
            states, _ = await run(spec, handler)
        assert states["a"].status == "completed"
        assert (states["b"].status, states["b"].error) == ("failed", "timed out")
