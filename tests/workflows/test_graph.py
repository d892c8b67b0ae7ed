"""Graph: compiling a workflow into a step graph, validating it, measuring and drawing it."""

from __future__ import annotations

from typing import Any

import pytest

from rolegraph.errors import GraphError, Problem
from rolegraph.workflows.graph import compile_graph, critical_path, loop_body, to_dot, to_mermaid, validate_graph
from rolegraph.workflows.spec import WorkflowSpec


def step(*depends_on: str, routes: list[dict[str, Any]] | None = None, **fields: Any) -> dict[str, Any]:
    return {"role": "writer", "task": "t", "depends_on": list(depends_on), "routes": routes or [], **fields}


def route(goto: str, when: str = "output.again", max_times: int = 2) -> dict[str, Any]:
    return {"goto": goto, "when": when, "max_times": max_times}


def workflow(**steps: dict[str, Any]) -> WorkflowSpec:
    return WorkflowSpec.model_validate({"rolegraph": 1, "name": "wf", "steps": steps})


# draft -> review -> publish, review may send work back to draft
REVIEW_LOOP = workflow(draft=step(), review=step("draft", routes=[route("draft")]), publish=step("review"))


class TestCompileGraph:
    def test_nodes_and_edges(self) -> None:
        """Steps become nodes carrying their spec; dependencies data edges; routes route edges back."""
        graph = compile_graph(REVIEW_LOOP)
        assert list(graph.nodes) == ["draft", "review", "publish"]
        assert graph.nodes["review"]["spec"] == REVIEW_LOOP.steps["review"]
        assert sorted(graph.edges(data=True)) == [
            ("draft", "review", {"kind": "data"}),
            ("review", "draft", {"kind": "route", "when": "output.again", "max_times": 2, "index": 0}),
            ("review", "publish", {"kind": "data"}),
        ]
        assert graph.graph["name"] == "wf"

    def test_invalid_graph_raises_with_every_problem(self) -> None:
        """compile_graph raises GraphError holding what validate_graph finds."""
        spec = workflow(a=step("b"), b=step("a"), c=step("nope"))
        with pytest.raises(GraphError) as info:
            compile_graph(spec)
        assert info.value.problems == validate_graph(spec)
        assert len(info.value.problems) == 2

    def test_a_checked_spec_compiles_to_the_same_graph(self) -> None:
        """`checked=True` (the loader validated the graph already) gives the same nodes, edges and name."""
        checked, unchecked = compile_graph(REVIEW_LOOP, checked=True), compile_graph(REVIEW_LOOP)
        assert list(checked.nodes(data=True)) == list(unchecked.nodes(data=True))
        assert sorted(checked.edges(data=True)) == sorted(unchecked.edges(data=True))
        assert checked.graph == unchecked.graph


class TestValidateGraph:
    def test_valid_graph_has_no_problems(self) -> None:
        """A DAG with a route back to a dependency is fine."""
        assert validate_graph(REVIEW_LOOP) == []

    def test_cycle_is_named(self) -> None:
        """A dependency cycle is reported once, spelled out, at the first step's depends_on."""
        spec = workflow(plan=step("review"), research=step("plan"), review=step("research"))
        assert validate_graph(spec) == [
            Problem(
                "steps depend on each other in a cycle: plan -> research -> review -> plan; remove one of these "
                "depends_on entries (to repeat work, add a route with max_times instead)",
                "steps.plan.depends_on",
            )
        ]

    def test_self_dependency(self) -> None:
        """A step depending on itself is reported as such, not as a cycle."""
        assert validate_graph(workflow(a=step("a"))) == [
            Problem("step 'a' cannot depend on itself; remove it from depends_on", "steps.a.depends_on[0]")
        ]

    def test_unknown_dependency_with_suggestion(self) -> None:
        """A dependency on a missing step suggests the closest step name."""
        problems = validate_graph(workflow(plan=step(), research=step("plna")))
        assert problems == [
            Problem("depends on unknown step 'plna' — did you mean 'plan'?", "steps.research.depends_on[0]")
        ]

    def test_unknown_dependency_lists_steps_when_nothing_is_close(self) -> None:
        """Without a close match the message lists the steps."""
        problems = validate_graph(workflow(plan=step(), write=step("zzz")))
        assert problems[0].message == "depends on unknown step 'zzz'; the steps are: plan, write"

    def test_route_to_non_ancestor_is_rejected(self) -> None:
        """A route may only go back to its own step or one it depends on."""
        spec = workflow(a=step(), b=step(), c=step("a", routes=[route("b")]))
        (problem,) = validate_graph(spec)
        assert problem.path == "steps.c.routes[0].goto"
        assert "routes may only loop back to this step or one it depends on" in problem.message

    def test_route_to_itself_is_allowed(self) -> None:
        """A step may retry itself."""
        assert validate_graph(workflow(a=step(routes=[route("a")]))) == []

    def test_route_to_unknown_step(self) -> None:
        """A route's goto must name a step."""
        assert validate_graph(workflow(draft=step(), review=step("draft", routes=[route("draf")]))) == [
            Problem("route goes to unknown step 'draf' — did you mean 'draft'?", "steps.review.routes[0].goto")
        ]

    def test_loop_leaving_a_stale_step_is_rejected(self) -> None:
        """A step that uses the loop's start but is neither in the loop nor after it would keep stale input."""
        spec = workflow(
            draft=step(), review=step("draft", routes=[route("draft")]), summary=step("draft"), publish=step("review")
        )
        (problem,) = validate_graph(spec)
        assert problem.path == "steps.review.routes[0].goto"
        assert "step 'summary' also uses 'draft'" in problem.message
        assert "stale" in problem.message

    def test_two_routes_to_one_target(self) -> None:
        """Two routes from one step to the same target must be merged."""
        spec = workflow(a=step(routes=[route("a"), route("a", when="output.other")]))
        (problem,) = validate_graph(spec)
        assert problem.path == "steps.a.routes[1]"
        assert "merge the two into one route" in problem.message

    def test_unreachable_step(self) -> None:
        """A step downstream of a cycle can never start and is reported as well as the cycle."""
        spec = workflow(a=step("b"), b=step("a"), c=step("b"))
        assert [p.path for p in validate_graph(spec)] == ["steps.a.depends_on", "steps.c"]
        assert validate_graph(spec)[1].message.startswith("step 'c' can never start")


