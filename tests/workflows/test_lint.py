"""Warnings: valid workflows that probably do not do what their author meant, each at file:line."""

from __future__ import annotations

import textwrap
from pathlib import Path

from rolegraph.workflows.loader import read_spec

FILE = Path("wf.yaml")
HEAD = "rolegraph: 1\nname: wf\n"


def warnings_of(body: str) -> list[tuple[str, str, str]]:
    read = read_spec(HEAD + textwrap.dedent(body).lstrip("\n"), FILE)
    return [(w.location(), w.path, w.message) for w in read.warnings]


class TestRoutes:
    def test_route_to_a_step_that_ignores_routed(self) -> None:
        """A route back to a step whose task never reads `routed` would re-run it identically: a warning."""
        found = warnings_of(
            """
            steps:
              draft: {role: writer, task: Write it.}
              review:
                role: critic
                task: "Review {{ steps.draft.title }}"
                depends_on: [draft]
                routes: [{when: "output.verdict == 'revise'", goto: draft, max_times: 2}]
            """
        )
        assert found == [
            (
                "wf.yaml:9:57",
                "steps.review.routes[0].goto",
                "this route re-runs 'draft' with the same task: 'draft' never reads 'routed' (what the route "
                "sends back); use it, e.g. {% if routed %}Revise, given: {{ routed.output | tojson }}{% endif %}",
            )
        ]

    def test_route_to_a_step_that_reads_routed(self) -> None:
        """A target whose task uses `routed` gets the critique back: no warning."""
        found = warnings_of(
            """
            steps:
              draft: {role: writer, task: "Write it.{% if routed %} Fix: {{ routed.output.issues }}{% endif %}"}
              review:
                role: critic
                task: "Review {{ steps.draft.title }}"
                depends_on: [draft]
                routes: [{when: "output.verdict == 'revise'", goto: draft, max_times: 2}]
            """
        )
        assert found == []


class TestInputs:
    def test_input_no_template_reads(self) -> None:
        """A declared input that no template reads is a warning at its key."""
        found = warnings_of(
            """
            inputs: {topic: {}, depth: {type: integer, default: 2}}
            steps:
              a: {role: writer, task: "On {{ inputs.topic }}"}
            """
        )
        assert found == [
            (
                "wf.yaml:3:21",
                "inputs.depth",
                "input 'depth' is never read: no template uses inputs.depth; use it in a task, or remove it",
            )
        ]

    def test_inputs_read_as_a_whole(self) -> None:
        """A template that reads `inputs` as a whole may read any input: no warning."""
        found = warnings_of(
            """
            inputs: {topic: {}, depth: {type: integer, default: 2}}
            steps:
              a: {role: writer, task: "Given {{ inputs | tojson }}"}
            """
        )
        assert found == []

    def test_input_read_by_an_output_template(self) -> None:
        """An input read only by an output template counts as read."""
        found = warnings_of(
            """
            inputs: {topic: {}}
            steps:
              a: {role: writer, task: t}
            outputs:
              n: {path: n.md, render: template, template: "# {{ inputs.topic }}"}
            """
        )
        assert found == []


class TestRoles:
    def test_role_no_step_uses(self) -> None:
        """A role defined (or overridden) but given to no step is a warning at its key."""
        found = warnings_of(
            """
            roles:
              critic: {max_steps: 2}
              scout: {instructions: Look around., output: {notes: string}}
            steps:
              a: {role: scout, task: t}
            """
        )
        assert found == [
            (
                "wf.yaml:4:3",
                "roles.critic",
                "role 'critic' is defined but no step uses it; give it to a step (role: critic), or remove it",
            )
        ]

    def test_no_warnings_in_a_tidy_workflow(self) -> None:
        """Every input read, every role used, no route: nothing to say."""
        assert warnings_of("inputs: {topic: {}}\nsteps:\n  a: {role: writer, task: '{{ inputs.topic }}'}\n") == []
