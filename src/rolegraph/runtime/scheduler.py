"""The scheduler: runs a compiled workflow graph on asyncio, eagerly and in parallel.

A step starts the moment its last dependency finishes: there is no superstep
barrier. `for_each` steps fan out one agent per item. The run's `Slots` cap how
many step calls run at once. Every task is owned by a `TaskGroup`, so a failure
or a cancellation never leaves work running in the background.

Running one step is delegated to a `StepExecutor` (one method), and a step's
inputs and outputs are plain JSON data, so a distributed backend can take over
the execution of steps without the scheduler changing.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Generator, Mapping
from typing import Any

import networkx as nx

from rolegraph.agents.model_calls import STEP_DEADLINE
from rolegraph.errors import BudgetExceeded, RolegraphError
from rolegraph.models.model import Usage
from rolegraph.runtime.deadlines import Deadlines, timed_out
from rolegraph.runtime.plan import NO_STEPS, StepPlan, graph_plan
from rolegraph.runtime.slots import Slots
from rolegraph.runtime.state import (
    OUTCOME,
    Checkpoint,
    Checkpointer,
    StepCall,
    StepExecutor,
    StepListener,
    StepOutcome,
    StepState,
    StepStatus,
)
from rolegraph.traces.spans import Span, SpanKind
from rolegraph.traces.tracer import Tracer
from rolegraph.workflows.context import item_context, route_context, routed_value, step_context
from rolegraph.workflows.graph import loop_body
from rolegraph.workflows.spec import StepSpec, WorkflowSpec
from rolegraph.workflows.templates import evaluate, render, render_value

__all__ = [
    "OUTCOME",
    "Checkpoint",
    "Checkpointer",
    "Scheduler",
    "StepCall",
    "StepExecutor",
    "StepListener",
    "StepOutcome",
    "StepState",
    "StepStatus",
]


class StepFailed(RolegraphError):
    """A step could not finish; carries the step id."""

    def __init__(self, step_id: str, message: str) -> None:
        self.step_id = step_id
        super().__init__(f"step {step_id!r} failed: {message}")


def _budget_error(exc: BaseException) -> BudgetExceeded | None:
    """The budget error inside `exc` (possibly nested in task groups), if there is one."""
    if isinstance(exc, BudgetExceeded):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := _budget_error(inner)) is not None:
                return found
    return None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions[:3])
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


def _rendered(step: StepSpec, context: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """What a step is given: its task rendered (an agent step), or its arguments (a tool or function step)."""
    if step.kind == "agent":
        return render(step.task, context), None
    return "", render_value(step.args, context)


@types.coroutine
def _turn() -> Generator[None, None, None]:
    """Let every other ready callback run first: one turn of the event loop (`asyncio.sleep(0)` without the
    coroutine around it)."""
    yield


class Scheduler:
    """Runs the steps of one workflow run.

    Args:
        spec: The workflow.
        graph: Its compiled graph (`compile_graph(spec)`).
        executor: Runs each step call.
        run_id: The run's id (passed to every `StepCall`).
        inputs: The run's input values.
        tracer: Where `plan` and `route` spans go.
        on_change: Called whenever a step changes status (progress displays).
        checkpointer: Where progress is saved after each step and ``for_each`` item (durable runs).
        restore: A checkpoint to continue from: its completed steps are not run again.
    """

    def __init__(
        self,
        spec: WorkflowSpec,
        graph: nx.DiGraph[str],
        executor: StepExecutor,
        *,
        run_id: str,
        inputs: Mapping[str, Any],
        tracer: Tracer,
        on_change: StepListener | None = None,
        checkpointer: Checkpointer | None = None,
        restore: Checkpoint | None = None,
    ) -> None:
        self.spec = spec
        self.graph = graph
        self.executor = executor
        self.run_id = run_id
        self.inputs = dict(inputs)
        self.tracer = tracer
        self.on_change = on_change
        self._no_usage = Usage()
        """The usage of every step of the run that has counted no tokens yet (one object: a step's usage is
        replaced, never changed in place; a `Usage` made per step was half the cost of its state)."""
        self.states = {step_id: StepState(step_id=step_id, usage=self._no_usage) for step_id in spec.steps}
        plan = graph_plan(spec, graph)
        self._data = plan.data
        self._nodes = plan.steps
        self._waiting: dict[str, frozenset[str]] = {node: self._nodes[node].predecessors for node in self._data}
        """Each step's dependencies not completed yet. Frozen sets, shared with the plan until a release
        replaces one: a run makes no set per step."""
        self._route_fired: dict[tuple[str, int], int] = {}
        self._routed: dict[str, dict[str, Any]] = {}
        self._slots = Slots(spec.settings.max_concurrency)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        """The task of each step running now (a finished step's is dropped: it keeps its coroutine alive)."""
        self._deadlines = Deadlines(self._expire)
        self._expired: set[str] = set()
        """Running steps whose deadline passed: their tasks are cancelled, and the cancellation is a timeout."""
        self._group: asyncio.TaskGroup | None = None
        self._failed = False
        self.checkpointer = checkpointer
        self.budget_error: BudgetExceeded | None = None
        """The budget limit that stopped the run, if one did."""
        self.restored: list[str] = []
        """Steps completed in the checkpoint the run resumed from."""
        self.executed: list[str] = []
        """Steps started by this scheduler, in start order."""
        self._started: set[str] = set()
        """The same steps as a set: a re-visited step is not listed twice (a list scan per step was quadratic)."""
        self._changed: set[str] = set()
        """Steps whose state changed since the last checkpoint."""
        if restore is not None:
            self._restore(restore)

    def _restore(self, checkpoint: Checkpoint) -> None:
        for step_id, saved in checkpoint.states.items():
            if step_id not in self.states:
                continue
            if saved.status == "completed":
                self.states[step_id] = saved.model_copy()
                self.restored.append(step_id)
                continue
            # A step started in its last visit but not finished runs that visit again (same call ids,
            # so its recorded calls replay); a step not yet started keeps its count.
            started = saved.status in ("running", "failed", "cancelled", "budget_exceeded")
            self.states[step_id] = StepState(step_id=step_id, visits=saved.visits - int(started), usage=self._no_usage)
            self._changed.add(step_id)
        self._route_fired = dict(checkpoint.route_fired)
        self._routed = dict(checkpoint.routed)
        for node in self._data:
            self._waiting[node] = frozenset(
                p for p in self._nodes[node].predecessors if self.states[p].status != "completed"
            )

    def checkpoint(self) -> Checkpoint:
        """The scheduler's state now."""
        return Checkpoint(
            states={k: s.model_copy() for k, s in self.states.items()},
            route_fired=dict(self._route_fired),
            routed=dict(self._routed),
        )

    def _save(self) -> None:
        """Hand the checkpointer the steps that changed since the last save (serialised before it returns).

        A step running now is left out until it ends: a resume reads a running row as it reads the row
        saved before it (never one of a completed visit: a route saves the steps it sends back before it
        starts them), so writing it was half of a chain's checkpoint work for nothing.
        """
        if self.checkpointer is None:
            return
        states = self.states
        changed = {step_id: states[step_id] for step_id in sorted(self._changed) if states[step_id].status != "running"}
        self._changed.difference_update(changed)
        self.checkpointer.save(Checkpoint(states=changed, route_fired=self._route_fired, routed=self._routed))

    async def run(self) -> dict[str, StepState]:
        """Run every step that can run; return the final state of each.

        A failed step never raises out of here: its state says why. Cancelling
        the task running this method cancels every step in flight.
        """
        self._loop = asyncio.get_running_loop()
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                for node in self._data:
                    if not self._waiting[node] and self.states[node].status == "pending":
                        self._start(node)
        finally:
            self._deadlines.close()
            for state in self.states.values():
                if state.status in ("pending", "running"):
                    self._set(state, "cancelled")
        return self.states

    def _set(self, state: StepState, status: StepStatus, error: str | None = None) -> None:
        self._changed.add(state.step_id)
        state.status = status
        if error is not None:
            state.error = error
        if self.on_change is not None:
            self.on_change(state)

    def _start(self, node: str) -> None:
        assert self._group is not None
        self._begin(node)
        self._tasks[node] = self._group.create_task(self._steps_from(node), name=f"step {node}")

    def _begin(self, node: str) -> None:
        state = self.states[node]
        state.visits += 1
        if node not in self._started:
            self._started.add(node)
            self.executed.append(node)
        self._set(state, "running")

    async def _steps_from(self, node: str) -> None:
        """Run `node`, then, in the same task, each step that a finished step was the only one to let start
        (a chain runs in one task, not a task per step; the others ready at once get tasks of their own)."""
        following = await self._run_node(node)
        while following is not None:
            following = await self._run_node(following, following=True)

    async def _run_node(self, node: str, *, following: bool = False) -> str | None:
        """Run one step and record how it ended; return the step to run next in this task, if any."""
        state = self.states[node]
        task = self._tasks[node]
        if following:
            # A step started in this task yields to the loop first, as a task of its own would wait its turn:
            # branches interleave step by step whatever the timing, so a deterministic run keeps its order
            # (yielding only once 1 ms had passed made the order of a run's sources depend on the machine's speed).
            try:
                await _turn()
            except asyncio.CancelledError:
                self._drop(node, task)
                self._set(state, "cancelled")
                raise
        assert self._loop is not None
        plan = self._nodes[node]
        # One deadline per step: the sooner of the step timeout and the step's wall-time budget.
        deadline = self._loop.time() + plan.limit
        cancelling = task.cancelling()
        self._deadlines.arm(node, deadline)
        expired = False
        try:
            try:
                # Set in the step's own task: a model call that would time out no sooner arms no timer.
                STEP_DEADLINE.set(deadline)
                if plan.step.for_each is None:
                    state.output = await self._call(state, self._step_call(node, plan, state))
                else:
                    state.output = await self._each(node, plan, state)
            finally:
                self._deadlines.disarm(node)
                if node in self._expired:
                    # As `asyncio.timeout` does: the cancellation was ours unless someone else's is pending too.
                    self._expired.discard(node)
                    expired = task.uncancel() <= cancelling
        except asyncio.CancelledError:
            if not expired:
                self._drop(node, task)
                self._set(state, "cancelled")
                raise
            self._failed_with(node, task, timed_out(node, plan.wall, self.spec.settings.step_timeout))
            return None
        except Exception as exc:  # a step's failure is recorded, never propagated into the group
            self._failed_with(node, task, exc)
            return None
        self._drop(node, task)
        self._set(state, "completed")
        goto = self._route(node) if plan.step.routes else None
        after = None if goto is not None else self._release(node, task)
        self._save()
        if goto is not None:  # after the save, which holds the loop's steps as pending again
            self._start(goto)
        return after

    def _failed_with(self, node: str, task: asyncio.Task[None], exc: Exception) -> None:
        """Record why `node` failed (a budget stop stops the run) and save."""
        self._drop(node, task)
        budget_error = _budget_error(exc)
        if budget_error is not None:
            self._stop(node, budget_error)
        else:
            self._fail(node, _describe(exc))
        self._save()

    def _drop(self, node: str, task: asyncio.Task[None]) -> None:
        """Forget a finished step's task (unless a route already started the step again)."""
        if self._tasks.get(node) is task:
            del self._tasks[node]

    def _expire(self, node: str) -> None:
        """`node`'s deadline passed: cancel its task; its end reads the cancellation as a timeout."""
        self._expired.add(node)
        self._tasks[node].cancel()

    def _stop(self, node: str, exc: BudgetExceeded) -> None:
        """A budget ran out in `node`: stop the whole run (whatever `fail_fast` says)."""
        if self.budget_error is None:
            self.budget_error = exc
        self._set(self.states[node], "budget_exceeded", str(exc))
        for other, task in self._tasks.items():
            if other != node and not task.done():
                task.cancel()

    def _fail(self, node: str, message: str) -> None:
        self._failed = True
        self._set(self.states[node], "failed", message)
        for descendant in nx.descendants(self._data, node):
            if self.states[descendant].status == "pending":
                self._set(self.states[descendant], "skipped", f"upstream step {node!r} failed")
        if self.spec.settings.fail_fast:
            for other, task in self._tasks.items():
                if other != node and not task.done():
                    task.cancel()

    def _release(self, node: str, task: asyncio.Task[None]) -> str | None:
        """Start the steps that were waiting only for `node`; the last of them is returned, to run next in
        `task` (`node`'s), unless that task is being cancelled."""
        ready: str | None = None
        for successor in self._nodes[node].successors:
            waiting = self._waiting[successor]
            if node in waiting:
                waiting = self._waiting[successor] = waiting - {node} if len(waiting) > 1 else NO_STEPS
            if not waiting and self.states[successor].status == "pending":
                if ready is not None:
                    self._start(ready)
                ready = successor
        if ready is None:
            return None
        if task.cancelling():
            self._start(ready)
            return None
        self._begin(ready)
        self._tasks[ready] = task
        task.set_name(f"step {ready}")
        return ready

    def _upstream(self, plan: StepPlan) -> dict[str, Any]:
        """The outputs of the finished steps `plan`'s step reads, by step id."""
        states = self.states
        return {a: states[a].output for a in plan.reads if states[a].status == "completed"}

    def _context(self, node: str) -> dict[str, Any]:
        return step_context(self.inputs, self._upstream(self._nodes[node]), self._routed.get(node))

    def _step_call(self, node: str, plan: StepPlan, state: StepState) -> StepCall:
        """The call of a step without ``for_each``: its task (or arguments) rendered over its context."""
        upstream = self._upstream(plan)
        task = plan.plain_task
        if task is not None:  # nothing to render: no context to build
            return StepCall(self.run_id, node, task, None, None, None, state.visits, 1, upstream)
        task, args = _rendered(plan.step, step_context(self.inputs, upstream, self._routed.get(node)))
        return StepCall(self.run_id, node, task, args, None, None, state.visits, 1, upstream)

    async def _each(self, node: str, plan: StepPlan, state: StepState) -> Any:
        """Run a ``for_each`` step: one call per item (the items a checkpoint recorded are not run again)."""
        step = plan.step
        assert step.for_each is not None
        context = self._context(node)
        with self.tracer.span(SpanKind.PLAN, f"plan {node}", rolegraph__step__id=node) as span:
            items = evaluate(step.for_each.items, context)
            if not isinstance(items, list | tuple):
                raise StepFailed(node, f"for_each.items gave {type(items).__name__}, not a list")
            limit = step.for_each.max_items
            span.set(rolegraph__fan_out=min(len(items), limit), rolegraph__items_dropped=max(0, len(items) - limit))
            items = list(items)[:limit]
            results: list[Any] = [None] * len(items)
            name = step.for_each.as_
            branch_slots = Slots(step.for_each.max_concurrency or max(1, len(items)))
            recorded = self.checkpointer.items(node, state.visits) if self.checkpointer is not None else {}
            recorded = {i: outcome for i, outcome in recorded.items() if i < len(items)}
            for index, outcome in recorded.items():
                results[index] = self._account(state, outcome)
            span.set(rolegraph__items_restored=sorted(recorded))
            skipped: list[dict[str, Any]] = []
            policy = step.for_each

            async def branch(index: int, item: Any) -> None:
                if not branch_slots.take():
                    await branch_slots.wait()
                try:
                    rendered = _rendered(step, item_context(context, name, item, index))
                    try:
                        results[index] = await self._attempts(node, state, rendered, index, context["steps"], item)
                    except Exception as exc:
                        if not policy.skips or _budget_error(exc) is not None:
                            raise
                        skipped.append({"index": index, "item": item, "error": _describe(exc)})
                finally:
                    branch_slots.release()

            state.skipped_items = []
            async with asyncio.TaskGroup() as group:
                for index, item in enumerate(items):
                    if index not in recorded:
                        group.create_task(branch(index, item), name=f"step {node}[{index}]")
            return self._leave_out(state, span, results, skipped)

    @staticmethod
    def _leave_out(state: StepState, span: Span, results: list[Any], skipped: list[dict[str, Any]]) -> list[Any]:
        """The items' outputs without the skipped ones, which the step's state and its `plan` span record."""
        state.skipped_items = sorted(skipped, key=lambda s: int(s["index"]))
        if skipped:
            span.set(rolegraph__items_skipped=[{"index": s["index"], "error": s["error"]} for s in state.skipped_items])
        left_out = {s["index"] for s in skipped}
        return [result for index, result in enumerate(results) if index not in left_out]

    async def _attempts(
        self,
        node: str,
        state: StepState,
        rendered: tuple[str, dict[str, Any] | None],
        index: int,
        upstream: dict[str, Any],
        item: Any,
    ) -> Any:
        """One item's call, tried again (with new call ids) as its step's ``on_item_error: retry:N`` allows."""
        policy = self.spec.steps[node].for_each
        retries = policy.retries if policy is not None else 0
        task, args = rendered
        attempt = 1
        while True:
            try:
                call = StepCall(self.run_id, node, task, args, item, index, state.visits, attempt, upstream)
                return await self._call(state, call)
            except Exception as exc:
                if attempt > retries or _budget_error(exc) is not None:
                    raise
                attempt += 1

    async def _call(self, state: StepState, call: StepCall) -> Any:
        """Run `call` in one of the run's slots; count what it used into `state`; return its output."""
        slots = self._slots
        if not slots.take():
            await slots.wait()
        try:
            outcome = await self.executor.execute(call)
        finally:
            slots.release()
        if call.item_index is not None and self.checkpointer is not None:
            self.checkpointer.save_item(call.step_id, call.visit, call.item_index, outcome)
        return self._account(state, outcome)

    @staticmethod
    def _account(state: StepState, outcome: StepOutcome) -> Any:
        usage = outcome.usage
        if usage.input_tokens or usage.output_tokens:
            # The first count is taken as it is: a step's usage is replaced by sums, never changed in place.
            had = state.usage
            state.usage = usage if not (had.input_tokens or had.output_tokens) else had + usage
        if outcome.tool_calls:
            state.tool_calls += outcome.tool_calls
        return outcome.output

    def _route(self, node: str) -> str | None:
        """Evaluate the step's routes; if one fires, reset its loop's steps to pending and return the step to
        start again (its target), else None."""
        state = self.states[node]
        for number, route in enumerate(self._nodes[node].step.routes):
            key = (node, number)
            with self.tracer.span(SpanKind.ROUTE, f"route {node} -> {route.goto}", rolegraph__step__id=node) as span:
                context = route_context(self._context(node), state.output)
                try:
                    matched = bool(evaluate(route.when, context))
                except RolegraphError as exc:
                    span.set(rolegraph__route__error=str(exc))
                    matched = False
                fired = self._route_fired.get(key, 0)
                take = matched and fired < route.max_times
                span.set(
                    rolegraph__route__when=route.when,
                    rolegraph__route__matched=matched,
                    rolegraph__route__taken=take,
                    rolegraph__route__times=fired + int(take),
                    rolegraph__route__max_times=route.max_times,
                )
            if not take:
                continue
            self._route_fired[key] = fired + 1
            body = loop_body(self.graph, node, route.goto)
            for member in body:
                self.states[member].status = "pending"
                self._changed.add(member)
                self._waiting[member] = frozenset(p for p in self._nodes[member].predecessors if p in body)
            self._routed[route.goto] = routed_value(node, state.output, fired + 1)
            return route.goto
        return None
