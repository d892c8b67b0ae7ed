"""Warnings: what is valid but probably not what the author meant.

`rolegraph validate` prints them (at file:line, exit 0 if there are no errors):

- a route back to a step whose task never reads ``routed``: the step would run
  again with the very same task (and, for a model at temperature 0, the same answer);
- an input no template reads;
- a role no step uses.
"""

from __future__ import annotations

from collections.abc import Iterator

from rolegraph.workflows import templates
from rolegraph.workflows.context import step_templates, workflow_templates
from rolegraph.workflows.reader import Finding
from rolegraph.workflows.spec import WorkflowSpec

__all__ = ["workflow_warnings"]


def workflow_warnings(spec: WorkflowSpec) -> list[Finding]:
    """The warnings of a valid workflow, each at the field it is about."""
    return [*_route_warnings(spec), *_input_warnings(spec), *_role_warnings(spec)]


def _reads_routed(spec: WorkflowSpec, step_id: str) -> bool:
    """Whether the step's task (or its arguments, or its items) reads ``routed``."""
    return any(
        "routed" in templates.undeclared_names(use.text, expression=use.expression)
        for use in step_templates(step_id, spec.steps[step_id])
        if ".routes[" not in use.path
    )


def _route_warnings(spec: WorkflowSpec) -> Iterator[Finding]:
    for source, step in spec.steps.items():
        for number, route in enumerate(step.routes):
            target = route.goto
            if target in spec.steps and not _reads_routed(spec, target):
                what = "task" if spec.steps[target].kind == "agent" else "arguments"
                yield Finding(
                    f"steps.{source}.routes[{number}].goto",
                    f"this route re-runs {target!r} with the same {what}: {target!r} never reads 'routed' "
                    "(what the route sends back); use it, e.g. "
                    "{% if routed %}Revise, given: {{ routed.output | tojson }}{% endif %}",
                )


def _input_warnings(spec: WorkflowSpec) -> Iterator[Finding]:
    read: set[str] = set()
    for use in workflow_templates(spec):
        if "inputs" in templates.wholly_used(use.text, expression=use.expression):
            return  # every input may be read
        read |= {
            name for kind, name in templates.referenced_names(use.text, expression=use.expression) if kind == "inputs"
        }
    for name in spec.inputs:
        if name not in read:
            message = f"input {name!r} is never read: no template uses inputs.{name}; use it in a task, or remove it"
            yield Finding(f"inputs.{name}", message, at_key=True)


def _role_warnings(spec: WorkflowSpec) -> Iterator[Finding]:
    used = {step.role for step in spec.steps.values()}
    for name in spec.roles:
        if name not in used:
            message = f"role {name!r} is defined but no step uses it; give it to a step (role: {name}), or remove it"
            yield Finding(f"roles.{name}", message, at_key=True)
