"""Driving the viewer in a real Chromium (Debian's, through Playwright): serving a home, opening pages,
screenshots, and what the layout checks measure in the page.

Screenshots go to the test's tmp folder; with ROLEGRAPH_VIEWER_SCREENSHOTS=1 the ones
the README shows are also copied to docs/images/.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from rolegraph.viewer import create_app

playwright_api = pytest.importorskip("playwright.sync_api")

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS_ENV = "ROLEGRAPH_VIEWER_SCREENSHOTS"
SIZES = [(1280, 800), (1400, 900)]
"""The window sizes the layout must fit without scrolling sideways."""


@contextmanager
def serving(home: Path) -> Iterator[str]:
    """The viewer over `home`, served by uvicorn on 127.0.0.1 (a free port) in a thread; its base URL."""
    config = uvicorn.Config(create_app(home), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    started = threading.Event()
    while not server.started and thread.is_alive():
        started.wait(0.02)
    assert server.started, "uvicorn did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@contextmanager
def open_page(browser: Any, width: int = 1440, height: int = 900) -> Iterator[Any]:
    """A fresh page of that size that fails the test on any page error, failed request or console error."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("requestfailed", lambda request: problems.append(f"request failed: {request.url}"))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.set_default_timeout(10_000)
    yield page
    context.close()
    assert problems == []


def screenshot(page: Any, tmp_path: Path, name: str, *, docs: bool = True) -> Path:
    """Save a screenshot in the test's tmp folder, and (`docs`) in docs/images/ when the env var asks."""
    path = tmp_path / f"viewer-{name}.png"
    page.screenshot(path=path)
    if docs and os.environ.get(SCREENSHOTS_ENV) == "1":
        (REPO / "docs" / "images").mkdir(exist_ok=True)
        shutil.copyfile(path, REPO / "docs" / "images" / path.name)
    return path


OVERFLOWING = """() => {
  const found = [];
  const doc = document.scrollingElement;
  if (doc.scrollWidth > doc.clientWidth) found.push(`page ${doc.scrollWidth} > ${doc.clientWidth}`);
  const boxes = ["main", "nav.side", "#graph", "#lanes", "#waterfall", "#panel", "#output", "#source-panel",
    "#compare", "#eval", ".card", ".run-item", ".facts", "pre.error", ".table-wrap"];
  for (const node of document.querySelectorAll(boxes.join(","))) {
    if (!node.clientWidth) continue;  // hidden
    if (node.scrollWidth > node.clientWidth + 1) {
      found.push(`${node.id || node.className} ${node.scrollWidth} > ${node.clientWidth}`);
    }
  }
  const graph = document.querySelector("#graph svg");
  const card = document.querySelector("#graph");
  if (graph && graph.getBoundingClientRect().right > card.getBoundingClientRect().right + 1) {
    found.push("graph drawn past its card");
  }
  return found;
}"""
"""Everything that scrolls (or is cut off) sideways: the page, and each box that holds content."""

CUT_BADGES = """() => [...document.querySelectorAll(".badge, .status-tag, .chip, .mark, .step-tag, .run-status")]
  .filter((node) => node.clientWidth && node.scrollWidth > node.clientWidth + 1)
  .map((node) => node.textContent)"""
"""Badges and tags whose text does not fit them."""

OVERLAPPING_LABELS = """() => {
  const clash = [];
  const overlap = (a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom && b.top < a.bottom;
  for (const lane of document.querySelectorAll("#lanes .lane")) {
    const bars = [...lane.querySelectorAll(".lane-bar")];
    const labels = bars.map((bar) => bar.querySelector("span"))
      .filter((span) => span && getComputedStyle(span).display !== "none");
    for (const label of labels) {
      const box = label.getBoundingClientRect();
      const own = label.parentElement;
      for (const other of [...bars.filter((b) => b !== own), ...labels.filter((l) => l !== label)]) {
        if (other.parentElement === label && other.tagName === "SPAN") continue;
        if (overlap(box, other.getBoundingClientRect())) clash.push(`${label.textContent} / ${other.textContent}`);
      }
      if (own.classList.contains("narrow")) continue;
      if (box.right > own.getBoundingClientRect().right + 1) clash.push(`${label.textContent} spills out of its bar`);
    }
  }
  return clash;
}"""
"""Lane labels that overlap another bar or label (or spill out of their own bar)."""

TICKS = """(selector) => [...document.querySelectorAll(selector)].map((tick) => tick.textContent)"""

WRAPPED_FIGURES = """() => [...document.querySelectorAll(".run-meta, .facts dd, .badge")]
  .filter((node) => node.clientWidth
    && node.getBoundingClientRect().height > 1.5 * parseFloat(getComputedStyle(node).lineHeight))
  .map((node) => node.textContent)"""
"""Figures that broke onto a second line: a runs-list line (its "$0"), a header fact, a badge."""
