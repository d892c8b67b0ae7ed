"""Running a workflow: `rolegraph.load(path)` gives a `Workflow`; `await wf.run(inputs)` a `RunResult`.

Each run lives in its own folder under ``$ROLEGRAPH_HOME/runs/<run_id>/`` (home
defaults to ``./.rolegraph``): the trace (``trace.jsonl``), a summary
(``run.json``), the retrieved sources with their text (``sources.jsonl``) and
the output files the workflow declares.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import networkx as nx
from pydantic import BaseModel, ConfigDict, Field
from rich.console import RenderableType

from rolegraph.agents.journal import CallJournal
from rolegraph.errors import Problem, SpecError
from rolegraph.models.model import ModelSettings, Usage
from rolegraph.tools.library import Library
from rolegraph.tools.registry import resolve_tools
from rolegraph.tools.sources import Source, SourceRegistry
from rolegraph.tools.tool import Tool
from rolegraph.traces.content import CONTENT_MODES, ContentMode, content_processor
from rolegraph.traces.notebook import run_html, run_rich
from rolegraph.traces.redact import Redactor
from rolegraph.traces.run_sinks import RunSinks
from rolegraph.traces.sinks import TraceSink
from rolegraph.traces.spans import Span, SpanKind
from rolegraph.traces.store import index_run
from rolegraph.traces.trace import Trace
from rolegraph.traces.tracer import Tracer
from rolegraph.workflows.durable import Durability, file_hash
from rolegraph.workflows.executor import LocalExecutor, ModelResolver, resolve_roles
from rolegraph.workflows.graph import compile_graph
from rolegraph.workflows.loader import load_spec
from rolegraph.workflows.outputs import write_outputs
from rolegraph.workflows.runstore import RunRecord
from rolegraph.workflows.scheduler import Scheduler, StepListener, StepState
from rolegraph.workflows.spec import Budget, InputSpec, WorkflowSpec

__all__ = ["SOURCES_FILE", "CitationCount", "DriveHooks", "RunResult", "RunStatus", "Workflow", "home_dir", "load"]

RunStatus = Literal["completed", "failed", "cancelled", "budget_exceeded"]

SOURCES_FILE = "sources.jsonl"
"""In each run folder: every retrieved source with its full text (``sources.json`` outputs leave text out)."""


def home_dir() -> Path:
    """Where runs are kept: ``$ROLEGRAPH_HOME``, or ``./.rolegraph``."""
    return Path(os.environ.get("ROLEGRAPH_HOME", ".rolegraph"))


def _new_run_id() -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    # 48 random bits: thousands of runs started in the same second must not collide.
    return f"{stamp}-{secrets.token_hex(6)}"


@dataclass(frozen=True)
class DriveHooks:
    """What a replay (`rolegraph.workflows.replay`) changes in how `Workflow._drive` runs a run."""

    models: ModelResolver | None = None
    """Resolves the run's model strings instead of `resolve_model`."""
    journal: Callable[[CallJournal, str], CallJournal] | None = None
    """Wraps each agent's journal: ``(the run's journal, step id) -> the journal the agent sees``."""
    root_attributes: Mapping[str, Any] = field(default_factory=dict)
    """Extra attributes of the run's ``invoke_workflow`` span (``.`` written as ``__``)."""


class CitationCount(BaseModel):
    """Citations in the run's reports, and how many name no retrieved source (should be 0)."""

    total: int = 0
    unresolved: int = 0


