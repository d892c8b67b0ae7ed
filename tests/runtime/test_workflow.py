"""Running a workflow end to end on scripted models: results, run folder, trace, inputs and failures."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

import rolegraph
from rolegraph.errors import GraphError, Problem, SpecError
from rolegraph.evals.record import record_from_dir
from rolegraph.models.model import ModelSettings, Usage
from rolegraph.runtime.result import RunResult
from rolegraph.tools.sources import Source
from rolegraph.traces.trace import SpanRecord, Trace
from rolegraph.viewer.data import RunReader
from rolegraph.workflow import Workflow
from rolegraph.workflows.spec import WorkflowSpec

NOTES = {
    "alpha2020": (
        {"title": "Alpha: Adapters for Everything", "first_author": "Ada Lovelace", "year": 2020, "venue": "NeurIPS"},
        "Alpha inserts small adapter layers into a frozen network. The adapters train only a few parameters per task.",
    ),
    "beta2021": (
        {"title": "Beta: Low-Rank Updates", "first_author": "Grace Hopper", "year": 2021, "venue": "ICLR"},
        "Beta represents each weight update as a product of two low-rank matrices. "
        "It merges the update into the weights after training.",
    ),
}

ALPHA_QUOTE = "The adapters train only a few parameters per task."
BETA_QUOTE = "It merges the update into the weights after training."
LONE = "a lone surrogate (bytes that are not UTF-8); pass UTF-8 text"

# One script per role: the for_each researchers run one at a time (max_concurrency: 1), so their script is in order.
SCRIPTS: dict[str, list[dict[str, Any]]] = {
    "planner": [{"final": {"questions": ["What do adapters do?", "What are low-rank updates?"]}, "thought": "plan"}],
    "researcher": [
        {"tool": "library_search", "args": {"query": "adapters"}, "thought": "search adapters"},
        {
            "final": {"claims": [{"source_id": "alpha2020", "evidence": ALPHA_QUOTE, "claim": "Adapters are cheap."}]},
            "thought": "found alpha",
        },
        {"tool": "library_search", "args": {"query": "low-rank"}, "thought": "search low-rank"},
        {
            "final": {"claims": [{"source_id": "beta2021", "evidence": BETA_QUOTE, "claim": "Updates merge."}]},
            "thought": "found beta",
        },
    ],
    "writer": [
        {
            "final": {
                "title": "Adapters",
                "paragraphs": [
                    {"citations": ["alpha2020"], "text": "Adapters are cheap."},
                    {"citations": ["beta2021", "alpha2020"], "text": "Updates merge."},
                ],
            },
            "thought": "write",
        }
    ],
}

WORKFLOW = """
rolegraph: 1
name: review
library: library
inputs:
  topic: {type: string, default: adapters}
  rounds: {type: integer, default: 1}
  strict: {type: boolean, default: false}
  tags: {type: list, default: [peft]}
  ratio: {type: number, default: 0.5}
models:
  default: scripted:planner.yaml
  research: scripted:researcher.yaml
  write: scripted:writer.yaml
roles:
  researcher: {model: research}
  writer: {model: write}
steps:
  plan:
    role: planner
    task: "Plan {{ inputs.topic }} in {{ inputs.rounds }} round(s)."
  research:
    role: researcher
    depends_on: [plan]
    for_each: {items: steps.plan.questions, as: question, max_concurrency: 1}
    task: "Answer: {{ question }}"
  write:
    role: writer
    depends_on: [research]
    task: "Write about {{ inputs.topic }}."
outputs:
"""

OUTPUTS = """
  report: {path: report.md, render: report, from: write}
  sources: {path: sources.json, render: sources}
