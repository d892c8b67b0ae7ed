"""`rolegraph init NAME`: a project that validates, runs, evaluates and tests as it is."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner, Result

from projects import isolated_home
from rolegraph.cli import app

FILES = [
    "README.md",
    "evals/questions.yaml",
    "library/dettmers2023qlora.md",
    "library/houlsby2019adapters.md",
    "library/hu2021lora.md",
    "tests/test_workflow.py",
    "workflow.yaml",
]
# The gatherer's picks (numbers of the sentences it was shown) and the extractive writer's order.
PICKS = {"evidence": [{"sentence": n, "relevance": 10 - n} for n in (1, 2, 3, 4)]}
ORDER = {"paragraphs": [{"order": [1, 2, 3, 4], "links": ["Moreover", "Also", ""]}]}


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Runs go under a temporary ROLEGRAPH_HOME; the project is created in tmp_path."""
    monkeypatch.chdir(tmp_path)
    return isolated_home(tmp_path, monkeypatch)


def cli(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def script(folder: Path, times: int = 1) -> Path:
    """A scripted model answering `times` runs: the gatherer's picks, the writer's order (the search is no model's)."""
    path = folder / "script.yaml"
    entries = [{"final": PICKS}, {"final": ORDER}]
    path.write_text(yaml.safe_dump(entries * times))
    return path


class TestInit:
    def test_creates_the_project(self, tmp_path: Path) -> None:
        """`init demo` writes the workflow, three notes, an eval set, a test and a README, named 'demo'."""
        result = cli("init", "demo")
        assert result.exit_code == 0, result.output
        made = sorted(str(p.relative_to(tmp_path / "demo")) for p in (tmp_path / "demo").rglob("*") if p.is_file())
        assert made == FILES
        assert result.stdout.splitlines() == [f"created demo/{name}" for name in FILES]
        assert "name: demo" in (tmp_path / "demo" / "workflow.yaml").read_text()
        assert "__NAME__" not in "".join(p.read_text() for p in (tmp_path / "demo").rglob("*") if p.is_file())

    def test_validate_is_clean(self) -> None:
        """The new workflow validates with no problem and no warning."""
        cli("init", "demo")
        result = cli("validate", "demo/workflow.yaml")
        assert result.exit_code == 0, result.output
        assert result.stderr == ""
        assert result.stdout.startswith("ok demo/workflow.yaml: workflow 'demo', 3 steps")

    def test_runs_end_to_end(self, tmp_path: Path) -> None:
        """`run demo/workflow.yaml` completes (on a scripted model) and its report cites the library."""
        cli("init", "demo")
        result = cli("run", "demo/workflow.yaml", "--model", f"scripted:{script(tmp_path)}", "--json", "--quiet")
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        assert summary["status"] == "completed"
        assert "[1]" in Path(summary["outputs"]["report"]).read_text()
        cited = Path(summary["outputs"]["evidence"]).read_text()
        assert summary["citations"]["total"] >= 1 and summary["citations"]["unresolved"] == 0
        assert "hu2021lora" in [s["id"] for s in json.loads(Path(summary["outputs"]["sources"]).read_text())]
        assert "hu2021lora" in cited

    @pytest.mark.local_model
    def test_runs_as_generated_on_the_embedded_model(self) -> None:
        """`run demo/workflow.yaml` as generated (the embedded model, no --model) completes with a cited report:
        the engine searches with the question, the model only picks and orders sentences (as a researcher
        agent the 135M model searched for `key#p4`, copied from the tool's description, and took minutes)."""
        cli("init", "demo")
        result = cli("run", "demo/workflow.yaml", "--json", "--quiet")
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        assert (summary["status"], summary["citations"]["unresolved"]) == ("completed", 0)
        assert summary["citations"]["total"] >= 1

    def test_evaluates(self, tmp_path: Path) -> None:
        """`eval` of the new workflow on its own eval set scores both questions."""
        cli("init", "demo")
        model = f"scripted:{script(tmp_path, times=2)}"
        result = cli("eval", "demo/workflow.yaml", "demo/evals/questions.yaml", "--model", model, "--json")
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert sorted(report["questions"]) == ["adapters", "lora"]

    @pytest.mark.parametrize("existing", ["file", "full folder"])
    def test_refuses_an_existing_project(self, tmp_path: Path, existing: str) -> None:
        """A NAME that is a file or a folder with files exits 2 and writes nothing."""
        if existing == "file":
            (tmp_path / "demo").write_text("mine")
        else:
            (tmp_path / "demo").mkdir()
            (tmp_path / "demo" / "notes.txt").write_text("mine")
        result = cli("init", "demo")
        assert result.exit_code == 2
        assert "demo already exists and is not empty: choose a new name" in result.stderr
        assert not (tmp_path / "demo" / "workflow.yaml").exists()

    def test_refuses_a_bad_name(self) -> None:
        """A name that is not a plain name (here starting with a digit) exits 2 and says what a name is."""
        result = cli("init", "1demo")
        assert result.exit_code == 2
        assert "'1demo' is not a project name: start with a letter" in result.stderr


class TestGeneratedTests:
    def test_project_tests_pass(self, tmp_path: Path) -> None:
        """The project's own tests (rolegraph.testing's ScriptedModel) pass with pytest, as generated."""
        cli("init", "demo")
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "demo/tests", "-q", "-p", "no:cacheprovider"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "2 passed" in done.stdout