class TestLoopBody:
    def test_body_is_every_step_between_target_and_source(self) -> None:
        """Both ends and every step on a data path between them re-run; side branches do not."""
        spec = workflow(
            start=step(),
            left=step("start"),
            right=step("start"),
            join=step("left", "right", routes=[route("start")]),
            after=step("join"),
        )
        assert loop_body(compile_graph(spec), "join", "start") == {"start", "left", "right", "join"}

    def test_self_route(self) -> None:
        """A step routing to itself re-runs only itself."""
        graph = compile_graph(workflow(a=step(routes=[route("a")]), b=step("a")))
        assert loop_body(graph, "a", "a") == {"a"}


class TestCriticalPath:
    def test_longest_chain_of_durations(self) -> None:
        """The critical path is the slowest chain of dependencies, parallel branches overlapping."""
        spec = workflow(plan=step(), fast=step("plan"), slow=step("plan"), join=step("fast", "slow"))
        durations = {"plan": 1.0, "fast": 2.0, "slow": 5.0, "join": 1.5}
        assert critical_path(compile_graph(spec), durations) == 7.5

    def test_routes_are_not_followed(self) -> None:
        """Route edges do not make the path loop."""
        assert critical_path(compile_graph(REVIEW_LOOP), {"draft": 1, "review": 2, "publish": 3}) == 6


class TestDrawings:
    SPEC = workflow(
        plan=step(role="planner"),
        research=step("plan", for_each={"items": "steps.plan.questions", "as": "question"}),
        critique=step("research", routes=[route("research", when="output.verdict == 'revise'", max_times=1)]),
    )

    def test_mermaid(self) -> None:
        """Mermaid: solid data edges, a dotted labelled route, for_each drawn as a subroutine with its item."""
        assert to_mermaid(compile_graph(self.SPEC)) == (
            "flowchart TD\n"
            '    plan["plan<br/>planner"]\n'
            '    research[["research<br/>writer<br/>for each question"]]\n'
            '    critique["critique<br/>writer"]\n'
            "    plan --> research\n"
            "    research --> critique\n"
            "    critique -.->|\"output.verdict == 'revise' ≤1\"| research\n"
        )

    def test_mermaid_escapes_and_keywords(self) -> None:
        """Quotes, angle brackets and pipes are escaped; a step called `end` gets a safe node id."""
        spec = workflow(end=step(routes=[route("end", when='output.n > 1 and output.s | length == "x"')]))
        text = to_mermaid(compile_graph(spec))
        assert 'end_["end<br/>writer"]' in text
        assert 'end_ -.->|"output.n #gt; 1 and output.s #124; length == #quot;x#quot; ≤2"| end_' in text

    def test_dot(self) -> None:
        """DOT: one node per step, for_each as a 3-D box, routes dashed with their label."""
        text = to_dot(compile_graph(self.SPEC))
        assert text.startswith('digraph "wf" {\n')
        assert '    "research" [label="research\\nwriter\\nfor each question", shape=box3d];\n' in text
        assert '    "plan" -> "research";\n' in text
        assert (
            '    "critique" -> "research" [style=dashed, label="output.verdict == \'revise\' ≤1", constraint=false];\n'
        ) in text
        assert text.endswith("}\n")
