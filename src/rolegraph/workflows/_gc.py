"""Pausing the cyclic garbage collector while a workflow is read or compiled.

Reading allocates some ten objects per value (events, nodes, marks, data, models)
and compiling a few per step (the graph's dicts), and none of them is garbage
until the work is done; yet the collector walks them again and again: half the
time of reading a 10,000-step workflow, and of compiling it. A document is bounded
(`rolegraph.workflows.reader.MAX_BYTES`, ``MAX_NODES``), so is what the pause lets
accumulate.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["paused_gc"]


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """The cyclic garbage collector paused inside the block (left off if it was off before)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
