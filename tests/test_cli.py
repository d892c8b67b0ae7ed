"""The command line: exit codes, what goes to stdout and stderr, and each command's output."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from projects import isolated_home, write_library, write_script
from rolegraph.cli import app

ITEM_STEPS = '''
def check(word: str) -> dict:
    """Fails on words with a digit (a bad item), answers the others."""
    if any(ch.isdigit() for ch in word):
        raise ValueError(f"{word!r} is not a word")
    return {"word": word.upper()}
'''
ITEMS_WORKFLOW = """\
rolegraph: 1
name: items
inputs: {words: {type: list, default: [alpha, b2, gamma]}}
steps:
  each:
    function: item_steps:check
    for_each: {items: inputs.words, as: word, on_item_error: skip}
    args: {word: "{{ word }}"}
"""

RUN_KEYS = {
    "run_id",
    "status",
    "outputs",
    "usage",
    "trace",
    "citations",
    "steps",
    "skipped_items",
    "error",
    "duration_s",
    "resumed_steps",
    "executed_steps",
    "cache",
    "replayed_calls",
    "resent_calls",
}

NOTES = {
    "alpha2020": "Alpha inserts small adapter layers into a frozen network. The adapters train only a few weights.",
    "beta2021": "Beta writes each weight update as a product of low-rank matrices. The update merges after training.",
}
RESEARCHER = [
    {"tool": "library_search", "args": {"query": "adapters low-rank"}, "thought": "search the library"},
    {
        "final": {
            "claims": [
                {"source_id": "alpha2020", "evidence": "The adapters train only a few weights.", "claim": "Cheap."},
                {"source_id": "beta2021", "evidence": "The update merges after training.", "claim": "Mergeable."},
            ]
        },
        "thought": "two findings",
    },
]
WRITER = [
    {
        "final": {
            "title": "Review",
            "paragraphs": [
                {"citations": ["alpha2020"], "text": "Adapters are cheap."},
                {"citations": ["beta2021"], "text": "Updates merge."},
            ],
        },
        "thought": "the report, from the findings",
    }
]
WORKFLOW = """\
rolegraph: 1
name: review
library: library
inputs:
  topic: {type: string, default: adapters}
  depth: {type: integer, default: 1}
models:
  default: scripted:researcher.yaml
  write: scripted:writer.yaml
roles:
  writer: {model: write}
steps:
  research:
    role: researcher
    task: "Research {{ inputs.topic }} to depth {{ inputs.depth }}."
  write:
    role: writer
    depends_on: [research]
    task: "Write about {{ inputs.topic }}."
outputs:
  report: {path: report.md, render: report, from: write}
  sources: {path: sources.json, render: sources}
"""
BAD_WORKFLOW = """\
rolegraph: 1
name: bad
steps:
  a: {role: planner, task: x, depends_on: [nope]}
  b: {role: wizard, task: y}
  c: {role: planner, task: "{{ steps.zzz.out }}", bogus: 1}
