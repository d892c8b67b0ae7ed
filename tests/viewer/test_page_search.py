"""Searching and filtering in Chromium: the runs list by span text, status and date; a run's spans by text
and status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chromium import needs_chromium
from viewer.conftest import Gallery
from viewer.pages import playwright_api, screenshot

pytestmark = needs_chromium
expect = playwright_api.expect
GALLERY_RUNS = 8
"""failed, resumed, its two replays, the eval's two runs, demo, variant."""


def shown_runs(page: Any) -> set[str]:
    return {item.get_attribute("data-run") for item in page.locator("#run-list .run-item").all()}


class TestRunsList:
    def test_search_span_text(self, page: Any, gallery_server: str, gallery: Gallery) -> None:
        """Text typed in the search box finds the runs whose spans hold it, each saying how many spans match."""
        page.goto(gallery_server)
        expect(page.locator("#run-list .run-item")).to_have_count(GALLERY_RUNS)
        page.locator("#run-filter").fill("skimmed dettmers2023qlora")
        expect(page.locator("#runs-note")).to_contain_text("matching “skimmed dettmers2023qlora”")
        expect(page.locator(f'#run-list .run-item[data-run="{gallery.failed.run_id}"]')).to_have_count(0)
        runs = shown_runs(page)
        assert {gallery.demo.run_id, gallery.variant.run_id} <= runs
        assert gallery.resumed.run_id not in runs
        expect(page.locator(f'.run-item[data-run="{gallery.demo.run_id}"] .run-matches')).to_contain_text("match")
        page.locator("#run-filter").fill("")
        expect(page.locator("#run-list .run-item")).to_have_count(GALLERY_RUNS)

    def test_status_and_date_filters(self, page: Any, gallery_server: str, gallery: Gallery) -> None:
        """The status filter keeps failed runs, diverged replays, replays or resumed runs; the date filter keeps
        the runs started in its window."""
        page.goto(gallery_server)
        expect(page.locator("#run-list .run-item")).to_have_count(GALLERY_RUNS)
        status = page.locator("#status-filter")
        status.select_option("failed")
        expect(page.locator("#run-list .run-item")).to_have_count(1)
        assert shown_runs(page) == {gallery.failed.run_id}
        status.select_option("diverged")
        expect(page.locator("#run-list .run-item")).to_have_attribute("data-run", gallery.changed.result.run_id)
        status.select_option("replay")
        expect(page.locator("#run-list .run-item")).to_have_count(2)
        status.select_option("")
        page.locator("#date-filter").select_option("1")
        expect(page.locator("#runs-note")).to_have_text(f"{GALLERY_RUNS} runs shown")


class TestSpans:
    def test_search_span_text(self, page: Any, gallery_server: str, gallery: Gallery, tmp_path: Path) -> None:
        """Searching a run's spans keeps the ones holding the text (and their ancestors), with the field matched."""
        page.goto(f"{gallery_server}/#run={gallery.demo.run_id}")
        expect(page.locator(".wf-row[data-span]")).to_have_count(len(gallery.demo.trace.spans))
        page.locator("#span-search").fill("parameters by ten thousand")
        matches = page.locator(".wf-row.match")
        expect(page.locator("#span-count")).to_contain_text("spans match")
        count = matches.count()
        assert count >= 1
        expect(page.locator("#span-count")).to_have_text(f"{count} of {len(gallery.demo.trace.spans)} spans match")
        assert page.locator(".wf-row[data-span]").count() < len(gallery.demo.trace.spans)
        expect(page.locator(".wf-row.kind-invoke_workflow")).to_have_count(1)  # an ancestor, kept for context
        expect(matches.first.locator(".hint.hit")).to_contain_text("parameters by ten thousand")
        page.locator("#run-filter").fill("parameters by ten thousand")  # the runs list, searched for it too
        expect(page.locator(f'.run-item[data-run="{gallery.demo.run_id}"] .run-matches')).to_contain_text("match")
        page.wait_for_load_state("networkidle")
        screenshot(page, tmp_path, "search")
        page.locator("#span-search").fill("")
        expect(page.locator(".wf-row[data-span]")).to_have_count(len(gallery.demo.trace.spans))

    def test_status_filter(self, page: Any, gallery_server: str, gallery: Gallery) -> None:
        """The "errors" filter keeps the spans that failed, with their ancestors."""
        page.goto(f"{gallery_server}/#run={gallery.failed.run_id}")
        page.locator("#span-status").select_option("error")
        expect(page.locator("#span-count")).to_contain_text("spans match")
        kinds = {row.get_attribute("data-kind") for row in page.locator(".wf-row.match").all()}
        assert "invoke_agent" in kinds
        for row in page.locator(".wf-row.match").all():
            assert "status-ok" not in (row.get_attribute("class") or "")
