"""Fixtures the durability tests share: an isolated rolegraph home and the looping research project."""

from __future__ import annotations

from pathlib import Path

import pytest

from durable_projects import write_loop_project
from projects import isolated_home


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ROLEGRAPH_HOME under the test's temporary folder."""
    return isolated_home(tmp_path, monkeypatch)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The looping project of `durable_projects` (a planner, researchers looping over a library, a writer)."""
    return write_loop_project(tmp_path / "project")
