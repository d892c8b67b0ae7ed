"""Skipped for_each items in Chromium: named in the run's header, counted on their step in the graph, marked in
the waterfall, and explained in the failed attempt's details; the page still fits the window."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chromium import needs_chromium
from rolegraph.runtime.result import RunResult
from viewer.pages import CUT_BADGES, OVERFLOWING, SIZES, open_page, playwright_api, screenshot, serving
from viewer.recording import record_skipped

pytestmark = needs_chromium
expect = playwright_api.expect


@pytest.fixture(scope="module")
def screening(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, RunResult]]:
    """The viewer over a run whose for_each step skipped its second item; its URL and the run."""
    folder = tmp_path_factory.mktemp("skipped")
    result = record_skipped(folder / "project", folder / "home")
    with serving(folder / "home") as url:
        yield url, result


class TestSkippedItems:
    def test_the_skipped_item_is_shown_and_leads_to_its_failure(
        self, page: Any, screening: tuple[str, RunResult], tmp_path: Path
    ) -> None:
        """The header names the skipped item; the graph's step says `1 skipped` (and stays completed); the item's
        agent row reads `skipped`, not `error`; clicking the item opens its failed attempt, which says the step
        went on without it, with the error."""
        url, run = screening
        page.goto(f"{url}/#run={run.run_id}")
        line = page.locator("#run-skipped")
        expect(line).to_have_text("1 item skipped (on_item_error: skip): screen[1] prompt tuning")
        node = page.locator('#graph .node[data-step="screen"]')
        expect(node).to_have_attribute("data-skipped", "1")
        expect(node).to_have_attribute("data-status", "completed")
        expect(node.locator("title")).to_have_text("screen: researcher · 3 items · 1 skipped · completed")
        rows = page.locator('.wf-row[data-kind="invoke_agent"]')
        expect(rows).to_have_count(3)
        expect(rows.nth(1).locator(".status-tag")).to_have_text("skipped")
        expect(rows.nth(1).locator(".hint")).to_have_text(
            "item skipped: its step went on without it (on_item_error: skip)"
        )
        line.locator("button.skipped-item").click()
        panel = page.locator("#panel")
        expect(panel.locator("h2")).to_have_text("invoke_agent researcher")
        expect(panel.locator('[data-field="item skipped"]')).to_contain_text("its step went on without it")
        expect(panel.locator('[data-field="error"]')).to_contain_text("no valid answer after 3 model calls")
        expect(rows.nth(1)).to_have_class(re.compile(r"\bselected\b"))
        screenshot(page, tmp_path, "skipped", docs=False)

    @pytest.mark.parametrize(("width", "height"), SIZES)
    def test_fits_the_window(self, browser: Any, screening: tuple[str, RunResult], width: int, height: int) -> None:
        """The header's skipped line and the step's label fit the window: nothing scrolls sideways or is cut."""
        url, run = screening
        with open_page(browser, width, height) as page:
            page.goto(f"{url}/#run={run.run_id}")
            expect(page.locator("#run-skipped")).to_be_visible()
            page.wait_for_load_state("networkidle")
            assert page.evaluate(OVERFLOWING) == []
            assert page.evaluate(CUT_BADGES) == []
