"""`RunInfo`: what a run was started with and where it stands — the run's identity across invocations.

The engine reads it to run (inputs, model, settings, content mode); the run store
keeps it, so that a resume or a replay starts from the same inputs and settings.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from rolegraph.traces.content import ContentMode

__all__ = ["RunInfo", "file_hash"]


class RunInfo(BaseModel):
    """What a run was started with, and where it stands."""

    run_id: str
    workflow: str
    workflow_file: str | None = None
    """Absolute path of the workflow file (None for a workflow built in Python)."""
    workflow_hash: str | None = None
    """SHA-256 of the workflow file when the run started: a resume refuses a changed file."""
    inputs: dict[str, Any] = Field(default_factory=dict)
    model: str | None = None
    """The ``--model`` override, if any."""
    settings: dict[str, Any] = Field(default_factory=dict)
    """Settings laid over the default model's (the fields an eval matrix or caller set)."""
    content: ContentMode | None = None
    """The content mode chosen for the run, if it replaced the workflow's ``settings.content``."""
    budget: dict[str, float] = Field(default_factory=dict)
    """The run's budget limits (the workflow's, with command-line overrides)."""
    cache: bool | None = None
    """The ``--cache`` choice, if it replaced the workflow's ``settings.cache``."""
    status: str = "running"
    started: str = ""
    """ISO 8601 UTC."""
    root_span_id: str | None = None
    """The ``invoke_workflow`` span every invocation of the run continues."""
    invocations: int = 0
    """How many processes have worked on the run (1 + resumes)."""
    elapsed_s: float = 0.0
    """Wall time of the finished invocations, for the run's ``max_wall_s``."""


def file_hash(path: Path) -> str:
    """SHA-256 of a file's bytes, in hex: how a run (or an eval) tells that its workflow file changed."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
