"""What the browser tool does with an open page: go to a URL, read it, list its links, click, scroll, screenshot.

Each action returns a `ToolResult` whose page text is framed as untrusted data
(`tools/untrusted.py`). Only a page that really loaded, over http(s), is read or
registered as a source: a page showing Chromium's error page (a refused or failed
navigation, ``chrome-error://chromewebdata/``) is an error, whatever an action
finds on it.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from rolegraph.errors import ToolError
from rolegraph.tools.browser.guard import MAX_REDIRECTS, NetworkGuard
from rolegraph.tools.browser.session import Tab
from rolegraph.tools.extract import extract_html
from rolegraph.tools.fetch import web_source_id
from rolegraph.tools.sources import Source
from rolegraph.tools.tool import ToolResult
from rolegraph.tools.untrusted import frame

if TYPE_CHECKING:
    from playwright.async_api import Page

__all__ = ["click", "goto", "links", "loaded_url", "read", "screenshot", "scroll"]

_MAX_LINKS = 40


def loaded_url(tab: Tab, guard: NetworkGuard) -> str:
    """The URL of the web page `tab` shows.

    Raises:
        ToolError: The tab shows no web page (its navigation was refused or failed); the message says why.
    """
    url = tab.page.url
    if urlsplit(url).scheme in ("http", "https"):
        return url
    failure = guard.failure(tab.page)
    detail = failure or f"it shows {url}, not a web page"
    raise ToolError(f"page {tab.id} did not load ({detail}); it is not a source")


async def settle(page: Page) -> None:
    """Give scripts a moment to render: wait for the network to go quiet, briefly, best effort."""
    with contextlib.suppress(Exception):
        await page.wait_for_load_state("networkidle", timeout=2000)


async def goto(tab: Tab, guard: NetworkGuard, url: str) -> None:
    """Navigate `tab` to `url`, following top-level redirects afresh so each hop passes the guard.

    Raises:
        ToolError: An HTTP error status, or too many redirects.
    """
    page = tab.page
    for _ in range(MAX_REDIRECTS + 1):
        guard.take_redirect(page)
        try:
            response = await page.goto(url, wait_until="domcontentloaded")
        except Exception:
            url = guard.take_redirect(page) or ""
            if url:
                continue
            raise
        if response is not None and response.status >= 400:
            raise ToolError(f"HTTP {response.status} {response.status_text} from {page.url}")
        await settle(page)
        return
    raise ToolError(f"{url}: more than {MAX_REDIRECTS} redirects")


async def read(tab: Tab, guard: NetworkGuard, max_chars: int, *, tool: str) -> ToolResult:
    """The page's title and main text, registered as a source under `tool`'s name."""
    page = tab.page
    url = loaded_url(tab, guard)
    title = await page.title()
    html = await page.content()
    text = ""
    with contextlib.suppress(Exception):  # trafilatura fails in many ways on odd markup
        text = (await asyncio.to_thread(extract_html, html.encode("utf-8"), url=url, encoding="utf-8")).text
    if not text.strip():
        text = await page.inner_text("body")
    tab.shown.update(line.strip() for line in text.splitlines() if line.strip())
    source_id = web_source_id(url)
    summary = f"browser page {tab.id}: {url} → source {source_id} ({len(text):,} characters)"
    body = f"Title: {title}\n\n{text}" if title else text
    content = f"{summary}\n{frame(body, origin=url, budget=max_chars)}\nCite this page as {source_id}."
    source = Source(id=source_id, title=title or url, url=url, tool=tool, text=text)
    data = {"page": tab.id, "url": url, "title": title, "id": source_id, "chars": len(text)}
    return ToolResult(content=content, data=data, sources=[source])


async def links(tab: Tab, guard: NetworkGuard) -> ToolResult:
    """The page's visible http(s) links, as ``[n] text → url``."""
    url = loaded_url(tab, guard)
    found: list[dict[str, str]] = await tab.page.eval_on_selector_all(
        "a[href]",
        """(links) => links
            .filter((a) => a.offsetParent !== null && a.href.startsWith("http"))
            .map((a) => ({text: (a.innerText || a.title || "").trim().replace(/\\s+/g, " "), url: a.href}))""",
    )
    shown = [link for link in found if link["text"]][:_MAX_LINKS]
    lines = "\n".join(f"[{n}] {link['text'][:120]} → {link['url']}" for n, link in enumerate(shown, 1))
    more = f"\n[… {len(found) - len(shown)} more not shown]" if len(found) > len(shown) else ""
    content = f"browser page {tab.id}: {len(shown)} links on {url}\n" + frame(
        (lines or "(no visible links)") + more, origin=url, budget=8000
    )
    return ToolResult(content=content, data={"page": tab.id, "links": shown})


async def click(
    tab: Tab, guard: NetworkGuard, text: str, *, max_chars: int, click_timeout: float, tool: str
) -> ToolResult:
    """Click the link or button whose visible text is `text`, then read the page it leads to.

    Raises:
        ToolError: Nothing on the page has that text.
    """
    page = tab.page
    loaded_url(tab, guard)
    target = None
    for locator in (
        page.get_by_role("link", name=text),
        page.get_by_role("button", name=text),
        page.get_by_text(text),
    ):
        if await locator.count():
            target = locator.first
            break
    if target is None:
        raise ToolError(f"no link or button with the text {text!r} on page {tab.id} ({page.url})")
    guard.take_redirect(page)
    try:
        await target.click(timeout=click_timeout * 1000)
    except Exception:
        redirected = guard.take_redirect(page)  # a redirect aborts the click's navigation: not a failure
        if redirected is None:
            raise
    else:
        redirected = guard.take_redirect(page)
    if redirected is not None:
        await goto(tab, guard, redirected)
    else:
        await settle(page)
    return await read(tab, guard, max_chars, tool=tool)


async def scroll(tab: Tab, guard: NetworkGuard, max_chars: int) -> ToolResult:
    """Scroll down one screen and return only the lines not shown before."""
    page = tab.page
    url = loaded_url(tab, guard)
    # Scroll events fire on the next animation frame; wait for it so lazy loaders have started.
    await page.evaluate(
        "() => { window.scrollBy(0, window.innerHeight);"
        " return new Promise((done) => requestAnimationFrame(() => setTimeout(done, 50))); }"
    )
    await settle(page)
    text = await page.inner_text("body")
    new = [line.strip() for line in text.splitlines() if line.strip() and line.strip() not in tab.shown]
    tab.shown.update(new)
    at_end = await page.evaluate("window.innerHeight + window.scrollY >= document.body.scrollHeight - 2")
    where = "at the end of the page" if at_end else "more below"
    summary = f"browser page {tab.id}: scrolled {url}; {len(new)} new lines ({where})"
    body = "\n".join(new) or "(no new text)"
    return ToolResult(
        content=f"{summary}\n{frame(body, origin=url, budget=max_chars)}",
        data={"page": tab.id, "url": url, "new_lines": len(new), "at_end": at_end},
    )


async def screenshot(tab: Tab, guard: NetworkGuard, path: Path) -> ToolResult:
    """Save a PNG of the page to `path`."""
    url = loaded_url(tab, guard)
    await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
    await tab.page.screenshot(path=str(path))
    return ToolResult(
        content=f"browser page {tab.id}: saved a screenshot of {url} to {path}",
        data={"page": tab.id, "url": url, "path": str(path)},
    )
