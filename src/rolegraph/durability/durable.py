"""What makes a run durable: its run store, call journal, budgets and kill points, wired for one invocation.

`run_durably` is how every run starts or continues (`rolegraph.Workflow.run`,
`resume`, `replay`): it hands the engine (`rolegraph.runtime.invoke`) one
`Durability`, which implements the engine's `RunDurability`. A `Durability` opens
(or creates) the run store, restores what a resumed run had done (the scheduler
checkpoint, the source registry, the budget meter's totals, the position of
scripted models), hands each agent its metered journal, and records the run's
status and elapsed time when the invocation ends.
"""

from __future__ import annotations

import errno
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from rolegraph.agents.call_ids import MODEL_CALL_KINDS
from rolegraph.agents.journal import CallJournal
from rolegraph.durability.budget import BudgetMeter, CallCounts, MeteredJournal
from rolegraph.durability.killpoints import KillPoints
from rolegraph.durability.store import RunStore
from rolegraph.errors import BudgetExceeded, Problem, ResumeError, SpecError
from rolegraph.layout import Home, RunFolder
from rolegraph.models.model import Model, Usage
from rolegraph.runtime.compiled import CompiledWorkflow
from rolegraph.runtime.executor import ExecutorFactory, LocalExecutor
from rolegraph.runtime.invoke import InvokeHooks, invoke, run_redactor
from rolegraph.runtime.result import RunResult
from rolegraph.runtime.run_info import RunInfo
from rolegraph.runtime.scheduler import Checkpoint, StepListener, StepOutcome, StepState
from rolegraph.runtime.step_log import StepLog
from rolegraph.tools.sources import SourceRegistry
from rolegraph.traces.pricing import PricesError, PriceTable
from rolegraph.traces.redact import Redactor
from rolegraph.traces.sinks import TraceSink
from rolegraph.traces.tracer import Tracer
from rolegraph.workflows.spec import Budget, WorkflowSpec

if sys.platform != "win32":
    import fcntl

__all__ = ["ELAPSED_EVERY_S", "Durability", "run_durably"]

ELAPSED_EVERY_S = 0.5
"""How often, at most, a checkpoint also sets the run's elapsed time in the run store's record (it is
written at the invocation's end too): a kill loses at most this much of the time a resume counts towards
``max_wall_s``. Setting it with every checkpoint cost a sixth of the step's one commit."""


async def run_durably(
    workflow: CompiledWorkflow,
    info: RunInfo,
    *,
    home: Home,
    resuming: bool = False,
    executor: ExecutorFactory = LocalExecutor.for_run,
    sinks: Sequence[TraceSink] = (),
    on_step: StepListener | None = None,
    hooks: InvokeHooks | None = None,
) -> RunResult:
    """Run (or continue) the run `info` describes, with its run store, journal and budgets.

    Raises and returns as `rolegraph.runtime.invoke.invoke`.
    """
    redactor = run_redactor(workflow)
    folder = home.run(info.run_id)
    durability = Durability(workflow.spec, folder.path, info, prices_file=home.prices, redactor=redactor)
    return await invoke(
        workflow,
        info,
        home=home,
        durability=durability,
        redactor=redactor,
        resuming=resuming,
        executor=executor,
        sinks=sinks,
        on_step=on_step,
        hooks=hooks,
    )


