"""The command line for recorded runs: `runs`, `runs prune`, `trace` flags, `trace diff` and `trace export`."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from projects import isolated_home, write_library, write_script
from rolegraph.cli import app
from rolegraph.layout import RunFolder
from rolegraph.traces.index_writer import drain
from rolegraph.traces.store import TraceStore

NOTES = {
    "alpha2020": "Alpha inserts small adapter layers into a frozen network. The adapters train only a few weights.",
    "beta2021": "Beta writes each weight update as a product of low-rank matrices. The update merges after training.",
}
CLAIMS = [
    {"source_id": "alpha2020", "evidence": "The adapters train only a few weights.", "claim": "Cheap."},
    {"source_id": "beta2021", "evidence": "The update merges after training.", "claim": "Mergeable."},
]


def researcher(query: str) -> list[dict[str, Any]]:
    return [
        {"tool": "library_search", "args": {"query": query}, "thought": "search the library"},
        {"final": {"claims": CLAIMS}, "thought": "two findings"},
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
models:
  default: scripted:researcher.yaml
  write: scripted:writer.yaml
roles:
  writer: {model: write}
steps:
  research: {role: researcher, task: "Research adapters."}
  write: {role: writer, depends_on: [research], task: "Write about adapters."}
outputs:
  report: {path: report.md, render: report, from: write}
"""

ITEMS_WORKFLOW = """\
rolegraph: 1
name: items
library: library
inputs:
  queries: {type: list, default: [adapters, low-rank]}
models: {default: "scripted:researcher.yaml"}
steps:
  research:
    role: researcher
    for_each: {items: inputs.queries, as: query, max_concurrency: 1}
    task: "Research {{ query }}."
"""
"""A for_each step over two queries; one item at a time, so the script's answers go to the items in order."""

TOOL_ITEMS_WORKFLOW = """\
rolegraph: 1
name: tool_items
library: library
inputs:
  queries: {type: list, default: [adapters, low-rank]}
steps:
  each:
    tool: library_search
    for_each: {items: inputs.queries, as: query}
    args: {query: "{{ query }}", max_results: 1}
"""
"""A for_each tool step: no model, one library search per query."""


def searched(query: str) -> list[dict[str, Any]]:
    """A researcher's script for one item: search `query`, then answer with no findings."""
    return [
        {"tool": "library_search", "args": {"query": query}, "thought": "search"},
        {"final": {"claims": []}, "thought": "nothing to claim"},
    ]


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Runs go under a temporary ROLEGRAPH_HOME; rich prints wide, plain lines."""
    return isolated_home(tmp_path, monkeypatch)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A two-step workflow beside its two-note library and the scripts of its two models."""
    folder = tmp_path / "project"
    write_library(folder, NOTES)
    write_script(folder, "researcher", researcher("adapters low-rank"))
    write_script(folder, "writer", WRITER)
    (folder / "review.yaml").write_text(WORKFLOW)
    return folder / "review.yaml"


