"""The step graph: compile a workflow into a networkx graph, validate it, measure and draw it.

Nodes are step ids (attribute ``spec``: the `StepSpec`). A ``data`` edge runs
from a dependency to its dependant; a ``route`` edge runs from a routing step
back to its ``goto`` (attributes ``when``, ``max_times``, ``index``). The data
edges form a DAG; routes are the only loops, each bounded and each confined to
steps that can be re-run consistently (see `validate_graph`).
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Collection, Iterable, Mapping

import networkx as nx

from rolegraph.errors import GraphError, Problem
from rolegraph.workflows._gc import paused_gc
from rolegraph.workflows.spec import StepSpec, WorkflowSpec

__all__ = [
    "compile_graph",
    "critical_path",
    "data_graph",
    "dependency_graph",
    "loop_body",
    "to_dot",
    "to_mermaid",
    "validate_graph",
]


_HINTS = 20
"""Did-you-mean hints per document, at most: each one scans every step name, and a hostile
file may name thousands of unknown steps (the check must stay linear in the file's size)."""


def _suggest(name: str, choices: Collection[str], *, hint: bool = True) -> str:
    match = difflib.get_close_matches(name, choices, n=1, cutoff=0.6) if hint else []
    if match:
        return f" — did you mean {match[0]!r}?"
    shown = ", ".join(itertools.islice(choices, 10)) + (", ..." if len(choices) > 10 else "")
    return f"; the steps are: {shown}"


def dependency_graph(spec: WorkflowSpec) -> nx.DiGraph[str]:
    """The steps and their ``data`` edges, unvalidated: unknown and self-dependencies are left out."""
    graph: nx.DiGraph[str] = nx.DiGraph()
    graph.add_nodes_from(spec.steps)
    graph.add_edges_from(
        (dep, step_id, {"kind": "data"})
        for step_id, step in spec.steps.items()
        for dep in step.depends_on
        if dep in spec.steps and dep != step_id
    )
    return graph


def data_graph(graph: nx.DiGraph[str]) -> nx.DiGraph[str]:
    """A read-only view of `graph` with only its ``data`` edges (a DAG once validated)."""
    view: nx.DiGraph[str] = nx.subgraph_view(graph, filter_edge=lambda u, v: graph.edges[u, v].get("kind") == "data")
    return view


def _cycle_problems(spec: WorkflowSpec, data: nx.DiGraph[str]) -> tuple[list[Problem], set[str]]:
    order = {step_id: number for number, step_id in enumerate(spec.steps)}
    problems: list[Problem] = []
    in_cycles: set[str] = set()
    if nx.is_directed_acyclic_graph(data):  # the usual case, in a fraction of the components' time
        return problems, in_cycles
    components = [c for c in nx.strongly_connected_components(data) if len(c) > 1]
    for component in sorted(components, key=lambda c: min(order[n] for n in c)):
        in_cycles |= component
        start = min(component, key=order.__getitem__)
        edges = nx.find_cycle(data.subgraph(component), source=start)
        names = [edges[0][0], *(v for _, v in edges)]
        problems.append(
            Problem(
                f"steps depend on each other in a cycle: {' -> '.join(names)}; remove one of these "
                "depends_on entries (to repeat work, add a route with max_times instead)",
                path=f"steps.{start}.depends_on",
            )
        )
    return problems, in_cycles


def _reference_problems(spec: WorkflowSpec) -> list[Problem]:
    problems: list[Problem] = []
    for step_id, step in spec.steps.items():
        for number, dep in enumerate(step.depends_on):
            path = f"steps.{step_id}.depends_on[{number}]"
            if dep == step_id:
                problems.append(Problem(f"step {step_id!r} cannot depend on itself; remove it from depends_on", path))
            elif dep not in spec.steps:
                problems.append(
                    Problem(
                        f"depends on unknown step {dep!r}{_suggest(dep, spec.steps, hint=len(problems) < _HINTS)}",
                        path,
                    )
                )
        for number, route in enumerate(step.routes):
            if route.goto not in spec.steps:
                problems.append(
                    Problem(
                        f"route goes to unknown step {route.goto!r}"
                        f"{_suggest(route.goto, spec.steps, hint=len(problems) < _HINTS)}",
                        f"steps.{step_id}.routes[{number}].goto",
                    )
                )
    return problems


def _route_problems(spec: WorkflowSpec, data: nx.DiGraph[str]) -> list[Problem]:
    problems: list[Problem] = []
    order = {step_id: number for number, step_id in enumerate(spec.steps)}
    for source, step in spec.steps.items():
        seen: dict[str, int] = {}
        for number, route in enumerate(step.routes):
            target = route.goto
            path = f"steps.{source}.routes[{number}]"
            if target not in spec.steps:
                continue
            if target in seen:
                problems.append(
                    Problem(
                        f"step {source!r} already has a route to {target!r} (routes[{seen[target]}]); "
                        "merge the two into one route, joining the conditions with 'or'",
                        path,
                    )
                )
                continue
            seen[target] = number
            if target != source and target not in nx.ancestors(data, source):
                problems.append(
                    Problem(
                        f"route from {source!r} to {target!r}: routes may only loop back to this step or one it "
                        f"depends on, and {target!r} is not upstream of {source!r}; route to an earlier step, or "
                        f"add the dependency",
                        f"{path}.goto",
                    )
                )
                continue
            body = _loop_body(data, source, target)
            after = nx.descendants(data, source)
            stale = sorted(nx.descendants(data, target) - body - after, key=order.__getitem__)
            for other in stale:
                problems.append(
                    Problem(
                        f"route from {source!r} back to {target!r} would re-run {target!r}, but step {other!r} "
                        f"also uses {target!r} and is not re-run with it, so it would keep working from stale "
                        f"output; make {other!r} depend on {source!r} (or on a step after it), or route elsewhere",
                        f"{path}.goto",
                    )
                )
    return problems


def _reachable(data: nx.DiGraph[str], sources: Iterable[str]) -> set[str]:
    """`sources` and every node reachable from one of them, in one traversal.

    Not the union of each source's descendants: with many sources (a wide first layer)
    that visits the graph once per source, O(sources * steps).
    """
    seen = set(sources)
    stack = list(seen)
    while stack:
        for successor in data.successors(stack.pop()):
            if successor not in seen:
                seen.add(successor)
                stack.append(successor)
    return seen


def validate_graph(spec: WorkflowSpec, data: nx.DiGraph[str] | None = None) -> list[Problem]:
    """Every problem of the step graph, each with the field path it is about (no file positions).

    Checks: dependencies and route targets name existing steps (not the step
    itself); data dependencies form no cycle; each route goes back to its own
    step or one it depends on, at most one route per target; re-running a
    route's loop leaves no step downstream of the loop's start on stale input;
    every step can start (is reachable from a step without dependencies).

    Args:
        spec: The workflow.
        data: Its `dependency_graph`, if already built.
    """
    return _problems(spec, dependency_graph(spec) if data is None else data)


def _problems(spec: WorkflowSpec, data: nx.DiGraph[str]) -> list[Problem]:
    problems = _reference_problems(spec)
    cycles, in_cycles = _cycle_problems(spec, data)
    problems += cycles
    roots = [n for n in data if data.in_degree(n) == 0]
    reachable = _reachable(data, roots)
    for step_id in spec.steps:
        if step_id not in reachable and step_id not in in_cycles:
            problems.append(
                Problem(
                    f"step {step_id!r} can never start: everything it depends on waits on a dependency cycle",
                    f"steps.{step_id}",
                )
            )
    if not cycles:
        problems += _route_problems(spec, data)
    return problems


def compile_graph(spec: WorkflowSpec, *, checked: bool = False) -> nx.DiGraph[str]:
    """The workflow's step graph: ``data`` edges from dependency to dependant, ``route`` edges back.

    The graph's ``name`` attribute is the workflow name. `checked`: `validate_graph(spec)` has already
    found no problem (the loader's checks run it), so it is not run again.

    Raises:
        GraphError: `validate_graph` found problems.
    """
    with paused_gc():
        return _compile(spec, checked)


def _compile(spec: WorkflowSpec, checked: bool) -> nx.DiGraph[str]:
    graph = dependency_graph(spec)
    problems = [] if checked else _problems(spec, graph)  # before any route edge: the checks read data edges only
    if problems:
        raise GraphError(problems)
    graph.graph["name"] = spec.name
    for step_id, step in spec.steps.items():
        graph.nodes[step_id]["spec"] = step
    for step_id, step in spec.steps.items():
        for number, route in enumerate(step.routes):
            graph.add_edge(step_id, route.goto, kind="route", when=route.when, max_times=route.max_times, index=number)
    return graph


def _loop_body(data: nx.DiGraph[str], source: str, target: str) -> set[str]:
    after_target: set[str] = nx.descendants(data, target)
    before_source: set[str] = nx.ancestors(data, source)
    return {source, target} | (after_target & before_source)


def loop_body(graph: nx.DiGraph[str], source: str, target: str) -> set[str]:
    """The steps re-run when the route from `source` to `target` fires.

    That is `target`, `source`, and every step on a data path from `target` to `source`.
    """
    return _loop_body(data_graph(graph), source, target)


def critical_path(graph: nx.DiGraph[str], durations: Mapping[str, float]) -> float:
    """The longest sum of step durations along any chain of data dependencies (routes not repeated).

    Steps missing from `durations` count as taking no time. This is the least
    time the whole run can take with unlimited parallelism.
    """
    data = data_graph(graph)
    finish: dict[str, float] = {}
    for node in nx.topological_sort(data):
        start = max((finish[p] for p in data.predecessors(node)), default=0.0)
        finish[node] = start + durations.get(node, 0.0)
    return max(finish.values(), default=0.0)


_LABEL_WIDTH = 60  # longer route conditions are cut in drawings, to keep the picture readable


def _mermaid_text(text: str) -> str:
    for char, entity in (("&", "#amp;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;"), ("|", "#124;")):
        text = text.replace(char, entity)
    return text


def _mermaid_ids(graph: nx.DiGraph[str]) -> dict[str, str]:
    """Node ids Mermaid accepts: ``end`` (any case) is a keyword there."""
    ids: dict[str, str] = {}
    taken = set(graph.nodes)
    for node in graph.nodes:
        node_id = node
        while node_id.lower() == "end" or (node_id != node and node_id in taken):
            node_id += "_"
        ids[node] = node_id
    return ids


def _label_lines(node: str, step: StepSpec | None) -> list[str]:
    if step is None:
        return [node]
    lines = [node, step.doer]
    if step.for_each is not None:
        lines.append(f"for each {step.for_each.as_}")
    return lines


def _route_label(when: str, max_times: int) -> str:
    when = " ".join(when.split())
    if len(when) > _LABEL_WIDTH:
        when = when[: _LABEL_WIDTH - 1] + "…"
    return f"{when} ≤{max_times}"


def to_mermaid(graph: nx.DiGraph[str]) -> str:
    """A Mermaid ``flowchart TD``: data edges solid, routes dotted with condition and bound.

    `for_each` steps are drawn as subroutines (double-edged boxes) naming the item.
    """
    ids = _mermaid_ids(graph)
    lines = ["flowchart TD"]
    for node in graph.nodes:
        step = graph.nodes[node].get("spec")
        label = "<br/>".join(_mermaid_text(line) for line in _label_lines(node, step))
        shape = '[["{}"]]' if step is not None and step.for_each is not None else '["{}"]'
        lines.append(f"    {ids[node]}{shape.format(label)}")
    for u, v, attrs in graph.edges(data=True):
        if attrs.get("kind") == "route":
            label = _mermaid_text(_route_label(attrs["when"], attrs["max_times"]))
            lines.append(f'    {ids[u]} -.->|"{label}"| {ids[v]}')
        else:
            lines.append(f"    {ids[u]} --> {ids[v]}")
    return "\n".join(lines) + "\n"


def _dot_text(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(graph: nx.DiGraph[str]) -> str:
    """A Graphviz DOT digraph: data edges solid, routes dashed with condition and bound.

    `for_each` steps are drawn as 3-D boxes (a stack) naming the item.
    """
    lines = [f"digraph {_dot_text(str(graph.graph.get('name', 'workflow')))} {{", "    node [shape=box];"]
    for node in graph.nodes:
        step = graph.nodes[node].get("spec")
        node_attrs = [f"label={_dot_text(chr(10).join(_label_lines(node, step)))}"]
        if step is not None and step.for_each is not None:
            node_attrs.append("shape=box3d")
        lines.append(f"    {_dot_text(node)} [{', '.join(node_attrs)}];")
    for u, v, edge_attrs in graph.edges(data=True):
        edge = f"    {_dot_text(u)} -> {_dot_text(v)}"
        if edge_attrs.get("kind") == "route":
            label = _dot_text(_route_label(edge_attrs["when"], edge_attrs["max_times"]))
            edge += f" [style=dashed, label={label}, constraint=false]"
        lines.append(edge + ";")
    lines.append("}")
    return "\n".join(lines) + "\n"
