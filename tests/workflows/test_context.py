"""Template context: the names the engine builds are the names the loader checks against."""

from __future__ import annotations

import textwrap

import pytest

from rolegraph.errors import SpecError
from rolegraph.workflows.context import (
    OUTPUT_NAMES,
    ROUTE_NAMES,
    STEP_NAMES,
    item_context,
    item_names,
    output_context,
    route_context,
    routed_value,
    step_context,
    workflow_templates,
)
from rolegraph.workflows.loader import parse_spec

HEAD = "rolegraph: 1\nname: wf\n"


def doc(body: str) -> str:
    return HEAD + textwrap.dedent(body).lstrip("\n")


def messages_of(text: str) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    return [(p.path, p.message) for p in info.value.problems]


class TestNames:
    def test_each_template_kind_sees_what_its_builder_gives(self) -> None:
        """The name sets are exactly the keys of the contexts the engine builds."""
        step = step_context({"topic": "x"}, {"plan": {}}, None)
        assert set(step) == STEP_NAMES == {"inputs", "steps", "routed"}
        assert set(item_context(step, "question", "q1", 0)) == item_names("question")
        assert item_names("question") == STEP_NAMES | {"question", "index"}
        assert set(route_context(step, {"verdict": "ok"})) == ROUTE_NAMES == STEP_NAMES | {"output"}
        assert set(output_context({}, {}, [])) == OUTPUT_NAMES == {"inputs", "steps", "sources"}

    def test_item_context_keeps_the_steps_context(self) -> None:
        """An item's task sees the step's context plus its item and index."""
        step = step_context({"topic": "x"}, {"plan": {"n": 1}}, routed_value("critic", {"v": 1}, 2))
        assert item_context(step, "q", "first", 3) == {
            "inputs": {"topic": "x"},
            "steps": {"plan": {"n": 1}},
            "routed": {"from": "critic", "output": {"v": 1}, "times": 2},
            "q": "first",
            "index": 3,
        }

    def test_every_template_of_a_workflow_is_listed_with_its_names(self) -> None:
        """Tasks, items, route conditions and output templates, each with what it may use."""
        spec = parse_spec(
            doc(
                """
                steps:
                  plan: {role: planner, task: plan}
                  research:
                    role: researcher
                    task: "{{ q }}"
                    depends_on: [plan]
                    for_each: {items: steps.plan.questions, as: q}
                    routes: [{when: "output | length < 2", goto: research, max_times: 1}]
                outputs:
                  notes: {path: notes.md, render: template, template: "{{ sources | length }}"}
                """
            )
        )
        found = [(use.path, use.names, use.step) for use in workflow_templates(spec)]
        assert found == [
            ("steps.plan.task", STEP_NAMES, "plan"),
            ("steps.research.task", item_names("q"), "research"),
            ("steps.research.for_each.items", STEP_NAMES, "research"),
            ("steps.research.routes[0].when", ROUTE_NAMES, "research"),
            ("outputs.notes.template", OUTPUT_NAMES, None),
        ]


class TestLoaderChecksTheSameNames:
    def test_task_may_not_use_output(self) -> None:
        """A task using `output` (a route condition's name) is refused, listing what a task sees."""
        problems = messages_of(doc("steps:\n  a: {role: writer, task: '{{ output }}'}\n"))
        assert problems == [
            ("steps.a.task", "task uses 'output', which is not defined here (available: inputs, routed, steps)")
        ]

    def test_item_name_and_index_only_inside_for_each(self) -> None:
        """`index` is known in a for_each step's task and unknown in a plain step's."""
        good = doc(
            """
            steps:
              plan: {role: planner, task: p}
              each:
                role: writer
                task: "{{ index }} {{ q }}"
                depends_on: [plan]
                for_each: {items: steps.plan.questions, as: q}
            """
        )
        assert parse_spec(good).steps["each"].for_each is not None
        problems = messages_of(doc("steps:\n  a: {role: writer, task: '{{ index }}'}\n"))
        assert [path for path, _ in problems] == ["steps.a.task"]
        assert "uses 'index'" in problems[0][1]

    def test_output_template_sees_sources_not_routed(self) -> None:
        """An output template may read `sources`, not `routed`."""
        template = "{{ sources | length }} {{ routed }}"
        text = doc(
            "steps:\n  a: {role: writer, task: t}\n"
            f"outputs:\n  n: {{path: n.md, render: template, template: '{template}'}}\n"
        )
        problems = messages_of(text)
        assert problems == [
            (
                "outputs.n.template",
                "output template uses 'routed', which is not defined here (available: inputs, sources, steps)",
            )
        ]