class RunResult(BaseModel):
    """The outcome of one run."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    run_id: str
    status: RunStatus
    run_dir: Path
    outputs: dict[str, Path] = Field(default_factory=dict)
    """Files written, by output name."""
    steps: dict[str, StepState] = Field(default_factory=dict)
    """Final state of each step, with its output."""
    sources: list[Source] = Field(default_factory=list)
    """Every source the run's tools retrieved."""
    usage: Usage = Field(default_factory=Usage)
    citations: CitationCount = Field(default_factory=CitationCount)
    error: str | None = None
    duration_s: float = 0.0
    """Wall time since the run first started (resumes included)."""
    resumed_steps: list[str] = Field(default_factory=list)
    """Steps restored from the run store's checkpoint, not run again (a resumed run)."""
    executed_steps: list[str] = Field(default_factory=list)
    """Steps whose agents ran in this invocation, in start order."""

    @property
    def trace(self) -> Trace:
        """The run's trace, read from its JSONL file."""
        return Trace.load(self.run_dir / "trace.jsonl")

    @property
    def step_outputs(self) -> dict[str, Any]:
        """Output of each completed step."""
        return {k: s.output for k, s in self.steps.items() if s.status == "completed"}

    def _trace_or_none(self) -> Trace | None:
        return self.trace if (self.run_dir / "trace.jsonl").is_file() else None

    def _repr_html_(self) -> str:
        """The run in Jupyter: escaped HTML with status, usage, outputs, steps and nested spans."""
        return run_html(self.summary(), self._trace_or_none())

    def __rich__(self) -> RenderableType:
        """The run in a terminal (``rich.print(result)``): a summary line, its steps and its span tree."""
        return run_rich(self.summary(), self._trace_or_none())

    def summary(self) -> dict[str, Any]:
        """The run as the CLI's ``--json`` object."""
        return {
            "run_id": self.run_id,
            "status": self.status,
            "outputs": {k: str(v) for k, v in self.outputs.items()},
            "usage": self.usage.model_dump(),
            "trace": str(self.run_dir / "trace.jsonl"),
            "citations": self.citations.model_dump(),
            "steps": {k: s.status for k, s in self.steps.items()},
            "error": self.error,
            "duration_s": round(self.duration_s, 3),
            "resumed_steps": self.resumed_steps,
            "executed_steps": self.executed_steps,
        }


def _coerce(name: str, spec: InputSpec, value: Any) -> Any:
    """Convert a (command-line string) input value to its declared type."""
    try:
        if spec.type == "integer":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)  # int() would silently truncate 2.5 to 2, or read True as 1
            return int(value)
        if spec.type == "number":
            return float(value)
        if spec.type == "boolean":
            if isinstance(value, bool):
                return value
            lowered = str(value).lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return lowered in ("true", "1", "yes")
        if spec.type == "list":
            if isinstance(value, list):
                return value
            parsed = json.loads(value) if str(value).startswith("[") else [v.strip() for v in str(value).split(",")]
            return list(parsed)
        return str(value)
    except (ValueError, TypeError) as exc:
        article = "an" if spec.type == "integer" else "a"
        problem = Problem(f"input {name!r} must be {article} {spec.type}, got {value!r}", path=f"inputs.{name}")
        raise SpecError([problem]) from exc


