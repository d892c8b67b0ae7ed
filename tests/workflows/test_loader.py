"""Loader: safe YAML, bounded work, and every problem reported with file:line:col, field path and a fix.

Every test runs twice: through libyaml's C parser and through the pure-Python fallback.
"""

from __future__ import annotations

import textwrap
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from rolegraph.errors import SpecError
from rolegraph.workflows import reader
from rolegraph.workflows.loader import MAX_BYTES, load_spec, parse_spec
from rolegraph.workflows.spec import WorkflowSpec

FIXTURES = Path(__file__).parent / "fixtures"


NO_LIBYAML = pytest.mark.skipif(not reader.USE_LIBYAML, reason="PyYAML is built without libyaml here")


@pytest.fixture(autouse=True, params=[pytest.param("libyaml", marks=NO_LIBYAML), "python"])
def yaml_reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Read with libyaml's C parser, then with the pure-Python one (the fallback where libyaml is missing)."""
    monkeypatch.setattr(reader, "USE_LIBYAML", request.param == "libyaml")
    return str(request.param)


FILE = Path("wf.yaml")
HEAD = "rolegraph: 1\nname: wf\n"

Expected = tuple[str, str, str]
"""(``file:line:col``, field path, a fragment of the message)."""


def problems_of(text: str | bytes) -> list[tuple[str, str, str]]:
    with pytest.raises(SpecError) as info:
        parse_spec(text, FILE)
    return [(p.location(), p.path, p.message) for p in info.value.problems]


def assert_problems(text: str | bytes, *expected: Expected) -> None:
    """The document has exactly these problems, in order, each at its place and saying the fragment."""
    found = problems_of(text)
    assert [(where, path) for where, path, _ in found] == [(where, path) for where, path, _ in expected], found
    for (_, _, message), (_, _, fragment) in zip(found, expected, strict=True):
        assert fragment in message


def doc(body: str) -> str:
    return HEAD + textwrap.dedent(body).lstrip("\n")


class TestValidDocuments:
    def test_minimal(self) -> None:
        """A document with one step loads, with defaults filled in."""
        spec = parse_spec(doc("steps:\n  a: {role: writer, task: hi}\n"))
        assert spec.steps["a"].task == "hi"
        assert spec.models == {"default": "local"}

    def test_bytes_with_bom(self) -> None:
        """UTF-8 bytes load, a leading byte-order mark is ignored."""
        spec = parse_spec(("\ufeff" + doc("steps:\n  a: {role: writer, task: café}\n")).encode())
        assert spec.steps["a"].task == "café"

    def test_full_example_loads(self) -> None:
        """The complete example in fixtures/full.yaml loads cleanly."""
        spec = load_spec(FIXTURES / "full.yaml")
        assert list(spec.steps) == ["find", "plan", "research", "assess", "write", "headline"]
        assert {out.render for out in spec.outputs.values()} == {"report", "json", "sources", "bibtex", "template"}

    def test_full_example_sets_every_field(self) -> None:
        """fixtures/full.yaml sets every field of every model of the format at least once."""
        unset = _fields(WorkflowSpec) - _set_fields(load_spec(FIXTURES / "full.yaml"))
        assert unset == set()

    def test_yaml_merge_keys(self) -> None:
        """`<<: *anchor` merges a mapping; the mapping's own keys win."""
        spec = parse_spec(
            doc(
                """
                steps:
                  a: &base {role: critic, task: base, description: shared}
                  b: {<<: *base, task: own}
                """
            )
        )
        assert (spec.steps["b"].role, spec.steps["b"].task, spec.steps["b"].description) == ("critic", "own", "shared")

    def test_keys_are_text(self) -> None:
        """Keys YAML 1.1 would read as booleans (yes, no) stay step names."""
        spec = parse_spec(doc("steps:\n  yes: {role: writer, task: t}\n  no: {role: writer, task: t}\n"))
        assert list(spec.steps) == ["yes", "no"]


