"""The workflow graph of a recorded run, laid out in layers and coloured by each step's status.

The run's ``run.json`` names its workflow file. When that file still loads and
names every step the trace saw, the graph is the workflow's: data edges from
``depends_on``, route edges for bounded loops, layers by topological generation.
When the file moved, no longer loads or changed since the run, the graph falls
back to the steps seen in the trace, in the order they started, and says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from rolegraph.errors import RolegraphError
from rolegraph.workflows.graph import compile_graph, data_graph
from rolegraph.workflows.loader import load_spec

__all__ = ["GraphLayout", "layout_graph"]


@dataclass
class GraphLayout:
    """Nodes with their layer (column) and row, and the edges between them, as JSON-ready data."""

    nodes: list[dict[str, Any]] = field(default_factory=list)
    edges: list[dict[str, Any]] = field(default_factory=list)
    source: str = "workflow"
    """``workflow`` (from the workflow file) or ``trace`` (the fallback)."""
    note: str | None = None
    """Why the fallback was used, or what differs between the file and the trace."""

    def as_dict(self) -> dict[str, Any]:
        """The layout as JSON data."""
        return {"nodes": self.nodes, "edges": self.edges, "source": self.source, "note": self.note}


def _load_graph(workflow_file: str | None) -> tuple[nx.DiGraph[str] | None, dict[str, str], str | None]:
    """The compiled graph and each step's role, or None and the reason it cannot be had."""
    if not workflow_file:
        return None, {}, "the run does not name its workflow file"
    path = Path(workflow_file)
    if not path.is_file():
        return None, {}, f"workflow file {workflow_file} not found"
    try:
        spec = load_spec(path)
        graph = compile_graph(spec)
    except (RolegraphError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return None, {}, f"workflow file {workflow_file} no longer loads ({first})"
    return graph, {step_id: step.doer for step_id, step in spec.steps.items()}, None


def layout_graph(
    workflow_file: str | None,
    steps: Mapping[str, Mapping[str, Any]],
) -> GraphLayout:
    """Lay out a run's step graph.

    Args:
        workflow_file: The workflow file the run was made from (from ``run.json``).
        steps: What the run recorded per step, in start order: ``status``, ``role``, ``items``, ``skipped``
            (items left out under ``on_item_error: skip``).

    Returns:
        The layout; node ``status`` comes from `steps` (``pending`` for a step the run never reached).
    """
    graph, roles, problem = _load_graph(workflow_file)
    if graph is not None and not set(steps) <= set(graph.nodes):
        extra = ", ".join(sorted(set(steps) - set(graph.nodes)))
        graph, problem = None, f"workflow file {workflow_file} changed since the run (no step {extra})"
    layout = GraphLayout()
    if graph is None:
        layout.source, layout.note = "trace", f"{problem}: steps as seen in the trace, without their dependencies"
        layers = [[step] for step in steps]
    else:
        layers = [sorted(layer, key=list(graph.nodes).index) for layer in nx.topological_generations(data_graph(graph))]
        for u, v, data in graph.edges(data=True):
            layout.edges.append({"source": u, "target": v, "kind": data.get("kind", "data")})
    for column, layer in enumerate(layers):
        for row, step in enumerate(layer):
            seen = steps.get(step, {})
            layout.nodes.append(
                {
                    "id": step,
                    "layer": column,
                    "row": row,
                    "rows": len(layer),
                    "role": seen.get("role") or roles.get(step),
                    "status": seen.get("status", "pending"),
                    "items": seen.get("items", 0),
                    "skipped": seen.get("skipped", 0),
                }
            )
    return layout
