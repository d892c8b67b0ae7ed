"""Building small workflow projects in a test's tmp folder: a library of notes, model scripts, a home."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml


def write_library(folder: Path, notes: Mapping[str, str]) -> Path:
    """A library folder of paper notes (key -> body) with plain front matter; returns it."""
    library = folder / "library"
    library.mkdir(parents=True)
    for number, (key, body) in enumerate(notes.items()):
        facts = {"key": key, "title": f"Paper {key}", "first_author": "Ada Lovelace", "year": 2020 + number}
        front = yaml.safe_dump({**facts, "venue": "arXiv", "topic": "fine-tuning"}, sort_keys=False)
        (library / f"{key}.md").write_text(f"---\n{front}---\n\n{body}\n")
    return library


def write_script(folder: Path, name: str, entries: list[dict[str, Any]]) -> Path:
    """A `scripted:<name>.yaml` model script beside the workflow; returns its path."""
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(entries, sort_keys=False))
    return path


def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point ROLEGRAPH_HOME at a tmp folder and make rich print wide, plain lines; returns the home."""
    folder = tmp_path / "home"
    monkeypatch.setenv("ROLEGRAPH_HOME", str(folder))
    monkeypatch.setenv("COLUMNS", "250")
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)
    return folder
