"""Tool and function steps in the loader: exactly one doer, the tool exists, the function imports, args are checked."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from rolegraph.errors import SpecError
from rolegraph.runtime.steps.refs import step_reference_check
from rolegraph.workflows.loader import load_spec, parse_spec

HEAD = "rolegraph: 1\nname: wf\n"


def problems(text: str, folder: Path | None = None) -> list[tuple[str, str, str]]:
    """(file:line:col, path, message) of each problem of the document (written into `folder` if given)."""
    body = HEAD + textwrap.dedent(text).lstrip("\n")
    with pytest.raises(SpecError) as info:
        if folder is None:
            parse_spec(body, Path("wf.yaml"), [step_reference_check(None)])
        else:
            (folder / "wf.yaml").write_text(body)
            load_spec(folder / "wf.yaml", [step_reference_check(folder)])
    return [(p.location().rsplit("/", 1)[-1], p.path, p.message) for p in info.value.problems]


class TestDoers:
    def test_a_step_needs_exactly_one_doer(self) -> None:
        """A step with a role and a tool, or with none of role/tool/function, is rejected at the step."""
        found = problems(
            """
            steps:
              a: {role: writer, tool: library_search, task: hi}
              b: {description: nothing}
            """
        )
        assert [(where, path) for where, path, _ in found] == [("wf.yaml:4:3", "steps.a"), ("wf.yaml:5:3", "steps.b")]
        assert "exactly one of 'role' (an agent), 'tool' or 'function'" in found[0][2]
        assert "it has 'role' and 'tool'" in found[0][2] and "it has none of them" in found[1][2]

    def test_model_fields_do_not_apply_to_tool_steps(self) -> None:
        """A task, a model or max_steps on a tool step is a mistake the loader names."""
        (found,) = problems(
            """
            library: lib
            steps:
              a: {tool: library_search, task: search, model: default, args: {query: x}}
            """
        )
        assert found[1] == "steps.a"
        assert "a tool step uses no model, so 'task' and 'model' do not apply" in found[2]

    def test_args_and_output_do_not_apply_to_role_steps(self) -> None:
        """Args and output belong to tool and function steps."""
        (found,) = problems("steps:\n  a: {role: writer, task: hi, args: {x: 1}}\n")
        assert "'args' belong to tool and function steps" in found[2]


class TestTools:
    def test_unknown_tool_with_a_suggestion(self) -> None:
        """A misspelt built-in tool is reported at its line with the closest name."""
        (found,) = problems("library: lib\nsteps:\n  a: {tool: libary_search, args: {query: x}}\n")
        assert found[:2] == ("wf.yaml:5:13", "steps.a.tool")
        assert "unknown tool 'libary_search'; did you mean 'library_search'?" in found[2]

    def test_library_tool_needs_a_library(self) -> None:
        """A library tool step in a workflow without `library:` says to set one."""
        (found,) = problems("steps:\n  a: {tool: library_search, args: {query: x}}\n")
        assert (found[1], "needs a library: set 'library:'" in found[2]) == ("steps.a.tool", True)

    def test_import_path_tool_that_does_not_import(self, tmp_path: Path) -> None:
        """An import-path tool whose module is missing is reported at its line."""
        (found,) = problems("steps:\n  a: {tool: 'nowhere_mod:thing', args: {}}\n", tmp_path)
        assert found[1] == "steps.a.tool" and "no module named 'nowhere_mod'" in found[2]


class TestFunctions:
    def test_function_beside_the_workflow_loads(self, tmp_path: Path) -> None:
        """A function in a module next to the workflow file is found; its step's kind is `function`."""
        (tmp_path / "helpers.py").write_text("def double(x: int) -> dict:\n    return {'y': 2 * x}\n")
        (tmp_path / "wf.yaml").write_text(HEAD + "steps:\n  a: {function: 'helpers:double', args: {x: 2}}\n")
        spec = load_spec(tmp_path / "wf.yaml", [step_reference_check(tmp_path)])
        assert (spec.steps["a"].kind, spec.steps["a"].doer) == ("function", "function helpers:double")

    @pytest.mark.parametrize(
        ("ref", "fragment"),
        [
            ("missing_helpers:double", "no module named 'missing_helpers'; put missing_helpers.py next to"),
            ("helpers:dubble", "'helpers' has no attribute 'dubble'; did you mean 'double'?"),
            ("helpers:LIMIT", "'helpers:LIMIT' is a int, not a function"),
            ("helpers.double", "is not an import path; write 'module:function'"),
            ("broken:f", "importing 'broken' failed: ZeroDivisionError"),
        ],
    )
    def test_function_that_cannot_be_imported(self, tmp_path: Path, ref: str, fragment: str) -> None:
        """A function step whose function cannot be had is reported at the `function:` line, saying why."""
        (tmp_path / "helpers.py").write_text("LIMIT = 3\n\ndef double(x: int) -> dict:\n    return {'y': 2 * x}\n")
        (tmp_path / "broken.py").write_text("1 / 0\n")
        (found,) = problems(f"steps:\n  a: {{function: '{ref}', args: {{x: 2}}}}\n", tmp_path)
        assert found[:2] == ("wf.yaml:4:17", "steps.a.function")
        assert fragment in found[2], found[2]

    def test_unknown_output_type(self, tmp_path: Path) -> None:
        """A function step's `output:` types are checked like a role's."""
        (tmp_path / "helpers.py").write_text("def f() -> dict:\n    return {}\n")
        (found,) = problems("steps:\n  a: {function: 'helpers:f', output: {n: 'list[thing]'}}\n", tmp_path)
        assert found[1] == "steps.a.output.n"


class TestArgs:
    def test_args_are_templates_checked_like_tasks(self) -> None:
        """An argument reading a step it does not depend on, or an unknown name, is reported at the argument."""
        found = problems(
            """
            library: lib
            steps:
              plan: {role: planner, task: plan}
              find:
                tool: library_search
                args: {query: "{{ steps.plan.questions[0] }} {{ topic }}"}
            """
        )
        undefined = "argument uses 'topic', which is not defined here (available: inputs, routed, steps)"
        assert [(path, message.split(";")[0]) for _, path, message in found] == [
            ("steps.find.args.query", undefined),
            ("steps.find.args.query", "argument references steps.plan but 'plan' is not in depends_on"),
        ]

    def test_one_expression_arguments_are_checked_as_expressions(self) -> None:
        """An argument that is one `{{ expression }}` is checked as an expression (a syntax error is named)."""
        (found,) = problems("library: lib\nsteps:\n  a: {tool: library_search, args: {query: '{{ inputs. }}'}}\n")
        assert found[1] == "steps.a.args.query" and "argument is not valid Jinja" in found[2]
