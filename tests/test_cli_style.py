"""The command line's one style: help, metavars, choices, --version, whole run ids, and messages that say what to do."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner, Result

from projects import isolated_home
from rolegraph import __version__
from rolegraph.cli import app
from rolegraph.evals.runner import MetricSummary


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Runs go under a temporary ROLEGRAPH_HOME."""
    return isolated_home(tmp_path, monkeypatch)


def cli(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def _commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, command)]
    for name, sub in getattr(command, "commands", {}).items():
        found += _commands(sub, (*path, name))
    return found


COMMANDS = [path for path, _ in _commands(get_command(app))]


class TestHelp:
    @pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "rolegraph")
    def test_one_metavar_style(self, path: tuple[str, ...]) -> None:
        """Every help page: flags show no <bool>, no <list[...]>, arguments in capitals (WORKFLOW, RUN)."""
        result = cli(*path, "--help")
        assert result.exit_code == 0, result.output
        assert "<bool>" not in result.stdout
        assert "list[" not in result.stdout
        usage = next(line for line in result.stdout.splitlines() if "Usage:" in line)
        assert not re.search(r"[{\[][a-z_]+[}\]]", usage)
        assert "{" not in usage and "}" not in usage

    def test_usage_line_brackets_only_optional_arguments(self) -> None:
        """The usage line writes a required argument bare and an optional one in brackets (git's style)."""
        assert re.search(r"Usage: rolegraph run \[OPTIONS\] WORKFLOW\s*$", cli("run", "--help").stdout, re.M)
        search = cli("library", "search", "--help").stdout
        assert re.search(r"Usage: rolegraph library search \[OPTIONS\] FOLDER QUERY\s*$", search, re.M)
        evals = cli("eval", "--help").stdout
        assert re.search(r"Usage: rolegraph eval \[OPTIONS\] \[WORKFLOW\] \[EVALSET\]\s*$", evals, re.M)
        assert "Missing argument 'WORKFLOW'" in cli("run").stderr

    @pytest.mark.parametrize("path", COMMANDS[1:], ids=" ".join)
    def test_summary_is_one_sentence_line(self, path: tuple[str, ...]) -> None:
        """Each command's summary (the first paragraph of its help) is one source line: wrapped by width only."""
        command = dict(_commands(get_command(app)))[path]
        summary = (command.help or "").strip().split("\n\n")[0]
        assert summary and "\n" not in summary

    def test_paragraphs_reflow(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A help paragraph is reflowed to the terminal, not broken where the source line ended."""
        monkeypatch.setenv("COLUMNS", "200")
        result = cli("run", "--help")
        assert "3 if a budget ran out, 130 if interrupted (Ctrl-C or SIGTERM" in result.stdout

    def test_format_lists_its_choices(self, tmp_path: Path) -> None:
        """`--format` shows its choices in help, and an unknown one is refused naming them (exit 2)."""
        assert "<mermaid|dot>" in cli("graph", "--help").stdout
        assert "<otlp-json|jsonl>" in cli("trace", "export", "--help").stdout
        result = cli("graph", tmp_path / "w.yaml", "--format", "svg")
        assert result.exit_code == 2
        assert "'svg' is not one of 'mermaid', 'dot'" in result.stderr

    def test_trace_help_shows_trace_run(self) -> None:
        """`trace --help` shows the README's `trace RUN` form first."""
        usage = cli("trace", "--help").stdout
        assert re.search(r"Usage: .*trace \[OPTIONS\] RUN \| COMMAND", usage)


class TestVersion:
    def test_version_flag(self) -> None:
        """`rolegraph --version` prints the installed version and exits 0."""
        result = cli("--version")
        assert (result.exit_code, result.stdout) == (0, f"rolegraph {__version__}\n")

    def test_console_script(self) -> None:
        """The installed `rolegraph` console script answers --version."""
        script = Path(sys.executable).parent / "rolegraph"
        done = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60, check=False)
        assert (done.returncode, done.stdout) == (0, f"rolegraph {__version__}\n")


class TestToolMessages:
    @pytest.mark.parametrize("name", ["library_search", "read_document"])
    def test_library_tool_without_library(self, name: str) -> None:
        """A library tool without --library says to pass --library DIR, not to edit a workflow (exit 2)."""
        result = cli("tool", name, "--args", '{"query": "x"}')
        assert result.exit_code == 2
        assert "pass --library DIR" in result.stderr
        assert "'library:'" not in result.stderr and "workflow" not in result.stderr


class TestEvalNumbers:
    def test_tokens_are_whole(self) -> None:
        """A count (tokens) is reported as an integer; a score keeps two decimals."""
        summary = MetricSummary.of([17209, 17210])
        assert summary.cell(whole=True) == "17210 ± 1 (2)"
        assert MetricSummary.of([0.5, 0.75]).cell() == "0.62 ± 0.18 (2)"
