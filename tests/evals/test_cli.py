"""`rolegraph eval`: the table or JSON on stdout, one progress line per run on stderr, and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from rolegraph.cli import app
from rolegraph.evals.metrics import METRICS

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
        progress = result.stderr.splitlines()
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
        assert run["scores"]["claim_support"] in (None, 1.0)  # quotes are constrained to real sentences
        assert set(report["summary"]["default"]) == {*METRICS, "completed"}
        progress = [line for line in proc.stderr.splitlines() if line.startswith("[")]
        assert len(progress) == 1 and progress[0].startswith("[1/1] lora on default #1: completed")
