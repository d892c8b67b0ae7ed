"""The Ray executor: each step call of a run is a Ray task, on any node of the cluster.

```python
from rolegraph.distributed.ray_executor import RayExecutor
result = await workflow.run(inputs, executor=RayExecutor.factory("auto"))
```

On the worker a task builds the step's executor as a local run would (roles,
tools with their URL policy and limits, function steps), with three parts
swapped: the tracer's sink, the source registry and the journal send to the
run's `RunChannel`, and models are the node's `ModelActor`s. The driver
takes what the channel brings into the run's tracer, sources and journal, so a
run on Ray has one trace, one run folder and one journal, as a local run does.

A task whose worker dies is retried by Ray (`max_retries`); the retry asks the
run's journal first, so it replays the calls the lost attempt recorded.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray

from rolegraph.distributed.channel import (
    ChannelPump,
    ForwardedCache,
    ForwardingRegistry,
    ForwardSink,
    Outbox,
    RemoteJournal,
    channel_for,
)
from rolegraph.distributed.cluster import connect
from rolegraph.distributed.models import ActorModels, run_models_for
from rolegraph.models.model import Model, ModelSettings
from rolegraph.runtime.compiled import workflow_tools
from rolegraph.runtime.executor import ExecutorFactory, LocalExecutor, RunContext, resolve_roles
from rolegraph.runtime.scheduler import StepCall, StepOutcome
from rolegraph.tools.sources import Source
from rolegraph.traces.redact import Redactor
from rolegraph.traces.spans import current_span
from rolegraph.traces.tracer import Tracer
from rolegraph.workflows.spec import WorkflowSpec

__all__ = ["STEP_RETRIES", "RayExecutor"]

STEP_RETRIES = 3
"""How many times Ray reruns a step whose worker or node died (an error the step raised is not retried)."""


class RayExecutor:
    """Runs a run's step calls as Ray tasks; see the module docstring.

    Build it through `RayExecutor.factory(address)`, the `ExecutorFactory` a run takes.
    """

    def __init__(self, context: RunContext, *, address: str | None = None) -> None:
        connect(address)
        self.context = context
        self.run_id = context.tracer.run_id
        self.run_key = f"{self.run_id}:{uuid.uuid4().hex[:8]}"
        """This run's key in the driver's channel and model actors (one per executor: a resume gets its own)."""
        self.node_id: str = ray.get_runtime_context().get_node_id()
        self.channel = channel_for(self.node_id)
        self.pump = ChannelPump(
            self.channel,
            self.run_key,
            tracer=context.tracer,
            sources=context.sources,
            journals=context.journals,
            cache=context.cache,
        )
        self._actors = ActorModels(run_key=self.run_key, node_id=self.node_id, run_models=run_models_for(self.node_id))
        # The driver's view of the run's models (names, checks, replayed calls), through the same actors.
        self._local = LocalExecutor(
            context.spec,
            tools={},
            sources=context.sources,
            tracer=context.tracer,
            base_dir=context.base_dir,
            model_override=context.model_override,
            settings_override=context.settings_override,
            roles=context.roles,
            models=context.models or self._actors,
        )
        self._workflow: Any = None
        """The run's workflow, in the object store once (`_RunJob`), for every step's task."""
        self._started = False

    @classmethod
    def factory(cls, address: str | None = None) -> ExecutorFactory:
        """The `ExecutorFactory` of runs on the cluster at `address` (None: RAY_ADDRESS, or a new local one)."""

        def build(context: RunContext) -> RayExecutor:
            return cls(context, address=address)

        return build

    @property
    def models(self) -> dict[str, Model]:
        """The run's models, by model string (proxies of their actors)."""
        return self._local.models

    async def execute(self, call: StepCall) -> StepOutcome:
        """Run the call as a Ray task and return its outcome once all it sent has been taken in."""
        if not self._started:
            self.pump.start()
            self._workflow = ray.put(
                _RunJob(
                    spec=self.context.spec,
                    base_dir=str(self.context.base_dir),
                    model_override=self.context.model_override,
                    settings_override=self.context.settings_override,
                    journaled=self.context.journals is not None,
                    cached=self.context.cache is not None,
                    cache_default=self.context.cache_default,
                    run_id=self.run_id,
                    run_key=self.run_key,
                    channel=self.channel,
                    run_models=self._actors.run_models,
                )
            )
            self._started = True
        dispatch = uuid.uuid4().hex
        parent = current_span()
        self.pump.open(dispatch, parent)
        task = _run_step.options(max_retries=STEP_RETRIES, retry_exceptions=False)
        sources = [s.model_dump(mode="json") for s in self.context.sources]
        ref = task.remote(self._workflow, _StepJob(sources, parent.span_id if parent else None, dispatch), call)
        sent: tuple[str, int] | None = None
        try:
            outcome, *sent_by = await ref
            sent = (sent_by[0], sent_by[1])
        except asyncio.CancelledError:
            ray.cancel(ref, force=True)
            raise
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause if isinstance(exc.cause, BaseException) else exc
            raise cause from None
        finally:
            await (self.pump.settle(*sent) if sent is not None else self.pump.settle())
            failure = self.pump.close(dispatch)
        if failure is not None:
            raise failure
        step_outcome: StepOutcome = outcome
        return step_outcome

    async def aclose(self) -> None:
        """Stop the run's part of the channel, and drop the run's own models (nodes keep theirs)."""
        await self.pump.stop()
        if self._actors.run_keys:
            await self._actors.run_models.drop.remote(self._actors.run_keys)


