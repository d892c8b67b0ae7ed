"""A batch: a workflow run once per line of an inputs file (JSON Lines or CSV), resumable like an eval.

```python
lines = read_inputs(Path("topics.jsonl"))                    # [(line number, inputs), ...]
manifest = BatchManifest.start(wf_file, Path("topics.jsonl"), lines, concurrency=4)
manifest.path = batch_dir(home, manifest.batch_id) / MANIFEST_FILE
await run_batch(workflow, manifest, home=home, executor=workflow.executor("ray"))
```

Each line is one run with its own folder. The batch's ``manifest.json`` (under
``$ROLEGRAPH_HOME/batches/<batch_id>/``) records each line's run id and status as
they change, so a killed batch resumed (`run_batch` again with the manifest loaded
back) leaves finished lines as they are, continues interrupted ones and starts the
rest (`rolegraph.evals.planned`, as an eval does). At most `concurrency` lines run at
once; on a Ray executor their steps spread over the cluster.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from rolegraph.errors import Problem, SpecError
from rolegraph.evals.manifest import Manifest, ManifestError, RunEntry, find_manifest, new_eval_id
from rolegraph.evals.planned import run_entry
from rolegraph.layout import Home
from rolegraph.runtime.executor import ExecutorFactory, LocalExecutor
from rolegraph.runtime.result import RunResult
from rolegraph.runtime.run_info import file_hash
from rolegraph.traces.sinks import TraceSink
from rolegraph.workflow import Workflow
from rolegraph.workflows.spec import Budget

__all__ = [
    "BatchLine",
    "BatchManifest",
    "LineListener",
    "batch_dir",
    "check_unchanged",
    "find_batch",
    "read_inputs",
    "run_batch",
]


class BatchLine(RunEntry):
    """One line of the inputs file: its inputs, and its run's id and status."""

    line: int
    """1-based line of the inputs file (a CSV row's first line)."""
    inputs: dict[str, Any] = Field(default_factory=dict)


class BatchManifest(Manifest):
    """Everything needed to resume a batch, and the state of each of its lines."""

    FOLDER = "a batch folder"
    batch_id: str = ""
    workflow_file: str = ""
    workflow_hash: str = ""
    inputs_file: str = ""
    inputs_hash: str = ""
    concurrency: int = 1
    budget: dict[str, float] = Field(default_factory=dict)
    """The run budget's limits (`Budget.limits`), applied to every line's run."""
    cache: bool | None = None
    """Every line's run uses the model-call cache (True), none does (False), or the workflow says (None)."""
    runs: list[BatchLine] = Field(default_factory=list)

    @property
    def ident(self) -> str:
        """The batch's id."""
        return self.batch_id

    @classmethod
    def start(
        cls,
        workflow_file: Path,
        inputs_file: Path,
        lines: Sequence[tuple[int, dict[str, Any]]],
        *,
        concurrency: int,
        budget: dict[str, float] | None = None,
        cache: bool | None = None,
    ) -> BatchManifest:
        """A new batch's manifest: a fresh id, the files named absolutely with their hashes, a line each."""
        return cls(
            batch_id=new_eval_id(),
            workflow_file=str(workflow_file.resolve()),
            workflow_hash=file_hash(workflow_file),
            inputs_file=str(inputs_file.resolve()),
            inputs_hash=file_hash(inputs_file),
            concurrency=concurrency,
            budget=dict(budget or {}),
            cache=cache,
            runs=[BatchLine(line=number, inputs=inputs) for number, inputs in lines],
        )


LineListener = Callable[[BatchLine], None]
"""Called as each line's run finishes (progress displays)."""


