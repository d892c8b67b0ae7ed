"""Templates: rendering, evaluating, checking and inspecting Jinja in the sandbox."""

from __future__ import annotations

import pytest

from rolegraph.errors import RolegraphError
from rolegraph.workflows.templates import (
    SyntaxIssue,
    TemplateError,
    check_expression,
    check_template,
    evaluate,
    referenced_names,
    render,
    render_value,
    undeclared_names,
    value_templates,
)


class TestRender:
    def test_renders_context_and_keeps_trailing_newline(self) -> None:
        """Values from the context are substituted and a final newline survives."""
        assert render("Topic: {{ inputs.topic }}\n", {"inputs": {"topic": "LoRA"}}) == "Topic: LoRA\n"

    @pytest.mark.parametrize("text", ["go", "a\n\n", "100% sure #1 } ]", "a\r\nb\rc", ""])
    def test_plain_text_renders_as_jinja_renders_it(self, text: str) -> None:
        """A task with no template syntax comes back as Jinja gives it (its line ends made ``\\n``)."""
        assert render(text, {}) == text.replace("\r\n", "\n").replace("\r", "\n")

    def test_undefined_variable_is_an_error_naming_it(self) -> None:
        """A name missing from the context raises TemplateError naming it, never renders as blank."""
        with pytest.raises(TemplateError, match="'question' is undefined"):
            render("Q: {{ question }}", {})

    def test_missing_field_is_an_error_naming_it(self) -> None:
        """A missing field of a step output raises TemplateError naming the field."""
        with pytest.raises(TemplateError, match="no attribute 'questions'"):
            render("{{ steps.plan.questions }}", {"steps": {"plan": {}}})

    def test_template_error_is_a_rolegraph_error(self) -> None:
        """TemplateError belongs to the rolegraph error hierarchy."""
        assert issubclass(TemplateError, RolegraphError)

    @pytest.mark.parametrize(
        "template",
        [
            "{{ ''.__class__.__mro__ }}",
            "{{ ''.__class__.__mro__[1].__subclasses__() }}",
            "{{ cycler.__init__.__globals__ }}",
            "{{ steps.__class__ }}",
        ],
    )
    def test_sandbox_blocks_attribute_escapes(self, template: str) -> None:
        """Dunder attribute access, the route to Python internals, is refused."""
        with pytest.raises(TemplateError, match="unsafe"):
            render(template, {"steps": {}})

    def test_mapping_keys_win_over_dict_methods(self) -> None:
        """`steps.plan.items` is the output field `items`, not the method dict.items."""
        assert render("{{ steps.plan.items | join(',') }}", {"steps": {"plan": {"items": ["a", "b"]}}}) == "a,b"

    def test_bullets_and_numbered_filters(self) -> None:
        """`bullets` and `numbered` render a list one item per line."""
        context = {"xs": ["a", "b"]}
        assert render("{{ xs | bullets }}|{{ xs | numbered }}", context) == "- a\n- b|1. a\n2. b"

    def test_tojson_is_plain_json(self) -> None:
        """`tojson` writes JSON as is: no HTML escaping, non-ASCII kept."""
        assert render("{{ x | tojson }}", {"x": {"q": "it's <é>"}}) == '{"q": "it\'s <é>"}'

    def test_runtime_error_becomes_template_error(self) -> None:
        """A Python error inside a template (division by zero) surfaces as TemplateError."""
        with pytest.raises(TemplateError, match="ZeroDivisionError"):
            render("{{ 1 / 0 }}", {})


class TestEvaluate:
    def test_returns_python_values(self) -> None:
        """An expression evaluates to the value itself, not its text."""
        assert evaluate("steps.plan.questions", {"steps": {"plan": {"questions": ["q1", "q2"]}}}) == ["q1", "q2"]

    def test_condition(self) -> None:
        """Route conditions evaluate to booleans."""
        assert evaluate("output.verdict == 'revise'", {"output": {"verdict": "revise"}}) is True

    def test_undefined_result_is_an_error(self) -> None:
        """An expression whose result is undefined raises instead of returning an Undefined."""
        with pytest.raises(TemplateError, match="no attribute 'missing'"):
            evaluate("steps.missing", {"steps": {}})

    def test_syntax_error(self) -> None:
        """An invalid expression raises TemplateError, not a Jinja exception."""
        with pytest.raises(TemplateError, match="syntax error"):
            evaluate("a ===", {})


