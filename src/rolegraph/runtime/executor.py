"""The in-process step executor: runs a `StepCall` as its step's kind says (see `rolegraph.runtime.steps`).

It owns what a run shares between steps: the resolved roles, one instance per
model string, the tools, the function steps' functions, and the source registry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel

from rolegraph.agents.call_ids import call_prefix
from rolegraph.agents.guardrails import CheckCalls, OutputCheck, check_output
from rolegraph.agents.journal import CallJournal
from rolegraph.agents.roles import BUILTIN_ROLES, Role, output_model
from rolegraph.errors import Problem, SpecError, StepError
from rolegraph.imports import ImportPathError
from rolegraph.models.cache import RunCache
from rolegraph.models.model import Model, ModelSettings
from rolegraph.models.moderation import moderation_name
from rolegraph.models.registry import ModelOptions, resolve_model
from rolegraph.runtime.output_checks import build_check, check_entries
from rolegraph.runtime.scheduler import StepCall, StepExecutor, StepOutcome
from rolegraph.runtime.steps import (
    AgentStep,
    StepFunction,
    agent_step,
    run_agent_step,
    run_function_step,
    run_tool_step,
)
from rolegraph.tools.sources import SourceRegistry
from rolegraph.tools.tool import Tool
from rolegraph.traces.tracer import Tracer
from rolegraph.workflows.spec import ModerationSpec, StepSpec, WorkflowSpec

__all__ = [
    "ExecutorFactory",
    "JournalFactory",
    "LocalExecutor",
    "ModelResolver",
    "RunContext",
    "RunExecutor",
    "load_functions",
    "resolve_role",
    "resolve_roles",
    "step_output_model",
]

JournalFactory = Callable[[str, str], CallJournal]
"""Gives the journal for an agent run: ``(step_id, model string) -> CallJournal``."""
ModelResolver = Callable[[str, Path, ModelOptions], Model]
"""Gives the model a model string names, built as the options say:
``(model string, base folder, options) -> Model`` (normally `resolve_model`)."""


@dataclass(frozen=True)
class RunContext:
    """What one run hands the executor it runs its steps on."""

    spec: WorkflowSpec
    roles: Mapping[str, Role]
    """The workflow's resolved roles (`resolve_roles`)."""
    tools: Mapping[str, Tool[Any]]
    """Every tool a role or a tool step uses, by its reference (a built-in name or an import path)."""
    sources: SourceRegistry
    tracer: Tracer
    base_dir: Path
    """Folder model strings such as ``scripted:file.yaml`` are relative to."""
    model_override: str | None = None
    settings_override: ModelSettings | None = None
    journals: JournalFactory | None = None
    models: ModelResolver | None = None
    """Resolves model strings (default `resolve_model`; a replay loads no model)."""
    cache: RunCache | None = None
    """The model-call cache, open when any model of the run uses it."""
    cache_default: bool = False
    """Whether a model whose entry says nothing about ``cache`` uses it (``settings.cache`` or ``--cache``)."""


class RunExecutor(StepExecutor, Protocol):
    """A `StepExecutor` for one run: it holds the run's models and is closed when the run ends."""

    @property
    def models(self) -> dict[str, Model]:
        """The run's models, by model string (loaded before the first step)."""
        ...

    async def aclose(self) -> None:
        """Release what the executor holds (models, workers)."""
        ...


ExecutorFactory = Callable[[RunContext], RunExecutor]
"""Builds a run's executor: the engine's seam for where steps run (`LocalExecutor.for_run` in this process)."""


def _resolve(model_string: str, base_dir: Path, options: ModelOptions) -> Model:
    return resolve_model(model_string, base_dir=base_dir, options=options)