@dataclass(frozen=True)
class _RunJob:
    """What every step call of a run needs on a worker: the workflow, and where to send what it produces."""

    spec: WorkflowSpec
    base_dir: str
    model_override: str | None
    settings_override: ModelSettings | None
    journaled: bool
    cached: bool
    """Whether the run has the model-call cache open (the driver's; workers ask it through the channel)."""
    cache_default: bool
    run_id: str
    run_key: str
    channel: Any
    run_models: Any


@dataclass(frozen=True)
class _StepJob:
    """What one step call adds: the run's sources so far, the span it runs under, its dispatch id."""

    sources: list[dict[str, Any]]
    parent_id: str | None
    dispatch: str


@ray.remote(num_cpus=1)
def _run_step(run: _RunJob, job: _StepJob, call: StepCall) -> tuple[StepOutcome, str, int]:
    """The Ray task: run one step call on this worker, as a local run would; the outcome, and who sent how much."""
    outbox = Outbox(run.channel, run.run_key)
    try:
        return asyncio.run(_run_step_async(run, job, outbox, call)), outbox.sender, outbox.count
    finally:
        outbox.flush()


async def _run_step_async(run: _RunJob, job: _StepJob, outbox: Outbox, call: StepCall) -> StepOutcome:
    context = ray.get_runtime_context()
    node_id: str = context.get_node_id()
    worker = f"{context.get_worker_id()[:12]}/{os.getpid()}"
    base_dir = Path(run.base_dir)
    spec = run.spec
    tools = workflow_tools(spec, resolve_roles(spec), base_dir)
    sink = ForwardSink(outbox, job.dispatch, node=node_id, host=ray.util.get_node_ip_address(), worker=worker)
    tracer = Tracer(run.run_id, sinks=[sink], redactor=Redactor.from_env())
    sources = ForwardingRegistry(outbox, (Source.model_validate(s) for s in job.sources))
    executor = LocalExecutor(
        spec,
        tools=tools,
        sources=sources,
        tracer=tracer,
        base_dir=base_dir,
        model_override=run.model_override,
        settings_override=run.settings_override,
        journals=(lambda step_id, model: RemoteJournal(outbox, job.dispatch, step_id, model))
        if run.journaled
        else None,
        models=ActorModels(run_key=run.run_key, node_id=node_id, run_models=run.run_models),
        cache=ForwardedCache(outbox) if run.cached else None,
        cache_default=run.cache_default,
    )
    try:
        with tracer.under(job.parent_id):
            return await executor.execute(call)
    finally:
        for tool in tools.values():
            await tool.aclose()