"""


def write_project(folder: Path, scripts: dict[str, Any] | None = None, outputs: str = OUTPUTS) -> Path:
    """A workflow file beside its library and model scripts; returns the workflow's path."""
    library = folder / "library"
    library.mkdir(parents=True)
    for key, (facts, body) in NOTES.items():
        front = yaml.safe_dump({"key": key, **facts, "topic": "fine-tuning"}, sort_keys=False)
        (library / f"{key}.md").write_text(f"---\n{front}---\n\n{body}\n", encoding="utf-8")
    for role, script in {**SCRIPTS, **(scripts or {})}.items():
        (folder / f"{role}.yaml").write_text(yaml.safe_dump(script, sort_keys=False), encoding="utf-8")
    path = folder / "review.yaml"
    path.write_text(WORKFLOW + textwrap.dedent(outputs).strip("\n").replace("\n", "\n  ").join(["  ", "\n"]))
    return path


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Runs go under a temporary ROLEGRAPH_HOME."""
    folder = tmp_path / "home"
    monkeypatch.setenv("ROLEGRAPH_HOME", str(folder))
    return folder


@pytest.fixture
def workflow(tmp_path: Path) -> Workflow:
    return rolegraph.load(write_project(tmp_path / "project"))


def agents(trace: Trace) -> list[SpanRecord]:
    return [s for s in trace.walk() if s.kind == "invoke_agent"]


class TestCompletedRun:
    async def test_outputs_sources_and_steps(self, workflow: Workflow, home: Path) -> None:
        """A run completes: every step's output, the retrieved sources, and the report with numbered citations."""
        result = await workflow.run({"topic": "adapters"})
        assert (result.status, result.error) == ("completed", None)
        assert result.run_dir == home / "runs" / result.run_id
        assert {k: s.status for k, s in result.steps.items()} == dict.fromkeys(
            ("plan", "research", "write"), "completed"
        )
        assert result.step_outputs["research"] == [
            {"claims": [{"source_id": "alpha2020", "evidence": ALPHA_QUOTE, "claim": "Adapters are cheap."}]},
            {"claims": [{"source_id": "beta2021", "evidence": BETA_QUOTE, "claim": "Updates merge."}]},
        ]
        assert [(s.id, s.tool, s.text) for s in result.sources] == [
            ("alpha2020", "library_search", NOTES["alpha2020"][1]),
            ("beta2021", "library_search", NOTES["beta2021"][1]),
        ]
        assert result.outputs == {"report": result.run_dir / "report.md", "sources": result.run_dir / "sources.json"}
        assert result.outputs["report"].read_text() == (
            "# Adapters\n\n"
            "Adapters are cheap. [1]\n\n"
            "Updates merge. [2][1]\n\n"
            "## References\n\n"
            "[1] Ada Lovelace (2020). *Alpha: Adapters for Everything*. NeurIPS. `alpha2020`\n"
            "[2] Grace Hopper (2021). *Beta: Low-Rank Updates*. ICLR. `beta2021`\n"
        )
        assert [s["id"] for s in json.loads(result.outputs["sources"].read_text())] == ["alpha2020", "beta2021"]
        assert result.citations.model_dump() == {"total": 3, "unresolved": 0}

    async def test_usage_is_the_sum_of_the_chat_spans(self, workflow: Workflow) -> None:
        """The run's token usage equals the trace's chat spans summed, and the steps' usage summed."""
        result = await workflow.run()
        assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0
        assert result.usage == result.trace.usage()
        assert result.usage == sum((s.usage for s in result.steps.values()), Usage())

    async def test_every_scripted_call_is_used_once_by_its_role(self, workflow: Workflow) -> None:
        """Each role's model string gets its own scripted model; each script is played through exactly."""
        result = await workflow.run()
        chats = [s.name for s in result.trace.walk() if s.kind == "chat"]
        assert chats == [
            "chat scripted:planner.yaml",
            *["chat scripted:researcher.yaml"] * 4,
            "chat scripted:writer.yaml",
        ]

    async def test_trace_tree(self, workflow: Workflow) -> None:
        """The trace has one invoke_workflow root; each step's agents sit below it, tagged with step id and item."""
        result = await workflow.run()
        trace = result.trace
        (root,) = trace.roots
        assert (root.kind, root.name, root.status) == ("invoke_workflow", "invoke_workflow review", "ok")
        assert root.attributes["rolegraph.status"] == "completed"
        assert [
            (a.name, a.attributes["rolegraph.step.id"], a.attributes["rolegraph.step.item"]) for a in agents(trace)
        ] == [
            ("invoke_agent planner", "plan", None),
            ("invoke_agent researcher", "research", 0),
            ("invoke_agent researcher", "research", 1),
            ("invoke_agent writer", "write", None),
        ]
        for agent in agents(trace):
            parent = trace.spans[agent.parent_id or ""]
            if agent.attributes["rolegraph.step.id"] == "research":  # fanned out under the step's plan span
                assert (parent.kind, parent.name) == ("plan", "plan research")
                parent = trace.spans[parent.parent_id or ""]
            assert parent is root

    async def test_run_json_records_the_run(self, workflow: Workflow) -> None:
        """run.json holds the summary, workflow, file, typed inputs, model overrides, privacy, start time and how
        many sources the run retrieved."""
        result = await workflow.run({"rounds": "2"})
        recorded = json.loads((result.run_dir / "run.json").read_text())
        started = dt.datetime.fromisoformat(recorded.pop("started"))
        assert started.tzinfo == dt.UTC
        assert started <= dt.datetime.now(dt.UTC)
        assert recorded == {
            **json.loads(json.dumps(result.summary())),
            "workflow": "review",
            "workflow_file": str(workflow.path.resolve()) if workflow.path else None,
            "inputs": {"topic": "adapters", "rounds": 2, "strict": False, "tags": ["peft"], "ratio": 0.5},
            "overrides": {"model": None, "settings": {}},
            "privacy": "any",
            "sources": len(result.sources),
        }
        assert recorded["status"] == "completed"
        assert recorded["steps"] == {"plan": "completed", "research": "completed", "write": "completed"}

    async def test_run_sync_inside_a_running_loop_says_to_await(self, workflow: Workflow, tmp_path: Path) -> None:
        """Inside a running loop (as in Jupyter), `run_sync` says to `await wf.run()` instead, starts no run,
        and leaves no coroutine never awaited (warnings are errors in this suite)."""
        with pytest.raises(RuntimeError, match=r"use `await wf\.run\(\.\.\.\)` there instead"):
            workflow.run_sync({"topic": "low-rank"}, home=tmp_path / "home")
        assert not (tmp_path / "home").exists()

    @pytest.mark.parametrize("rounds", [2, 2**70])
    async def test_run_json_keeps_any_text_and_any_integer(self, workflow: Workflow, rounds: int) -> None:
        """run.json reads back the inputs it was given: text beyond ASCII, an integer past 64 bits (what its
        fast encoder refuses goes through the standard library's)."""
        topic = "adapters für Æ"
        result = await workflow.run({"topic": topic, "rounds": rounds})
        recorded = json.loads((result.run_dir / "run.json").read_bytes())
        assert (recorded["inputs"]["topic"], recorded["inputs"]["rounds"]) == (topic, rounds)

    def test_run_sync_and_home(self, workflow: Workflow, tmp_path: Path) -> None:
        """`run_sync` runs outside an event loop; `home=` puts the run folder elsewhere than ROLEGRAPH_HOME."""
        result = workflow.run_sync({"topic": "low-rank"}, home=tmp_path / "elsewhere")
        assert result.status == "completed"
        assert result.run_dir == (tmp_path / "elsewhere" / "runs" / result.run_id).absolute()
        assert result.trace.roots[0].attributes["rolegraph.inputs"]["topic"] == "low-rank"

    def test_load_returns_a_workflow(self, tmp_path: Path) -> None:
        """`rolegraph.load` gives a Workflow holding the parsed spec and its compiled graph."""
        path = write_project(tmp_path / "p")
        workflow = rolegraph.load(path)
        assert isinstance(workflow, Workflow)
        assert (workflow.path, workflow.base_dir, workflow.spec.name) == (path, path.parent, "review")
        assert sorted(workflow.graph.nodes) == ["plan", "research", "write"]

    def test_a_workflow_built_in_python_has_its_graph_validated(self) -> None:
        """A spec not read by the loader is still checked when compiled: a dependency cycle is refused."""
        spec = WorkflowSpec.model_validate(
            {
                "rolegraph": 1,
                "name": "wf",
                "steps": {
                    "a": {"role": "writer", "task": "t", "depends_on": ["b"]},
                    "b": {"role": "writer", "task": "t", "depends_on": ["a"]},
                },
            }
        )
        with pytest.raises(GraphError, match="cycle"):
            Workflow(spec)

    async def test_the_model_override_replaces_the_default_model(self, tmp_path: Path) -> None:
        """`model=` replaces the default model only; roles with their own model keep it."""
        path = write_project(tmp_path / "p", {"other": SCRIPTS["planner"]})
        result = await rolegraph.load(path).run(model="scripted:other.yaml")
        assert result.status == "completed"
        chats = {s.name for s in result.trace.walk() if s.kind == "chat"}
        assert chats == {"chat scripted:other.yaml", "chat scripted:researcher.yaml", "chat scripted:writer.yaml"}


