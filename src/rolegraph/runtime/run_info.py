"""`RunInfo`: what a run was started with and where it stands — the run's identity across invocations.

The engine reads it to run (inputs, model, settings, content mode); the run store
keeps it, so that a resume or a replay starts from the same inputs and settings.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, field_validator

from rolegraph.traces.content import ContentMode
from rolegraph.workflows.spec import Privacy

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
    privacy: Privacy | None = None
    """The run's effective privacy (``settings.privacy``, ``--privacy`` or ``load(privacy=)``): a resume keeps
    ``local_only`` whatever the file or its command line say. None: not recorded (a run from before it)."""
    status: str = "running"
    started: str = ""
    """ISO 8601 UTC."""
    root_span_id: str | None = None
    """The ``invoke_workflow`` span every invocation of the run continues."""
    invocations: int = 0
    """How many processes have worked on the run (1 + resumes)."""
    elapsed_s: float = 0.0
    """Wall time of the finished invocations, for the run's ``max_wall_s``."""

    @field_validator("privacy", mode="before")
    @classmethod
    def _known_privacy(cls, value: object) -> object:
        """A value this version does not know (a damaged record) is not recorded, not an error."""
        return value if value in ("any", "local_only") else None


def file_hash(path: Path) -> str:
    """SHA-256 of a file's bytes, in hex: how a run (or an eval) tells that its workflow file changed."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