class Workflow:
    """A loaded, validated workflow, ready to run any number of times.

    ```python
    wf = rolegraph.load("examples/literature_review.yaml")
    result = await wf.run({"topic": "LoRA"})        # or wf.run_sync(...) in a script
    print(result.outputs["report"].read_text())
    ```
    """

    def __init__(self, spec: WorkflowSpec, path: Path | None = None) -> None:
        self.spec = spec
        self.path = path
        self.base_dir = path.parent if path else Path.cwd()
        self.graph: nx.DiGraph[str] = compile_graph(spec)
        self.roles = resolve_roles(spec)  # once per workflow, not once per run (see LocalExecutor)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Workflow:
        """Load and validate a workflow file.

        Raises:
            SpecError: The file is invalid (every problem, with file:line:col).
        """
        file = Path(path)
        return cls(load_spec(file), file)

    def resolve_inputs(self, inputs: Mapping[str, Any] | None) -> dict[str, Any]:
        """Inputs with defaults filled in and values converted to their declared types.

        Raises:
            SpecError: An input is unknown, missing or of the wrong type.
        """
        given = dict(inputs or {})
        problems = [
            Problem(f"unknown input {name!r}; the workflow's inputs are: {', '.join(self.spec.inputs) or 'none'}")
            for name in given
            if name not in self.spec.inputs
        ]
        values: dict[str, Any] = {}
        for name, spec in self.spec.inputs.items():
            if name in given:
                try:
                    values[name] = _coerce(name, spec, given[name])
                except SpecError as exc:  # reported with the others: every problem at once
                    problems += exc.problems
            elif spec.default is not None:
                values[name] = spec.default
            else:
                problems.append(Problem(f"input {name!r} is required (pass --input {name}=...)"))
        if problems:
            raise SpecError(problems)
        return values

    def _library(self) -> Library | None:
        if self.spec.library is None:
            return None
        return Library.from_dir(self.base_dir / self.spec.library)

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
    ) -> RunResult:
        """Run the workflow once.

        Args:
            inputs: Input values (strings are converted to the declared types).
            model: A model string replacing the workflow's ``default`` model.
            settings: Settings laid over the ``default`` model's (only the fields set in it count),
                e.g. ``ModelSettings(temperature=0.7)``; recorded in ``run.json`` with `model`.
            home: Where runs are kept (default `home_dir()`).
            sinks: Extra trace sinks (progress displays, tests); the JSONL file and the live index
                are always written, OTLP export when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
            on_step: Called whenever a step changes status.
            content: What the trace keeps of prompts and payloads (``full``, ``metadata``,
                ``redacted``; see `rolegraph.traces.content`), replacing ``settings.content``.
            budget: Limits replacing those of the workflow's ``settings.budget`` (the ones set).

        Returns:
            The result; a failed run returns with ``status="failed"`` rather than raising,
            one that reached a budget limit with ``status="budget_exceeded"``.

        Raises:
            SpecError: Bad inputs, or a tool reference that cannot be resolved.
            ModelNotAvailableError: A model cannot be loaded (missing package, file or key);
                nothing is written in that case.
            asyncio.CancelledError: The run was cancelled (its folder records ``cancelled``;
                it can be resumed).
        """
        values = self.resolve_inputs(inputs)
        if content is not None and content not in CONTENT_MODES:
            raise SpecError([Problem(f"content must be one of {', '.join(CONTENT_MODES)}, got {content!r}")])
        record = RunRecord(
            run_id=_new_run_id(),
            workflow=self.spec.name,
            workflow_file=str(self.path.resolve()) if self.path else None,
            workflow_hash=file_hash(self.path) if self.path else None,
            inputs=values,
            model=model,
            settings=settings.model_dump(exclude_unset=True) if settings else {},
            content=content,
            budget=self.spec.settings.budget.merged(budget).limits(),
            started=dt.datetime.now(dt.UTC).isoformat(),
        )
        return await self._drive(record, home=home or home_dir(), sinks=sinks, on_step=on_step, resuming=False)

    async def _drive(
        self,
        record: RunRecord,
        *,
        home: Path,
        sinks: Sequence[TraceSink],
        on_step: StepListener | None,
        resuming: bool,
        hooks: DriveHooks | None = None,
    ) -> RunResult:
        """Run (or, `resuming`, continue) the run `record` describes, in its folder under `home`."""
        hooks = hooks or DriveHooks()
        values = record.inputs
        run_id = record.run_id
        run_dir = (home / "runs" / run_id).absolute()
        mode = record.content or self.spec.settings.content
        redactor = Redactor.from_env(extra_names=self.spec.settings.redact_env)
        durable = Durability(self.spec, run_dir, record, prices_file=home / "prices.yaml", redactor=redactor)
        refs = sorted({ref for tools in self._role_tools() for ref in tools})
        tools = resolve_tools(refs, library=self._library(), search_path=self.base_dir)
        content_mode = content_processor(mode)
        tracer = Tracer(run_id, sinks=sinks, redactor=redactor, processors=[content_mode] if content_mode else [])
        sources = SourceRegistry()
        executor: LocalExecutor | None = None
        try:
            # Models load here, before a new run's folder exists: a missing model is a setup
            # error that leaves nothing behind, not a failed run.
            executor = LocalExecutor(
                self.spec,
                tools=dict(zip(refs, tools, strict=True)),
                sources=sources,
                tracer=tracer,
                base_dir=self.base_dir,
                model_override=record.model,
                settings_override=ModelSettings(**record.settings) if record.settings else None,
                journals=_layered(durable.journal, hooks.journal),
                roles=self.roles,
                models=hooks.models,
            )
            durable.check_prices(executor.models)
            if not resuming:
                run_dir.mkdir(parents=True, exist_ok=False)
            durable.open(resuming=resuming, sources=sources, models=executor.models)
        except BaseException:
            if executor is not None:
                await executor.aclose()
            await _close_all(tools)
            durable.close()
            raise
        # The root span continues across invocations: its roll-up starts from the tokens already traced.
        traced = (
            Trace.load(run_dir / "trace.jsonl").usage() if resuming and (run_dir / "trace.jsonl").is_file() else None
        )
        trace_sinks = RunSinks(home, run_dir, run_id, self.spec.name)
        for sink in trace_sinks:
            tracer.add_sink(sink)
        durable.add_kill_sink(tracer)
        started = dt.datetime.fromisoformat(record.started)
        result = RunResult(run_id=run_id, status="failed", run_dir=run_dir)
        root: Span | None = None
        scheduler: Scheduler | None = None
        overrides = {"model": record.model, "settings": record.settings}
        self._write_summary(result, values, started, overrides, redactor)
        try:
            with tracer.span(
                SpanKind.INVOKE_WORKFLOW,
                f"invoke_workflow {self.spec.name}",
                span_id=record.root_span_id,
                gen_ai__operation__name="invoke_workflow",
                rolegraph__workflow=self.spec.name,
                rolegraph__workflow__file=str(self.path or ""),
                rolegraph__inputs=values,
                rolegraph__content=mode,
                rolegraph__invocation=record.invocations + 1,
                **hooks.root_attributes,
            ) as root:
                durable.begin(root.span_id)
                if traced is not None:
                    root.aggregated_input_tokens, root.aggregated_output_tokens = traced
                scheduler = Scheduler(
                    self.spec,
                    self.graph,
                    executor,
                    run_id=run_id,
                    inputs=values,
                    tracer=tracer,
                    on_change=_checkpointing(run_dir, tracer, on_step),
                    checkpointer=durable,
                    restore=durable.checkpoint,
                )
                if resuming:
                    tracer.event(
                        "run_resumed",
                        rolegraph__invocation=record.invocations,
                        rolegraph__resumed_steps=scheduler.restored,
                        rolegraph__recorded_calls=durable.recorded_calls,
                    )
                    root.set(rolegraph__resumed=True, rolegraph__resumed_steps=scheduler.restored)
                run_timeout = self.spec.settings.run_timeout
                wall_left = durable.wall_time_left()
                # The sooner of the two: this invocation's run_timeout, and what the wall-time budget leaves.
                limits = [s for s in (run_timeout, wall_left) if s is not None]
                timed_out = False
                try:
                    async with asyncio.timeout(min(limits) if limits else None):
                        states = await scheduler.run()
                except asyncio.CancelledError:
                    result.status = "cancelled"
                    result.steps = scheduler.states
                    root.status = "cancelled"
                    raise
                except TimeoutError:  # the scheduler has cancelled every step in flight
                    states = scheduler.states
                    if wall_left is not None and (run_timeout is None or wall_left <= run_timeout):
                        scheduler.budget_error = scheduler.budget_error or durable.wall_exceeded()
                    else:
                        timed_out = True
                result.steps = states
                failed = [s for s in states.values() if s.status in ("failed", "cancelled", "skipped")]
                if scheduler.budget_error is not None:
                    exc = scheduler.budget_error
                    result.status = "budget_exceeded"
                    result.error = str(exc)
                    root.status = "budget_exceeded"
                    root.error = result.error
                    root.set(
                        rolegraph__budget__exceeded={
                            "limit": exc.limit,
                            "scope": exc.scope,
                            "allowed": exc.allowed,
                            "used": exc.used,
                        }
                    )
                elif timed_out:
                    result.status = "failed"
                    result.error = f"the run did not finish within settings.run_timeout ({run_timeout:g}s)"
                    root.status, root.error = "failed", result.error
                elif failed:
                    result.status = "failed"
                    first = next((s for s in failed if s.error), failed[0])
                    result.error = f"step {first.step_id!r} {first.status}: {first.error or ''}".strip()
                    root.status = "failed"
                    root.error = result.error
                else:
                    result.status = "completed"
                durable.account(states)
                result.outputs, counts = write_outputs(
                    self.spec.outputs,
                    run_dir,
                    step_outputs=result.step_outputs,
                    inputs=values,
                    sources=sources,
                )
                result.citations = CitationCount(**counts)
                root.set(rolegraph__status=result.status, rolegraph__citations=counts)
        finally:
            await executor.aclose()
            await _close_all(tools)
            result.sources = list(sources)
            _write_sources(run_dir / SOURCES_FILE, result.sources, redactor)
            result.usage = durable.meter.run.usage
            if scheduler is not None:
                result.resumed_steps = list(scheduler.restored)
                result.executed_steps = list(scheduler.executed)
            result.duration_s = (dt.datetime.now(dt.UTC) - started).total_seconds()
            durable.finish(result.status)
            await asyncio.to_thread(trace_sinks.close)
            self._write_summary(result, values, started, overrides, redactor)
            await asyncio.to_thread(index_run, run_dir.parent.parent, run_dir)
        return result

    def _role_tools(self) -> list[tuple[str, ...]]:
        return [role.tools for role in self.roles.values()]

    def _write_summary(
        self,
        result: RunResult,
        inputs: Mapping[str, Any],
        started: dt.datetime,
        overrides: Mapping[str, Any],
        redactor: Redactor,
    ) -> None:
        summary = {
            **result.summary(),
            "workflow": self.spec.name,
            "workflow_file": str(self.path.resolve()) if self.path else None,
            "inputs": dict(inputs),
            "overrides": dict(overrides),
            "started": started.isoformat(),
        }
        path = result.run_dir / "run.json"
        tmp = path.with_suffix(".json.tmp")
        text = json.dumps(redactor.value(summary), indent=2, default=str)
        tmp.write_text(text + "\n", encoding="utf-8")
        tmp.replace(path)

    def run_sync(self, inputs: Mapping[str, Any] | None = None, **kwargs: Any) -> RunResult:
        """`run` for scripts: starts an event loop (not usable inside one; there, ``await run``)."""
        return asyncio.run(self.run(inputs, **kwargs))


