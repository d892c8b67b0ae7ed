"""Graph plans: each step's dependencies, dependants and reads, worked out once per graph and shared by runs."""

from __future__ import annotations

from typing import Any

from rolegraph.runtime.plan import NO_STEPS, graph_plan
from rolegraph.workflows.graph import compile_graph
from rolegraph.workflows.loader import parse_spec

SPEC = """
rolegraph: 1
name: t
roles:
  worker:
    instructions: Do the task.
    output: {value: string}
steps:
  a: {role: worker, task: start}
  b: {role: worker, task: "after {{ steps.a.value }}", depends_on: [a]}
  c: {role: worker, task: "{{ steps.b.value }} and {{ steps.a.value }}", depends_on: [b]}
"""


def spec() -> Any:
    return parse_spec(SPEC)


class TestGraphPlan:
    def test_each_step_knows_its_neighbours_and_what_it_reads(self) -> None:
        """Dependencies, dependants and the steps a step's templates read (sorted) come from the graph and spec."""
        workflow = spec()
        plan = graph_plan(workflow, compile_graph(workflow))
        assert plan.steps["a"].predecessors == NO_STEPS
        assert plan.steps["a"].successors == ("b",)
        assert plan.steps["c"].predecessors == {"b"}
        assert plan.steps["c"].reads == ("a", "b")  # an ancestor its task reads, and its dependency
        assert plan.steps["c"].successors == ()

    def test_runs_of_one_graph_share_its_plan(self) -> None:
        """The same graph and spec give the same plan object: runs do not work it out again."""
        workflow = spec()
        graph = compile_graph(workflow)
        assert graph_plan(workflow, graph) is graph_plan(workflow, graph)

    def test_a_changed_graph_or_another_spec_gets_a_new_plan(self) -> None:
        """A graph that grew, or another spec scheduled on the graph, is planned again."""
        workflow = spec()
        graph = compile_graph(workflow)
        first = graph_plan(workflow, graph)
        other = spec()
        assert graph_plan(other, graph) is not first
        graph.add_edge("a", "extra", kind="data")
        assert "extra" in graph_plan(other, graph).data

    def test_a_step_knows_its_deadline_and_whether_its_task_needs_rendering(self) -> None:
        """A step's time limit is the sooner of the step timeout and its wall-time budget; a plain task is kept
        as it is, a templated one (or one holding a carriage return, which Jinja rewrites) is rendered per call."""
        workflow = parse_spec(
            SPEC.replace("a: {role: worker, task: start}", "a: {role: worker, task: start, budget: {max_wall_s: 5}}")
            + '  d: {role: worker, task: "line\\r\\nnext"}\n'
            + "settings: {step_timeout: 60}\n"
        )
        plan = graph_plan(workflow, compile_graph(workflow)).steps
        assert (plan["a"].wall, plan["a"].limit) == (5, 5)
        assert (plan["b"].wall, plan["b"].limit) == (None, 60)
        assert plan["a"].plain_task == "start"
        assert plan["b"].plain_task is None
        assert plan["d"].plain_task is None