def resolve_role(spec: WorkflowSpec, name: str) -> Role:
    """The role `name` as the workflow defines it: a built-in with overrides, or a new role."""
    override = spec.roles.get(name)
    base = BUILTIN_ROLES.get(name)
    if base is None:
        if override is None or override.instructions is None or override.output is None:
            raise ValueError(f"role {name!r} is not built in and the workflow does not define it fully")
        return Role(
            name=name,
            description=override.description,
            instructions=override.instructions,
            tools=tuple(override.tools or ()),
            output_model=output_model(name, dict(override.output)),
            max_steps=override.max_steps or 4,
            min_tool_calls=override.min_tool_calls or 0,
            model=override.model,
            **({"thought_chars": override.thought_chars} if override.thought_chars is not None else {}),
            writing=override.writing,
            checking=override.checking,
        )
    if override is None:
        return base
    updates: dict[str, Any] = {}
    if override.description:
        updates["description"] = override.description
    if override.instructions is not None:
        updates["instructions"] = override.instructions
    if override.tools is not None:
        updates["tools"] = tuple(override.tools)
    if override.output is not None:
        updates["output_model"] = output_model(name, dict(override.output))
    if override.max_steps is not None:
        updates["max_steps"] = override.max_steps
    if override.min_tool_calls is not None:
        updates["min_tool_calls"] = override.min_tool_calls
    if override.model is not None:
        updates["model"] = override.model
    if override.thought_chars is not None:
        updates["thought_chars"] = override.thought_chars
    if override.writing is not None:
        updates["writing"] = override.writing
    if override.checking is not None:
        updates["checking"] = override.checking
    return base.model_copy(update=updates)


def resolve_roles(spec: WorkflowSpec) -> dict[str, Role]:
    """Every role the workflow's steps use, each resolved once (not once per step)."""
    names = dict.fromkeys(step.role for step in spec.steps.values() if step.role is not None)
    return {name: resolve_role(spec, name) for name in names}


def step_output_model(spec: WorkflowSpec, step_id: str) -> type[BaseModel] | None:
    """The model a step's output is validated against: its role's answer, a function step's declared
    `output`; None for a tool step or a function step that declares none."""
    step = spec.steps[step_id]
    if step.role is not None:
        return resolve_role(spec, step.role).output_model
    if step.function is not None and step.output is not None:
        return output_model(step_id, dict(step.output))
    return None


def load_functions(spec: WorkflowSpec, base_dir: Path) -> dict[str, StepFunction]:
    """The function of each function step, by step id, imported with `base_dir` searched first.

    Raises:
        SpecError: A function cannot be imported (every one that cannot, each naming its step).
    """
    functions: dict[str, StepFunction] = {}
    problems: list[Problem] = []
    imported: dict[str, StepFunction] = {}  # by import path: steps calling one function import it once
    for step_id, step in spec.steps.items():
        if step.function is None:
            continue
        try:
            if step.function not in imported:
                imported[step.function] = StepFunction.load(
                    step.function, step_id=step_id, output=None, search_path=base_dir
                )
            functions[step_id] = imported[step.function].with_output(step_id, step.output)
        except (ImportPathError, TypeError) as exc:
            problems.append(Problem(str(exc), f"steps.{step_id}.function"))
    if problems:
        raise SpecError(problems)
    return functions