class TestCheck:
    def test_valid_template(self) -> None:
        """A valid template has no syntax issue."""
        assert check_template("{% for q in xs %}{{ q }}{% endfor %}") is None

    def test_template_error_line(self) -> None:
        """The issue names the line inside the template where Jinja stopped."""
        assert check_template("one\ntwo\n{{ x +* }}\n") == SyntaxIssue("unexpected '*'", 3)

    def test_unknown_filter_is_a_syntax_issue(self) -> None:
        """Unknown filters are caught when checking, not at run time."""
        assert check_template("{{ x | shout }}") == SyntaxIssue("No filter named 'shout'.", 1)

    def test_valid_expression(self) -> None:
        """A valid expression has no syntax issue."""
        assert check_expression("output.verdict == 'revise' and steps.r | length > 0") is None

    def test_expression_with_trailing_text(self) -> None:
        """Text after a complete expression is a syntax issue."""
        issue = check_expression("output.ok output.bad")
        assert issue is not None and issue.line == 1


class TestReferencedNames:
    def test_attribute_and_constant_subscript(self) -> None:
        """`steps.x`, `steps['y']` and `inputs.z` are found, inside blocks too."""
        text = "{{ steps.plan.q }} {{ steps['draft'] }} {% for c in steps.research %}{{ inputs.topic }}{% endfor %}"
        assert referenced_names(text, expression=False) == {
            ("steps", "plan"),
            ("steps", "draft"),
            ("steps", "research"),
            ("inputs", "topic"),
        }

    def test_other_names_and_dynamic_subscripts_are_ignored(self) -> None:
        """Only `steps` and `inputs` with a constant name count."""
        assert referenced_names("{{ item.steps }} {{ steps[name] }} {{ output.plan }}", expression=False) == set()

    def test_expression(self) -> None:
        """Expressions are inspected as expressions, not as templates."""
        assert referenced_names("steps.plan.q | length > inputs['n']", expression=True) == {
            ("steps", "plan"),
            ("inputs", "n"),
        }

    def test_expression_that_is_one_reference(self) -> None:
        """An expression that is nothing but `steps.plan` is found too."""
        assert referenced_names("steps.plan", expression=True) == {("steps", "plan")}

    def test_unparsable_text(self) -> None:
        """Text that does not parse raises TemplateError."""
        with pytest.raises(TemplateError):
            referenced_names("{{ steps.", expression=False)


class TestUndeclaredNames:
    def test_loop_variables_and_globals_are_not_context_names(self) -> None:
        """Names bound inside the template and Jinja globals are left out."""
        text = "{% for c in steps.a %}{{ c }}{{ loop.index }}{% endfor %}{{ range(2) | list }}{{ question }}"
        assert undeclared_names(text, expression=False) == {"steps", "question"}

    def test_expression(self) -> None:
        """Every name an expression loads comes from the context."""
        assert undeclared_names("output.verdict == 'x' and routed", expression=True) == {"output", "routed"}

    def test_bare_name_expression(self) -> None:
        """An expression that is a single name reports that name."""
        assert undeclared_names("verdict", expression=True) == {"verdict"}


class TestRenderValue:
    def test_strings_render_and_one_expression_keeps_its_type(self) -> None:
        """Template strings render to text; a string that is one {{ expression }} gives the value itself."""
        context = {"inputs": {"topic": "LoRA", "n": 3}, "steps": {"s": {"data": [{"id": "a"}]}}}
        args = {"query": "{{ inputs.topic }} adapters", "n": "{{ inputs.n + 1 }}", "hits": "{{ steps.s.data }}"}
        assert render_value(args, context) == {"query": "LoRA adapters", "n": 4, "hits": [{"id": "a"}]}

    def test_nested_values_and_non_strings(self) -> None:
        """Lists and mappings are walked; numbers, booleans and None pass through unchanged."""
        value = {"a": ["{{ x }}", 2, None], "b": {"c": "x={{ x }}", "d": True}}
        assert render_value(value, {"x": 7}) == {"a": [7, 2, None], "b": {"c": "x=7", "d": True}}

    def test_undefined_name_is_an_error(self) -> None:
        """An undefined name in an argument raises TemplateError, never renders as blank."""
        with pytest.raises(TemplateError, match="'nothing' is undefined"):
            render_value({"q": "{{ nothing }}"}, {})


class TestValueTemplates:
    def test_lists_each_template_with_its_path_and_kind(self) -> None:
        """Every string of an args value is listed with its path, as a template or an expression."""
        value = {"query": "{{ q }} and more", "hits": "{{ steps.s.data }}", "opts": [{"k": "{{ k }}"}], "n": 2}
        assert list(value_templates(value)) == [
            ("query", "{{ q }} and more", False),
            ("hits", "steps.s.data", True),
            ("opts[0].k", "k", True),
        ]

    def test_two_expressions_are_a_template(self) -> None:
        """A string holding two {{ }} blocks is a template (its value is text), not one expression."""
        assert list(value_templates("{{ a }}{{ b }}")) == [("", "{{ a }}{{ b }}", False)]