def _write_sources(path: Path, sources: Sequence[Source], redactor: Redactor) -> None:
    """Every retrieved source with its text, one JSON object a line: what re-scoring a run from disk reads."""
    lines = "".join(json.dumps(redactor.value(s.model_dump(mode="json")), ensure_ascii=False) + "\n" for s in sources)
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text(lines, encoding="utf-8")
    tmp.replace(path)


def _layered(
    journals: Callable[[str, str], CallJournal], layer: Callable[[CallJournal, str], CallJournal] | None
) -> Callable[[str, str], CallJournal]:
    """The run's journal factory with `layer` around each journal it gives (if there is a layer)."""
    if layer is None:
        return journals
    return lambda step_id, model: layer(journals(step_id, model), step_id)


async def _close_all(tools: Sequence[Tool]) -> None:
    for tool in tools:
        await tool.aclose()


def _checkpointing(run_dir: Path, tracer: Tracer, then: StepListener | None) -> StepListener:
    """A step listener that saves each completed step's output, then calls `then`.

    Outputs go to ``steps/<step_id>.json`` by write-then-rename, so a crash leaves
    either the previous file or the new one, never a torn one.
    """
    folder = run_dir / "steps"

    def listener(state: StepState) -> None:
        if state.status == "completed":
            with tracer.span(SpanKind.CHECKPOINT, f"checkpoint {state.step_id}", rolegraph__step__id=state.step_id):
                folder.mkdir(exist_ok=True)
                path = folder / f"{state.step_id}.json"
                tmp = path.with_suffix(".json.tmp")
                data = tracer.redactor.value(state.model_dump(mode="json"))  # no secret in a checkpoint
                tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
                tmp.replace(path)
        if then is not None:
            then(state)

    return listener


def load(path: str | os.PathLike[str]) -> Workflow:
    """Load and validate a workflow file (see `Workflow.load`)."""
    return Workflow.load(path)
