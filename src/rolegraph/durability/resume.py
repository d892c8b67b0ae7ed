"""Resuming a run that crashed, was killed, was cancelled or ran out of budget.

```python
from rolegraph.durability import resume

result = await resume(run_dir)                       # or resume(run_dir, budget=Budget(max_tokens=50_000))
print(result.resumed_steps, result.executed_steps)
```

Finished steps are restored from the run store's checkpoint and not run again;
inside the steps that run, every call in the journal is replayed instead of
being made again — if it is asked for with the request it was recorded with. A
recorded call whose request changed (the workflow was edited, and the resume
forced) is sent again, with every later call of its agent run; the result says
how many calls were replayed and how many sent again (``replayed_calls``,
``resent_calls``). The trace continues in the same file, under the same root
span, with a ``run_resumed`` event where the resume began and a ``resume_calls``
event with those counts once they are known. A completed run is
left as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rolegraph.durability.budget import BudgetMeter
from rolegraph.durability.durable import run_durably
from rolegraph.durability.store import RunStore
from rolegraph.errors import ResumeError
from rolegraph.layout import Home, RunFolder, is_run_id
from rolegraph.runtime.compiled import CompiledWorkflow
from rolegraph.runtime.executor import ExecutorFactory, LocalExecutor
from rolegraph.runtime.result import CitationCount, RunResult
from rolegraph.runtime.run_info import RunInfo, file_hash
from rolegraph.runtime.scheduler import StepListener
from rolegraph.tools.sources import SourceRegistry
from rolegraph.traces.pricing import PriceTable
from rolegraph.traces.records import read_summary
from rolegraph.traces.sinks import TraceSink
from rolegraph.workflows.spec import Budget, Privacy

__all__ = ["resume", "workflow_file"]


async def resume(
    run_dir: Path,
    *,
    force: bool = False,
    budget: Budget | None = None,
    model: str | None = None,
    sinks: Sequence[TraceSink] = (),
    on_step: StepListener | None = None,
    executor: ExecutorFactory = LocalExecutor.for_run,
) -> RunResult:
    """Continue the run in `run_dir` from its last checkpoint.

    Args:
        run_dir: The run folder (``$ROLEGRAPH_HOME/runs/<run_id>``).
        force: Resume even though the workflow file changed since the run started.
        budget: Limits replacing the run's own (raise one to go on after ``budget_exceeded``).
        model: A model string the rest of the run uses instead of the workflow's ``default`` model (the
            calls already recorded are replayed as they were). Under ``local_only`` a hosted one is refused.
        sinks: Extra trace sinks.
        on_step: Called whenever a step changes status.
        executor: Where the remaining steps run (a run begun on a cluster may go on in this process,
            and the other way round: its journal and checkpoints are the driver's).

    Returns:
        The run's result. A run that had already completed is returned as it is, with
        nothing run again.

    Raises:
        ResumeError: The folder holds no resumable run, its workflow file is gone, or the
            file changed (without `force`).
        DamagedFileError: The run store, the trace or (of a completed run) ``run.json`` is damaged.
        SpecError: The workflow file no longer loads, or the run is ``local_only`` (as recorded: from its
            file, ``--privacy`` or ``load(privacy=)``) and names a hosted model or web tool, or `model` is hosted.
    """
    prepared = _prepare(run_dir, force=force)
    if isinstance(prepared, RunResult):
        return prepared
    record, file, home = prepared
    # The run's privacy as it started, wherever it came from: a resume never loosens it.
    privacy: Privacy | None = "local_only" if _recorded_privacy(record, run_dir) == "local_only" else None
    workflow = CompiledWorkflow.load(file, privacy=privacy)
    if model is not None:
        record.model = model
    record.budget = Budget(**record.budget).merged(budget).limits()
    return await run_durably(
        workflow, record, home=Home(home), executor=executor, sinks=list(sinks), on_step=on_step, resuming=True
    )


def _recorded_privacy(record: RunInfo, run_dir: Path) -> str | None:
    """The run's privacy: its store record's, else its ``run.json``'s (None if neither says, or damaged)."""
    if record.privacy is not None:
        return record.privacy
    summary = RunFolder(run_dir.absolute()).read_summary()
    recorded = summary.get("privacy")
    return recorded if recorded in ("any", "local_only") else None


def workflow_file(run_dir: Path) -> Path | None:
    """The workflow file the run in `run_dir` was started from, if its store names one.

    Raises:
        DamagedFileError: The run store is damaged.
        ResumeError: The folder holds no run store.
    """
    store = RunStore.open_existing(run_dir.absolute())
    try:
        file = store.record().workflow_file
    finally:
        store.close()
    return Path(file) if file else None


def _prepare(run_dir: Path, *, force: bool) -> RunResult | tuple[RunInfo, Path, Path]:
    """A completed run's result, or what resuming needs: the run's record, workflow file and home."""
    run_dir = run_dir.absolute()
    store = RunStore.open_existing(run_dir)
    try:
        record = store.record()
        if record.status == "completed":
            return _finished(run_dir, store)
    finally:
        store.close()
    if record.run_id != run_dir.name or not is_run_id(record.run_id):
        # The id names the run's folder: one read from a damaged or hostile store must not reach a path.
        raise ResumeError(f"{run_dir}: its run store names another run ({record.run_id!r}); it cannot be resumed")
    if record.workflow_file is None:
        raise ResumeError(f"run {record.run_id} was not started from a workflow file, so it cannot be resumed")
    file = Path(record.workflow_file)
    if not file.is_file():
        raise ResumeError(f"run {record.run_id}: its workflow file {file} is gone; restore it to resume the run")
    if record.workflow_hash is not None and file_hash(file) != record.workflow_hash and not force:
        raise ResumeError(
            f"run {record.run_id}: {file} changed since the run started; its finished steps may not fit the"
            " new file. Start a new run, or resume anyway with --force."
        )
    return record, file, run_dir.parent.parent


def _finished(run_dir: Path, store: RunStore) -> RunResult:
    """The result of a completed run, from its store and ``run.json``."""
    summary = read_summary(RunFolder(run_dir).summary)
    checkpoint = store.load()
    steps = checkpoint.states if checkpoint is not None else {}
    meter = BudgetMeter(Budget(), {}, PriceTable(), [*store.entries(), *store.superseded()])
    for step_id, spent in meter.steps.items():
        if step_id in steps:
            steps[step_id].usage, steps[step_id].tool_calls = spent.usage, spent.tool_calls
    sources = SourceRegistry(store.sources())
    return RunResult(
        run_id=run_dir.name,
        status="completed",
        run_dir=run_dir,
        outputs={name: Path(path) for name, path in (summary.get("outputs") or {}).items()},
        steps=steps,
        sources=list(sources),
        usage=meter.run.usage,
        citations=CitationCount(**(summary.get("citations") or {})),
        duration_s=float(summary.get("duration_s") or 0.0),
        resumed_steps=[s for s, state in steps.items() if state.status == "completed"],
    )
