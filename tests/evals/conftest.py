"""Eval tests run over the tiny project of `eval_projects`, with two scripted models."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval_projects import GOOD, THIN, write_eval_project
from projects import isolated_home


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Runs go under a temporary ROLEGRAPH_HOME; rich prints wide, plain lines."""
    return isolated_home(tmp_path, monkeypatch)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The project folder: `scripted:good.yaml` and `scripted:thin.yaml` resolve beside its workflow."""
    return write_eval_project(tmp_path / "project", {"good": GOOD, "thin": THIN})
