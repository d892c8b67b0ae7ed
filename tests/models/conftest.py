"""Shared fixtures of the model tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from rolegraph.models.local import local_model_path


@pytest.fixture(scope="session")
def gguf() -> Path:
    """The embedded SmolLM2 GGUF (installed with the dev dependencies)."""
    return local_model_path()