class TestInputs:
    def test_strings_are_converted_to_declared_types(self, workflow: Workflow) -> None:
        """Command-line strings become integers, booleans, lists (comma-separated or JSON) and numbers."""
        given = {"topic": "x", "rounds": " 3 ", "strict": "Yes", "tags": "a, b ,c", "ratio": "1e-1"}
        assert workflow.resolve_inputs(given) == {
            "topic": "x",
            "rounds": 3,
            "strict": True,
            "tags": ["a", "b", "c"],
            "ratio": 0.1,
        }
        assert workflow.resolve_inputs({"tags": '["a, b", 2]', "strict": "0"}) == {
            "topic": "adapters",
            "rounds": 1,
            "strict": False,
            "tags": ["a, b", 2],
            "ratio": 0.5,
        }

    def test_typed_values_pass_through(self, workflow: Workflow) -> None:
        """Values already of the declared type (from Python) are kept."""
        given = {"rounds": 4, "strict": True, "tags": ["x"], "ratio": 2, "topic": 7}
        assert workflow.resolve_inputs(given) == {
            "topic": "7",
            "rounds": 4,
            "strict": True,
            "tags": ["x"],
            "ratio": 2.0,
        }

    @pytest.mark.parametrize(
        ("name", "value", "message"),
        [
            ("rounds", "three", "input 'rounds' must be an integer, got 'three'"),
            ("rounds", "2.5", "input 'rounds' must be an integer, got '2.5'"),
            ("rounds", 2.5, "input 'rounds' must be an integer, got 2.5"),
            ("rounds", True, "input 'rounds' must be an integer, got True"),
            ("strict", "maybe", "input 'strict' must be a boolean, got 'maybe'"),
            ("tags", "[1, 2", "input 'tags' must be a list, got '[1, 2'"),
            ("ratio", "half", "input 'ratio' must be a number, got 'half'"),
            ("topic", "ab\ud800", f"input 'topic' is not valid text: '\\ud800' at position 2 is {LONE}"),
            ("tags", ["ok", {"k": "\udcff!"}], f"input 'tags' is not valid text: '\\udcff' at position 0 is {LONE}"),
        ],
    )
    def test_bad_values_are_spec_errors(self, workflow: Workflow, name: str, value: Any, message: str) -> None:
        """A value that does not convert, or holds text that is not UTF-8 (a lone surrogate, even nested), is a
        SpecError naming the input, its type and the value."""
        with pytest.raises(SpecError) as info:
            workflow.resolve_inputs({name: value})
        assert info.value.problems == [Problem(message, path=f"inputs.{name}")]

    def test_every_input_problem_is_reported_together(self, tmp_path: Path) -> None:
        """Unknown inputs, bad values and missing required inputs come in one SpecError."""
        path = write_project(tmp_path / "p")
        path.write_text(path.read_text().replace("topic: {type: string, default: adapters}", "topic: {type: string}"))
        with pytest.raises(SpecError) as info:
            rolegraph.load(path).resolve_inputs({"colour": "red", "rounds": "many"})
        assert [str(p) for p in info.value.problems] == [
            "<workflow>: unknown input 'colour'; the workflow's inputs are: topic, rounds, strict, tags, ratio",
            "<workflow>: input 'topic' is required (pass --input topic=...)",
            "<workflow>: input 'rounds' must be an integer, got 'many' (inputs.rounds)",
        ]

    async def test_bad_inputs_start_no_run(self, workflow: Workflow, home: Path) -> None:
        """A run with bad inputs raises SpecError before creating a run folder."""
        with pytest.raises(SpecError, match="unknown input 'colour'"):
            await workflow.run({"colour": "red"})
        assert not (home / "runs").exists()


