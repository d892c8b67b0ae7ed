"""Recorded runs for the viewer tests, made once per module with real (scripted) workflow runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from rolegraph.workflows.run import RunResult
from viewer.recording import record, write_project


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RunResult, RunResult]:
    """A home with two recorded runs: the demo (parallel research) and the untrusted one; (home, demo, untrusted)."""
    folder = tmp_path_factory.mktemp("viewer")
    demo, untrusted = write_project(folder / "project")
    home = folder / "home"
    bad = record(untrusted, home)
    good = record(demo, home)
    return home, good, bad