class LocalExecutor:
    """Runs each step call as an `Agent` in this process.

    Args:
        spec: The workflow.
        tools: Every tool any role of the workflow may use, by the reference roles use
            (a built-in name or an import path).
        sources: The run's source registry.
        tracer: The run's tracer.
        base_dir: Folder model strings such as ``scripted:file.yaml`` are relative to.
        model_override: A model string replacing the workflow's ``default`` model.
        settings_override: Settings laid over the ``default`` model's own (the fields set in it win).
        journals: Gives each agent run its call journal (durable runs); None: no journal.
        roles: The workflow's resolved roles (`resolve_roles(spec)`), when the caller keeps them
            across runs: resolving builds a pydantic model per role, and its schema, every time.
        models: Resolves model strings (default `resolve_model`; a replay loads no model).
        cache: The model-call cache (None: off for every model).
        cache_default: Whether a model whose entry says nothing about ``cache`` uses it.
    """

    def __init__(
        self,
        spec: WorkflowSpec,
        *,
        tools: Mapping[str, Tool[Any]],
        sources: SourceRegistry,
        tracer: Tracer,
        base_dir: Path,
        model_override: str | None = None,
        settings_override: ModelSettings | None = None,
        journals: JournalFactory | None = None,
        roles: Mapping[str, Role] | None = None,
        models: ModelResolver | None = None,
        cache: RunCache | None = None,
        cache_default: bool = False,
    ) -> None:
        self.spec = spec
        self.cache = cache
        self.cache_default = cache_default
        self.tools = dict(tools)
        self.sources = sources
        self.tracer = tracer
        self.base_dir = base_dir
        self.model_override = model_override
        self.settings_override = settings_override
        self.journals = journals
        self.roles = dict(roles) if roles is not None else resolve_roles(spec)
        self.functions = load_functions(spec, base_dir)
        self._resolve_model = models or _resolve
        self._models: dict[tuple[str, ModelOptions], Model] = {}
        self._named: dict[str, tuple[Model, ModelSettings]] = {}
        self._moderation: list[Model] = []
        self._cached: dict[str, bool] = {}
        self._agent_steps: dict[tuple[str, str | None], AgentStep] = {}
        self._no_check_calls = CheckCalls(cache=cache)
        # Load every model now: heavy loading belongs before the first step, not inside it (once per role and
        # model name: the steps of a chain mostly share both).
        loaded: set[tuple[str, str | None]] = set()
        for step_id, step in spec.steps.items():
            if step.role is not None and (step.role, step.model) not in loaded:
                loaded.add((step.role, step.model))
                self._model_for(step_id)
        self.checks: dict[str, list[OutputCheck]] = {}
        """Each step's output checks (its role's, then its own), by step id."""
        for step_id in spec.steps:
            built = [
                build_check(entry, search_path=base_dir, judge=self._judge, moderation=self._moderation_model)
                for _, entry in check_entries(spec, step_id)
            ]
            if built:
                self.checks[step_id] = built

    @classmethod
    def for_run(cls, context: RunContext) -> LocalExecutor:
        """The in-process executor of one run (the default `ExecutorFactory`)."""
        return cls(
            context.spec,
            tools=context.tools,
            sources=context.sources,
            tracer=context.tracer,
            base_dir=context.base_dir,
            model_override=context.model_override,
            settings_override=context.settings_override,
            journals=context.journals,
            roles=context.roles,
            models=context.models,
            cache=context.cache,
            cache_default=context.cache_default,
        )

    def _cache_for(self, step_id: str) -> RunCache | None:
        """The cache, if the model of the step's agent uses it."""
        step = self.spec.steps[step_id]
        return self.cache if self._uses_cache(step.model or self.roles[step.agent_role()].model or "default") else None

    def _uses_cache(self, name: str) -> bool:
        """Whether a model (a name from `models` or a model string) uses the cache: its entry's ``cache``, else
        the run's choice."""
        uses = self._cached.get(name)
        if uses is None:  # worked out once per name: every agent step asks
            own = self.spec.model_spec(name).cache
            uses = self._cached[name] = self.cache is not None and (self.cache_default if own is None else own)
        return uses

    def _judge(self, name: str) -> tuple[Model, ModelSettings, bool]:
        """A judge check's model, its settings, and whether it uses the cache."""
        model, settings = self._named_model(name)
        return model, settings, self._uses_cache(name)

    def _moderation_model(self, entry: ModerationSpec) -> tuple[Model, bool]:
        """The moderation check's classifier, resolved as models are (a replay stands in for it)."""
        string = moderation_name(entry.model, entry.base_url)
        classifier = self._resolve_model(string, self.base_dir, ModelOptions(base_url=entry.base_url))
        self._moderation.append(classifier)
        return classifier, self.cache is not None and self.cache_default

    def _model_for(self, step_id: str) -> tuple[Model, ModelSettings]:
        step = self.spec.steps[step_id]
        return self._named_model(step.model or self.roles[step.agent_role()].model or "default")

    def _named_model(self, name: str) -> tuple[Model, ModelSettings]:
        """The model a name from `models` (or a model string) gives, loaded once, and its settings
        (worked out once per name: every agent step asks)."""
        named = self._named.get(name)
        if named is None:
            named = self._named[name] = self._load_named(name)
        return named

    def _load_named(self, name: str) -> tuple[Model, ModelSettings]:
        model_spec = self.spec.model_spec(name)
        model_string = model_spec.model
        options = model_spec.options()
        if name == "default" and self.model_override is not None:
            # Another model's options would not fit it: they go with the workflow's own model string.
            options = options if self.model_override == model_string else ModelOptions()
            model_string = self.model_override
        key = (model_string, options)
        if key not in self._models:
            self._models[key] = self._resolve_model(model_string, self.base_dir, options)
        settings = model_spec.settings()
        if name == "default":
            settings = settings.merged(self.settings_override)
        return self._models[key], settings

    def _calls_of_checks(self, step_id: str, checks: Sequence[OutputCheck]) -> CheckCalls:
        """Where the step's output checks' model calls go; a step without checks makes none, so it shares one."""
        if not checks:
            return self._no_check_calls
        return CheckCalls(lambda model: self._journal(step_id, model), self.cache)

    def _agent_step(self, step: StepSpec, step_id: str) -> AgentStep:
        """What an agent step's calls are given: worked out once per role and model name, not per step or call
        (a chain's steps share it; one kept per step would outlive the step for every step of a run)."""
        key = (step.agent_role(), step.model)
        known = self._agent_steps.get(key)
        if known is None:
            role = self.roles[key[0]]
            model, settings = self._model_for(step_id)
            known = self._agent_steps[key] = agent_step(
                role, model, settings, tuple(self.tools[name] for name in role.tools), self._cache_for(step_id)
            )
        return known

    async def execute(self, call: StepCall) -> StepOutcome:
        """Run the call as its step's kind says: an agent, a tool call or a function call."""
        step = self.spec.steps[call.step_id]
        checks: Sequence[OutputCheck] = self.checks.get(call.step_id, ())
        check_calls = self._calls_of_checks(call.step_id, checks) if checks else self._no_check_calls
        if step.role is None:
            if step.tool is not None:
                outcome = await run_tool_step(
                    call,
                    self.tools[step.tool],
                    sources=self.sources,
                    tracer=self.tracer,
                    journal=self._journal(call.step_id, ""),
                )
            else:
                outcome = await run_function_step(
                    call,
                    self.functions[call.step_id],
                    sources=self.sources,
                    tracer=self.tracer,
                    journal=self._journal(call.step_id, ""),
                )
            # No model to repair a tool's or a function's output: a failed check fails the step.
            prefix = call_prefix(call.step_id, call.item_index, call.visit, call.attempt)
            problem = (
                await check_output(checks, outcome.output, self.tracer, calls=check_calls, call_prefix=prefix)
                if checks
                else None
            )
            if problem is not None:
                raise StepError(f"step {call.step_id!r}: {problem}")
            return outcome
        agent = self._agent_step(step, call.step_id)
        return await run_agent_step(
            call,
            agent,
            sources=self.sources,
            tracer=self.tracer,
            journal=self._journal(call.step_id, agent.model.name),
            max_steps=step.max_steps,
            checks=checks,
            check_calls=check_calls,
        )

    def _journal(self, step_id: str, model: str) -> CallJournal | None:
        return self.journals(step_id, model) if self.journals is not None else None

    @property
    def models(self) -> dict[str, Model]:
        """The run's models, by model string (the same string built two ways, e.g. with two LoRA adapters,
        is listed once)."""
        return {string: model for (string, _), model in self._models.items()}

    async def aclose(self) -> None:
        """Release the models' and the moderation checks' resources."""
        for model in self._models.values():
            await model.aclose()
        for classifier in self._moderation:
            await classifier.aclose()
