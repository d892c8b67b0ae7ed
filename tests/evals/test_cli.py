"""`rolegraph eval`: the table or JSON on stdout, one progress line per run on stderr, and exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from rolegraph.cli import app
from rolegraph.evals.manifest import EvalManifest, find_eval
from rolegraph.evals.metrics import METRICS
from rolegraph.evals.runner import EvalReport
from rolegraph.traces.sinks import read_jsonl

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str | Path) -> Result:
    return CliRunner().invoke(app, ["eval", *(str(a) for a in args)])


class TestEvalCommand:
    def test_table_and_progress(self, project: Path, tmp_path: Path) -> None:
        """Two models, two repeats: four progress lines on stderr, the markdown table on stdout and in -o."""
        out = tmp_path / "report.md"
        args = ["--model", "scripted:good.yaml", "--model", "scripted:thin.yaml", "--repeat", "2", "-o", out]
        result = cli(project / "review.yaml", project / "set.yaml", *args)
        assert result.exit_code == 0, result.stderr
        first, *progress = result.stderr.splitlines()
        assert first.startswith("eval ") and "rolegraph eval --resume " in first  # the id, to resume with
        assert [line.split(" on ")[0] for line in progress] == [f"[{n}/4] adapters" for n in range(1, 5)]
        assert all("completed" in line for line in progress)
        assert "| source_recall | 1.00 ± 0.00 (2) | 0.50 ± 0.00 (2) |" in result.stdout
        assert out.read_text().rstrip("\n") == result.stdout.rstrip("\n")

    def test_json(self, project: Path) -> None:
        """--json prints the whole report; each run's scores hold every metric."""
        result = cli(project / "review.yaml", project / "set.yaml", "--model", "scripted:good.yaml", "--json")
        assert result.exit_code == 0, result.stderr
        report = json.loads(result.stdout)
        (run,) = report["runs"]
        assert set(METRICS) <= set(run["scores"])
        assert set(report["summary"]["scripted:good.yaml"]) == {*METRICS, "completed"}

    def test_failed_run_exits_1(self, project: Path) -> None:
        """A run that fails makes the exit code 1; the table is still printed."""
        (project / "short.yaml").write_text((project / "good.yaml").read_text().rsplit("- final:", 1)[0])
        result = cli(project / "review.yaml", project / "set.yaml", "--model", "scripted:short.yaml")
        assert result.exit_code == 1
        assert "failed" in result.stderr
        assert "| completed | 0.00 (1) |" in result.stdout

    def test_bad_evalset_exits_2(self, project: Path) -> None:
        """An invalid eval set exits 2 and lists its problems at file:line:col; nothing runs."""
        bad = project / "bad.yaml"
        bad.write_text("rolegraph_eval: 1\nname: s\nquestions:\n  - id: a\n    inputs: {topik: x}\n")
        result = cli(project / "review.yaml", bad, "--model", "scripted:good.yaml")
        assert result.exit_code == 2
        assert f"{bad}:5:21: unknown input 'topik'" in result.stderr
        assert result.stdout == ""

    def test_missing_model_exits_2(self, project: Path) -> None:
        """A model that cannot be loaded exits 2 with the reason."""
        result = cli(project / "review.yaml", project / "set.yaml", "--model", "scripted:nope.yaml")
        assert result.exit_code == 2
        assert "nope.yaml" in result.stderr

    def test_settings_matrix(self, project: Path, home: Path) -> None:
        """--set values crossed with --model: a column each, labelled with its settings, used by its runs."""
        args = ["--model", "scripted:good.yaml", "--set", "temperature=0,0.7", "--set", "seed=5", "--json"]
        result = cli(project / "review.yaml", project / "set.yaml", *args)
        assert result.exit_code == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["models"] == ["scripted:good.yaml t=0 seed=5", "scripted:good.yaml t=0.7 seed=5"]
        assert [run["settings"] for run in report["runs"]] == [
            {"temperature": 0.0, "seed": 5},
            {"temperature": 0.7, "seed": 5},
        ]
        for run in report["runs"]:
            summary = json.loads((home / "runs" / run["run_id"] / "run.json").read_text())
            assert summary["overrides"]["settings"] == run["settings"]

    def test_bad_settings_exit_2(self, project: Path) -> None:
        """An unknown setting or a bad value exits 2 naming each problem; nothing runs."""
        args = ["--set", "temp=0.5", "--set", "seed=x", "--model", "scripted:good.yaml"]
        result = cli(project / "review.yaml", project / "set.yaml", *args)
        assert result.exit_code == 2
        assert "--set temp=0.5: unknown setting 'temp'" in result.stderr
        assert "--set seed=x: seed 'x' is not an integer" in result.stderr
        assert result.stdout == ""

    def test_html_report(self, project: Path, tmp_path: Path, home: Path) -> None:
        """-o report.html writes a self-contained page with the table and a plot per metric, its runs linked to
        the viewer; the eval's folder keeps the report for `rolegraph serve`."""
        out = tmp_path / "report.html"
        result = cli(
            project / "review.yaml", project / "set.yaml", "--model", "scripted:good.yaml", "-o", out, "--json"
        )
        assert result.exit_code == 0, result.stderr
        page = out.read_text()
        assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == len(METRICS) + 1
        assert '<td class="num">1.00 (1)</td><td class="meaning">Share of the question&#x27;s gold sources' in page
        eval_id = page.split('<p class="muted">eval <code>')[1].split("<")[0]
        assert f'<a href="http://127.0.0.1:8765/#run={json.loads(result.stdout)["runs"][0]["run_id"]}">' in page
        saved = EvalReport.model_validate_json((home / "evals" / eval_id / "report.json").read_text())
        assert (saved.eval_id, saved.runs[0].status) == (eval_id, "completed")  # for `rolegraph serve`

    def test_json_file(self, project: Path, tmp_path: Path) -> None:
        """-o report.json writes the JSON report, the markdown table still on stdout."""
        out = tmp_path / "report.json"
        result = cli(project / "review.yaml", project / "set.yaml", "--model", "scripted:good.yaml", "-o", out)
        assert result.exit_code == 0, result.stderr
        assert json.loads(out.read_text())["summary"]["scripted:good.yaml"]["source_recall"]["mean"] == 1.0
        assert result.stdout.startswith("# Eval `tiny`")

    def test_judge(self, project: Path, home: Path) -> None:
        """--judge scores fact coverage and claims with a model too; its calls are traced under the eval's folder."""
        (project / "judge.yaml").write_text(
            '- {text: \'{"verdict": "yes", "reason": "said"}\'}\n- {text: \'no idea\'}\n'
            '- {text: \'{"verdict": "no", "reason": "unsupported"}\'}\n'
            + '- {text: \'{"verdict": "yes", "reason": "said"}\'}\n'
            * 2  # the report's two sentences
        )
        args = ["--model", "scripted:thin.yaml", "--judge", "scripted:judge.yaml", "--json"]
        result = cli(project / "review.yaml", project / "set.yaml", *args)
        assert result.exit_code == 0, result.stderr
        report = json.loads(result.stdout)
        (run,) = report["runs"]
        assert [v["verdict"] for v in run["scores"]["fact_verdicts"]] == ["yes", "unknown"]
        assert (run["scores"]["fact_coverage"], run["scores"]["fact_coverage_judge"]) == (0.5, 1.0)
        assert [c["judge"] for c in run["scores"]["claims"]] == ["no", "yes", "yes"]
        assert run["scores"]["claim_support"] == 2 / 3
        assert "judged 1.00" in result.stderr
        trace = Path(report["judge_trace"])
        assert trace.parent.parent == home / "evals" and trace.name == "judge.jsonl"
        verdicts = [
            r["attributes"].get("rolegraph.judge.verdict")
            for r in read_jsonl(trace)
            if r["kind"] == "run_guardrail" and r["event"] == "span_end"
        ]
        assert verdicts == ["yes", "unknown", "no", "yes", "yes"]

    def test_rescore(self, project: Path) -> None:
        """--rescore scores past runs from their folders, with the same scores as when they ran."""
        first = cli(project / "review.yaml", project / "set.yaml", "--model", "scripted:thin.yaml", "--json")
        (run,) = json.loads(first.stdout)["runs"]
        again = cli(project / "review.yaml", project / "set.yaml", "--rescore", run["run_id"][:20], "--json")
        assert again.exit_code == 0, again.stderr
        (rescored,) = json.loads(again.stdout)["runs"]
        assert (rescored["run_id"], rescored["model"]) == (run["run_id"], "scripted:thin.yaml")
        assert rescored["scores"]["missing_sources"] == run["scores"]["missing_sources"] == ["beta2021"]
        assert again.stderr.startswith("[1/1] adapters on scripted:thin.yaml #1: completed")

    def test_rescore_refuses_run_options(self, project: Path) -> None:
        """--rescore with --model (or --set, --repeat, ...) is a usage error: past runs are scored as they are."""
        result = cli(project / "review.yaml", project / "set.yaml", "--rescore", "last", "--repeat", "2")
        assert result.exit_code == 2
        assert "--rescore scores past runs as they are" in result.stderr


