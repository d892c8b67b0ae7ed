"""Agent steps: a role's agent on the step's rendered task, with a model and the role's tools.

The sources an agent may cite without retrieving them are those its step was
given: the ids in the outputs of the steps it reads. A `for_each` item that
carries sources (a search result, a group of evidence) narrows that to the
item's own, so each item's agent works from its own material.
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping, Sequence
from typing import Any, NamedTuple

from rolegraph.agents.agent import Agent, AgentResult
from rolegraph.agents.call_ids import call_prefix
from rolegraph.agents.citations import strings_in
from rolegraph.agents.guardrails import CheckCalls, OutputCheck, check_output
from rolegraph.agents.journal import CallJournal
from rolegraph.agents.roles import Role
from rolegraph.errors import StepError
from rolegraph.models.cache import RunCache
from rolegraph.models.model import Model, ModelSettings
from rolegraph.runtime.scheduler import StepCall, StepOutcome
from rolegraph.runtime.steps.composed import composes, prose_task, run_checker, run_extractive_writer, run_gatherer
from rolegraph.tools.sources import SourceRegistry
from rolegraph.tools.tool import Tool
from rolegraph.traces.tracer import Tracer

__all__ = ["AgentStep", "agent_step", "known_sources", "run_agent", "run_agent_step"]


class AgentStep(NamedTuple):
    """What every call of one agent step is given: its role, model and settings, tools and cache, and how the
    engine takes part in its answer (`composes`). Worked out once per role and model, not per call."""

    role: Role
    model: Model
    settings: ModelSettings
    tools: tuple[Tool[Any], ...]
    cache: RunCache | None
    mode: str | None
    """`composes(role, model)`."""


def agent_step(
    role: Role, model: Model, settings: ModelSettings, tools: tuple[Tool[Any], ...], cache: RunCache | None
) -> AgentStep:
    """An `AgentStep`, with the engine's part in its answer worked out."""
    return AgentStep(role, model, settings, tools, cache, composes(role, model))


def known_sources(call: StepCall, sources: SourceRegistry) -> list[str]:
    """The retrieved sources a step's agent may cite: those of its `for_each` item if it has any,
    else every one the outputs it reads name."""
    if not len(sources):  # nothing retrieved yet: no output can name a source (no walk over them per step)
        return []
    if call.item is not None:
        own = [s for s in dict.fromkeys(strings_in(call.item)) if s in sources]
        if own:
            return own
    return [s for s in dict.fromkeys(strings_in(call.upstream)) if s in sources]


def run_agent(
    call: StepCall,
    role: Role,
    model: Model,
    task: str,
    *,
    tools: Sequence[Tool[Any]],
    settings: ModelSettings,
    sources: SourceRegistry,
    tracer: Tracer,
    journal: CallJournal | None,
    max_steps: int | None,
    known: Sequence[str],
    attributes: Mapping[str, Any] | None = None,
    cache: RunCache | None = None,
    checks: Sequence[OutputCheck] = (),
    check_calls: CheckCalls | None = None,
) -> Coroutine[Any, Any, AgentResult]:
    """Run one agent of a step: the call's place in the run names its calls in the journal.

    Returns the agent's run to await (not a coroutine of its own: one frame less at every step)."""
    agent = Agent(
        role,
        model,
        tools,
        settings=settings,
        sources=sources,
        tracer=tracer,
        known_sources=known,
        max_steps=max_steps,
        journal=journal,
        call_prefix=call_prefix(call.step_id, call.item_index, call.visit, call.attempt),
        cache=cache,
        checks=checks,
        check_calls=check_calls,
    )
    return agent.run(
        task,
        trace_attributes={
            "rolegraph.step.id": call.step_id,
            "rolegraph.step.item": call.item_index,
            "rolegraph.step.visit": call.visit,
            **(attributes or {}),
        },
    )


async def run_agent_step(
    call: StepCall,
    step: AgentStep,
    *,
    sources: SourceRegistry,
    tracer: Tracer,
    journal: CallJournal | None,
    max_steps: int | None,
    checks: Sequence[OutputCheck] = (),
    check_calls: CheckCalls | None = None,
) -> StepOutcome:
    """Run the step's agent on the call's task; its validated (and checked) answer is the step's output.

    A gatherer's, a critic's (of evidence) and an extractive writer's answer is composed by
    the engine from the model's choices (`rolegraph.runtime.steps.composed`). The output
    checks apply to the step's answer: an agent's is repaired by its model, a composed one
    that fails a check fails the step.
    """
    role, model, settings, tools, cache, mode = step
    known = known_sources(call, sources)

    def run(
        as_role: Role, task: str, visible: Sequence[str], answer_checks: Sequence[OutputCheck] = ()
    ) -> Coroutine[Any, Any, AgentResult]:
        return run_agent(
            call,
            as_role,
            model,
            task,
            tools=[t for t in tools if t.name in as_role.tools] if as_role is not role else tools,
            settings=settings,
            sources=sources,
            tracer=tracer,
            journal=journal,
            max_steps=max_steps,
            known=visible,
            cache=cache,
            checks=answer_checks,
            check_calls=check_calls,
        )

    if mode == "gather":
        gathered = await run_gatherer(call, role, run, known=known, sources=sources, tracer=tracer)
        return await _checked(call, gathered, checks, tracer, check_calls)
    if mode == "check":
        checked = await run_checker(call, role, run, tracer=tracer)
        if checked is not None:
            return await _checked(call, checked, checks, tracer, check_calls)
    if mode == "extract":
        written = await run_extractive_writer(call, role, run, known=known, sources=sources, tracer=tracer)
        if written is not None:
            return await _checked(call, written, checks, tracer, check_calls)
    task, known = prose_task(call, known, sources) if mode == "prose" else (call.task, known)
    result = await run(role, task, known, checks)
    return StepOutcome(result.output, result.usage, result.tool_calls)


async def _checked(
    call: StepCall,
    outcome: StepOutcome,
    checks: Sequence[OutputCheck],
    tracer: Tracer,
    check_calls: CheckCalls | None,
) -> StepOutcome:
    """A composed answer, once it passed the output checks (no model wrote it whole, so none repairs it).

    Raises:
        StepError: A check failed (its message).
    """
    if checks and isinstance(outcome.output, dict):
        prefix = call_prefix(call.step_id, call.item_index, call.visit, call.attempt)
        problem = await check_output(checks, outcome.output, tracer, calls=check_calls, call_prefix=prefix)
        if problem is not None:
            raise StepError(f"step {call.step_id!r}: {problem}")
    return outcome
