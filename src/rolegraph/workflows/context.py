"""The template context: what each template and expression of a workflow sees.

One definition, used twice: the engine calls the ``*_context`` functions to build
what a template is rendered over, and the loader checks every template against the
names those same functions put in (``STEP_NAMES``, `item_names`, ``ROUTE_NAMES``,
``OUTPUT_NAMES`` are computed from them, not restated).

| template | sees |
|---|---|
| a step's ``task``/``args``, ``for_each.items`` | ``inputs``, ``steps`` (outputs of the steps it reads), ``routed`` |
| a ``for_each`` step's ``task``/``args`` | the above, the item (named by ``as``, default ``item``), ``index`` |
| a route's ``when`` | the step's context and ``output`` (the step's own output) |
| an output's ``template`` | ``inputs``, ``steps`` (every finished step), ``sources`` |

``routed`` is None unless a route sent work back to the step; then it is
``{from, output, times}``: the routing step, its output, how often the route fired.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from rolegraph.workflows.spec import StepSpec, WorkflowSpec
from rolegraph.workflows.templates import value_templates

__all__ = [
    "OUTPUT_NAMES",
    "ROUTE_NAMES",
    "STEP_NAMES",
    "TemplateUse",
    "item_context",
    "item_names",
    "output_context",
    "route_context",
    "routed_value",
    "step_context",
    "step_templates",
    "workflow_templates",
]


def step_context(inputs: Mapping[str, Any], steps: Mapping[str, Any], routed: Any) -> dict[str, Any]:
    """What a step's task (and its ``for_each.items``) is rendered over.

    Args:
        inputs: The run's input values.
        steps: Outputs of the finished steps the step reads, by step id.
        routed: `routed_value` of the route that sent work back to the step, or None.
    """
    return {"inputs": inputs, "steps": steps, "routed": routed}


def item_context(context: Mapping[str, Any], name: str, item: Any, index: int) -> dict[str, Any]:
    """What one item's task of a ``for_each`` step is rendered over: the step's `context`, the item, its index."""
    return {**context, name: item, "index": index}


def route_context(context: Mapping[str, Any], output: Any) -> dict[str, Any]:
    """What a route condition is evaluated over: the step's `context` and its own ``output``."""
    return {**context, "output": output}


def output_context(inputs: Mapping[str, Any], steps: Mapping[str, Any], sources: Sequence[Any]) -> dict[str, Any]:
    """What an output template is rendered over: inputs, every finished step's output, the run's sources."""
    return {"inputs": inputs, "steps": steps, "sources": list(sources)}


def routed_value(source: str, output: Any, times: int) -> dict[str, Any]:
    """The ``routed`` a fired route gives its target: who sent the work back, with what, how often so far."""
    return {"from": source, "output": output, "times": times}


STEP_NAMES: frozenset[str] = frozenset(step_context({}, {}, None))
"""Names a step's task and ``for_each.items`` may use."""
ROUTE_NAMES: frozenset[str] = frozenset(route_context(dict.fromkeys(STEP_NAMES), None))
"""Names a route condition may use."""
OUTPUT_NAMES: frozenset[str] = frozenset(output_context({}, {}, []))
"""Names an output template may use."""


def item_names(name: str) -> frozenset[str]:
    """Names a ``for_each`` step's task may use, its item being called `name`."""
    return frozenset(item_context(dict.fromkeys(STEP_NAMES), name, None, 0))


class TemplateUse(NamedTuple):
    """One template or expression of a workflow, and what it may use."""

    path: str
    """Its field path, e.g. ``steps.plan.task``."""
    text: str
    """The template or expression."""
    what: str
    """What it is, in messages ("task", "route condition")."""
    expression: bool
    """An expression (``items``, ``when``) rather than a template."""
    names: frozenset[str]
    """The context names it may use."""
    step: str | None = None
    """The step it belongs to (None for an output template)."""


def step_templates(step_id: str, step: StepSpec) -> Iterator[TemplateUse]:
    """The templates and expressions of one step: its task (a role step) or the strings of its `args`
    (a tool or function step: each a template, or one ``{{ expression }}``), ``for_each.items``, route conditions."""
    prefix = f"steps.{step_id}"
    task_names = item_names(step.for_each.as_) if step.for_each else STEP_NAMES
    if step.kind == "agent":
        yield TemplateUse(f"{prefix}.task", step.task, "task", False, task_names, step_id)
    for where, text, expression in value_templates(step.args):
        yield TemplateUse(f"{prefix}.args.{where}", text, "argument", expression, task_names, step_id)
    if step.for_each is not None:
        yield TemplateUse(f"{prefix}.for_each.items", step.for_each.items, "for_each.items", True, STEP_NAMES, step_id)
    for number, route in enumerate(step.routes):
        yield TemplateUse(f"{prefix}.routes[{number}].when", route.when, "route condition", True, ROUTE_NAMES, step_id)


def workflow_templates(spec: WorkflowSpec) -> Iterator[TemplateUse]:
    """Every template and expression of a workflow, with what each may use."""
    for step_id, step in spec.steps.items():
        yield from step_templates(step_id, step)
    for name, out in spec.outputs.items():
        if out.template is not None:
            yield TemplateUse(f"outputs.{name}.template", out.template, "output template", False, OUTPUT_NAMES)
