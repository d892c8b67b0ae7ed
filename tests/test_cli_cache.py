"""The command line of the model-call cache: `run --cache`, `cache stats`, `cache clear`, and the savings shown."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from evals.conftest import GOOD, NOTES, WORKFLOW
from projects import isolated_home, write_library, write_script
from rolegraph.cli import app


def cli(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    isolated_home(tmp_path, monkeypatch)
    folder = tmp_path / "project"
    write_library(folder, NOTES)
    write_script(folder, "model", GOOD)
    (folder / "review.yaml").write_text(WORKFLOW)
    monkeypatch.chdir(folder)
    return folder


def run(*extra: str) -> dict[str, object]:
    done = cli("run", "review.yaml", "--model", "scripted:model.yaml", "--quiet", "--json", *extra)
    assert done.exit_code == 0, done.output
    summary: dict[str, object] = json.loads(done.stdout[: done.stdout.rindex("}") + 1])
    summary["stderr"] = done.stderr
    return summary


class TestCacheCommands:
    def test_run_twice_then_stats_and_clear(self, project: Path) -> None:
        """`run --cache` twice: the second answers its 3 calls from the cache and says so; `cache stats` counts
        the entries, hits and tokens saved; `trace` shows the saving; `cache clear` empties it."""
        first = run("--cache")
        second = run("--cache")
        assert first["cache"] == {"hits": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0}
        saved = second["cache"]
        assert isinstance(saved, dict) and saved["hits"] == 3 and saved["input_tokens"] > 0
        assert re.search(r"cache +3 calls answered from the cache, \d+ tokens saved", str(second["stderr"]))
        stats = cli("cache", "stats", "--json")
        assert stats.exit_code == 0, stats.output
        figures = json.loads(stats.stdout)
        assert (figures["entries"], figures["hits"]) == (3, 3)
        assert figures["saved_input_tokens"] == saved["input_tokens"] and figures["problem"] is None
        shown = cli("trace", str(second["run_id"]))
        assert shown.exit_code == 0, shown.output
        assert f"3 calls answered from the cache saved {saved['input_tokens']} input" in shown.stdout
        table = cli("cache", "stats")
        assert re.search(r"entries +3 *\n", table.stdout) and re.search(r"hits +3 *\n", table.stdout)
        cleared = cli("cache", "clear")
        assert cleared.exit_code == 0 and "removed 3 cached answers" in cleared.stdout
        assert json.loads(cli("cache", "stats", "--json").stdout)["entries"] == 0
        assert run("--cache")["cache"] == first["cache"]  # emptied: the calls are made again

    def test_no_cache_flag_overrides_the_workflow(self, project: Path) -> None:
        """`--no-cache` on a workflow with `settings.cache: true` uses no cache; without the flag it does."""
        (project / "review.yaml").write_text(WORKFLOW + "settings: {cache: true}\n")
        run()
        assert run("--no-cache")["cache"] is None
        cached = run()["cache"]
        assert isinstance(cached, dict) and cached["hits"] == 3