@pytest.mark.local_model
class TestBundledEval:
    def test_quick_mode_on_the_embedded_model(self, tmp_path: Path) -> None:
        """The bundled eval set's first question runs offline on the embedded model; citations all resolve."""
        env = {**os.environ, "ROLEGRAPH_HOME": str(tmp_path)}
        env.pop("OPENAI_API_KEY", None)
        command = ["eval", "examples/literature_review.yaml", "examples/evals/library_questions.yaml"]
        proc = subprocess.run(
            [sys.executable, "-m", "rolegraph", *command, "--limit", "1", "--json"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        report = json.loads(proc.stdout)
        (run,) = report["runs"]
        assert (run["question"], run["model"], run["status"]) == ("lora", "default", "completed")
        assert set(METRICS) <= set(run["scores"])
        assert run["scores"]["citation_validity"] == 1.0
        assert run["scores"]["quote_validity"] in (None, 1.0)  # quotes are constrained to real sentences
        assert set(report["summary"]["default"]) == {*METRICS, "completed"}
        progress = [line for line in proc.stderr.splitlines() if line.startswith("[")]
        assert len(progress) == 1 and progress[0].startswith("[1/1] lora on default #1: completed")


class TestBudgetsAndResume:
    def test_over_budget_then_resumed_with_a_raised_limit(self, project: Path, home: Path) -> None:
        """--max-iterations stops each run (exit 1, shown per run); --resume last with a higher limit finishes them."""
        args = [project / "review.yaml", project / "set.yaml", "--model", "scripted:good.yaml", "--repeat", "2"]
        stopped = cli(*args, "--max-iterations", "2")
        assert stopped.exit_code == 1, stopped.stderr
        assert stopped.stderr.count("budget_exceeded") == 2
        assert "2 run(s), 2 failed (2 over budget)" in stopped.stdout
        assert "| completed | 0.00 ± 0.00 (2) |" in stopped.stdout
        manifest = EvalManifest.load(find_eval(home, "last"))
        assert manifest.budget == {"max_iterations": 2}
        assert [r.status for r in manifest.runs] == ["budget_exceeded", "budget_exceeded"]

        resumed = cli("--resume", "last", "--max-iterations", "100", "--json")
        assert resumed.exit_code == 0, resumed.stderr
        assert resumed.stderr.startswith(f"eval {manifest.eval_id} (resumed")
        report = json.loads(resumed.stdout)
        assert [r["run_id"] for r in report["runs"]] == [r.run_id for r in manifest.runs]
        assert {r["status"] for r in report["runs"]} == {"completed"}
        assert report["summary"]["scripted:good.yaml"]["source_recall"]["mean"] == 1.0

    def test_changed_workflow_refused_unless_forced(self, project: Path, home: Path) -> None:
        """Resuming after the workflow file changed exits 2 naming the file; --force goes on."""
        args = [project / "review.yaml", project / "set.yaml", "--model", "scripted:good.yaml"]
        assert cli(*args, "--max-iterations", "2").exit_code == 1
        workflow = project / "review.yaml"
        workflow.write_text(workflow.read_text() + "# edited\n")
        refused = cli("--resume", "last", "--max-iterations", "100")
        assert refused.exit_code == 2
        assert f"{workflow.resolve()} changed since the eval started" in refused.stderr
        forced = cli("--resume", "last", "--max-iterations", "100", "--force")
        assert forced.exit_code == 0, forced.stderr

    def test_resume_refuses_new_plan_options(self, project: Path) -> None:
        """--resume with --model (or --repeat, ...) is refused: a resumed eval keeps its own plan."""
        result = cli("--resume", "last", "--model", "scripted:good.yaml")
        assert result.exit_code == 2
        assert "--resume goes on with the eval's own" in result.stderr

    def test_unknown_eval(self, project: Path) -> None:
        """--resume of an eval that does not exist exits 2 and says so."""
        result = cli("--resume", "nope")
        assert result.exit_code == 2
        assert "match 'nope'" in result.stderr


GATE_TOOL = '''
import asyncio
import os
from pathlib import Path

from rolegraph import tool


@tool
async def gate(text: str) -> str:
    """Pass the gate (blocks from the second call on when GATE_BLOCK is set: a run to kill mid-way)."""
    marker = Path(os.environ["GATE_DIR"]) / "passed-once"
    if marker.exists() and os.environ.get("GATE_BLOCK"):
        await asyncio.sleep(3600)
    marker.touch()
    return "open"
'''
GATE_SCRIPT = """
- {tool: gate, args: {text: go}, thought: pass the gate}
- {final: {word: done}, thought: through}
"""
GATE_WORKFLOW = """
rolegraph: 1
name: gated
models: {default: "scripted:script.yaml"}
inputs:
  topic: {type: string}
roles:
  passer:
    instructions: Pass the gate.
    tools: ["gate_tools:gate"]
    output: {word: string}
steps:
  pass: {role: passer, task: "Pass the gate for {{ inputs.topic }}."}
outputs:
  result: {path: word.json, render: json, from: pass}
"""
GATE_SET = """
rolegraph_eval: 1
name: gates
questions:
  - {id: first, inputs: {topic: one}, must_include: [done]}
  - {id: second, inputs: {topic: two}, must_include: [done]}
  - {id: third, inputs: {topic: three}, must_include: [done]}
"""


class TestKilledEval:
    def test_sigkilled_eval_resumes_to_the_uninterrupted_report(
        self, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An eval SIGKILLed while its second run hangs resumes: run 1 re-scored, 2 continued, 3 started."""
        folder = tmp_path / "gated"
        folder.mkdir()
        (folder / "gate_tools.py").write_text(GATE_TOOL)
        (folder / "script.yaml").write_text(GATE_SCRIPT)
        (folder / "wf.yaml").write_text(GATE_WORKFLOW)
        (folder / "set.yaml").write_text(GATE_SET)
        monkeypatch.setenv("GATE_DIR", str(folder))
        env = {**os.environ, "GATE_BLOCK": "1"}
        child = subprocess.Popen(
            [sys.executable, "-m", "rolegraph", "eval", folder / "wf.yaml", folder / "set.yaml"],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 300  # a guard against a hang, not a timing assertion
            statuses: list[str] = []
            while time.monotonic() < deadline and child.poll() is None:
                try:
                    manifest = EvalManifest.load(find_eval(home, "last"))
                    statuses = [r.status for r in manifest.runs]
                except Exception:  # not written yet, or between renames
                    statuses = []
                if statuses == ["completed", "running", "pending"]:
                    break
                time.sleep(0.1)
            assert statuses == ["completed", "running", "pending"], statuses
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        killed = EvalManifest.load(find_eval(home, "last"))
        resumed = cli("--resume", killed.eval_id, "--json")
        assert resumed.exit_code == 0, resumed.stderr
        report = json.loads(resumed.stdout)
        assert [r["run_id"] for r in report["runs"]][:2] == [r.run_id for r in killed.runs][:2]
        whole = cli(folder / "wf.yaml", folder / "set.yaml", "--json")
        assert whole.exit_code == 0, whole.stderr

        def scores(data: dict[str, object]) -> list[object]:
            runs = data["runs"]
            assert isinstance(runs, list)
            timing = ("wall_time_s", "tokens", "cost_usd")
            return [
                (r["question"], r["status"], {k: v for k, v in r["scores"].items() if k not in timing}) for r in runs
            ]

        assert scores(report) == scores(json.loads(whole.stdout))
        assert {r["status"] for r in report["runs"]} == {"completed"}