class Durability:
    """One invocation's view of a run's durable state.

    Args:
        spec: The workflow (for the steps' budgets).
        run_dir: The run folder.
        record: The run's record (updated as the invocation goes).
        prices_file: The user's price file (read when a cost limit is set).
        redactor: The run's secret redaction, applied to everything the run store writes.
    """

    def __init__(
        self, spec: WorkflowSpec, run_dir: Path, record: RunInfo, *, prices_file: Path, redactor: Redactor
    ) -> None:
        self.run_dir = run_dir
        self.redactor = redactor
        self.record = record
        self.kill_points = KillPoints.from_env()
        steps = {step_id: step.budget for step_id, step in spec.steps.items() if step.budget is not None}
        self.run_budget = Budget(**record.budget)
        self.costed = any(b.max_cost_usd is not None for b in (self.run_budget, *steps.values()))
        """Whether a cost limit is set (prices are read only then)."""
        prices = PriceTable()
        if self.costed:
            try:
                prices = PriceTable.load(prices_file)
            except PricesError as exc:
                raise SpecError([Problem(str(exc), path="settings.budget.max_cost_usd")]) from None
        self.prices = prices
        self.meter = BudgetMeter(self.run_budget, steps, prices)
        self._store: RunStore | None = None
        self._lock: int | None = None
        self.checkpoint: Checkpoint | None = None
        """The checkpoint a resumed run continues from."""
        self.recorded_calls = 0
        """Calls in the journal when the invocation began."""
        self.calls = CallCounts()
        """What this invocation's journals did with the recorded calls (replayed, sent again)."""
        self._elapsed_before = record.elapsed_s
        self._started = time.perf_counter()
        self._elapsed_saved = float("-inf")
        """When a checkpoint last set the elapsed time (`time.perf_counter`): the first one always does."""
        self._serialised: Callable[[StepState], str | None] | None = None
        """The step log's text of a state that just completed (`log_steps`), reused as its row."""

    @property
    def usage(self) -> Usage:
        """The run's tokens so far: every recorded call once, earlier invocations included."""
        return self.meter.run.usage

    @property
    def store(self) -> RunStore:
        """The open run store."""
        if self._store is None:
            raise RuntimeError("the run store is not open yet")
        return self._store

    @property
    def replayed_calls(self) -> int:
        """Recorded calls this invocation answered from the journal."""
        return self.calls.replayed

    @property
    def resent_calls(self) -> int:
        """Recorded calls this invocation sent again, because their request had changed (see `MeteredJournal`)."""
        return self.calls.resent

    @property
    def first_resent(self) -> str | None:
        """The first call sent again, and why (``write#1/chat/1: prompt changed``)."""
        return self.calls.first_resent

    def journal(self, step_id: str, model: str) -> CallJournal:
        """The journal for one agent run of `step_id` (see `JournalFactory`)."""
        return MeteredJournal(self.store, self.meter, step_id, model, self.calls)

    def check_prices(self, models: Mapping[str, Model]) -> None:
        """Refuse a cost limit that cannot be kept: every model must have a price.

        Raises:
            SpecError: ``max_cost_usd`` is set and a model of the run is not in the price table.
        """
        if not self.costed:
            return
        unpriced = sorted(name for name in models if self.prices.price(name) is None)
        if unpriced:
            message = (
                f"max_cost_usd is set but {', '.join(unpriced)} has no price; add it to"
                " $ROLEGRAPH_HOME/prices.yaml (USD per million input and output tokens)"
            )
            raise SpecError([Problem(message, path="settings.budget.max_cost_usd")])

    def open(self, *, resuming: bool, sources: SourceRegistry, models: Mapping[str, Model]) -> None:
        """Open the store (a new one, or the run's own when `resuming`) and restore what the run had done.

        Raises:
            ResumeError: Another process is working on the run.
        """
        self._take_lock()
        if not resuming:
            path = RunFolder(self.run_dir).store
            self._store = RunStore(
                path, kill_points=self.kill_points, redact=self.redactor.value, record=self.record, exclusive=True
            )
            return
        self._store = RunStore.open_existing(
            self.run_dir, kill_points=self.kill_points, redact=self.redactor.value, exclusive=True
        )
        entries = list(self.store.entries())
        superseded = self.store.superseded()
        self.recorded_calls = len(entries)
        for entry in [*entries, *superseded]:  # a call sent again was paid for twice
            self.meter.count(entry)
        for source in self.store.sources():
            sources.add(source)
        # A model that answers by position (a script) moves past every call it has answered.
        replayed = Counter(entry.model for entry in [*entries, *superseded] if entry.kind in MODEL_CALL_KINDS)
        for name, model in models.items():
            model.skip_replayed(replayed[name])
        self.checkpoint = self.store.load()

    def add_kill_sink(self, tracer: Tracer) -> None:
        """Let the kill point count trace records (after the JSONL sink has written each)."""
        if self.kill_points is not None:
            tracer.add_sink(self.kill_points)
            self.kill_points.before_kill = tracer.flush

    def log_steps(self, step_log: StepLog) -> None:
        """Take each completed step's row from the line `step_log` wrote for it (one redaction and serialisation
        per state, not one per file), when the log redacts as the store does."""
        if step_log.tracer.redactor is self.redactor:
            self._serialised = step_log.take

    def begin(self, root_span_id: str) -> None:
        """Record that this invocation started, under the run's root span."""
        self._started = time.perf_counter()
        self.record.root_span_id = root_span_id
        self.record.invocations += 1
        self.record.status = "running"
        self.store.write_record(self.record)

    # The scheduler's `Checkpointer`: the store's, plus the wall time used so far, so that the
    # time of an invocation that is killed still counts towards the run's max_wall_s.

    def save(self, checkpoint: Checkpoint) -> None:
        """Save the scheduler checkpoint's changes, and the run's elapsed time with them (one transaction) if
        it was last saved `ELAPSED_EVERY_S` ago or more."""
        now = time.perf_counter()
        self.record.elapsed_s = self._elapsed_before + (now - self._started)
        elapsed_s = None
        if now - self._elapsed_saved >= ELAPSED_EVERY_S:
            self._elapsed_saved = now
            elapsed_s = self.record.elapsed_s
        self.store.save(checkpoint, elapsed_s=elapsed_s, serialised=self._serialised)

    def save_item(self, step_id: str, visit: int, index: int, outcome: StepOutcome) -> None:
        """Record a finished ``for_each`` item."""
        self.store.save_item(step_id, visit, index, outcome)

    def items(self, step_id: str, visit: int) -> dict[int, StepOutcome]:
        """The recorded items of one visit of a ``for_each`` step."""
        return self.store.items(step_id, visit)

    def wall_time_left(self) -> float | None:
        """Seconds left of the run's ``max_wall_s`` (None: no limit)."""
        limit = self.run_budget.max_wall_s
        return None if limit is None else max(0.0, limit - self.record.elapsed_s)

    def wall_exceeded(self) -> BudgetExceeded:
        """The error for a run that ran out of wall time."""
        limit = self.run_budget.max_wall_s or 0.0
        return BudgetExceeded("max_wall_s", "run", limit, limit)

    def account(self, states: Mapping[str, StepState]) -> None:
        """Set each step's usage and tool calls from the journal: every recorded call once, resumes included.

        A state that already holds the journal's figures (every step a fresh run ran: the scheduler counted
        the same calls) is left as it is: no `Usage` built and no validated assignment per step at a run's end.
        """
        for step_id, spent in self.meter.steps.items():
            state = states.get(step_id)
            if state is None:
                continue
            usage = state.usage
            if usage.input_tokens != spent.input_tokens or usage.output_tokens != spent.output_tokens:
                state.usage = spent.usage
            if state.tool_calls != spent.tool_calls:
                state.tool_calls = spent.tool_calls

    def finish(self, status: str) -> None:
        """Record the invocation's end: the run's status and the wall time used, with the staged checkpoint (so
        `close`, which may then run in a worker thread, has nothing left to commit but the log to fold)."""
        if self._store is not None:
            self.record.status = status
            self.record.elapsed_s = self._elapsed_before + (time.perf_counter() - self._started)
            self.store.write_record(self.record)

    def _take_lock(self) -> None:
        """Hold the run's lock, or refuse: two processes never drive one run at once.

        An ``flock`` on the run folder itself, so a run creates no file for it (a new file costs the most of
        a run's file work); an ``flock`` dies with its process, so a killed run never leaves its folder locked.
        Where the file system cannot lock a directory (an NFS client emulates ``flock`` with byte-range locks,
        which need a file open for writing, and answers ``EBADF``), the lock is on a ``run.lock`` file in the
        folder, as every run's was before: every process on that file system falls back alike, so they still
        exclude each other. (A ``run.lock`` an older rolegraph left in a folder is not read.)

        Raises:
            ResumeError: Another process holds the lock.
        """
        if sys.platform == "win32":  # no flock: the one-process-per-run rule is then the user's to keep
            return
        try:
            try:
                fd = _flocked(self.run_dir, os.O_RDONLY | os.O_DIRECTORY)
            except OSError as exc:
                if exc.errno not in _NO_DIRECTORY_LOCKS:
                    raise
                fd = _flocked(RunFolder(self.run_dir).lock, os.O_RDWR | os.O_CREAT)
        except BlockingIOError:
            raise ResumeError(
                f"run {self.record.run_id} is being worked on by another process; wait for it to end"
            ) from None
        self._lock = fd

    def close(self) -> None:
        """Close the store (if open) and release the run's lock."""
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None


_NO_DIRECTORY_LOCKS = frozenset({errno.EBADF, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP})
"""What ``flock`` answers on a file system that cannot lock a directory (NFS: ``EBADF``)."""


def _flocked(path: Path, flags: int) -> int:
    """`path` opened with `flags` and locked (``flock``, exclusive, without waiting); its descriptor.

    Raises:
        BlockingIOError: Another open of `path` holds the lock.
    """
    fd = os.open(path, flags, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BaseException:
        os.close(fd)
        raise
    return fd