def read_inputs(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """The inputs of each line of a ``.jsonl`` file (one JSON object a line; blank lines skipped) or a
    ``.csv`` file (a header row of input names, then a row a run), with their line numbers.

    Raises:
        SpecError: The file cannot be read, is of another kind, or a line is not an object (each
            problem at its file:line).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([Problem(f"cannot read the inputs file: {exc}", file=path)]) from None
    if path.suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        rows, start = [], 2
        for row in reader:
            rows.append((start, {k: v for k, v in row.items() if k is not None}))
            start = reader.line_num + 1
        return rows
    if path.suffix not in (".jsonl", ".ndjson"):
        raise SpecError([Problem("an inputs file is .jsonl (a JSON object a line) or .csv (a header row)", file=path)])
    lines, problems = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(Problem(f"not JSON: {exc.msg}", file=path, line=number, column=exc.colno))
            continue
        if not isinstance(value, dict):
            problems.append(Problem("each line is a JSON object of input values", file=path, line=number))
            continue
        lines.append((number, value))
    if problems:
        raise SpecError(problems)
    return lines


def batch_dir(home: Path, batch_id: str) -> Path:
    """The folder of batch `batch_id` under `home` (``batches/<batch_id>``)."""
    return Home(home).batches / batch_id


def find_batch(home: Path, ref: str) -> Path:
    """The folder of the batch `ref` names: an id, a unique id prefix, or ``last``.

    Raises:
        ManifestError: No batch (or several) matches.
    """
    return find_manifest(Home(home).batches, ref, "batch", "rolegraph batch")


async def run_batch(
    workflow: Workflow,
    manifest: BatchManifest,
    *,
    home: Path,
    executor: ExecutorFactory = LocalExecutor.for_run,
    model: str | None = None,
    budget: Budget | None = None,
    force: bool = False,
    on_line: LineListener | None = None,
) -> list[BatchLine]:
    """Run every line of the batch not yet finished, at most ``manifest.concurrency`` at once.

    Raises:
        SpecError: A line's inputs do not fit the workflow (every such line, at its file:line); no
            run starts then.
        ModelNotAvailableError: A model cannot be loaded.
    """
    _check_inputs(workflow, manifest)
    slots = asyncio.Semaphore(max(1, manifest.concurrency))
    await manifest.save()

    async def one(entry: BatchLine) -> None:
        def start(sinks: Sequence[TraceSink]) -> Awaitable[RunResult]:
            return _run(workflow, entry, home, sinks, model, budget, executor, manifest.cache)

        async with slots:
            await run_entry(entry, manifest, start=start, home=home, budget=budget, force=force, executor=executor)
        if on_line is not None:
            on_line(entry)

    try:
        async with asyncio.TaskGroup() as group:
            for entry in manifest.runs:
                group.create_task(one(entry))
    except ExceptionGroup as failure:  # a setup error (a missing model) stops the batch: raise it plainly
        raise failure.exceptions[0] from None
    return manifest.runs


async def _run(
    workflow: Workflow,
    entry: BatchLine,
    home: Path,
    sinks: Sequence[TraceSink],
    model: str | None,
    budget: Budget | None,
    executor: ExecutorFactory,
    cache: bool | None,
) -> RunResult:
    return await workflow.run(
        entry.inputs, model=model, home=home, sinks=sinks, budget=budget, executor=executor, cache=cache
    )


def _check_inputs(workflow: Workflow, manifest: BatchManifest) -> None:
    problems: list[Problem] = []
    for entry in manifest.runs:
        try:
            workflow.resolve_inputs(entry.inputs)
        except SpecError as exc:
            problems += [Problem(p.message, file=Path(manifest.inputs_file), line=entry.line) for p in exc.problems]
    if problems:
        raise SpecError(problems)


def check_unchanged(manifest: BatchManifest, *, force: bool) -> None:
    """Refuse to resume a batch whose workflow or inputs file is gone or (without `force`) changed.

    Raises:
        ManifestError: A file is gone, or changed.
    """
    for kept, digest, what in (
        (manifest.workflow_file, manifest.workflow_hash, "workflow"),
        (manifest.inputs_file, manifest.inputs_hash, "inputs"),
    ):
        if not Path(kept).is_file():
            raise ManifestError(f"batch {manifest.batch_id}: its {what} file {kept} is gone; restore it to resume")
        if file_hash(Path(kept)) != digest and not force:
            raise ManifestError(
                f"batch {manifest.batch_id}: {kept} changed since the batch started; start a new batch, or"
                " resume anyway with --force"
            )
