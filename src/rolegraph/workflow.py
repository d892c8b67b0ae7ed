"""`rolegraph.load(path)` gives a `Workflow`; `await wf.run(inputs)` a `RunResult`.

The user's handle on a workflow: a `CompiledWorkflow` (spec, graph, roles) that
runs durably. Each run lives in its own folder under ``$ROLEGRAPH_HOME/runs/<run_id>/``
(see `rolegraph.layout`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

from rolegraph.distributed.choose import executor_for
from rolegraph.durability.durable import run_durably
from rolegraph.errors import Problem, SpecError
from rolegraph.layout import Home, home_dir, new_run_id
from rolegraph.models.model import ModelSettings
from rolegraph.runtime.admission import admitted
from rolegraph.runtime.compiled import CompiledWorkflow
from rolegraph.runtime.executor import ExecutorFactory
from rolegraph.runtime.result import RunResult
from rolegraph.runtime.run_info import RunInfo
from rolegraph.runtime.scheduler import StepListener
from rolegraph.traces.content import CONTENT_MODES, ContentMode
from rolegraph.traces.sinks import TraceSink
from rolegraph.workflows.spec import Budget, Privacy

__all__ = ["Workflow", "load"]


class Workflow(CompiledWorkflow):
    """A loaded, validated workflow, ready to run any number of times.

    ```python
    wf = rolegraph.load("examples/literature_review.yaml")
    result = await wf.run({"topic": "LoRA"})        # or wf.run_sync(...) in a script
    print(result.outputs["report"].read_text())
    ```
    """

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, machine: bool = False, privacy: Privacy | None = None) -> Self:
        """Load and validate a workflow file (its warnings in `warnings`).

        Args:
            path: The workflow file.
            machine: Also check model files and packages and the library's notes, as
                `rolegraph validate` does (``--model`` at run time may make them moot).
            privacy: ``local_only`` refuses every hosted model and web tool, as ``settings.privacy:
                local_only`` in the file would (and so does `run` for its ``model=``); None: as the file says.

        Raises:
            SpecError: The file is invalid (every problem, with file:line:col).
        """
        return super().load(path, machine=machine, privacy=privacy)

    async def run(
        self,
        inputs: Mapping[str, Any] | None = None,
        *,
        model: str | None = None,
        settings: ModelSettings | None = None,
        home: Path | None = None,
        sinks: Sequence[TraceSink] = (),
        on_step: StepListener | None = None,
        content: ContentMode | None = None,
        budget: Budget | None = None,
        cache: bool | None = None,
        executor: ExecutorFactory | str | None = None,
    ) -> RunResult:
        """Run the workflow once.

        An event loop works on at most ``ROLEGRAPH_MAX_RUNS`` runs at once (default 64); runs started
        past that wait their turn, in order (`rolegraph.runtime.admission`).

        Args:
            inputs: Input values (strings are converted to the declared types).
            model: A model string replacing the workflow's ``default`` model.
            settings: Settings laid over the ``default`` model's (only the fields set in it count),
                e.g. ``ModelSettings(temperature=0.7)``; recorded in ``run.json`` with `model`.
            home: Where runs are kept (default `rolegraph.layout.home_dir()`).
            sinks: Extra trace sinks (progress displays, tests); the JSONL file and the live index
                are always written, OTLP export when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
            on_step: Called whenever a step changes status.
            content: What the trace keeps of prompts and payloads (``full``, ``metadata``,
                ``redacted``; see `rolegraph.traces.content`), replacing ``settings.content``.
            budget: Limits replacing those of the workflow's ``settings.budget`` (the ones set).
            cache: Answer repeated model calls from the model-call cache under `home` (True) or never
                (False), replacing ``settings.cache``; a model's own ``cache:`` still decides for it.
            executor: Where the steps run: an executor name (``local``, ``ray``, ``ray://host:port``) or an
                `ExecutorFactory`; default: the workflow's ``settings.executor`` (``local``: this process).

        Returns:
            The result; a failed run returns with ``status="failed"`` rather than raising,
            one that reached a budget limit with ``status="budget_exceeded"``.

        Raises:
            SpecError: Bad inputs, a tool reference that cannot be resolved, or a hosted `model` for a
                workflow whose privacy is ``local_only``.
            ValueError: `executor` names no executor, or ``ROLEGRAPH_MAX_RUNS`` is not a whole number.
            RayNotInstalled: A Ray executor is asked for and Ray is not installed.
            ModelNotAvailableError: A model cannot be loaded (missing package, file or key);
                nothing is written in that case.
            asyncio.CancelledError: The run was cancelled (its folder records ``cancelled``;
                it can be resumed).
        """
        values = self.resolve_inputs(inputs)
        factory = self.executor(executor)
        if content is not None and content not in CONTENT_MODES:
            raise SpecError([Problem(f"content must be one of {', '.join(CONTENT_MODES)}, got {content!r}")])
        async with admitted():  # at most ROLEGRAPH_MAX_RUNS runs at once in this loop; the others wait here
            info = RunInfo(
                run_id=new_run_id(),
                workflow=self.spec.name,
                workflow_file=self.file,
                workflow_hash=self.file_hash,
                inputs=values,
                model=model,
                settings=settings.model_dump(exclude_unset=True) if settings else {},
                content=content,
                budget=self.spec.settings.budget.merged(budget).limits(),
                cache=cache,
                privacy=self.spec.settings.privacy,
                started=dt.datetime.now(dt.UTC).isoformat(),
            )
            home_path = home or home_dir()
            return await run_durably(self, info, home=Home(home_path), executor=factory, sinks=sinks, on_step=on_step)

    def executor(self, choice: ExecutorFactory | str | None = None) -> ExecutorFactory:
        """The executor factory of a run: `choice` (a name or a factory), else ``settings.executor``.

        Raises:
            ValueError: `choice` names no executor.
            RayNotInstalled: A Ray executor is chosen and Ray is not installed.
        """
        if choice is None or isinstance(choice, str):
            return executor_for(choice or self.spec.settings.executor)
        return choice

    def run_sync(self, inputs: Mapping[str, Any] | None = None, **kwargs: Any) -> RunResult:
        """`run` for scripts: starts an event loop for the run.

        Raises:
            RuntimeError: Called inside a running event loop (a Jupyter notebook, an async
                application), which cannot be blocked: there, ``await wf.run(...)``.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no loop running: the usual case for a script
            return asyncio.run(self.run(inputs, **kwargs))
        # Checked before the coroutine exists, so no "coroutine was never awaited" warning joins the error.
        raise RuntimeError(
            "run_sync() cannot start a run inside a running event loop (a notebook or an async application); "
            "use `await wf.run(...)` there instead"
        )


def load(path: str | os.PathLike[str], *, privacy: Privacy | None = None) -> Workflow:
    """Load and validate a workflow file (see `Workflow.load`)."""
    return Workflow.load(path, privacy=privacy)
