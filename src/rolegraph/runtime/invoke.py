"""The engine's one entry point: `invoke` runs (or continues) one run of a compiled workflow.

```python
result = await invoke(workflow, info, home=Home(path), durability=durability, redactor=redactor)
```

`rolegraph.Workflow.run`, `rolegraph.durability.resume` and
`rolegraph.durability.replay` all come through here. The engine is handed its
durability (`RunDurability`: checkpoints, journal, budgets) and its executor
(`ExecutorFactory`), and never asks what they are: a replay changes how models and
journals answer through `InvokeHooks`, a distributed backend changes where steps
run through the executor factory.

One invocation: resolve tools, open the tracer, build the executor (models load
here, before a new run's folder exists), open the durable state, then run the
scheduler under the root ``invoke_workflow`` span within the run's time limits,
classify the outcome (`rolegraph.runtime.result.classify`), write the outputs, and
— whatever happened — close everything and write the run's summary and sources.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from rolegraph.agents.journal import CallJournal
from rolegraph.errors import BudgetExceeded, SpecError
from rolegraph.layout import Home, RunFolder, write_replacing
from rolegraph.models.cache import CacheTally, CallCache, RunCache
from rolegraph.models.model import Model, ModelSettings, Usage
from rolegraph.runtime.compiled import CompiledWorkflow
from rolegraph.runtime.executor import ExecutorFactory, LocalExecutor, ModelResolver, RunContext, RunExecutor
from rolegraph.runtime.outputs import write_outputs
from rolegraph.runtime.privacy import override_problem
from rolegraph.runtime.result import CacheSavings, CitationCount, RunResult, classify
from rolegraph.runtime.run_info import RunInfo
from rolegraph.runtime.scheduler import Checkpoint, Checkpointer, Scheduler, StepListener, StepState
from rolegraph.runtime.step_log import StepLog
from rolegraph.tools.sources import Source, SourceRegistry
from rolegraph.tools.tool import Tool
from rolegraph.traces.content import content_processor
from rolegraph.traces.pricing import PricesError, PriceTable
from rolegraph.traces.redact import Redactor
from rolegraph.traces.run_sinks import RunEnd, RunSinks
from rolegraph.traces.sinks import TraceSink
from rolegraph.traces.spans import Span, SpanKind
from rolegraph.traces.trace import Trace
from rolegraph.traces.tracer import Tracer
from rolegraph.traces.usage import roll_up
from rolegraph.workflows.spec import ModelSpec

__all__ = ["InvokeHooks", "RunDurability", "invoke", "run_redactor"]


class RunDurability(Checkpointer, Protocol):
    """What the engine needs from a run's durable state (`rolegraph.durability.durable.Durability`)."""

    checkpoint: Checkpoint | None
    """The checkpoint a resumed run continues from (None for a fresh run)."""
    recorded_calls: int
    """Calls already in the journal when the invocation began."""

    @property
    def replayed_calls(self) -> int:
        """Recorded calls this invocation answered from the journal."""
        ...

    @property
    def resent_calls(self) -> int:
        """Recorded calls this invocation sent again because their request had changed."""
        ...

    @property
    def first_resent(self) -> str | None:
        """The first call sent again, and why."""
        ...

    @property
    def usage(self) -> Usage:
        """The run's tokens so far: every recorded call once, earlier invocations included."""
        ...

    def journal(self, step_id: str, model: str) -> CallJournal:
        """The call journal of one agent run."""
        ...

    def check_prices(self, models: Mapping[str, Model]) -> None:
        """Refuse a cost limit a model has no price for (raises `SpecError`)."""
        ...

    def open(self, *, resuming: bool, sources: SourceRegistry, models: Mapping[str, Model]) -> None:
        """Open (or create) the run store and restore what a resumed run had done."""
        ...

    def add_kill_sink(self, tracer: Tracer) -> None:
        """Let fault injection count the run's trace records."""
        ...

    def begin(self, root_span_id: str) -> None:
        """Record that an invocation started under the run's root span."""
        ...

    def log_steps(self, step_log: StepLog) -> None:
        """Save each completed step's row as the line `step_log` wrote for it (serialised once)."""
        ...

    def wall_time_left(self) -> float | None:
        """Seconds left of the run's wall-time budget (None: no limit)."""
        ...

    def wall_exceeded(self) -> BudgetExceeded:
        """The error for a run out of wall time."""
        ...

    def account(self, states: Mapping[str, StepState]) -> None:
        """Set each step's usage and tool calls from the journal."""
        ...

    def finish(self, status: str) -> None:
        """Record the invocation's end (then `close`)."""
        ...

    def close(self) -> None:
        """Close the run's durable state: after `finish`, or without it when the run's end cannot be recorded.
        After `finish` it may be called from a worker thread (it waits for the disk)."""
        ...