"""


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Runs go under a temporary ROLEGRAPH_HOME; rich prints wide, plain lines."""
    return isolated_home(tmp_path, monkeypatch)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A workflow file beside its two-note library and the scripts of its two models."""
    folder = tmp_path / "project"
    write_library(folder, NOTES)
    write_script(folder, "researcher", RESEARCHER)
    write_script(folder, "writer", WRITER)
    (folder / "review.yaml").write_text(WORKFLOW)
    return folder / "review.yaml"


def cli(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def run_json(*args: str | Path) -> tuple[Result, dict[str, Any]]:
    result = cli("run", *args, "--json")
    return result, json.loads(result.stdout)


class TestValidate:
    def test_valid_file(self, project: Path) -> None:
        """A valid file exits 0 and prints one line naming the workflow, its step count and inputs."""
        result = cli("validate", project)
        assert (result.exit_code, result.stderr) == (0, "")
        assert result.stdout == f"ok {project}: workflow 'review', 2 steps, inputs: topic, depth\n"

    def test_invalid_file_lists_every_problem_at_its_place(self, tmp_path: Path) -> None:
        """An invalid file exits 2; stderr lists every problem as file:line:col, then the count; no traceback."""
        path = tmp_path / "bad.yaml"
        path.write_text(BAD_WORKFLOW)
        result = cli("validate", path)
        assert (result.exit_code, result.stdout) == (2, "")
        lines = result.stderr.splitlines()
        assert [re.sub(r": .*", "", line) for line in lines] == [
            f"error {path}:4:44",
            f"error {path}:5:13",
            f"error {path}:6:28",
            f"error {path}:6:51",
            "4 problem(s) found.",
        ]
        assert "depends on unknown step 'nope'" in lines[0]
        assert "unknown role 'wizard'" in lines[1]
        assert "no step 'zzz'" in lines[2]
        assert "unknown key 'bogus'" in lines[3]
        assert "Traceback" not in result.output

    def test_privacy_local_only_is_reported(self, project: Path) -> None:
        """--privacy local_only on a workflow of local models validates, and the ok output says so."""
        result = cli("validate", project, "--privacy", "local_only")
        assert (result.exit_code, result.stderr) == (0, "")
        assert result.stdout.splitlines()[1] == (
            "privacy: local_only (every model and tool keeps the workflow's content on this machine)"
        )

    def test_output_checks_are_listed(self, project: Path) -> None:
        """validate lists each step's output checks, its role's first."""
        text = WORKFLOW.replace("  writer: {model: write}", "  writer: {model: write, checks: [no_pii]}")
        text = text.replace(
            "    depends_on: [research]\n", "    depends_on: [research]\n    checks: [{max_length: 900}]\n"
        )
        project.write_text(text)
        result = cli("validate", project)
        assert (result.exit_code, result.stderr) == (0, "")
        assert result.stdout.splitlines()[1] == "output checks: write (no_pii, max_length 900)"

    def test_privacy_refuses_a_hosted_model_at_its_line(self, project: Path) -> None:
        """--privacy local_only refuses a hosted model entry at file:line, exit 2."""
        project.write_text(WORKFLOW.replace("write: scripted:writer.yaml", "write: openai:gpt-4o-mini"))
        result = cli("validate", project, "--privacy", "local_only")
        assert result.exit_code == 2
        assert result.stderr.startswith(
            f"error {project}:9:10: privacy is local_only (--privacy), so model 'openai:gpt-4o-mini' cannot be used"
        )

    def test_problem_text_is_printed_verbatim(self, tmp_path: Path) -> None:
        """Brackets from the file (rich markup syntax) are printed as they are, not interpreted or crashed on."""
        path = tmp_path / "markup.yaml"
        path.write_text('rolegraph: 1\nname: m\nsteps:\n  a: {role: planner, task: x, "[/oops]": 1, "[bold]": 2}\n')
        result = cli("validate", path)
        assert result.exit_code == 2
        assert "unknown key '[/oops]'" in result.stderr
        assert "unknown key '[bold]'" in result.stderr
        assert result.exception is None or isinstance(result.exception, SystemExit)

    def test_every_mistake_a_run_would_meet_in_one_pass(self, tmp_path: Path) -> None:
        """A tool written with a dot for its colon, a for_each written as a template, a misspelt model
        provider and a route without its bound: all four at their file:line:col in one pass, exit 2."""
        (tmp_path / "my_tools.py").write_text("def glossary(term: str) -> str:\n    return term\n")
        path = tmp_path / "wf.yaml"
        path.write_text(
            "rolegraph: 1\nname: mistakes\nmodels: {default: 'opneai:gpt-4o-mini'}\n"
            "roles:\n  scout: {instructions: Look up., output: {notes: string}, tools: [my_tools.glossary]}\n"
            "steps:\n  plan: {role: planner, task: plan}\n"
            "  each:\n    role: scout\n    task: '{{ q }}'\n    depends_on: [plan]\n"
            "    for_each: {items: '{{ steps.plan.questions }}', as: q}\n"
            "    routes: [{when: 'output | length == 0', goto: each}]\n"
        )
        result = cli("validate", path)
        assert (result.exit_code, result.stdout) == (2, "")
        lines = result.stderr.splitlines()
        assert [re.sub(r"(:\d+:\d+): .*", r"\1", line) for line in lines] == [
            f"error {path}:3:19",
            f"error {path}:5:68",
            f"error {path}:12:23",
            f"error {path}:13:14",
            "4 problem(s) found.",
        ]
        assert "did you mean 'openai:'?" in lines[0]
        assert "did you mean 'my_tools:glossary'?" in lines[1]
        assert "items is an expression, not a template: drop the {{ }}" in lines[2]
        assert "missing required key 'max_times'" in lines[3]

    def test_warnings_alone_exit_zero(self, project: Path) -> None:
        """Warnings (here: an input no template reads) are printed at file:line on stderr; the exit is 0."""
        project.write_text(project.read_text().replace("to depth {{ inputs.depth }}", ""))
        result = cli("validate", project)
        assert result.exit_code == 0
        assert result.stderr == (
            f"warning {project}:6:3: input 'depth' is never read: no template uses inputs.depth; use it in a task, "
            "or remove it (inputs.depth)\n"
        )
        assert result.stdout.startswith(f"ok {project}: workflow 'review'")

    def test_missing_file(self, tmp_path: Path) -> None:
        """A file that does not exist exits 2 with a message naming it."""
        result = cli("validate", tmp_path / "nope.yaml")
        assert result.exit_code == 2
        assert f"{tmp_path / 'nope.yaml'}: cannot read the workflow file" in result.stderr


class TestGraph:
    def test_mermaid(self, project: Path) -> None:
        """`graph` prints the step graph as a Mermaid flowchart (the default format)."""
        result = cli("graph", project)
        assert (result.exit_code, result.stderr) == (0, "")
        assert result.stdout == (
            "flowchart TD\n"
            '    research["research<br/>researcher"]\n'
            '    write["write<br/>writer"]\n'
            "    research --> write\n"
        )
        assert cli("graph", project, "--format", "mermaid").stdout == result.stdout

    def test_dot(self, project: Path) -> None:
        """`graph --format dot` prints Graphviz DOT."""
        result = cli("graph", project, "--format", "dot")
        assert result.exit_code == 0
        assert result.stdout == (
            'digraph "review" {\n'
            "    node [shape=box];\n"
            '    "research" [label="research\\nresearcher"];\n'
            '    "write" [label="write\\nwriter"];\n'
            '    "research" -> "write";\n'
            "}\n"
        )

    def test_unknown_format(self, project: Path) -> None:
        """An unknown format exits 2 and says which formats exist."""
        result = cli("graph", project, "-f", "svg")
        assert (result.exit_code, result.stdout) == (2, "")
        assert "'svg' is not one of 'mermaid', 'dot'" in result.stderr


class TestSchema:
    def test_prints_the_workflow_json_schema(self) -> None:
        """`schema` prints a JSON Schema (draft 2020-12) describing workflow documents."""
        result = cli("schema")
        assert result.exit_code == 0
        document = json.loads(result.stdout)
        assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert document["title"] == "rolegraph workflow"
        assert document["required"] == ["rolegraph", "name", "steps"]
        assert document["properties"]["steps"]["type"] == "object"
        assert set(document["properties"]) == {
            "rolegraph",
            "name",
            "description",
            "library",
            "inputs",
            "models",
            "roles",
            "steps",
            "outputs",
            "settings",
        }


class TestRun:
    def test_json_summary_of_a_completed_run(self, project: Path, home: Path) -> None:
        """`run --json` exits 0 and prints exactly one JSON object; its files exist; progress goes to stderr."""
        result, summary = run_json(project)
        assert result.exit_code == 0
        assert set(summary) == RUN_KEYS
        run_dir = home / "runs" / summary["run_id"]
        assert (summary["status"], summary["error"]) == ("completed", None)
        assert summary["outputs"] == {"report": str(run_dir / "report.md"), "sources": str(run_dir / "sources.json")}
        assert all(Path(p).is_file() for p in summary["outputs"].values())
        assert Path(summary["trace"]) == run_dir / "trace.jsonl"
        assert Path(summary["trace"]).is_file()
        assert summary["usage"]["input_tokens"] > 0 and summary["usage"]["output_tokens"] > 0
        assert set(summary["usage"]) == {"input_tokens", "output_tokens"}
        assert summary["citations"] == {"total": 2, "unresolved": 0}
        assert summary["steps"] == {"research": "completed", "write": "completed"}
        assert "▶ research (researcher)" in result.stderr
        assert "citations  2 (0 unresolved)" in result.stderr

    def test_json_stays_one_document_when_the_work_prints(self, home: Path, tmp_path: Path) -> None:
        """Whatever prints to stdout while the run works (a step; a Ray driver printing a lost node) goes to
        stderr: `run --json` stdout is still exactly one JSON object."""
        folder = tmp_path / "noisy"
        folder.mkdir()
        (folder / "noisy_steps.py").write_text("async def shout() -> dict:\n    print('NOISE')\n    return {}\n")
        (folder / "wf.yaml").write_text("rolegraph: 1\nname: noisy\nsteps:\n  s: {function: 'noisy_steps:shout'}\n")
        result = cli("run", folder / "wf.yaml", "--json", "--quiet")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["status"] == "completed"
        assert "NOISE" in result.stderr

    def test_quiet_prints_no_progress(self, project: Path) -> None:
        """`--quiet` drops the live progress lines; the closing table remains on stderr."""
        result = cli("run", project, "--quiet")
        assert result.exit_code == 0
        assert result.stdout == ""
        assert "▶" not in result.stderr
        assert "status     completed" in result.stderr

    def test_inputs_are_passed_and_typed(self, project: Path, home: Path) -> None:
        """`--input name=value` values reach the run, converted to their declared types."""
        result, summary = run_json(project, "-i", "topic=low-rank = cheap", "--input", "depth=3")
        assert result.exit_code == 0
        recorded = json.loads((home / "runs" / summary["run_id"] / "run.json").read_text())
        assert recorded["inputs"] == {"topic": "low-rank = cheap", "depth": 3}

    def test_exhausted_script_fails_the_run(self, project: Path) -> None:
        """A model whose script runs out (after garbage) fails the run: status failed, exit 1, error names the step."""
        write_script(project.parent, "writer", [{"text": "this is not JSON"}])
        result, summary = run_json(project)
        assert result.exit_code == 1
        assert summary["status"] == "failed"
        assert summary["error"] == "step 'write' failed: scripted model has no response left for call 2"
        assert summary["steps"] == {"research": "completed", "write": "failed"}
        assert set(summary["outputs"]) == {"sources"}

    def test_model_override(self, project: Path) -> None:
        """`--model` replaces the default model string for the run."""
        write_script(project.parent, "other", RESEARCHER)
        write_script(project.parent, "researcher", [])
        result, summary = run_json(project, "--model", "scripted:other.yaml")
        assert (result.exit_code, summary["status"]) == (0, "completed")

    def test_privacy_refuses_a_hosted_model_override(self, project: Path, home: Path) -> None:
        """`--privacy local_only --model openai:...` exits 2 naming the model; no run is started."""
        result = cli("run", project, "--privacy", "local_only", "--model", "openai:gpt-4o-mini")
        assert result.exit_code == 2
        assert (
            f"error {project}: --model / model=: settings.privacy is local_only, so model 'openai:gpt-4o-mini' "
            "cannot be used"
        ) in result.stderr
        assert not (home / "runs").is_dir() or not any((home / "runs").iterdir())

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--input", "topic"], "--input expects name=value, got 'topic'"),
            (["--input", "=x"], "--input expects name=value, got '=x'"),
            (["--input", "[/x]"], "--input expects name=value, got '[/x]'"),
            (["--input", "colour=red"], "unknown input 'colour'; the workflow's inputs are: topic, depth"),
            (["--input", "depth=deep"], "input 'depth' must be an integer, got 'deep' (inputs.depth)"),
            (["--input", "topic=ab\udcffc"], "input 'topic' is not valid text: '\\udcff' at position 2 is a lone"),
        ],
    )
    def test_bad_input_exits_2_without_running(self, project: Path, home: Path, args: list[str], message: str) -> None:
        """A malformed, unknown or ill-typed input, or one that is not UTF-8 text (bytes the shell passed that are not
        UTF-8 arrive as lone surrogates), exits 2 with the problem on stderr, and no run is started."""
        result = cli("run", project, "--json", *args)
        assert (result.exit_code, result.stdout) == (2, "")
        assert message in result.stderr
        assert not (home / "runs").exists()

    def test_invalid_workflow_exits_2(self, tmp_path: Path) -> None:
        """Running an invalid file exits 2 with its problems, like validate."""
        path = tmp_path / "bad.yaml"
        path.write_text(BAD_WORKFLOW)
        result = cli("run", path)
        assert result.exit_code == 2
        assert result.stderr.endswith("4 problem(s) found.\n")


class TestSkippedItems:
    def test_run_and_trace_show_the_skipped_item(self, tmp_path: Path) -> None:
        """A for_each item skipped under `on_item_error: skip` is named with its error in `run`'s closing table
        and on its step's `plan` line in `trace`; the run completes (exit 0)."""
        (tmp_path / "item_steps.py").write_text(ITEM_STEPS)
        path = tmp_path / "items.yaml"
        path.write_text(ITEMS_WORKFLOW)
        result = cli("run", path, "--quiet")
        assert result.exit_code == 0, result.output
        said = " ".join(result.stderr.split())  # the table wraps long cells
        assert "skipped each[1] b2: step 'each': item_steps:check raised ValueError: 'b2' is not a word" in said
        trace = cli("trace", "last").stdout
        plan = next(line for line in trace.splitlines() if "plan each" in line)
        assert plan.endswith("1 item(s) skipped: 1")


