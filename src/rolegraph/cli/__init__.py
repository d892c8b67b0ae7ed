"""The `rolegraph` command line. Thin: it parses, calls the library, and renders.

One module per group of commands; each registers its commands on the shared `app`.
"""

from __future__ import annotations

import sys

from rolegraph.cli import batch, cache, evals, init, library, replay, resume, runs, serve, tools, traces, workflows
from rolegraph.cli._common import EXIT_CANCELLED, app

__all__ = ["app", "main"]

_COMMAND_MODULES = (init, workflows, resume, replay, traces, runs, cache, tools, library, evals, batch, serve)
"""Imported for their side effect: each adds its commands to `app`."""


def main() -> None:
    """Entry point of the `rolegraph` console script."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(EXIT_CANCELLED)