class TestFailedRun:
    async def test_failing_step_fails_the_run_and_keeps_completed_outputs(self, tmp_path: Path) -> None:
        """A step that fails makes the run `failed` with an error naming it; outputs of finished steps are written."""
        outputs = OUTPUTS + "  title: {path: title.txt, render: template, template: '{{ steps.write.title }}'}\n"
        path = write_project(tmp_path / "p", {"writer": [{"text": "not JSON at all"}]}, outputs)
        result = await rolegraph.load(path).run()
        assert result.status == "failed"
        assert result.error == "step 'write' failed: scripted model has no response left for call 2"
        assert {k: s.status for k, s in result.steps.items()} == {
            "plan": "completed",
            "research": "completed",
            "write": "failed",
        }
        assert result.outputs == {"sources": result.run_dir / "sources.json"}
        assert [s["id"] for s in json.loads(result.outputs["sources"].read_text())] == ["alpha2020", "beta2021"]
        assert not (result.run_dir / "report.md").exists()
        assert not (result.run_dir / "title.txt").exists()
        (root,) = result.trace.roots
        assert (root.status, root.error) == ("failed", result.error)
        assert result.usage == result.trace.usage()
        recorded = json.loads((result.run_dir / "run.json").read_text())
        assert (recorded["status"], recorded["error"]) == ("failed", result.error)

    async def test_dependants_of_a_failed_step_are_skipped(self, tmp_path: Path) -> None:
        """When the second researcher fails, the writer never runs, and the error names the researcher step."""
        path = write_project(tmp_path / "p", {"researcher": SCRIPTS["researcher"][:2]})
        result = await rolegraph.load(path).run()
        assert result.status == "failed"
        assert result.error == "step 'research' failed: scripted model has no response left for call 3"
        assert {k: (s.status, s.error) for k, s in result.steps.items()} == {
            "plan": ("completed", None),
            "research": ("failed", "scripted model has no response left for call 3"),
            "write": ("skipped", "upstream step 'research' failed"),
        }
        assert result.outputs == {"sources": result.run_dir / "sources.json"}
        assert [s.id for s in result.sources] == ["alpha2020"]
        assert [(a.attributes["rolegraph.step.id"], a.status) for a in agents(result.trace)] == [
            ("plan", "ok"),
            ("research", "ok"),
            ("research", "error"),
        ]

    async def test_result_is_returned_not_raised(self, tmp_path: Path) -> None:
        """A failed run is a RunResult whose summary says failed."""
        path = write_project(tmp_path / "p", {"planner": [{"text": "garbage"}, {"text": "garbage"}]})
        result = await rolegraph.load(path).run()
        assert isinstance(result, RunResult)
        assert result.summary()["status"] == "failed"
        assert result.summary()["steps"] == {"plan": "failed", "research": "skipped", "write": "skipped"}


