"""Where a run comes from: a replay of another run, a run resumed after an interruption.

A replay's root span carries ``rolegraph.replay.of`` (the recorded run's id); a
resumed run's trace holds a ``run_resumed`` event per resume. A replay that
stopped at a call its recording could not answer ends ``failed`` with a
``replay diverged at ...`` error: that is what a replay is for, not a failure of
the run, so the viewer shows it as ``diverged``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rolegraph.layout import RunFolder

__all__ = ["DIVERGED", "Lineage", "read_lineage"]

DIVERGED = "diverged"
"""The status shown for a replay that stopped at its first divergence."""
_DIVERGED_AT = re.compile(r"replay diverged at (.+)")
_HEAD_LINES = 20


@dataclass(frozen=True)
class Lineage:
    """A run's origin, as the runs list and the run page mark it."""

    replay_of: str | None = None
    """The id of the run this one replays."""
    resumed: bool = False
    """Whether the run was resumed (continued after an interruption) at least once."""
    divergence: str | None = None
    """Where a replay stopped: ``step review, call review#1/chat/1 (chat): prompt changed``."""

    def status(self, status: str) -> str:
        """The status to show: ``diverged`` for a replay that stopped at a divergence, else `status`."""
        return DIVERGED if self.divergence is not None and status == "failed" else status

    def as_dict(self) -> dict[str, Any]:
        """The marks as JSON data."""
        return {"replay_of": self.replay_of, "resumed": self.resumed, "divergence": self.divergence}


def _replay_of(head: list[bytes]) -> str | None:
    """``rolegraph.replay.of`` of the first root span's start record, among the trace's first lines."""
    for line in head:
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(record, dict) and record.get("event") == "span_start":
            attributes = record.get("attributes")
            if record.get("kind") != "invoke_workflow" or record.get("parent_id") is not None:
                return None
            value = attributes.get("rolegraph.replay.of") if isinstance(attributes, dict) else None
            return None if value is None else str(value)
    return None


def read_lineage(run_dir: Path, summary: dict[str, Any]) -> Lineage:
    """Read a run folder's marks (its ``trace.jsonl``, and the error in its ``run.json`` `summary`)."""
    try:
        data = RunFolder(run_dir).trace.read_bytes()
    except OSError:
        data = b""
    replay_of = _replay_of(data.split(b"\n", _HEAD_LINES)[:_HEAD_LINES])
    resumed = b'"run_resumed"' in data or bool(summary.get("resumed_steps"))
    found = _DIVERGED_AT.search(str(summary.get("error") or "")) if replay_of else None
    return Lineage(replay_of=replay_of, resumed=resumed, divergence=found.group(1).strip() if found else None)
