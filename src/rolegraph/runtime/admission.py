"""How many runs one process works on at once: the others wait their turn, holding only their coroutine.

Ten thousand ``wf.run()`` started together would otherwise each open a run folder, a
run store and a trace file at once (tens of thousands of file descriptors, and every
run's state in memory together) and finish no sooner: the machine does the same work
either way. So each event loop admits at most ``ROLEGRAPH_MAX_RUNS`` runs (default
`DEFAULT_MAX_RUNS`) and the rest queue in the order they started. A run started
from inside an admitted run (a function step running a workflow) is admitted at
once, so nested runs cannot wait on their own parents.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar

__all__ = ["DEFAULT_MAX_RUNS", "MAX_RUNS_ENV", "admitted", "max_runs"]

MAX_RUNS_ENV = "ROLEGRAPH_MAX_RUNS"
"""The environment variable setting how many runs an event loop works on at once."""
DEFAULT_MAX_RUNS = 64
"""Runs worked on at once without ``ROLEGRAPH_MAX_RUNS``: enough to overlap every wait on files and
models on a few cores, few enough that their state stays small."""

_inside = ContextVar("rolegraph_admitted", default=False)
_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[int, asyncio.Semaphore]] = (
    weakref.WeakKeyDictionary()
)


def max_runs() -> int:
    """Runs an event loop works on at once: ``ROLEGRAPH_MAX_RUNS``, else `DEFAULT_MAX_RUNS`.

    Raises:
        ValueError: ``ROLEGRAPH_MAX_RUNS`` is not a whole number of at least 1.
    """
    text = os.environ.get(MAX_RUNS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_RUNS
    if not text.isdigit() or int(text) < 1:
        raise ValueError(
            f"{MAX_RUNS_ENV} must be a whole number of at least 1 (runs worked on at once), got {text!r}; "
            f"unset it for the default, {DEFAULT_MAX_RUNS}"
        )
    return int(text)


@asynccontextmanager
async def admitted() -> AsyncIterator[None]:
    """Inside: this run is one of the at most `max_runs` the running loop works on (waits its turn first).

    Raises:
        ValueError: ``ROLEGRAPH_MAX_RUNS`` is invalid.
    """
    if _inside.get():  # started by an admitted run: it must not wait for a slot its parent holds
        yield
        return
    limit = max_runs()
    loop = asyncio.get_running_loop()
    known = _gates.get(loop)
    if known is None or known[0] != limit:  # the first run on this loop, or the variable changed since
        known = (limit, asyncio.Semaphore(limit))
        _gates[loop] = known
    async with known[1]:
        token = _inside.set(True)
        try:
            yield
        finally:
            _inside.reset(token)
