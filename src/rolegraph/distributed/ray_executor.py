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
from pathlib import Path
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from rolegraph.distributed.channel import ChannelPump, ForwardingRegistry, ForwardSink, RemoteJournal, RunChannel
from rolegraph.distributed.cluster import connect
from rolegraph.distributed.models import NAMESPACE, ActorModels
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
        self.node_id: str = ray.get_runtime_context().get_node_id()
        here = _pinned(self.node_id)
        self.channel = RunChannel.options(namespace=NAMESPACE, **here).remote()  # type: ignore[attr-defined]
        self.pump = ChannelPump(self.channel, tracer=context.tracer, sources=context.sources, journals=context.journals)
        self._actors = ActorModels(run_id=self.run_id, node_id=self.node_id, driver=True)
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
            self._started = True
        dispatch = uuid.uuid4().hex
        parent = current_span()
        self.pump.open(dispatch, parent)
        task = _run_step.options(max_retries=STEP_RETRIES, retry_exceptions=False)
        ref = task.remote(
            _StepJob(
                spec=self.context.spec,
                base_dir=str(self.context.base_dir),
                model_override=self.context.model_override,
                settings_override=self.context.settings_override,
                journaled=self.context.journals is not None,
                sources=[s.model_dump(mode="json") for s in self.context.sources],
                parent_id=parent.span_id if parent is not None else None,
                run_id=self.run_id,
                driver_node=self.node_id,
                dispatch=dispatch,
                channel=self.channel,
            ),
            call,
        )
        try:
            outcome: StepOutcome = await ref
        except asyncio.CancelledError:
            ray.cancel(ref, force=True)
            raise
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause if isinstance(exc.cause, BaseException) else exc
            raise cause from None
        finally:
            await self.pump.settle()
            failure = self.pump.close(dispatch)
        if failure is not None:
            raise failure
        return outcome

    async def aclose(self) -> None:
        """Stop the channel, and end the run's own model actors (nodes keep theirs)."""
        await self.pump.stop()
        for actor in self._actors.run_actors:
            ray.kill(actor)
        ray.kill(self.channel)


def _pinned(node_id: str) -> dict[str, Any]:
    """Ray options placing an actor on `node_id`, for good."""
    return {"scheduling_strategy": NodeAffinitySchedulingStrategy(node_id, soft=False)}


class _StepJob:
    """What a worker needs besides the call: the run's workflow and where to send what it produces."""

    def __init__(
        self,
        *,
        spec: WorkflowSpec,
        base_dir: str,
        model_override: str | None,
        settings_override: ModelSettings | None,
        journaled: bool,
        sources: list[dict[str, Any]],
        parent_id: str | None,
        run_id: str,
        driver_node: str,
        dispatch: str,
        channel: Any,
    ) -> None:
        self.spec = spec
        self.base_dir = base_dir
        self.model_override = model_override
        self.settings_override = settings_override
        self.journaled = journaled
        self.sources = sources
        self.parent_id = parent_id
        self.run_id = run_id
        self.driver_node = driver_node
        self.dispatch = dispatch
        self.channel = channel


@ray.remote(num_cpus=1)
def _run_step(job: _StepJob, call: StepCall) -> StepOutcome:
    """The Ray task: run one step call on this worker, as a local run would."""
    return asyncio.run(_run_step_async(job, call))


async def _run_step_async(job: _StepJob, call: StepCall) -> StepOutcome:
    context = ray.get_runtime_context()
    node_id: str = context.get_node_id()
    worker = f"{context.get_worker_id()[:12]}/{os.getpid()}"
    base_dir = Path(job.base_dir)
    spec = job.spec
    tools = workflow_tools(spec, resolve_roles(spec), base_dir)
    sink = ForwardSink(job.channel, job.dispatch, node=node_id, host=ray.util.get_node_ip_address(), worker=worker)
    tracer = Tracer(job.run_id, sinks=[sink], redactor=Redactor.from_env())
    sources = ForwardingRegistry(job.channel, (Source.model_validate(s) for s in job.sources))
    executor = LocalExecutor(
        spec,
        tools=tools,
        sources=sources,
        tracer=tracer,
        base_dir=base_dir,
        model_override=job.model_override,
        settings_override=job.settings_override,
        journals=(lambda step_id, model: RemoteJournal(job.channel, job.dispatch, step_id, model))
        if job.journaled
        else None,
        models=ActorModels(run_id=job.run_id, node_id=node_id, driver=False),
    )
    try:
        with tracer.under(job.parent_id):
            return await executor.execute(call)
    finally:
        for tool in tools.values():
            await tool.aclose()