def _fields(model: type[BaseModel], seen: frozenset[type] = frozenset()) -> set[str]:
    found: set[str] = set()
    for name, info in model.model_fields.items():
        found.add(f"{model.__name__}.{name}")
        for inner in _models_in(info.annotation):
            if inner not in seen:
                found |= _fields(inner, seen | {model})
    return found


def _models_in(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _set_fields(value: object) -> set[str]:
    found: set[str] = set()
    if isinstance(value, BaseModel):
        found |= {f"{type(value).__name__}.{name}" for name in value.model_fields_set}
        for name in type(value).model_fields:
            found |= _set_fields(getattr(value, name))
    elif isinstance(value, dict):
        for item in value.values():
            found |= _set_fields(item)
    elif isinstance(value, list):
        for item in value:
            found |= _set_fields(item)
    return found


class TestSchemaProblems:
    def test_unknown_key_with_suggestion(self) -> None:
        """An unknown key points at the key and suggests the closest field."""
        assert_problems(
            doc(
                """
                steps:
                  plan:
                    role: planner
                    task: t
                    dependson: []
                """
            ),
            ("wf.yaml:7:5", "steps.plan.dependson", "unknown key 'dependson' — did you mean 'depends_on'?"),
        )

    def test_unknown_key_without_suggestion_lists_keys(self) -> None:
        """With nothing close, the message lists the allowed keys."""
        assert_problems(
            doc("steps:\n  a: {role: writer, task: t, for_each: {items: '[1]', zzz: 1}}\n"),
            ("wf.yaml:4:55", "steps.a.for_each.zzz", "allowed keys here: items, as, max_concurrency, max_items"),
        )

    def test_alias_field_name(self) -> None:
        """Fields with an alias (`as`, `from`) are suggested by their YAML name."""
        assert_problems(
            doc("steps:\n  a: {role: writer, task: t}\noutputs:\n  r: {path: r.md, render: report, form: a}\n"),
            ("wf.yaml:6:35", "outputs.r.form", "did you mean 'from'?"),
        )

    def test_wrong_type(self) -> None:
        """A value of the wrong type says what was expected and what was found."""
        assert_problems(
            doc("steps:\n  a: {role: writer, task: t, max_steps: many}\n"),
            ("wf.yaml:4:41", "steps.a.max_steps", "expected a whole number, got the string 'many'"),
        )

    def test_out_of_range(self) -> None:
        """A number outside its bounds says the bound."""
        assert_problems(
            doc("steps:\n  a: {role: writer, task: t}\nsettings: {max_concurrency: 0}\n"),
            ("wf.yaml:5:29", "settings.max_concurrency", "it must be ≥ 1"),
        )

    def test_unknown_executor(self) -> None:
        """`settings.executor` names local, ray or ray://host:port; another value says which there are."""
        assert_problems(
            doc("steps:\n  a: {role: writer, task: t}\nsettings: {executor: spark}\n"),
            ("wf.yaml:5:22", "settings.executor", "unknown executor 'spark': use local, ray or ray://host:port"),
        )

    def test_missing_required_field(self) -> None:
        """A missing field points at the mapping that lacks it and says what to add."""
        assert_problems(
            doc("steps:\n  plan:\n    role: planner\n"),
            ("wf.yaml:4:3", "steps.plan.task", "missing required key 'task'"),
        )

    def test_route_without_bound(self) -> None:
        """A route without max_times is rejected: every loop needs a bound."""
        assert_problems(
            doc(
                """
                steps:
                  a: {role: writer, task: t}
                  b:
                    role: critic
                    task: t
                    depends_on: [a]
                    routes:
                      - {when: output.verdict == 'revise', goto: a}
                """
            ),
            ("wf.yaml:10:9", "steps.b.routes[0].max_times", "every route needs a bound: add 'max_times: <n>'"),
        )

    def test_unsupported_version(self) -> None:
        """`rolegraph: 2` says which version this rolegraph reads."""
        assert_problems(
            "rolegraph: 2\nname: wf\nsteps:\n  a: {role: writer, task: t}\n",
            (
                "wf.yaml:1:12",
                "rolegraph",
                "unsupported format version 2: this version of rolegraph reads 'rolegraph: 1'",
            ),
        )

    def test_invalid_name(self) -> None:
        """A step id that is not an identifier is reported at the key."""
        assert_problems(
            doc("steps:\n  my-step: {role: writer, task: t}\n"),
            ("wf.yaml:4:3", "steps.my-step", "'my-step' is not a valid name: use letters, digits and underscores"),
        )

    def test_literal_choice_with_suggestion(self) -> None:
        """A value outside a fixed set lists the choices and suggests the closest."""
        assert_problems(
            doc("steps:\n  a: {role: writer, task: t}\noutputs:\n  r: {path: r.json, render: jsn, from: a}\n"),
            ("wf.yaml:6:29", "outputs.r.render", "did you mean 'json'?"),
        )

    def test_render_needs_from(self) -> None:
        """A report output without `from` says so."""
        assert_problems(
            doc("steps:\n  a: {role: writer, task: t}\noutputs:\n  r: {path: r.md, render: report}\n"),
            ("wf.yaml:6:3", "outputs.r", "render 'report' needs 'from: <step>'"),
        )

    def test_model_entry_of_wrong_type(self) -> None:
        """A model entry that is neither a string nor a mapping gets one message, not one per union branch."""
        assert_problems(
            doc("models: {default: 5}\nsteps:\n  a: {role: writer, task: t}\n"),
            ("wf.yaml:3:19", "models.default", "expected a model string such as 'openai:gpt-4o-mini' or a mapping"),
        )

    def test_unquoted_template_hint(self) -> None:
        """An unquoted `{{ ... }}` (a YAML mapping) is explained, with the fix."""
        assert_problems(
            doc("steps:\n  a: {role: writer, task: {{ inputs.topic }}}\n"),
            ("wf.yaml:4:27", "steps.a.task", "put the value in quotes"),
        )


class TestDocumentProblems:
    def test_unknown_role_with_suggestion(self) -> None:
        """A step's role must be built in or defined; the closest name is suggested."""
        assert_problems(
            doc("steps:\n  a: {role: reseacher, task: t}\n"),
            ("wf.yaml:4:13", "steps.a.role", "unknown role 'reseacher'; define it under 'roles:' or use a built-in"),
        )
        assert "did you mean 'researcher'?" in problems_of(doc("steps:\n  a: {role: reseacher, task: t}\n"))[0][2]

    def test_new_role_needs_instructions_and_output(self) -> None:
        """A role that is not built in must say what it does and what it answers."""
        assert_problems(
            doc("roles:\n  analyst: {description: x}\nsteps:\n  a: {role: analyst, task: t}\n"),
            ("wf.yaml:4:3", "roles.analyst", "needs 'instructions' and 'output'"),
        )

    def test_invalid_output_type(self) -> None:
        """An output field type must be one rolegraph knows; the message lists them."""
        assert_problems(
            doc(
                """
                roles:
                  analyst: {instructions: x, output: {ids: "list[thing]"}}
                steps:
                  a: {role: analyst, task: t}
                """
            ),
            ("wf.yaml:4:44", "roles.analyst.output.ids", "unknown list item type 'thing'; use one of string"),
        )

    def test_models_need_a_default(self) -> None:
        """`models` must name a default model."""
        assert_problems(
            doc("models: {fast: 'openai:gpt-4o-mini'}\nsteps:\n  a: {role: writer, task: t}\n"),
            ("wf.yaml:3:1", "models", "'models' has no 'default' entry"),
        )

    def test_unknown_model_name(self) -> None:
        """A model that is neither defined nor a model string is reported with a suggestion."""
        assert_problems(
            doc("models: {default: local, fast: 'openai:x'}\nsteps:\n  a: {role: writer, task: t, model: fats}\n"),
            ("wf.yaml:5:37", "steps.a.model", "unknown model 'fats'"),
        )

    def test_model_string_without_provider(self) -> None:
        """A model string must name its provider."""
        assert_problems(
            doc("models: {default: gpt-4o}\nsteps:\n  a: {role: writer, task: t}\n"),
            ("wf.yaml:3:19", "models.default", "'gpt-4o' is not a model string; write '<provider>:<model>'"),
        )

    def test_model_option_that_does_not_fit_the_model(self) -> None:
        """An option the model string's form does not take (api on scripted:) is reported at its entry."""
        assert_problems(
            doc("models:\n  default: {model: 'scripted:s.yaml', api: chat}\nsteps:\n  a: {role: writer, task: t}\n"),
            ("wf.yaml:4:3", "models.default", "api cannot be set for scripted:<file.yaml> models (they take: none)"),
        )

    def test_model_options_are_not_call_settings(self) -> None:
        """api is a build option: it stays out of the call settings and into the options."""
        models = "models:\n  default: {model: 'openai:gpt-4o', api: chat, seed: 1}\n"
        spec = parse_spec(doc(models + "steps:\n  a: {role: writer, task: t}\n"))
        entry = spec.model_spec("default")
        assert (entry.settings().model_dump(exclude_unset=True), entry.options().api) == ({"seed": 1}, "chat")

    def test_unknown_dependency_with_suggestion(self) -> None:
        """depends_on must name steps; the closest is suggested."""
        assert_problems(
            doc("steps:\n  plan: {role: planner, task: t}\n  write: {role: writer, task: t, depends_on: [plna]}\n"),
            ("wf.yaml:5:47", "steps.write.depends_on[0]", "depends on unknown step 'plna' — did you mean 'plan'?"),
        )

    def test_template_syntax_error_inside_block_scalar(self) -> None:
        """A Jinja syntax error is reported at its own line inside a `|` block, at the text's indentation."""
        assert_problems(
            doc(
                """
                steps:
                  a:
                    role: writer
                    task: |
                      First line.

                      Then {{ inputs.x +* }}
                """
            ),
            ("wf.yaml:9:7", "steps.a.task", "task is not valid Jinja: unexpected '*'"),
        )

    def test_expression_syntax_error(self) -> None:
        """for_each.items and route conditions are checked as expressions."""
        assert_problems(
            doc("steps:\n  a: {role: writer, task: t, for_each: {items: 'steps.x |'}}\n"),
            ("wf.yaml:4:48", "steps.a.for_each.items", "for_each.items is not valid Jinja"),
        )

    def test_reference_to_step_not_depended_on(self) -> None:
        """A task may only read the outputs of steps it depends on, directly or not."""
        assert_problems(
            doc(
                """
                steps:
                  plan: {role: planner, task: t}
                  research: {role: researcher, task: t, depends_on: [plan]}
                  write: {role: writer, task: "{{ steps.plan.questions }} {{ steps.research }}", depends_on: [research]}
                  side: {role: writer, task: "{{ steps.research }}"}
                """
            ),
            ("wf.yaml:7:30", "steps.side.task", "task references steps.research but 'research' is not in depends_on"),
        )

    def test_reference_to_unknown_input(self) -> None:
        """`inputs.<name>` must be a declared input."""
        assert_problems(
            doc("inputs: {topic: {}}\nsteps:\n  a: {role: writer, task: '{{ inputs.topik }}'}\n"),
            ("wf.yaml:5:27", "steps.a.task", "references inputs.topik but the workflow declares no input 'topik'"),
        )

    def test_undefined_template_name(self) -> None:
        """A name the step's context does not provide is caught before running."""
        assert_problems(
            doc("steps:\n  a: {role: writer, task: '{{ qestion }}', for_each: {items: '[1]', as: question}}\n"),
            ("wf.yaml:4:27", "steps.a.task", "task uses 'qestion', which is not defined here"),
        )

    def test_route_condition_on_own_step(self) -> None:
        """A route condition reads its own step through `output`, not `steps.<self>`."""
        assert_problems(
            doc("steps:\n  a: {role: writer, task: t, routes: [{when: steps.a.x, goto: a, max_times: 1}]}\n"),
            ("wf.yaml:4:46", "steps.a.routes[0].when", "use 'output' for this step's own output"),
        )

    def test_output_from_unknown_step(self) -> None:
        """`outputs.*.from` must name a step."""
        assert_problems(
            doc("steps:\n  write: {role: writer, task: t}\noutputs:\n  r: {path: r.md, render: report, from: wirte}\n"),
            ("wf.yaml:6:41", "outputs.r.from", "output comes from unknown step 'wirte' — did you mean 'write'?"),
        )

    def test_output_path_leaving_the_run_folder(self) -> None:
        """An output path that is absolute or climbs out of the run folder is refused at load time."""
        text = doc(
            """
            steps:
              write: {role: writer, task: t}
            outputs:
              a: {path: ../up.md, render: sources}
              b: {path: /etc/x.md, render: sources}
              c: {path: sub/../../up.md, render: sources}
              d: {path: sub/../fine.md, render: sources}
            """
        )
        leaves = "leaves the run folder; use a relative path inside it"
        assert_problems(
            text,
            ("wf.yaml:6:13", "outputs.a.path", f"path '../up.md' {leaves}"),
            ("wf.yaml:7:13", "outputs.b.path", f"path '/etc/x.md' {leaves}"),
            ("wf.yaml:8:13", "outputs.c.path", f"path 'sub/../../up.md' {leaves}"),
        )

    def test_graph_problems_are_positioned(self) -> None:
        """Cycles found by the graph check point at the step's depends_on in the file."""
        assert_problems(
            doc(
                "steps:\n  a: {role: writer, task: t, depends_on: [b]}\n  b: {role: writer, task: t, depends_on: [a]}\n"
            ),
            ("wf.yaml:4:30", "steps.a.depends_on", "steps depend on each other in a cycle: a -> b -> a"),
        )

    def test_several_problems_together(self) -> None:
        """Every problem is reported in one error, in file order, from schema and document checks alike."""
        assert_problems(
            doc(
                """
                steps:
                  plan:
                    role: planer
                    task: "{{ inputs.topic }}"
                    max_step: 3
                  write:
                    role: writer
                    task: t
                    depends_on: [plam]
                """
            ),
            ("wf.yaml:5:11", "steps.plan.role", "unknown role 'planer'"),
            ("wf.yaml:6:11", "steps.plan.task", "no input 'topic'"),
            ("wf.yaml:7:5", "steps.plan.max_step", "did you mean 'max_steps'?"),
            ("wf.yaml:11:18", "steps.write.depends_on[0]", "did you mean 'plan'?"),
        )

    def test_every_mistake_in_one_pass(self) -> None:
        """Schema mistakes (a route without its bound, an unknown key, a step that is two kinds at once)
        do not hide the document's other mistakes (an unknown role, a for_each written as a template):
        one reading reports all five."""
        assert_problems(
            doc(
                """
                steps:
                  plan: {role: planer, task: p}
                  research:
                    role: researcher
                    task: "{{ q }}"
                    depends_on: [plan]
                    for_each: {items: "{{ steps.plan.questions }}", as: q}
                    routes: [{when: "output | length == 0", goto: research}]
                  write: {role: writer, task: t, depends_on: [research], max_step: 2}
                  fetch: {role: writer, tool: fetch_url, task: t, depends_on: [write]}
                """
            ),
            ("wf.yaml:4:16", "steps.plan.role", "unknown role 'planer'"),
            ("wf.yaml:9:23", "steps.research.for_each.items", "items is an expression, not a template"),
            ("wf.yaml:10:14", "steps.research.routes[0].max_times", "missing required key 'max_times'"),
            ("wf.yaml:11:58", "steps.write.max_step", "did you mean 'max_steps'?"),
            ("wf.yaml:12:3", "steps.fetch", "exactly one of 'role' (an agent), 'tool' or 'function'"),
        )

    def test_a_broken_step_keeps_its_place(self) -> None:
        """A step too broken to read is stood in for: steps depending on it are not told it is unknown."""
        assert_problems(
            doc(
                """
                steps:
                  a: {role: writer, tool: fetch_url}
                  b: {role: writer, task: "{{ steps.a.title }}", depends_on: [a]}
                """
            ),
            ("wf.yaml:4:3", "steps.a", "exactly one of"),
        )

    @pytest.mark.parametrize(
        ("field", "text", "fix"),
        [
            ("items", "'{{ steps.plan.questions }}'", "write items: steps.plan.questions"),
            ("when", "'{{ output.verdict == \"revise\" }}'", 'write when: output.verdict == "revise"'),
        ],
    )
    def test_expression_written_as_a_template(self, field: str, text: str, fix: str) -> None:
        """items and when are expressions: braces around one are named, with the expression to write."""
        body = "steps:\n  plan: {role: planner, task: p}\n"
        if field == "items":
            body += f"  r: {{role: writer, task: t, depends_on: [plan], for_each: {{items: {text}}}}}\n"
            path = "steps.r.for_each.items"
        else:
            route = f"{{when: {text}, goto: plan, max_times: 1}}"
            body += f"  r: {{role: critic, task: t, depends_on: [plan], routes: [{route}]}}\n"
            path = "steps.r.routes[0].when"
        ((_, where, message),) = problems_of(doc(body))
        assert where == path
        assert message == f"{field} is an expression, not a template: drop the {{{{ }}}} ({fix})"

    @pytest.mark.parametrize(
        ("model", "fragment"),
        [
            ("opneai:gpt-4o", "unknown model string 'opneai:gpt-4o'; did you mean 'openai:'?"),
            ("openai:", "'openai:' is incomplete: write openai:<model>"),
            ("openai-compatible:m", "needs a base URL: write openai-compatible:<model>@<base_url>"),
            ("local:x", "'local:x' takes nothing after the colon: write local"),
        ],
    )
    def test_model_string_forms(self, model: str, fragment: str) -> None:
        """A model string of no known form (a misspelt provider, a missing part) is an error at its place."""
        assert_problems(
            doc(f"models: {{default: '{model}'}}\nsteps:\n  a: {{role: writer, task: t}}\n"),
            ("wf.yaml:3:19", "models.default", fragment),
        )


class TestItemErrors:
    @pytest.mark.parametrize(
        ("policy", "skips", "retries"), [("fail", False, 0), ("skip", True, 0), ("retry:3", False, 3)]
    )
    def test_policies(self, policy: str, skips: bool, retries: int) -> None:
        """`on_item_error` is fail, skip or retry:N; the spec says which."""
        spec = parse_spec(
            doc(f"steps:\n  a: {{role: writer, task: t, for_each: {{items: '[1]', on_item_error: '{policy}'}}}}\n")
        )
        for_each = spec.steps["a"].for_each
        assert for_each is not None and (for_each.skips, for_each.retries) == (skips, retries)

    @pytest.mark.parametrize("policy", ["ignore", "retry", "retry:0", "retry:11", "skip "])
    def test_other_policies_are_refused(self, policy: str) -> None:
        """Anything else is refused at its place, naming the three choices."""
        assert_problems(
            doc(f"steps:\n  a: {{role: writer, task: t, for_each: {{items: '[1]', on_item_error: '{policy}'}}}}\n"),
            (
                "wf.yaml:4:70",
                "steps.a.for_each.on_item_error",
                "on_item_error is fail, skip or retry:N (N from 1 to 10)",
            ),
        )


class TestOutputFields:
    def test_long_and_short_forms(self) -> None:
        """An output field is its type alone or a mapping with its description and bounds; both load."""
        spec = parse_spec(
            doc(
                """
                roles:
                  rater:
                    instructions: Rate the paper.
                    output:
                      relevance: {type: integer, minimum: 0, maximum: 10, description: "0 = off topic"}
                      tags: {type: "list[string]", min_items: 1, max_items: 3}
                      verdict: {type: enum, values: [keep, drop]}
                      mood: {type: enum, enum: [calm, eager]}
                      summary: string
                steps:
                  a: {role: rater, task: t}
                """
            )
        )
        output = spec.roles["rater"].output
        assert output is not None
        assert (output["relevance"].minimum, output["relevance"].maximum) == (0, 10)
        assert output["relevance"].description == "0 = off topic"
        assert (output["tags"].min_items, output["tags"].max_items) == (1, 3)
        assert output["verdict"].values == ["keep", "drop"] and output["mood"].values == ["calm", "eager"]
        assert output["summary"].type == "string"

    @pytest.mark.parametrize(
        ("field", "fragment"),
        [
            ("{type: string, minimum: 1}", "minimum cannot be set for a field of type 'string'"),
            ("{type: integer, max_items: 2}", "max_items cannot be set for a field of type 'integer'"),
            ("{type: enum}", "type 'enum' needs its values: add 'values: [a, b]'"),
            ("{type: string, values: [a]}", "values belong to type 'enum', not 'string'"),
            ("{type: number, minimum: 5, maximum: 1}", "minimum 5 is above maximum 1"),
            ("{type: intger}", "unknown type 'intger'; use string, integer"),
            ("intger", "unknown type 'intger'; use string, integer"),
            ("{type: integer, minmum: 0}", "unknown key 'minmum' — did you mean 'minimum'?"),
            ("7", "expected a type such as 'integer' or 'list[string]', or a mapping"),
            ("{type: integer, description: 0 = off, 10 = on}", "a comma ends a value"),
        ],
    )
    def test_field_mistakes(self, field: str, fragment: str) -> None:
        """A bound that does not fit the type, an enum without values, a misspelt type or key: each at the field."""
        found = problems_of(
            doc(f"roles:\n  r: {{instructions: x, output: {{f: {field}}}}}\nsteps:\n  a: {{role: r, task: t}}\n")
        )
        assert len(found) == 1, found
        ((where, path, message),) = found
        assert where.startswith("wf.yaml:4:") and path.startswith("roles.r.output.f")
        assert fragment in message

    def test_schema_accepts_both_forms(self) -> None:
        """The JSON Schema editors use takes a field as a type string or as a mapping."""
        schema = WorkflowSpec.model_json_schema(by_alias=True)
        field = schema["$defs"]["OutputField"]
        assert field["anyOf"][0]["type"] == "string"
        assert set(field["anyOf"][1]["properties"]) == {
            "type",
            "description",
            "minimum",
            "maximum",
            "min_items",
            "max_items",
            "values",
        }


class TestSafeYaml:
    def test_python_tag_is_rejected(self) -> None:
        """A tag that would construct a Python object is refused at its line, nothing is constructed."""
        assert_problems(
            doc("steps:\n  a: {role: writer, task: !!python/object/apply:os.system [echo hi]}\n"),
            ("wf.yaml:4:27", "steps.a.task", "unsupported YAML tag '!!python/object/apply:os.system'"),
        )

    def test_custom_tag_is_rejected(self) -> None:
        """Application tags are refused too."""
        assert_problems(
            doc("description: !secret x\nsteps:\n  a: {role: writer, task: t}\n"),
            ("wf.yaml:3:14", "description", "unsupported YAML tag '!secret'"),
        )

    def test_alias_bomb_fails(self) -> None:
        """A 9-level "billion laughs" is stopped by counting values while expanding aliases."""
        lines = [HEAD.rstrip("\n"), 'l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
        lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
        (problem,) = problems_of("\n".join(lines) + "\n")
        assert problem[2].startswith("the document holds more than 100000 values once its aliases")

    def test_recursive_alias_fails(self) -> None:
        """An alias inside its own anchor cannot expand forever."""
        assert_problems(doc("x: &a [*a]\n"), ("wf.yaml:3:4", "x", "nests deeper than 50 levels"))

    def test_depth_bomb_fails(self) -> None:
        """Deep nesting is refused while composing, before Python's recursion limit is reached."""
        (problem,) = problems_of(doc("steps: " + "[" * 100_000 + "]" * 100_000 + "\n"))
        assert problem[:2] == ("wf.yaml:3:57", "")
        assert "nests deeper than 50 levels" in problem[2]

    def test_large_text_is_refused_before_parsing(self) -> None:
        """A document over 1 MiB is refused without being parsed."""
        assert_problems(HEAD + "#" * (2 * MAX_BYTES), ("wf.yaml", "", "the file is larger than 1 MiB"))

    def test_large_file_is_refused(self, tmp_path: Path) -> None:
        """load_spec refuses a 2 MiB file (it reads no more than the limit)."""
        path = tmp_path / "big.yaml"
        path.write_bytes(HEAD.encode() + b"x: " + b"a" * (2 * MAX_BYTES) + b"\n")
        with pytest.raises(SpecError) as info:
            load_spec(path)
        assert [(p.file, p.message) for p in info.value.problems] == [
            (path, "the file is larger than 1 MiB; a workflow is far smaller — is it the right file?")
        ]

    def test_duplicate_keys_name_both_lines(self) -> None:
        """A key given twice is reported at the second, naming both lines."""
        assert_problems(
            doc("steps:\n  a: {role: writer, task: t}\n  a: {role: critic, task: t}\n"),
            ("wf.yaml:5:3", "steps.a", "duplicate key 'a' on lines 4 and 5"),
        )

    def test_non_utf8(self) -> None:
        """Bytes that are not UTF-8 are reported with their offset, line and column."""
        assert_problems(
            b"rolegraph: 1\nname: caf\xe9\n",
            ("wf.yaml:2:10", "", "the file is not UTF-8: byte 0xe9 at offset 22"),
        )

    def test_control_character(self) -> None:
        """Characters YAML forbids are reported at their position."""
        assert_problems("rolegraph: 1\nname: a\x00b\n", ("wf.yaml:2:8", "", "(#x0000)"))

    @pytest.mark.parametrize("text", ["", "   \n# only a comment\n"])
    def test_empty_document(self, text: str) -> None:
        """An empty file says how a workflow starts."""
        assert_problems(text, ("wf.yaml:1:1", "", "the file is empty; a workflow starts with 'rolegraph: 1'"))

    def test_not_a_mapping(self) -> None:
        """A document that is not a mapping says what it should be."""
        assert_problems("- a\n- b\n", ("wf.yaml:1:1", "", "a workflow must be a mapping of keys"))

    def test_syntax_error(self) -> None:
        """A YAML syntax error gives its line, column and the parser's words."""
        assert_problems(
            doc("steps:\n  a: {role: writer, task: t\n"),
            ("wf.yaml:5:1", "", "YAML syntax error: expected ',' or '}', but got '<stream end>'"),
        )

    def test_unquoted_brackets_in_flow_mapping(self) -> None:
        """Brackets inside `{ }` need quotes, and the message says so."""
        assert_problems(
            doc("roles:\n  r: {instructions: x, output: {ids: list[string]}}\nsteps:\n  a: {role: r, task: t}\n"),
            ("wf.yaml:4:42", "", "quote values that contain [ ] { } or commas"),
        )

    def test_tabs(self) -> None:
        """Tab indentation is explained."""
        assert_problems(doc("steps:\n\ta: 1\n"), ("wf.yaml:4:1", "", "indent with spaces"))

    def test_several_documents(self) -> None:
        """A second YAML document in the file is refused."""
        assert_problems(HEAD + "---\nx: 1\n", ("wf.yaml:3:1", "", "more than one YAML document"))

    def test_unreadable_file(self, tmp_path: Path) -> None:
        """A file that cannot be read is a SpecError naming it."""
        with pytest.raises(SpecError) as info:
            load_spec(tmp_path / "missing.yaml")
        (problem,) = info.value.problems
        assert problem.file == tmp_path / "missing.yaml"
        assert problem.message.startswith("cannot read the workflow file")