class TestTrace:
    def test_trace_of_a_run(self, project: Path) -> None:
        """`trace <run_id>` prints the tree with the workflow, each step's agent and tool, and the token totals."""
        _, summary = run_json(project)
        result = cli("trace", summary["run_id"])
        assert result.exit_code == 0
        lines = result.stdout.splitlines()
        assert lines[0] == f"trace {summary['trace']}"
        names = [re.sub(r"^[\s│├└─]+", "", line).split("  ")[0] for line in lines[1:-1]]
        assert names == [
            "invoke_workflow review",
            "invoke_agent researcher [research]",
            "react_step 1",
            "chat scripted:researcher.yaml",
            "execute_tool library_search",
            "react_step 2",
            "chat scripted:researcher.yaml",
            "invoke_agent writer [write]",
            "react_step 1",
            "chat scripted:writer.yaml",
        ]
        usage = summary["usage"]
        assert lines[-1] == f"10 spans, {usage['input_tokens']} input + {usage['output_tokens']} output tokens"

    def test_thoughts(self, project: Path) -> None:
        """`--thoughts` adds each step's thought to the tree."""
        _, summary = run_json(project)
        assert "thought: search the library" not in cli("trace", summary["run_id"]).stdout
        result = cli("trace", summary["run_id"], "--thoughts")
        assert "thought: search the library" in result.stdout
        assert "thought: the report, from the findings" in result.stdout

    def test_last_is_the_run_started_last(self, project: Path) -> None:
        """`trace last` shows the newest run, even when its id sorts before an older one's (same second)."""
        ids: list[str] = []
        # Ids carry whole seconds and a random suffix: run until the newest id sorts below an older one.
        while not ids or ids[-1] == max(ids):
            assert len(ids) < 40, "40 runs, none sorting below an earlier one of the same second"
            ids.append(run_json(project, "--quiet")[1]["run_id"])
        result = cli("trace", "last")
        assert result.exit_code == 0
        assert result.stdout.splitlines()[0].endswith(f"/runs/{ids[-1]}/trace.jsonl")

    def test_prefix_unknown_and_ambiguous(self, project: Path, home: Path) -> None:
        """A unique prefix finds its run; an unknown id or an ambiguous prefix exits 2."""
        _, first = run_json(project)
        found = cli("trace", first["run_id"][:-2])
        assert found.exit_code == 0 and first["run_id"] in found.stdout
        unknown = cli("trace", "nope")
        assert unknown.exit_code == 2
        assert unknown.stderr == f"error no run 'nope' in {home / 'runs'}\n"
        run_json(project)
        ambiguous = cli("trace", "2")
        assert (ambiguous.exit_code, ambiguous.stderr) == (2, "error '2' is ambiguous\n")

    def test_no_runs_yet(self, home: Path) -> None:
        """`trace last` before any run exits 2."""
        result = cli("trace", "last")
        assert (result.exit_code, result.stderr) == (2, f"error no run 'last' in {home / 'runs'}\n")


