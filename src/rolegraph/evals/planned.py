"""One planned run of a manifest, started, continued or taken as it is: what resuming an eval or a batch means.

```python
folder, result = await run_entry(entry, manifest, start=lambda sinks: wf.run(inputs, sinks=sinks), home=home)
```

An entry that finished (``completed``, ``failed``) is left as it is; one that was
interrupted (it has a run id) is continued (`rolegraph.durability.resume.resume`); the
rest are started. The manifest is saved as soon as a new run has an id and again
when it ends, so a kill at any moment leaves it at most one step behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from rolegraph.durability.resume import resume
from rolegraph.errors import ResumeError
from rolegraph.evals.manifest import FINAL_STATUSES, Manifest, RunEntry
from rolegraph.layout import Home
from rolegraph.runtime.executor import ExecutorFactory, LocalExecutor
from rolegraph.runtime.result import RunResult
from rolegraph.traces.sinks import TraceSink
from rolegraph.workflows.spec import Budget

__all__ = ["Starter", "run_entry"]

Starter = Callable[[Sequence[TraceSink]], Awaitable[RunResult]]
"""Starts the entry's run with these extra trace sinks (``lambda sinks: wf.run(inputs, sinks=sinks)``)."""


async def run_entry(
    entry: RunEntry,
    manifest: Manifest,
    *,
    start: Starter,
    home: Path,
    budget: Budget | None = None,
    force: bool = False,
    executor: ExecutorFactory = LocalExecutor.for_run,
) -> tuple[Path, RunResult | None]:
    """The entry's run folder, and its result if it was started in this call.

    Returns:
        ``(folder, result)`` for a run started now; ``(folder, None)`` for one that had finished or was
        continued (its folder holds the whole run, before and after the interruption).
    """
    if entry.run_id is not None:
        run_dir = Home(home).runs / entry.run_id
        if entry.status in FINAL_STATUSES:
            return run_dir, None
        try:
            result = await resume(run_dir, budget=budget, force=force, executor=executor)
        except ResumeError:
            pass  # killed before its run store was written: nothing to continue, start it again
        else:
            entry.status = result.status
            await manifest.save()
            return run_dir, None
    started = asyncio.Event()
    sink = _RunIdSink(entry, started)

    async def save_when_started() -> None:
        await started.wait()
        if entry.run_id is not None:
            await manifest.save()

    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(save_when_started())
            try:
                result = await start([sink])
            finally:
                started.set()  # the saver must not wait for a run that never traced
    except ExceptionGroup as failure:  # the run's own error, as the run raised it
        raise failure.exceptions[0] from None
    entry.run_id, entry.status = result.run_id, result.status
    await manifest.save()
    return result.run_dir, result


class _RunIdSink:
    """Notes the run's id from its first trace record, so the manifest can name the run while it runs."""

    def __init__(self, entry: RunEntry, started: asyncio.Event) -> None:
        self.entry = entry
        self.started = started

    def emit(self, record: dict[str, Any]) -> None:
        """Take the run id from the first record."""
        if not self.started.is_set() and record.get("run_id"):
            self.entry.run_id, self.entry.status = str(record["run_id"]), "running"
            self.started.set()
