"""Deadlines: running steps' deadlines on one loop timer, each handed over once when it passes."""

from __future__ import annotations

import asyncio

from rolegraph.runtime.deadlines import Deadlines


class TestDeadlines:
    async def test_a_passed_deadline_is_handed_over_once_and_a_disarmed_one_never(self) -> None:
        """Only the running step whose deadline passed is handed over, once; a step that ended is not."""
        expired: list[str] = []
        fired = asyncio.Event()
        deadlines = Deadlines(lambda step: (expired.append(step), fired.set()))
        now = asyncio.get_running_loop().time()
        deadlines.arm("ended", now + 0.01)
        deadlines.arm("running", now + 0.02)
        deadlines.disarm("ended")
        async with asyncio.timeout(30):
            await fired.wait()
        await asyncio.sleep(0.05)  # nothing else is handed over later
        assert expired == ["running"]
        deadlines.close()

    async def test_a_sooner_deadline_armed_later_fires_first(self) -> None:
        """The timer moves to a deadline sooner than the one it was set for, and then on to the later one."""
        expired: list[str] = []
        both = asyncio.Event()

        def note(step: str) -> None:
            expired.append(step)
            if len(expired) == 2:
                both.set()

        deadlines = Deadlines(note)
        now = asyncio.get_running_loop().time()
        deadlines.arm("late", now + 0.05)
        deadlines.arm("soon", now + 0.01)
        async with asyncio.timeout(30):
            await both.wait()
        assert expired == ["soon", "late"]

    async def test_closing_cancels_the_timer(self) -> None:
        """After close, no deadline is handed over: the run is over."""
        expired: list[str] = []
        deadlines = Deadlines(expired.append)
        deadlines.arm("a", asyncio.get_running_loop().time() + 0.01)
        deadlines.close()
        await asyncio.sleep(0.05)
        assert expired == []
