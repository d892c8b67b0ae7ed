"""The deadlines of a run's running steps, on one loop timer.

A step's timeout used to be an `asyncio.timeout` of its own: a timer armed and
cancelled per step. `Deadlines` keeps every running step's deadline and one
timer, due at the soonest; a step that finishes only forgets its deadline. When
the timer fires it hands over each step whose deadline has passed and sets itself
for the soonest deadline left. In a chain (each step starting after the last) the
timer is set once per step timeout, not once per step.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from rolegraph.errors import BudgetExceeded

__all__ = ["Deadlines", "timed_out"]


def timed_out(step_id: str, wall: float | None, timeout: float) -> Exception:
    """What a step whose deadline passed fails with: its wall-time budget ran out if that was the sooner limit
    (`BudgetExceeded`, which stops the run), else the step timed out (`TimeoutError`)."""
    if wall is not None and wall <= timeout:
        return BudgetExceeded("max_wall_s", f"step {step_id}", wall, wall)
    return TimeoutError()


class Deadlines:
    """Running steps' deadlines (loop time), and the one timer that fires for the soonest.

    Args:
        expired: Called with a step whose deadline passed (once; its deadline is forgotten).
    """

    def __init__(self, expired: Callable[[str], None]) -> None:
        self._expired = expired
        self._deadlines: dict[str, float] = {}
        self._timer: asyncio.TimerHandle | None = None

    def arm(self, step_id: str, deadline: float) -> None:
        """Note when `step_id` times out; the timer moves only if this is now the soonest deadline."""
        self._deadlines[step_id] = deadline
        timer = self._timer
        if timer is None or deadline < timer.when():
            if timer is not None:
                timer.cancel()
            self._timer = asyncio.get_running_loop().call_at(deadline, self._fire, deadline)

    def disarm(self, step_id: str) -> None:
        """`step_id` ended: forget its deadline (if it had not passed). The timer stays; it re-aims when it fires."""
        self._deadlines.pop(step_id, None)

    def close(self) -> None:
        """Cancel the timer (the run is over)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self, due: float) -> None:
        """The timer for deadline `due` fired: hand over every step whose deadline it was, then aim at the
        soonest deadline left."""
        self._timer = None
        passed = [step_id for step_id, deadline in self._deadlines.items() if deadline <= due]
        for step_id in passed:
            del self._deadlines[step_id]
        soonest = min(self._deadlines.values(), default=None)
        if soonest is not None:
            self._timer = asyncio.get_running_loop().call_at(soonest, self._fire, soonest)
        for step_id in passed:
            self._expired(step_id)