class TestSettingsOverride:
    async def test_settings_reach_the_default_model_only(
        self, workflow: Workflow, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """`run(settings=...)` lays its fields over the default model's; roles on other models keep theirs."""
        from rolegraph.models.registry import resolve_model
        from rolegraph.models.scripted import ScriptedModel
        from rolegraph.runtime import executor

        made: dict[str, ScriptedModel] = {}

        def recording(model_string: str, *, base_dir: Path | None = None, options: Any = None) -> Any:
            model = made[model_string] = resolve_model(model_string, base_dir=base_dir, options=options)
            model.keep_calls = True  # a workflow's scripted model keeps no call records by default
            return model

        monkeypatch.setattr(executor, "resolve_model", recording)
        result = await workflow.run(settings=ModelSettings(temperature=0.7, seed=3))
        assert result.status == "completed", result.error
        planner = made["scripted:planner.yaml"].calls
        assert planner and all((c.settings.temperature, c.settings.seed) == (0.7, 3) for c in planner)
        others = made["scripted:researcher.yaml"].calls + made["scripted:writer.yaml"].calls
        assert others and all((c.settings.temperature, c.settings.seed) == (None, None) for c in others)
        summary = json.loads((result.run_dir / "run.json").read_text())
        assert summary["overrides"] == {"model": None, "settings": {"temperature": 0.7, "seed": 3}}

    async def test_unset_fields_keep_the_workflow_settings(self, tmp_path: Path) -> None:
        """An override of temperature alone leaves the workflow's seed and max_tokens; the trace shows both."""
        path = write_project(tmp_path / "p")
        text = path.read_text().replace(
            "  default: scripted:planner.yaml",
            "  default: {model: scripted:planner.yaml, temperature: 0.2, seed: 42, max_tokens: 99}",
        )
        path.write_text(text)
        result = await rolegraph.load(path).run(settings=ModelSettings(temperature=0.0))
        chats = [
            s for s in result.trace.walk() if s.kind == "chat" and "planner" in s.attributes["gen_ai.request.model"]
        ]
        assert chats and all(
            (s.attributes["gen_ai.request.temperature"], s.attributes["gen_ai.request.seed"]) == (0.0, 42)
            for s in chats
        )
        assert all(s.attributes["gen_ai.request.max_tokens"] == 99 for s in chats)


class TestSourcesFile:
    async def test_sources_with_text_are_kept(self, workflow: Workflow) -> None:
        """Every retrieved source, with its full text, is written to sources.jsonl in the run folder."""
        result = await workflow.run()
        lines = (result.run_dir / "sources.jsonl").read_text(encoding="utf-8").splitlines()
        kept = [Source.model_validate_json(line) for line in lines]
        assert kept == result.sources
        assert {s.id for s in kept} == {"alpha2020", "beta2021"}
        assert any(ALPHA_QUOTE in s.text for s in kept)
        summary = json.loads((result.run_dir / "run.json").read_text())
        assert (summary["overrides"], summary["sources"]) == ({"model": None, "settings": {}}, 2)

    async def test_a_run_with_no_sources_writes_no_file_and_reads_back_with_none(self, tmp_path: Path) -> None:
        """A run that retrieved nothing writes no sources.jsonl, run.json says it has no sources, and every reader
        of the folder (re-scoring, the viewer) reads it back with none."""
        (tmp_path / "item_steps.py").write_text(ITEM_STEPS)
        path = tmp_path / "wf.yaml"
        path.write_text("rolegraph: 1\nname: bare\nsteps:\n  one: {function: item_steps:check, args: {word: alpha}}\n")
        workflow = rolegraph.load(path)
        result = await workflow.run(home=tmp_path / "home")
        assert (result.status, result.sources) == ("completed", [])
        assert not result.folder.sources.exists()
        assert json.loads(result.folder.summary.read_text())["sources"] == 0
        assert record_from_dir(result.run_dir, workflow).sources == []
        view = RunReader(tmp_path / "home" / "runs").view(result.run_id)
        assert view is not None and view["sources"] == {}


ITEM_STEPS = '''
def check(word: str) -> dict:
    """Fails on words with a digit (a bad item), answers the others."""
    if any(ch.isdigit() for ch in word):
        raise ValueError(f"{word!r} is not a word")
    return {"word": word.upper()}
'''


class TestItemErrors:
    async def test_skipped_items_reach_the_result_and_run_json(self, tmp_path: Path) -> None:
        """A `for_each` step with `on_item_error: skip` completes the run; its failed items are in the step's
        state, the result's summary and run.json, each with its error."""
        (tmp_path / "item_steps.py").write_text(ITEM_STEPS)
        (tmp_path / "unused.yaml").write_text("[]\n")
        path = tmp_path / "wf.yaml"
        path.write_text(
            textwrap.dedent(
                """\
                rolegraph: 1
                name: items
                models: {default: "scripted:unused.yaml"}
                inputs: {words: {type: list, default: [alpha, b2, gamma]}}
                steps:
                  each:
                    function: item_steps:check
                    for_each: {items: inputs.words, as: word, on_item_error: skip}
                    args: {word: "{{ word }}"}
                """
            )
        )
        result = await rolegraph.load(path).run(home=tmp_path / "home")
        assert result.status == "completed"
        assert result.steps["each"].output == [{"word": "ALPHA"}, {"word": "GAMMA"}]
        error = "step 'each': item_steps:check raised ValueError: 'b2' is not a word"
        skipped = [{"index": 1, "item": "b2", "error": error}]
        assert result.summary()["skipped_items"] == {"each": skipped}
        assert json.loads(result.folder.summary.read_text())["skipped_items"] == {"each": skipped}