class TestConsoleScript:
    @pytest.mark.parametrize(
        ("writer", "code", "status"), [(WRITER, 0, "completed"), ([{"text": "garbage"}], 1, "failed")]
    )
    def test_exit_codes_of_the_installed_command(
        self, project: Path, home: Path, writer: list[dict[str, Any]], code: int, status: str
    ) -> None:
        """The installed `rolegraph` script exits 0 for a completed run and 1 for a failed one, JSON on stdout."""
        write_script(project.parent, "writer", writer)
        env = {**os.environ, "ROLEGRAPH_HOME": str(home)}
        command = Path(sys.executable).parent / "rolegraph"
        proc = subprocess.run(
            [command, "run", project, "--json"], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert proc.returncode == code, proc.stderr
        assert json.loads(proc.stdout)["status"] == status

    def test_bad_file_exits_2_without_traceback(self, tmp_path: Path) -> None:
        """`python -m rolegraph validate` on an invalid file exits 2 with no traceback."""
        path = tmp_path / "bad.yaml"
        path.write_text(BAD_WORKFLOW)
        proc = subprocess.run(
            [sys.executable, "-m", "rolegraph", "validate", path], capture_output=True, text=True, timeout=120
        )
        assert (proc.returncode, proc.stdout) == (2, "")
        assert proc.stderr.endswith("4 problem(s) found.\n")
        assert "Traceback" not in proc.stderr
