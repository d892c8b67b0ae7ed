"""One run's browser: find Chromium, launch it with the guard in place, keep a small pool of pages, close it all.

Playwright drives the system's Chromium (Debian's ``chromium`` package) through
``executable_path``; ``playwright install`` is never needed. The binary is found
in this order: ``$ROLEGRAPH_CHROMIUM``, the constructor's `executable_path`,
then ``chromium``, ``chromium-browser`` or ``google-chrome`` on ``PATH``.

Chromium starts on first use with a fresh profile in a temporary folder (so the
WebRTC preference of `guard.WEBRTC_PREFERENCES` is in place before the first
page), one context (downloads off, service workers blocked, so every request is
seen by the guard), and is closed, profile and all, by `BrowserSession.aclose`.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import itertools
import json
import os
import shutil
import tempfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rolegraph.errors import ToolError
from rolegraph.tools.browser.guard import GUARD_FLAGS, WEBRTC_PREFERENCES, NetworkGuard

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page, Playwright

__all__ = ["CHROMIUM_ENV", "CHROMIUM_FLAGS", "BrowserSession", "Tab", "find_chromium"]

CHROMIUM_ENV = "ROLEGRAPH_CHROMIUM"
"""Environment variable naming the Chromium binary; it wins over everything else."""

CHROMIUM_FLAGS = (
    "--no-sandbox",  # the runs happen as root in containers, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium phones home (updates, sync, safe browsing, field trials) on its own,
    # past the route handler, which only sees what pages request.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--dns-prefetch-disable",
    "--disable-dev-shm-usage",  # containers have a tiny /dev/shm
)
"""Flags every launch passes; see the comments for why. The browser tool adds `guard.GUARD_FLAGS`."""

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium(explicit: str | Path | None = None, *, environ: dict[str, str] | None = None) -> str:
    """The Chromium binary to launch: ``$ROLEGRAPH_CHROMIUM``, then `explicit`, then the first on ``PATH``.

    Raises:
        ToolError: None is found, or the named one does not exist; the message says how to install it.
    """
    env = os.environ if environ is None else environ
    for named, origin in ((env.get(CHROMIUM_ENV), CHROMIUM_ENV), (explicit, "executable_path")):
        if named:
            path = shutil.which(str(named)) or (str(named) if Path(named).is_file() else None)
            if path is None:
                raise ToolError(f"browser: {origin} names {str(named)!r}, which is not an executable file")
            return path
    for candidate in _CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    raise ToolError(
        "browser: no Chromium found; install it with 'apt-get install chromium' "
        f"or set {CHROMIUM_ENV} to the path of a Chromium or Chrome binary"
    )


@dataclass
class Tab:
    """One open page and what the tool knows about it."""

    id: int
    page: Page
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    shown: set[str] = field(default_factory=set)
    """Lines of text already shown (scroll returns only new ones)."""


def _new_profile() -> Path:
    """A fresh Chromium profile folder holding the guard's preferences."""
    profile = Path(tempfile.mkdtemp(prefix="rolegraph-chromium-"))
    (profile / "Default").mkdir()
    (profile / "Default" / "Preferences").write_text(json.dumps(WEBRTC_PREFERENCES), encoding="utf-8")
    return profile