@dataclass(frozen=True)
class InvokeHooks:
    """How a caller changes what the engine's calls are answered by (a replay answers from a recording)."""

    models: ModelResolver | None = None
    """Resolves the run's model strings instead of `resolve_model`."""
    journal: Callable[[CallJournal, str], CallJournal] | None = None
    """Wraps each agent's journal: ``(the run's journal, step id) -> the journal the agent sees``."""
    root_attributes: Mapping[str, Any] = field(default_factory=dict)
    """Extra attributes of the run's ``invoke_workflow`` span (``.`` written as ``__``)."""


def run_redactor(workflow: CompiledWorkflow) -> Redactor:
    """The secret redaction of a run of `workflow`: the environment's secrets and those it names."""
    return Redactor.from_env(extra_names=workflow.spec.settings.redact_env)


@dataclass
class _Run:
    """One invocation's moving parts, shared by its phases."""

    workflow: CompiledWorkflow
    info: RunInfo
    folder: RunFolder
    durability: RunDurability
    tracer: Tracer
    sources: SourceRegistry
    tools: list[Tool[Any]]
    executor: RunExecutor
    started: dt.datetime
    result: RunResult
    traced: Usage | None = None
    """The tokens a resumed run's trace holds: its root span's roll-up starts from them."""
    scheduler: Scheduler | None = None
    cache: RunCache | None = None
    step_log: StepLog | None = None


async def invoke(
    workflow: CompiledWorkflow,
    info: RunInfo,
    *,
    home: Home,
    durability: RunDurability,
    redactor: Redactor,
    resuming: bool = False,
    executor: ExecutorFactory = LocalExecutor.for_run,
    sinks: Sequence[TraceSink] = (),
    on_step: StepListener | None = None,
    hooks: InvokeHooks | None = None,
) -> RunResult:
    """Run (or, `resuming`, continue) the run `info` describes, in its folder under `home`.

    Args:
        workflow: The compiled workflow.
        info: The run's identity, inputs and settings (``info.inputs`` already resolved).
        home: Where runs are kept.
        durability: The run's durable state (checkpoints, journal, budgets), not yet open.
        redactor: The run's secret redaction (`run_redactor`), applied to every file the run writes.
        resuming: Continue an existing run folder rather than create one.
        executor: Builds the executor the steps run on.
        sinks: Extra trace sinks.
        on_step: Called whenever a step changes status.
        hooks: What answers the run's model and journal calls, when not the usual.

    Returns:
        The result (a failed run returns, with ``status="failed"``).

    Raises:
        SpecError: A tool reference cannot be resolved, a cost limit cannot be kept, or the run's model
            override is hosted and the workflow's privacy is ``local_only``.
        ModelNotAvailableError: A model cannot be loaded; a new run then leaves no folder.
        DamagedFileError: Resuming, the run's trace or run store is damaged (nothing is written then).
        asyncio.CancelledError: The run was cancelled (its folder records ``cancelled``).
    """
    hooks = hooks or InvokeHooks()
    run, trace_sinks = await _setup(workflow, info, home, durability, redactor, resuming, executor, sinks, hooks)
    for sink in trace_sinks:
        run.tracer.add_sink(sink)
    durability.add_kill_sink(run.tracer)
    try:
        await _run_root(run, resuming=resuming, on_step=on_step, hooks=hooks)
    finally:
        try:
            await _close(run.executor, run.tools, run.cache)  # in this task: a tool may hold a scope entered here
        finally:
            # A cancellation arriving now (an eval interrupted by another of its runs) must not cut the
            # record of the run's end in two: it is written to its end, then the cancellation goes on.
            run.result.cache = _savings(run.cache, home)
            await _to_the_end(_record_end(run, trace_sinks, redactor, resuming=resuming))
    return run.result


