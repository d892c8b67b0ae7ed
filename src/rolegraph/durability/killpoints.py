"""Reproducible crash points for fault-injection tests of durable runs.

``ROLEGRAPH_KILL_AT=journal:3`` makes a run kill its own process with SIGKILL right
after its third call-journal write; ``trace:17`` after the 17th trace record
written, ``checkpoint:2`` after the second scheduler checkpoint, ``item:1`` after
the first ``for_each`` item recorded. A SIGKILL cannot be caught, so the process
dies exactly as it would in a crash, at a point a test can name and repeat.
Unset (normal use), nothing is counted.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any

__all__ = ["KILL_ENV", "KillPoints"]

KILL_ENV = "ROLEGRAPH_KILL_AT"
"""The environment variable naming the kill point, ``<kind>:<n>``."""

KINDS = ("journal", "trace", "checkpoint", "item")


class KillPoints:
    """Counts events of one kind and kills the process at the n-th.

    Also a trace sink: each record it receives counts as a ``trace`` event (add it
    after the JSONL sink, so the record is on disk when the process dies).

    Args:
        kind: Which events count (one of `KINDS`).
        at: The event after which to die (1-based).
    """

    def __init__(self, kind: str, at: int) -> None:
        if kind not in KINDS or at < 1:
            raise ValueError(f"{KILL_ENV} must be <kind>:<n> with kind one of {', '.join(KINDS)} and n >= 1")
        self.kind = kind
        self.at = at
        self.seen = 0
        self.before_kill: Callable[[], None] | None = None
        """Called just before the kill: writes out what the trace sinks buffer, so the trace on disk
        holds every record emitted before the kill point, as a test names it."""

    @classmethod
    def from_env(cls) -> KillPoints | None:
        """The kill point ``$ROLEGRAPH_KILL_AT`` names, or None when it is unset."""
        value = os.environ.get(KILL_ENV)
        if not value:
            return None
        kind, _, count = value.partition(":")
        try:
            return cls(kind.strip(), int(count))
        except ValueError:
            raise ValueError(f"{KILL_ENV}={value!r}: expected <kind>:<n>, e.g. journal:3") from None

    def hit(self, kind: str) -> None:
        """Count one event of `kind`; at the chosen one, SIGKILL this process."""
        if kind != self.kind:
            return
        self.seen += 1
        if self.seen == self.at:
            if self.before_kill is not None:
                self.before_kill()
            os.kill(os.getpid(), signal.SIGKILL)

    def emit(self, record: dict[str, Any]) -> None:
        """Count a trace record (the `TraceSink` method)."""
        self.hit("trace")
