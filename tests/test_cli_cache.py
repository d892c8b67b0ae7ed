"""The command line of the model-call cache: `run --cache`, `cache stats`, `cache clear`, and the savings shown."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from eval_projects import GOOD, NOTES, WORKFLOW
from projects import isolated_home, write_library, write_script
from rolegraph.cli import app

ROLEGRAPH = Path(sys.executable).parent / "rolegraph"


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

    def test_stats_prints_a_cache_whose_numbers_are_damaged(self, project: Path) -> None:
        """Token counts whose sum overflows and times past the calendar: `cache stats` prints its table, the times
        as "?", instead of a traceback (found by the fuzz suite's slow lane)."""
        run("--cache")
        with sqlite3.connect(os.environ["ROLEGRAPH_HOME"] + "/cache.sqlite") as db:
            db.execute("UPDATE entries SET input_tokens = 1e308, hits = 2, created = 1e308")
        db.close()
        table = cli("cache", "stats")
        assert table.exit_code == 0, table.output
        assert re.search(r"entries +3 *\n", table.stdout) and re.search(r"stored +\? to \? ", table.stdout)

    def test_no_cache_flag_overrides_the_workflow(self, project: Path) -> None:
        """`--no-cache` on a workflow with `settings.cache: true` uses no cache; without the flag it does."""
        (project / "review.yaml").write_text(WORKFLOW + "settings: {cache: true}\n")
        run()
        assert run("--no-cache")["cache"] is None
        cached = run()["cache"]
        assert isinstance(cached, dict) and cached["hits"] == 3


class TestRunsList:
    def test_runs_shows_the_savings_of_a_run_with_hits_only(self, project: Path) -> None:
        """`runs` shows a cached run's calls answered from the cache and tokens saved, and nothing for a run
        without hits; `runs --json` carries each run's cache as run.json records it (null without the cache)."""
        plain = run()
        first = run("--cache")
        second = run("--cache")
        saved = second["cache"]
        assert isinstance(saved, dict) and saved["hits"] == 3
        tokens = saved["input_tokens"] + saved["output_tokens"]
        listed = {row["run_id"]: row for row in json.loads(cli("runs", "--json").stdout)}
        assert listed[str(second["run_id"])]["cache"] == saved
        assert listed[str(first["run_id"])]["cache"] == first["cache"]
        assert listed[str(plain["run_id"])]["cache"] is None
        table = cli("runs").stdout
        lines = {line.split()[0]: line for line in table.splitlines()[1:]}
        assert table.splitlines()[0].split()[-1] == "cached"
        assert lines[str(second["run_id"])].rstrip().endswith(f"3 calls, {tokens:,} tokens")
        assert "calls" not in lines[str(first["run_id"])] and "calls" not in lines[str(plain["run_id"])]

    def test_a_damaged_cache_record_shows_nothing(self, project: Path) -> None:
        """A run.json whose cache is not the recorded shape lists the run without savings, not a traceback."""
        cached = run("--cache")
        home = Path(os.environ["ROLEGRAPH_HOME"])
        summary_file = home / "runs" / str(cached["run_id"]) / "run.json"
        summary = json.loads(summary_file.read_text())
        summary["cache"] = {"hits": "many"}
        summary_file.write_text(json.dumps(summary))
        listed = cli("runs", "--json")
        assert listed.exit_code == 0, listed.output
        assert json.loads(listed.stdout)[0]["cache"] is None


class TestResumedCachedRun:
    def test_a_resumed_run_counts_the_hits_of_its_first_invocation(self, project: Path, tmp_path: Path) -> None:
        """Killed after its third journal record (two calls answered by the cache, their spans ended but the
        second's), then resumed: the summary counts the first invocation's traced hit with the resume's own."""
        run("--cache")
        home = tmp_path / "home"
        env = {**os.environ, "ROLEGRAPH_HOME": str(home), "COLUMNS": "200", "ROLEGRAPH_KILL_AT": "journal:3"}
        command = [ROLEGRAPH, "run", "review.yaml", "--model", "scripted:model.yaml", "--quiet", "--cache"]
        killed = subprocess.run(command, env=env, cwd=project, capture_output=True, text=True, timeout=120)
        assert killed.returncode < 0, killed.stderr
        (run_dir,) = [p for p in (home / "runs").iterdir() if p.name not in _finished(home)]
        resumed = cli("resume", run_dir.name, "--json", "--quiet")
        assert resumed.exit_code == 0, resumed.output
        summary = json.loads(resumed.stdout[: resumed.stdout.rindex("}") + 1])
        assert summary["replayed_calls"] == 3  # chat, tool, chat of `research`, from the journal
        assert summary["cache"]["hits"] == 2  # research's first chat (traced before the kill) and write's chat


def _finished(home: Path) -> set[str]:
    """The runs whose summary says they completed."""
    done = set()
    for folder in (home / "runs").iterdir():
        summary = folder / "run.json"
        if summary.is_file() and json.loads(summary.read_text()).get("status") == "completed":
            done.add(folder.name)
    return done