async def _record_end(run: _Run, trace_sinks: RunSinks, redactor: Redactor, *, resuming: bool) -> None:
    """Record how the invocation ended: sources and ``run.json`` first, the run store's status after them.

    The run store's status is what says the run ended (`rolegraph.durability.resume` returns a
    completed run as it is, and its readers then trust ``run.json``), so it is written last: a
    kill before it leaves a run that resumes, never a completed store beside a stale ``run.json``.
    """
    durability = run.durability
    run.result.sources = list(run.sources)
    run.result.usage = durability.usage
    run.result.replayed_calls, run.result.resent_calls = durability.replayed_calls, durability.resent_calls
    if run.scheduler is not None:
        run.result.resumed_steps = list(run.scheduler.restored)
        run.result.executed_steps = list(run.scheduler.executed)
    run.result.duration_s = (dt.datetime.now(dt.UTC) - run.started).total_seconds()
    end = RunEnd(run.result.status, run.started.timestamp(), run.result.duration_s, resumed=resuming)
    try:
        _write_end(run, redactor)
    except BaseException:  # a step's line that could not be written leaves the run's end unrecorded (a resume
        run.durability.close()  # writes the missing lines); its store is closed all the same
        raise
    # The store's close folds its log into its file and waits for the disk's flushes (a millisecond on a quiet
    # disk, several on a busy one): in a worker thread, one call that lets go of the GIL while the loop's other
    # runs go on. (With the close on the loop, 4,000 concurrent three-step runs beside a busy disk ran at
    # 92-99 runs/s, against 178-215; on a quiet disk the two are alike, the thread costing 0.4 ms of CPU a run.)
    await asyncio.to_thread(run.durability.close)
    await trace_sinks.close(end)


def _write_end(run: _Run, redactor: Redactor) -> None:
    """The run's step log waited for, its sources, its final ``run.json``, then its status in the store.

    On the loop, not in a worker thread: each system call a worker thread makes takes the GIL back from the
    loop, which cost more than the calls (2,000 concurrent three-step runs took 7.5 ms of CPU a run with their
    files opened and closed in worker threads, 4.0 to 4.2 ms on the loop).
    """
    if run.step_log is not None:
        run.step_log.close()
    _write_sources(run.folder.sources, run.result.sources, redactor)
    _write_summary(run, redactor)
    run.durability.finish(run.result.status)


async def _to_the_end(work: Coroutine[Any, Any, None]) -> None:
    """Await `work` to its end even if this task is cancelled meanwhile; the cancellation is raised after it."""
    task = asyncio.ensure_future(work)
    cancelled: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError as exc:
            cancelled = exc
    if cancelled is not None:
        raise cancelled
    task.result()