def cli(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def run(project: Path) -> str:
    """Run the workflow; its id."""
    result = cli("run", project, "--json", "--quiet")
    assert result.exit_code == 0, result.output
    return str(json.loads(result.stdout)["run_id"])


def runs_json(*args: str) -> list[dict[str, Any]]:
    result = cli("runs", "--json", *args)
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def _names(stdout: str) -> list[str]:
    return [re.sub(r"^[\s│├└─]+", "", line).split("  ")[0] for line in stdout.splitlines()[1:-1]]


def _set_started(home: Path, run_id: str, started: dt.datetime) -> None:
    path = home / "runs" / run_id / "run.json"
    summary = json.loads(path.read_text())
    path.write_text(json.dumps({**summary, "started": started.isoformat()}))


class TestRuns:
    def test_json_list(self, project: Path, home: Path) -> None:
        """`runs --json` lists runs newest first with id, workflow, status, times, tokens, cost, lineage and cache."""
        first, second = run(project), run(project)
        _set_started(home, first, dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        rows = runs_json()
        assert [r["run_id"] for r in rows] == [second, first]
        assert set(rows[0]) == {
            "run_id",
            "workflow",
            "status",
            "started",
            "ended",
            "duration_s",
            "input_tokens",
            "output_tokens",
            "cost_usd",
            "run_dir",
            "lineage",
            "problem",
            "cache",
        }
        assert (rows[0]["workflow"], rows[0]["status"], rows[0]["cost_usd"]) == ("review", "completed", 0.0)
        assert rows[0]["input_tokens"] > 0 and rows[0]["output_tokens"] > 0
        assert rows[1]["started"] == "2026-01-01T00:00:00+00:00"
        assert [r["run_id"] for r in runs_json("--limit", "1")] == [second]
        assert runs_json("--workflow", "other") == []

    def test_a_run_is_indexed_when_it_ends(self, project: Path, home: Path) -> None:
        """The live index writer completes a finished run's row (a drain waits for its pass); no listing needed."""
        run_id = run(project)
        drain(home / "index.sqlite")
        with TraceStore(home / "index.sqlite") as store:
            row = store.run(run_id)
            assert row is not None and row.status == "completed"
            assert {s.step_id for s in store.spans(run_id) if s.kind == "invoke_agent"} == {"research", "write"}

    def test_table(self, project: Path) -> None:
        """`runs` prints one row per run: id, workflow, status, start, duration, tokens and cost (and no cache
        column when no run had cache hits)."""
        run_id = run(project)
        result = cli("runs")
        assert result.exit_code == 0
        header, row = result.stdout.splitlines()
        assert header.split() == ["run", "workflow", "status", "started", "(UTC)", "duration", "tokens", "cost"]
        assert row.split()[:3] == [run_id, "review", "completed"]
        assert row.split()[-1] == "$0.0000"

    def test_ids_stay_whole_at_80_columns(self, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """At 80 columns `runs` still prints every run id whole (other columns give way), and its prefix works."""
        run_id = run(project)
        monkeypatch.setenv("COLUMNS", "80")
        result = cli("runs")
        assert result.exit_code == 0
        assert run_id in result.stdout
        assert all(len(line) <= 80 for line in result.stdout.splitlines())
        assert cli("trace", run_id[:17]).exit_code == 0

    def test_unindexed_and_crashed_runs_show(self, project: Path, home: Path) -> None:
        """Runs missing from the index are imported on listing; a crashed one shows as unfinished."""
        done, crashed = run(project), run(project)
        (home / "index.sqlite").unlink()
        trace = home / "runs" / crashed / "trace.jsonl"
        lines = trace.read_text().splitlines()
        kept = [line for line in lines if not ('"invoke_workflow"' in line and '"span_end"' in line)]
        trace.write_text("\n".join(kept[:-3]) + '\n{"run_id": "torn')
        summary = json.loads((home / "runs" / crashed / "run.json").read_text())
        (home / "runs" / crashed / "run.json").write_text(json.dumps({**summary, "status": "failed"}))
        statuses = {r["run_id"]: (r["status"], r["duration_s"]) for r in runs_json()}
        assert statuses[done][0] == "completed"
        assert statuses[crashed] == ("unfinished", None)
        shown = cli("trace", crashed)
        assert shown.exit_code == 0
        assert "invoke_workflow review  unfinished" in shown.stdout

    def test_prune(self, project: Path, home: Path) -> None:
        """`runs prune --older-than 30d` deletes older runs' folders and rows; --dry-run only lists them."""
        old, new = run(project), run(project)
        _set_started(home, old, dt.datetime.now(dt.UTC) - dt.timedelta(days=40))
        dry = cli("runs", "prune", "--older-than", "30d", "--dry-run")
        assert (dry.exit_code, dry.stdout) == (0, f"{old}\n")
        assert (home / "runs" / old).is_dir()
        result = cli("runs", "prune", "--older-than", "30d")
        assert (result.exit_code, result.stdout) == (0, f"{old}\n")
        assert "deleted 1 run(s)" in result.stderr
        assert not (home / "runs" / old).exists() and (home / "runs" / new).is_dir()
        assert [r["run_id"] for r in runs_json()] == [new]

    def test_prune_bad_age(self) -> None:
        """An age without a unit exits 2 and says what is expected."""
        result = cli("runs", "prune", "--older-than", "30")
        assert result.exit_code == 2
        assert "--older-than expects a number and a unit" in result.stderr


class TestTraceFlags:
    def test_step_filter(self, project: Path) -> None:
        """`trace RUN --step ID` shows only that step's spans; an unknown step exits 2 naming the steps."""
        run_id = run(project)
        result = cli("trace", run_id, "--step", "write")
        assert result.exit_code == 0
        assert _names(result.stdout) == [
            "invoke_agent writer [write]",
            "react_step 1",
            "chat scripted:writer.yaml",
        ]
        assert result.stdout.splitlines()[-1].startswith("3 spans, ")
        unknown = cli("trace", run_id, "--step", "nope")
        assert unknown.exit_code == 2
        assert "no step 'nope' in this run; its steps: research, write" in unknown.stderr

    def test_messages_and_tools(self, project: Path) -> None:
        """`--messages` adds model inputs and outputs; `--tools` adds tool arguments and results."""
        run_id = run(project)
        plain = cli("trace", run_id).stdout
        assert "input:" not in plain and "arguments:" not in plain
        messages = cli("trace", run_id, "--messages").stdout
        assert "input: Research adapters." in messages and "output:" in messages
        tools = cli("trace", run_id, "--tools").stdout
        assert 'arguments: {"query": "adapters low-rank"}' in tools
        assert "result: [beta2021] Paper beta2021" in tools

    def test_json_and_usage(self, project: Path) -> None:
        """`--json` prints the span tree and usage per step, role and model; `--usage` prints the tables."""
        run_id = run(project)
        document = json.loads(cli("trace", run_id, "--json", "--step", "research").stdout)
        assert [(s["kind"], s["attributes"]["rolegraph.step.id"]) for s in document["spans"]] == [
            ("invoke_agent", "research"),
        ]
        assert set(document["usage"]) == {"total", "saved", "by_step", "by_role", "by_model"}
        assert document["usage"]["saved"]["calls"] == 0  # the cache answered none
        assert list(document["usage"]["by_model"]) == ["scripted:researcher.yaml"]
        assert document["usage"]["total"]["cost_usd"] == 0.0
        tables = cli("trace", run_id, "--usage").stdout
        assert "usage by role" in tables and "usage by model" in tables


class TestTraceDiff:
    def test_different_tool_calls(self, project: Path) -> None:
        """Two runs whose researcher searched differently: the diff names the step and both call sequences."""
        first = run(project)
        write_script(project.parent, "researcher", researcher("weight update adapters"))
        second = run(project)
        result = cli("trace", "diff", first, second, "--json")
        assert result.exit_code == 0, result.output
        document = json.loads(result.stdout)
        research, write = document["steps"]["research"], document["steps"]["write"]
        assert research["tool_calls"] == {
            "a": [{"name": "library_search", "arguments": {"query": "adapters low-rank"}, "item": None}],
            "b": [{"name": "library_search", "arguments": {"query": "weight update adapters"}, "item": None}],
            "same": False,
        }
        assert (research["status"], research["visits"], research["output_same"]) == (
            ["completed", "completed"],
            [1, 1],
            True,
        )
        assert (write["differs"], write["tool_calls"]["same"], write["output_same"]) == (False, True, True)
        assert document["totals"]["steps_differing"] == ["research"]
        assert document["totals"]["tool_calls"] == [1, 1]
        table = cli("trace", "diff", first, second)
        assert table.exit_code == 0
        calls = table.stdout[table.stdout.index("research tool calls:") :].splitlines()[:3]
        assert calls == [
            "research tool calls:",
            '  A library_search {"query": "adapters low-rank"}',
            '  B library_search {"query": "weight update adapters"}',
        ]
        assert table.stdout.splitlines()[-1] == "1 of 2 steps differ: research"

    def test_for_each_items_are_labelled(self, tmp_path: Path) -> None:
        """A for_each step's tool calls are compared item by item: `item N:` headings, the call both runs made
        as `=`, the differing ones as A and B; --json gives each call its item."""
        folder = tmp_path / "items"
        write_library(folder, NOTES)
        (folder / "items.yaml").write_text(ITEMS_WORKFLOW)
        write_script(folder, "researcher", [*searched("adapters"), *searched("low-rank")])
        first = run(folder / "items.yaml")
        write_script(folder, "researcher", [*searched("adapters"), *searched("merging")])
        second = run(folder / "items.yaml")
        table = cli("trace", "diff", first, second)
        assert table.exit_code == 0, table.output
        calls = table.stdout[table.stdout.index("research tool calls:") :].splitlines()[:6]
        assert calls == [
            "research tool calls:",
            "  item 0:",
            '    = library_search {"query": "adapters"}',
            "  item 1:",
            '    A library_search {"query": "low-rank"}',
            '    B library_search {"query": "merging"}',
        ]
        document = json.loads(cli("trace", "diff", first, second, "--json").stdout)
        assert [(c["item"], c["arguments"]["query"]) for c in document["steps"]["research"]["tool_calls"]["b"]] == [
            (0, "adapters"),
            (1, "merging"),
        ]

    def test_tool_step_calls_are_compared(self, tmp_path: Path) -> None:
        """A for_each tool step (no agent) counts its visit, its time and its calls, item by item."""
        folder = tmp_path / "tools"
        write_library(folder, NOTES)
        (folder / "tools.yaml").write_text(TOOL_ITEMS_WORKFLOW)
        first = run(folder / "tools.yaml")
        result = cli("run", folder / "tools.yaml", "--json", "--quiet", "--input", 'queries=["adapters", "merging"]')
        second = json.loads(result.stdout)["run_id"]
        document = json.loads(cli("trace", "diff", first, second, "--json").stdout)
        each = document["steps"]["each"]
        assert (each["visits"], each["tool_calls"]["same"], each["output_same"]) == ([1, 1], False, False)
        assert None not in each["duration_s"]
        assert [(c["item"], c["arguments"]["query"]) for c in each["tool_calls"]["a"]] == [
            (0, "adapters"),
            (1, "low-rank"),
        ]
        table = cli("trace", "diff", first, second).stdout
        assert "  item 1:\n    A library_search" in table and '"query": "merging"' in table

    def test_same_run_twice(self, project: Path) -> None:
        """A run compared with an identical rerun differs in no step."""
        first, second = run(project), run(project)
        document = json.loads(cli("trace", "diff", first, second, "--json").stdout)
        assert document["totals"]["steps_differing"] == []

    def test_an_older_run_folders_step_files_are_compared(self, project: Path, home: Path) -> None:
        """A run folder made before ``steps.jsonl`` (one ``steps/<id>.json`` per step) still diffs by output."""
        first, second = run(project), run(project)
        older = RunFolder(home / "runs" / first)
        older.steps.mkdir()
        for step, state in older.step_states().items():
            if step == "write":
                state["output"] = {**state["output"], "title": "Another title"}
            older.step_file(step).write_text(json.dumps(state, indent=2))
        older.step_log.unlink()
        document = json.loads(cli("trace", "diff", first, second, "--json").stdout)
        outputs = {step: document["steps"][step]["output_same"] for step in ("research", "write")}
        assert outputs == {"research": True, "write": False}


class TestRunPrefixes:
    @pytest.mark.parametrize(
        ("command", "says"),
        [
            (["trace", "{}"], "{id}"),
            (["trace", "show", "{}"], "{id}"),
            (["trace", "export", "{}"], "{id}"),
            (["trace", "diff", "{}", "{}"], "{id}"),
            (["replay", "{}"], "identical: 2 of 2 recorded calls replayed"),
            (["resume", "{}"], "{id}"),
        ],
        ids=lambda value: " ".join(value) if isinstance(value, list) else "",
    )
    def test_every_command_taking_a_run_accepts_a_unique_prefix(
        self, tmp_path: Path, command: list[str], says: str
    ) -> None:
        """Wherever a command takes RUN, a unique prefix of the id names the run, as git's short hashes do."""
        folder = tmp_path / "tools"
        write_library(folder, NOTES)
        (folder / "tools.yaml").write_text(TOOL_ITEMS_WORKFLOW)
        run_id = run(folder / "tools.yaml")
        result = cli(*[part.format(run_id[:17]) for part in command])
        assert result.exit_code == 0, result.output
        assert says.format(id=run_id) in result.stdout + result.stderr


class TestTraceExport:
    def test_jsonl_is_the_file(self, project: Path, home: Path) -> None:
        """`--format jsonl` prints the trace file byte for byte."""
        run_id = run(project)
        result = cli("trace", "export", run_id, "--format", "jsonl")
        assert result.exit_code == 0
        assert result.stdout_bytes == (home / "runs" / run_id / "trace.jsonl").read_bytes()

    def test_otlp_json_to_file(self, project: Path, tmp_path: Path) -> None:
        """`--format otlp-json -o FILE` writes an ExportTraceServiceRequest with every span."""
        run_id = run(project)
        target = tmp_path / "trace.otlp.json"
        result = cli("trace", "export", run_id, "--format", "otlp-json", "-o", target)
        assert (result.exit_code, result.stdout) == (0, "")
        [resource] = json.loads(target.read_text())["resourceSpans"]
        spans = resource["scopeSpans"][0]["spans"]
        assert len(spans) == 10
        resource_attributes = {a["key"]: a["value"] for a in resource["resource"]["attributes"]}
        assert resource_attributes["rolegraph.workflow"] == {"stringValue": "review"}

    def test_unknown_format(self, project: Path) -> None:
        """An unknown format exits 2."""
        result = cli("trace", "export", run(project), "--format", "zipkin")
        assert result.exit_code == 2
        assert "'zipkin' is not one of 'otlp-json', 'jsonl'" in result.stderr


DAMAGED_LINES = {
    "invalid UTF-8": b'{"event": "event", "name": "caf\xe9", "attributes": {}}',
    "not an object": b'"just a string"',
    "no span_id": b'{"event": "span_start", "kind": "chat", "name": "x", "start_time": 1}',
    "attributes not an object": b'{"event": "span_end", "span_id": "z", "kind": "chat", "name": "x", "start_time": 1,'
    b' "status": "ok", "attributes": 7}',
    "name not a string": b'{"event": "span_start", "span_id": "z", "kind": "chat", "name": ["x"], "start_time": 1}',
}


class TestDamagedRun:
    @pytest.mark.parametrize("damage", list(DAMAGED_LINES), ids=list(DAMAGED_LINES))
    def test_one_damaged_trace_breaks_nothing_else(self, damage: str, project: Path, home: Path) -> None:
        """`runs` lists a damaged run as damaged with why and the others as usual; trace, export and diff
        on it exit 2 with one line naming the file and line."""
        good, bad = run(project), run(project)
        trace = home / "runs" / bad / "trace.jsonl"
        lines = trace.read_bytes().count(b"\n")
        with trace.open("ab") as f:
            f.write(DAMAGED_LINES[damage] + b"\n")
        listed = cli("runs")
        assert listed.exit_code == 0, listed.output
        rows = {line.split()[0]: line.split()[2] for line in listed.stdout.splitlines()[1:]}
        assert rows == {good: "completed", bad: "damaged"}
        assert listed.stderr.startswith(f"damaged {bad}: trace.jsonl, line {lines + 1}: ")
        assert len(listed.stderr.splitlines()) == 1
        assert {r["run_id"]: r["status"] for r in runs_json()} == {good: "completed", bad: "damaged"}
        for command in (["trace", bad], ["trace", "export", bad], ["trace", "diff", good, bad]):
            result = cli(*command)
            assert result.exit_code == 2, (command, result.output)
            assert result.stderr.startswith(f"error {trace}, line {lines + 1}: "), result.stderr
            assert len(result.stderr.splitlines()) == 1 and result.stdout == ""
        assert cli("trace", good).exit_code == 0 and cli("trace", "export", good).exit_code == 0

    def test_a_run_id_with_path_syntax_finds_no_run(self, project: Path, home: Path) -> None:
        """A run argument is matched against run folders' names; a folder not named by a run id is no run."""
        run(project)
        (home / "runs" / "notes").mkdir()
        for argument in ("../runs", "notes", "/etc"):
            result = cli("trace", argument)
            assert result.exit_code == 2 and result.stderr.startswith(f"error no run {argument!r}")


class TestPrune:
    def test_an_age_past_the_calendar_deletes_nothing(self, project: Path, home: Path) -> None:
        """`--older-than 99999999999d` is older than any run: nothing is deleted, no traceback."""
        run_id = run(project)
        result = cli("runs", "prune", "--older-than", "99999999999d")
        assert (result.exit_code, result.stdout) == (0, "")
        assert result.stderr.startswith("deleted 0 run(s) started before ")
        assert (home / "runs" / run_id).is_dir()

    def test_a_symlinked_run_is_reported_as_skipped(self, project: Path, home: Path, tmp_path: Path) -> None:
        """A run folder that is a symbolic link is listed as skipped (kept, target and all), not as deleted."""
        linked, plain = run(project), run(project)
        target = tmp_path / "kept" / linked
        target.parent.mkdir()
        (home / "runs" / linked).rename(target)
        (home / "runs" / linked).symlink_to(target)
        result = cli("runs", "prune", "--older-than", "0s")
        assert result.exit_code == 0, result.output
        assert result.stdout == f"{plain}\n"
        assert f"skipped {linked}: its folder is a symbolic link" in result.stderr
        assert "deleted 1 run(s), skipped 1 started before" in result.stderr
        assert (home / "runs" / linked).is_symlink() and (target / "run.json").is_file()
