"""A per-host rate limit: requests to one host are spaced at least a minimum interval apart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

__all__ = ["HostRateLimiter"]


class HostRateLimiter:
    """Spaces requests to each host by `min_interval` seconds; different hosts never wait on each other.

    Callers for one host queue on that host's lock, so concurrent tasks are spaced
    too, not just sequential calls.

    Args:
        min_interval: Least seconds between the starts of two requests to one host.
        clock: Monotonic seconds (injected in tests).
        sleep: How to wait (injected in tests, which assert on the intervals asked for).
    """

    def __init__(
        self,
        min_interval: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.min_interval = min_interval
        self._clock = clock
        self._sleep = sleep
        self._last: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def wait(self, host: str) -> None:
        """Return when a request to `host` may start."""
        lock = self._locks.setdefault(host, asyncio.Lock())
        async with lock:
            last = self._last.get(host)
            if last is not None:
                delay = last + self.min_interval - self._clock()
                if delay > 0:
                    await self._sleep(delay)
            self._last[host] = self._clock()