async def _setup(
    workflow: CompiledWorkflow,
    info: RunInfo,
    home: Home,
    durability: RunDurability,
    redactor: Redactor,
    resuming: bool,
    executor_factory: ExecutorFactory,
    sinks: Sequence[TraceSink],
    hooks: InvokeHooks,
) -> tuple[_Run, RunSinks]:
    """Tools, tracer, executor, then the run's folder, durable state, trace sinks and ``run.json``: a new
    run's folder is created only once all the others loaded.

    A resumed run's trace is read first, so a damaged one (`DamagedFileError`) stops the resume
    before anything is opened or written.
    """
    refused = override_problem(workflow.spec, info.model, workflow.path)
    if refused is not None and hooks.models is None:  # a replay answers from its journal: nothing is sent
        raise SpecError([refused])
    folder = home.run(info.run_id)
    # The root span continues across invocations: its roll-up starts from the tokens already traced.
    earlier = Trace.load(folder.trace) if resuming and folder.trace.is_file() else None
    traced = earlier.usage() if earlier is not None else None
    tools_by_ref = workflow.tools()
    tools = list(tools_by_ref.values())
    mode = content_processor(info.content or workflow.spec.settings.content)
    tracer = Tracer(info.run_id, sinks=sinks, redactor=redactor, processors=[mode] if mode else [])
    sources = SourceRegistry()
    cache = _open_cache(workflow, info, home, redactor, tracer, earlier)
    executor: RunExecutor | None = None
    try:
        executor = executor_factory(
            RunContext(
                workflow.spec,
                roles=workflow.roles,
                tools=tools_by_ref,
                sources=sources,
                tracer=tracer,
                base_dir=workflow.base_dir,
                model_override=info.model,
                settings_override=ModelSettings(**info.settings) if info.settings else None,
                journals=_layered(durability.journal, hooks.journal),
                models=hooks.models,
                cache=cache,
                cache_default=_cache_default(workflow, info),
            )
        )
        durability.check_prices(executor.models)
        for model in executor.models.values():  # e.g. "is Ollama running?", before any folder is made
            await model.check()
        started = dt.datetime.fromisoformat(info.started)
        result = RunResult(run_id=info.run_id, status="failed", run_dir=folder.path)
        run = _Run(workflow, info, folder, durability, tracer, sources, tools, executor, started, result, traced)
        run.cache = cache
        # On the loop: creating the folder, the store (no flush to disk), the trace file and run.json cost less
        # than handing them to a worker thread, whose every system call takes the GIL back from the loop.
        trace_sinks = _open_folder(run, home, redactor, resuming=resuming)
    except BaseException:
        await _close(executor, tools, cache)
        durability.close()
        raise
    return run, trace_sinks


def _open_folder(run: _Run, home: Home, redactor: Redactor, *, resuming: bool) -> RunSinks:
    """Make a new run's folder, open (or create) its durable state and its trace sinks, write ``run.json``."""
    if not resuming:
        run.folder.path.mkdir(parents=True, exist_ok=False)
    run.durability.open(resuming=resuming, sources=run.sources, models=run.executor.models)
    trace_sinks = RunSinks(home.path, run.folder.path, run.info.run_id, run.workflow.spec.name)
    try:
        _write_summary(run, redactor)
    except BaseException:
        trace_sinks.jsonl.close()
        raise
    return trace_sinks


def _cache_default(workflow: CompiledWorkflow, info: RunInfo) -> bool:
    """Whether the run's models use the model-call cache unless their entry says otherwise."""
    return workflow.spec.settings.cache if info.cache is None else info.cache


def _open_cache(
    workflow: CompiledWorkflow, info: RunInfo, home: Home, redactor: Redactor, tracer: Tracer, earlier: Trace | None
) -> RunCache | None:
    """The home's model-call cache, if a model of the run uses it; a resumed run's tally starts from its trace's."""
    entries = workflow.spec.models.values()
    if not _cache_default(workflow, info) and not any(isinstance(m, ModelSpec) and m.cache for m in entries):
        return None
    tally = CacheTally()
    if earlier is not None:
        for model, saved in roll_up(earlier).saved_by_model.items():
            tally.add(model, Usage(input_tokens=saved.input_tokens, output_tokens=saved.output_tokens), saved.calls)
    settings = workflow.spec.settings
    store = CallCache(
        home.cache,
        ttl_s=settings.cache_ttl_s,
        max_mb=settings.cache_max_mb,
        on_problem=lambda problem: tracer.event("cache_problem", rolegraph__problem=problem),
    )
    return RunCache(store, redactor, tally)


