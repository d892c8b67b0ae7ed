"""Recorded runs for the viewer tests, made once per module with real (scripted) workflow runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from rolegraph.runtime.result import RunResult
from viewer.recording import record, write_project


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RunResult, RunResult]:
    """A home with three runs: a failed one, an untrusted one and the demo (parallel research), recorded in
    that order; returns (home, demo, untrusted) (`failed_run` gives the failed one)."""
    folder = tmp_path_factory.mktemp("viewer")
    demo, untrusted, broken = write_project(folder / "project")
    home = folder / "home"
    record(broken, home, status="failed")
    bad = record(untrusted, home)
    good = record(demo, home)
    return home, good, bad


@pytest.fixture(scope="module")
def failed_run(recorded: tuple[Path, RunResult, RunResult]) -> str:
    """The id of the recorded run that failed (its `research` step failed, `write` was skipped)."""
    home, demo, untrusted = recorded
    [run_id] = {p.name for p in (home / "runs").iterdir()} - {demo.run_id, untrusted.run_id}
    return run_id