class BrowserSession:
    """Launches Chromium on first use, keeps at most `max_pages` pages (least recently used closed first), closes.

    Args:
        guard: The network guard installed on the context before any page opens.
        executable_path: The Chromium binary (``$ROLEGRAPH_CHROMIUM`` wins; default: found on ``PATH``).
        max_pages: Most pages open at once.
        headless: Run without a window (the only choice on a server).
    """

    def __init__(
        self,
        guard: NetworkGuard,
        *,
        executable_path: str | Path | None = None,
        max_pages: int = 2,
        headless: bool = True,
    ) -> None:
        if max_pages < 1:
            raise ValueError("max_pages must be at least 1")
        self.guard = guard
        self.executable_path = executable_path
        self.max_pages = max_pages
        self.headless = headless
        self._tabs: OrderedDict[int, Tab] = OrderedDict()
        self._ids = itertools.count(1)
        self._start_lock = asyncio.Lock()
        self._playwright: Playwright | None = None
        self._context: BrowserContext | None = None
        self._profile: Path | None = None

    @property
    def browser(self) -> Browser | None:
        """The launched browser, or None before the first launch and after `aclose`."""
        return self._context.browser if self._context is not None else None

    @property
    def pages(self) -> list[int]:
        """Ids of the open pages, least recently used first."""
        return list(self._tabs)

    async def context(self) -> BrowserContext:
        """The browser context, launching Chromium first if it is not running."""
        async with self._start_lock:
            if self._context is None:
                executable = find_chromium(self.executable_path)
                from playwright.async_api import async_playwright  # imported here: only runs that browse pay

                # trafilatura's import (about a second) is paid while launching, not inside an action's time.
                warm = asyncio.create_task(asyncio.to_thread(importlib.import_module, "trafilatura"))
                try:
                    playwright = await async_playwright().start()
                finally:
                    await warm
                profile = await asyncio.to_thread(_new_profile)
                try:
                    context = await playwright.chromium.launch_persistent_context(
                        profile,
                        executable_path=executable,
                        headless=self.headless,
                        args=[*CHROMIUM_FLAGS, *GUARD_FLAGS],
                        accept_downloads=False,
                        service_workers="block",
                    )
                    await self.guard.install(context)
                    for blank in context.pages:  # the window a persistent context opens with
                        await blank.close()
                except BaseException:
                    await _shutdown(playwright, None, profile)
                    raise
                self._playwright, self._context, self._profile = playwright, context, profile
            return self._context

    async def new_tab(self) -> Tab:
        """Open a page, first closing the least recently used idle one if the pool is full.

        Raises:
            ToolError: Every page in the full pool is busy.
        """
        context = await self.context()
        while len(self._tabs) >= self.max_pages:
            idle = next((t for t in self._tabs.values() if not t.lock.locked()), None)
            if idle is None:
                raise ToolError(f"all {self.max_pages} pages are busy")
            del self._tabs[idle.id]
            self.guard.forget(idle.page)
            await idle.page.close()
        tab = Tab(next(self._ids), await context.new_page())
        self._tabs[tab.id] = tab
        return tab

    def tab(self, wanted: int | None) -> Tab:
        """The open page `wanted` (default: the last one used), now the most recently used.

        Raises:
            ToolError: No page is open, or `wanted` is not.
        """
        if not self._tabs:
            raise ToolError("no page is open; use action=open with a url first")
        key = next(reversed(self._tabs)) if wanted is None else wanted
        if key not in self._tabs:
            raise ToolError(
                f"page {wanted} is not open (open pages: {', '.join(map(str, self._tabs))}; "
                f"at most {self.max_pages} stay open, the least recently used is closed first)"
            )
        self._tabs.move_to_end(key)
        return self._tabs[key]

    async def aclose(self) -> None:
        """Close every page, the browser, Playwright and the profile; safe to call twice, and under cancellation.

        A later call to `context` launches a fresh browser.
        """
        playwright, context, profile = self._playwright, self._context, self._profile
        self._playwright = self._context = self._profile = None
        self._tabs.clear()
        # Shielded: a cancelled run still ends its Chromium process instead of leaving it behind.
        await asyncio.shield(_shutdown(playwright, context, profile))


async def _shutdown(playwright: Playwright | None, context: BrowserContext | None, profile: Path | None) -> None:
    if context is not None:
        with contextlib.suppress(Exception):  # already gone: nothing left to close
            await context.close()  # a persistent context's close ends its browser too
    if playwright is not None:
        with contextlib.suppress(Exception):
            await playwright.stop()
    if profile is not None:
        await asyncio.to_thread(shutil.rmtree, profile, ignore_errors=True)
