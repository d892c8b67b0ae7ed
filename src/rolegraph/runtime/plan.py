"""A workflow graph as the scheduler walks it: each step's dependencies, dependants and reads, made once.

Every run of a workflow schedules the same graph, and a step's start and end must
not walk the graph or parse the step's templates again. `graph_plan` works that
out once per graph and keeps it while the graph lives (and keeps its size): the
runs of a workflow share one plan.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import networkx as nx

from rolegraph.workflows.context import step_templates
from rolegraph.workflows.graph import data_graph
from rolegraph.workflows.spec import StepSpec, WorkflowSpec
from rolegraph.workflows.templates import is_plain, referenced_names

__all__ = ["NO_STEPS", "GraphPlan", "StepPlan", "graph_plan", "steps_read"]

NO_STEPS: frozenset[str] = frozenset()
"""No step: the dependencies left of a step that may start."""


@dataclass(frozen=True, slots=True)
class StepPlan:
    """What the scheduler needs of one step at every transition."""

    step: StepSpec
    predecessors: frozenset[str]
    """Its data dependencies."""
    successors: tuple[str, ...]
    """The steps that depend on it."""
    reads: tuple[str, ...]
    """The steps whose outputs it sees (`steps_read`), sorted."""
    wall: float | None
    """Its wall-time budget (``budget.max_wall_s``), if it has one."""
    limit: float
    """Seconds it may run: the sooner of the step timeout and its wall-time budget (one deadline per step)."""
    plain_task: str | None
    """Its task when there is nothing to render in it (an agent step whose task is plain text), else None."""


@dataclass(frozen=True, slots=True)
class GraphPlan:
    """A workflow graph's plan for one spec."""

    spec: WorkflowSpec
    size: tuple[int, int]
    """The graph's node and edge counts when the plan was made (a changed graph gets a new plan)."""
    data: nx.DiGraph[str]
    """The graph's data edges as a graph of their own (read only). A copy, not a view: a view filters
    every edge at each lookup."""
    steps: dict[str, StepPlan]


_PLANS: weakref.WeakKeyDictionary[nx.DiGraph[str], GraphPlan] = weakref.WeakKeyDictionary()


def steps_read(step: StepSpec) -> set[str]:
    """Ids of the steps whose outputs `step` sees: its direct dependencies, and any step its task, items
    or route conditions read (the loader checked those are upstream). Not every ancestor's: a step's cost
    must not grow with the length of the chain before it."""
    found = set(step.depends_on)
    for use in step_templates("", step):
        found |= {name for kind, name in referenced_names(use.text, expression=use.expression) if kind == "steps"}
    return found


def graph_plan(spec: WorkflowSpec, graph: nx.DiGraph[str]) -> GraphPlan:
    """`graph`'s plan for `spec` (`compile_graph(spec)`), made once per graph, size and spec."""
    size = (graph.number_of_nodes(), len(graph.edges))  # (`number_of_edges` sums degrees: 3x slower)
    known = _PLANS.get(graph)
    if known is not None and known.size == size and known.spec is spec:
        return known
    data: nx.DiGraph[str] = nx.DiGraph(data_graph(graph))
    timeout = spec.settings.step_timeout
    steps: dict[str, StepPlan] = {}
    for node, step in spec.steps.items():
        wall = step.budget.max_wall_s if step.budget is not None else None
        steps[node] = StepPlan(
            step=step,
            predecessors=frozenset(data.predecessors(node)) if node in data else NO_STEPS,
            successors=tuple(data.successors(node)) if node in data else (),
            reads=tuple(sorted(steps_read(step))),
            wall=wall,
            limit=timeout if wall is None else min(wall, timeout),
            plain_task=step.task if step.kind == "agent" and is_plain(step.task) else None,
        )
    plan = _PLANS[graph] = GraphPlan(spec, size, data, steps)
    return plan