def _savings(cache: RunCache | None, home: Home) -> CacheSavings | None:
    """What the cache saved the run, priced with the home's price table (cost unknown if that is unreadable)."""
    if cache is None:
        return None
    tally = cache.tally
    try:
        prices: PriceTable | None = PriceTable.load(home.prices)
    except PricesError:
        prices = None
    cost: float | None = 0.0
    for model, usage in tally.saved.items():
        one = prices.cost(model, usage.input_tokens, usage.output_tokens) if prices is not None else None
        cost = None if one is None or cost is None else cost + one
    saved, rounded = tally.usage, None if cost is None else round(cost, 6)
    return CacheSavings(
        hits=tally.hits, input_tokens=saved.input_tokens, output_tokens=saved.output_tokens, cost_usd=rounded
    )


async def _run_root(run: _Run, *, resuming: bool, on_step: StepListener | None, hooks: InvokeHooks) -> None:
    """The root span: the scheduler under the run's time limits, then the outcome and the outputs."""
    spec, info, durability = run.workflow.spec, run.info, run.durability
    traced = run.traced
    with run.tracer.span(
        SpanKind.INVOKE_WORKFLOW,
        f"invoke_workflow {spec.name}",
        span_id=info.root_span_id,
        gen_ai__operation__name="invoke_workflow",
        rolegraph__workflow=spec.name,
        rolegraph__workflow__file=str(run.workflow.path or ""),
        rolegraph__inputs=info.inputs,
        rolegraph__content=info.content or spec.settings.content,
        rolegraph__invocation=info.invocations + 1,
        **hooks.root_attributes,
    ) as root:
        durability.begin(root.span_id)
        if traced is not None:
            root.aggregated_input_tokens, root.aggregated_output_tokens = traced.input_tokens, traced.output_tokens
        step_log = run.step_log = StepLog(run.folder, run.tracer)
        durability.log_steps(step_log)
        scheduler = run.scheduler = Scheduler(
            spec,
            run.workflow.graph,
            run.executor,
            run_id=info.run_id,
            inputs=info.inputs,
            tracer=run.tracer,
            on_change=step_log.listener(on_step),
            checkpointer=durability,
            restore=durability.checkpoint,
        )
        if resuming:
            step_log.restore(scheduler.states[step_id] for step_id in scheduler.restored)
            run.tracer.event(
                "run_resumed",
                rolegraph__invocation=info.invocations,
                rolegraph__resumed_steps=scheduler.restored,
                rolegraph__recorded_calls=durability.recorded_calls,
            )
            root.set(rolegraph__resumed=True, rolegraph__resumed_steps=scheduler.restored)
        try:
            states, timed_out_after = await _schedule(run, scheduler, root)
        finally:
            if resuming:
                _record_resumed_calls(run, root)
        _conclude(run, root, states, scheduler.budget_error, timed_out_after)


async def _schedule(run: _Run, scheduler: Scheduler, root: Span) -> tuple[dict[str, StepState], float | None]:
    """Run the scheduler within the sooner of ``run_timeout`` and the wall-time budget left.

    Returns:
        The steps' states, and the ``run_timeout`` if that is what stopped the run.
    """
    run_timeout = run.workflow.spec.settings.run_timeout
    wall_left = run.durability.wall_time_left()
    limits = [s for s in (run_timeout, wall_left) if s is not None]
    try:
        async with asyncio.timeout(min(limits) if limits else None):
            return await scheduler.run(), None
    except asyncio.CancelledError:
        run.result.status = "cancelled"
        run.result.steps = scheduler.states
        root.status = "cancelled"
        raise
    except TimeoutError:  # the scheduler has cancelled every step in flight
        if wall_left is not None and (run_timeout is None or wall_left <= run_timeout):
            scheduler.budget_error = scheduler.budget_error or run.durability.wall_exceeded()
            return scheduler.states, None
        return scheduler.states, run_timeout


def _record_resumed_calls(run: _Run, root: Span) -> None:
    """What a resumed invocation did with the recorded calls, once known: a ``resume_calls`` event (after the
    ``run_resumed`` event that marked the resume's start) and the same counts on the root span."""
    durability = run.durability
    counts = {
        "rolegraph__recorded_calls": durability.recorded_calls,
        "rolegraph__replayed_calls": durability.replayed_calls,
        "rolegraph__resent_calls": durability.resent_calls,
    }
    run.tracer.event("resume_calls", **counts, rolegraph__first_resent=durability.first_resent)
    root.set(**{name.replace("rolegraph__", "rolegraph__resume__"): value for name, value in counts.items()})


