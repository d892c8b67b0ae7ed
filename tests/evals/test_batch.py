"""Batches: a workflow once per line of a JSON Lines or CSV file, a run folder each, resumed like an eval."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from projects import isolated_home
from rolegraph.cli import app
from rolegraph.evals.batch import BatchManifest, batch_dir, read_inputs, run_batch
from rolegraph.evals.manifest import MANIFEST_FILE
from rolegraph.layout import Home
from rolegraph.workflow import Workflow

WORKFLOW = """\
rolegraph: 1
name: echo
inputs:
  topic: {type: string}
steps:
  echo:
    function: batch_steps:echo
    args: {topic: "{{ inputs.topic }}"}
outputs:
  result: {path: result.json, render: json, from: echo}
"""

STEPS = '''\
"""The batch's one step: the topic in capitals; a topic "wait" waits for a file named go beside it."""

import asyncio
from pathlib import Path

GO = Path(__file__).with_name("go")


async def echo(topic: str) -> dict:
    while topic == "wait" and not GO.exists():
        await asyncio.sleep(0.05)
    return {"topic": topic.upper()}
'''


CACHED = """\
rolegraph: 1
name: cached
models: {default: "scripted:script.yaml"}
roles:
  writer: {instructions: Answer., output: {value: string}}
inputs:
  topic: {type: string}
steps:
  answer: {role: writer, task: "Write about {{ inputs.topic }}."}
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Runs under a temporary ROLEGRAPH_HOME."""
    return isolated_home(tmp_path, monkeypatch)


@pytest.fixture
def workflow(tmp_path: Path) -> Path:
    """A one-step workflow (a function, no model) and its step's module."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "batch_steps.py").write_text(STEPS)
    (folder / "wf.yaml").write_text(WORKFLOW)
    return folder / "wf.yaml"


def cli(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def result_of(home: Path, run_id: str) -> dict[str, str]:
    """A run's rendered output."""
    loaded: dict[str, str] = json.loads((Home(home).run(run_id).path / "result.json").read_text())
    return loaded


class TestBatchCommand:
    def test_one_run_per_jsonl_line(self, home: Path, workflow: Path, tmp_path: Path) -> None:
        """Each non-blank line of a .jsonl file is one run with its own folder and inputs; exit 0."""
        inputs = tmp_path / "topics.jsonl"
        inputs.write_text('{"topic": "lora"}\n\n{"topic": "rag"}\n{"topic": "moe"}\n')
        result = cli("batch", workflow, inputs, "--json", "--quiet", "--concurrency", "2")
        assert result.exit_code == 0, result.output
        lines = json.loads(result.stdout)
        assert [(row["line"], row["status"]) for row in lines] == [(1, "completed"), (3, "completed"), (4, "completed")]
        assert [result_of(home, row["run_id"]) for row in lines] == [
            {"topic": "LORA"},
            {"topic": "RAG"},
            {"topic": "MOE"},
        ]
        assert len({row["run_id"] for row in lines}) == 3

    def test_cache_answers_a_second_batch(self, home: Path, tmp_path: Path) -> None:
        """`batch --cache`: a second batch of the same lines answers each line's model call from the cache
        (each run's savings count the hit), `--no-cache` none; the choice is recorded in the batch's manifest."""
        (tmp_path / "wf.yaml").write_text(CACHED)
        (tmp_path / "script.yaml").write_text("- {final: {value: ok}}\n")
        inputs = tmp_path / "topics.jsonl"
        inputs.write_text('{"topic": "lora"}\n{"topic": "rag"}\n')

        def hits(result: Result) -> list[int]:
            assert result.exit_code == 0, result.output
            summaries = [Home(home).run(row["run_id"]).read_summary() for row in json.loads(result.stdout)]
            return [summary["cache"]["hits"] for summary in summaries]

        assert hits(cli("batch", tmp_path / "wf.yaml", inputs, "--cache", "--json", "--quiet")) == [0, 0]
        assert hits(cli("batch", tmp_path / "wf.yaml", inputs, "--cache", "--json", "--quiet")) == [1, 1]
        uncached = cli("batch", tmp_path / "wf.yaml", inputs, "--no-cache", "--json", "--quiet")
        assert uncached.exit_code == 0, uncached.output
        assert [Home(home).run(r["run_id"]).read_summary()["cache"] for r in json.loads(uncached.stdout)] == [None] * 2
        manifests = sorted(Home(home).batches.glob(f"*/{MANIFEST_FILE}"))
        assert [json.loads(m.read_text())["cache"] for m in manifests].count(True) == 2

    def test_csv_rows_with_a_summary_table(self, home: Path, workflow: Path, tmp_path: Path) -> None:
        """A .csv file's header names the inputs and each row is a run (a quoted newline stays in its
        value); the summary table lists every line with its status and run."""
        inputs = tmp_path / "topics.csv"
        inputs.write_text('topic\nlora\n"two\nlines"\n')
        result = cli("batch", workflow, inputs, "--quiet")
        assert result.exit_code == 0, result.output
        manifest = BatchManifest.load(next(Home(home).batches.iterdir()))
        assert [(r.line, r.inputs) for r in manifest.runs] == [(2, {"topic": "lora"}), (3, {"topic": "two\nlines"})]
        for entry in manifest.runs:
            assert entry.run_id is not None and entry.run_id in result.stdout
        assert "2 of 2 lines completed" in result.stdout

    def test_a_bad_line_is_named_at_its_line(self, home: Path, workflow: Path, tmp_path: Path) -> None:
        """A line that is not a JSON object, or whose inputs do not fit the workflow, exits 2 naming
        file:line; no run starts."""
        inputs = tmp_path / "topics.jsonl"
        inputs.write_text('{"topic": "lora"}\n[1, 2]\n')
        result = cli("batch", workflow, inputs, "--quiet")
        assert result.exit_code == 2
        assert f"{inputs}:2" in result.output and "JSON object" in result.output
        inputs.write_text('{"topic": "lora"}\n{"topc": "rag"}\n')
        result = cli("batch", workflow, inputs, "--quiet")
        assert result.exit_code == 2
        assert f"{inputs}:2" in result.output and "unknown input 'topc'" in result.output
        assert not Home(home).runs.exists()

    def test_another_kind_of_file_is_refused(self, home: Path, workflow: Path, tmp_path: Path) -> None:
        """An inputs file that is neither .jsonl nor .csv exits 2 saying which kinds there are."""
        inputs = tmp_path / "topics.txt"
        inputs.write_text("lora\n")
        result = cli("batch", workflow, inputs, "--quiet")
        assert result.exit_code == 2
        assert ".jsonl" in result.output and ".csv" in result.output

    def test_resume_of_an_unknown_batch(self, home: Path) -> None:
        """`--resume` with no such batch exits 2 saying so."""
        result = cli("batch", "--resume", "nope")
        assert result.exit_code == 2
        assert "no batch" in result.output


class TestResume:
    async def test_an_interrupted_batch_resumes_where_it_stopped(self, home: Path, workflow: Path) -> None:
        """A batch cancelled while a line runs: resumed from its manifest on disk, the finished line keeps its
        run, the interrupted line's run is continued (same run id), and both complete."""
        inputs = workflow.parent / "topics.jsonl"
        inputs.write_text('{"topic": "lora"}\n{"topic": "wait"}\n')
        manifest = BatchManifest.start(workflow, inputs, read_inputs(inputs), concurrency=1)
        folder = batch_dir(home, manifest.batch_id)
        manifest.path = folder / MANIFEST_FILE
        wf = Workflow.load(workflow)
        task = asyncio.create_task(run_batch(wf, manifest, home=home))
        # The second line's run has an id (it is running, waiting for `go`): observable state, polled.
        while manifest.runs[1].status != "running":  # noqa: ASYNC110  # the batch offers no event for it
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        before = BatchManifest.load(folder)
        assert before.runs[0].status == "completed"
        assert before.runs[1].status in ("running", "cancelled")

        (workflow.parent / "go").touch()
        after = await run_batch(wf, BatchManifest.load(folder), home=home)
        assert [r.status for r in after] == ["completed", "completed"]
        assert [r.run_id for r in after] == [r.run_id for r in before.runs]
        assert result_of(home, str(after[1].run_id)) == {"topic": "WAIT"}
        assert [r.status for r in BatchManifest.load(folder).runs] == ["completed", "completed"]