def _conclude(
    run: _Run,
    root: Span,
    states: dict[str, StepState],
    budget_error: BudgetExceeded | None,
    timed_out_after: float | None,
) -> None:
    """Classify the run, record it on the root span, account its usage and write its outputs."""
    result = run.result
    result.steps = states
    outcome = classify(states, budget_error=budget_error, timed_out_after=timed_out_after)
    result.status, result.error = outcome.status, outcome.error
    if outcome.status != "completed":
        root.status, root.error = outcome.status, outcome.error
    if budget_error is not None:
        exceeded = {
            "limit": budget_error.limit,
            "scope": budget_error.scope,
            "allowed": budget_error.allowed,
            "used": budget_error.used,
        }
        root.set(rolegraph__budget__exceeded=exceeded)
    run.durability.account(states)
    result.outputs, counts = write_outputs(
        run.workflow.spec.outputs,
        run.folder.path,
        step_outputs=result.step_outputs,
        inputs=run.info.inputs,
        sources=run.sources,
    )
    result.citations = CitationCount(**counts)
    root.set(rolegraph__status=result.status, rolegraph__citations=counts)


def _write_summary(run: _Run, redactor: Redactor) -> None:
    """``run.json``: the result so far, with the run's workflow, inputs and overrides (written atomically)."""
    summary = {
        **run.result.summary(),
        "workflow": run.workflow.spec.name,
        "workflow_file": run.workflow.file,
        "inputs": dict(run.info.inputs),
        "overrides": {"model": run.info.model, "settings": run.info.settings},
        "privacy": run.workflow.spec.settings.privacy,
        "started": run.started.isoformat(),
        "sources": len(run.sources),
    }
    # How models were built, where that shapes their answers (an API, an inference provider, a LoRA adapter).
    built = {name: model.options for name, model in run.executor.models.items() if model.options}
    if built:
        summary["models"] = built
    write_replacing(run.folder.summary, _summary_json(redactor.value(summary)))


def _summary_json(summary: dict[str, Any]) -> bytes:
    """``run.json``'s bytes: orjson, indented by two spaces (the standard library's indenting encoder is
    pure Python, about twenty times slower), the standard library for what orjson refuses (a lone
    surrogate, an integer past 64 bits); a value JSON cannot hold is written as its ``str``."""
    try:
        return orjson.dumps(summary, default=str, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS) + b"\n"
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return (json.dumps(summary, indent=2, default=str) + "\n").encode()


def _write_sources(path: Path, sources: Sequence[Source], redactor: Redactor) -> None:
    """Every retrieved source with its text, one JSON object a line: what re-scoring a run from disk reads. A lone
    surrogate (text that is not UTF-8, as an API's JSON escape can give) is written as its JSON escape.

    A run with no sources writes no file (``run.json`` says ``"sources": 0``): a new file is the dearest of a
    run's file work, and a run's sources only grow, so no earlier invocation left a file to replace."""
    if not sources:
        return
    text = "".join(json.dumps(redactor.value(s.model_dump(mode="json")), ensure_ascii=False) + "\n" for s in sources)
    write_replacing(path, text.encode("utf-8", "backslashreplace"))  # only a lone surrogate needs it (in a string)


def _layered(
    journals: Callable[[str, str], CallJournal], layer: Callable[[CallJournal, str], CallJournal] | None
) -> Callable[[str, str], CallJournal]:
    """The run's journal factory with `layer` around each journal it gives (if there is a layer)."""
    if layer is None:
        return journals
    return lambda step_id, model: layer(journals(step_id, model), step_id)


async def _close(executor: RunExecutor | None, tools: Sequence[Tool[Any]], cache: RunCache | None) -> None:
    if cache is not None:
        cache.close()
    if executor is not None:
        await executor.aclose()
    for tool in tools:
        await tool.aclose()
