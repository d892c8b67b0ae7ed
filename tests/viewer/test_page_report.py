"""The run's outputs in Chromium: the report rendered, its citations opening the source and its evidence,
and a hostile report shown as text."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from chromium import needs_chromium
from viewer.conftest import Gallery
from viewer.pages import playwright_api, screenshot, serving
from viewer.test_outputs import HOSTILE

pytestmark = needs_chromium
expect = playwright_api.expect


class TestReportView:
    def test_report_with_citations_that_open_their_source(
        self, page: Any, gallery_server: str, gallery: Gallery, tmp_path: Path
    ) -> None:
        """The Report tab renders the markdown report; a citation opens its source with the evidence quoted from
        it, in context; the tool call that found it leads back to the trace."""
        run = gallery.demo.run_id
        page.goto(f"{gallery_server}/#run={run}")
        page.locator("#tab-report").click()
        article = page.locator('#output article.markdown[data-output="report"]')
        expect(article.locator("h1")).to_have_text("Low-rank adaptation")
        expect(article.locator("h2")).to_have_text("References")
        expect(article.locator("em").first).to_have_text("Paper hu2021lora")
        expect(page.locator(".output-tab.current")).to_contain_text("report")
        cite = article.locator('p button.cite[data-source="hu2021lora"]').first  # then the reference list's
        expect(cite).to_have_text("[1]")
        cite.click()
        panel = page.locator("#source-panel")
        expect(panel.locator("h2")).to_have_text("Paper hu2021lora")
        expect(panel.locator('[data-field="evidence"] .claim').first).to_have_text(
            "LoRA trains 10,000x fewer parameters."
        )
        expect(panel.locator("blockquote.in-context mark")).to_have_text(
            "It cuts the number of trainable parameters by ten thousand times."
        )
        expect(panel.locator("blockquote.in-context")).to_contain_text("LoRA freezes the pretrained weights")
        assert "tab=report" in page.url and "source=hu2021lora" in page.url
        expect(article.locator('button.cite.active[data-source="hu2021lora"]')).to_have_count(2)  # the text, the list
        screenshot(page, tmp_path, "report")

        # The address opens the same view.
        page.goto("about:blank")
        page.goto(f"{gallery_server}/#run={run}&tab=report&source=hu2021lora")
        expect(page.locator("#source-panel h2")).to_have_text("Paper hu2021lora")

        # The tool call that returned the source opens in the trace.
        page.locator('#source-panel [data-field="returned by"] button').first.click()
        expect(page.locator("#trace-tab")).to_be_visible()
        expect(page.locator("#panel h2")).to_have_text("execute_tool library_search")
        expect(page.locator(".wf-row.selected")).to_have_attribute("data-step", "research_a")

    def test_other_outputs_and_the_run_panel(self, page: Any, gallery_server: str, gallery: Gallery) -> None:
        """A JSON output shows as indented text; the run panel's output names open the Report tab."""
        page.goto(f"{gallery_server}/#run={gallery.demo.run_id}")
        page.locator('#panel [data-field="outputs"] button[data-output="sources"]').click()
        expect(page.locator("#report-tab")).to_be_visible()
        expect(page.locator('#output pre.output-text[data-output="sources"]')).to_contain_text('"id": "hu2021lora"')

    def test_a_hostile_report_is_text(self, browser: Any, gallery: Gallery, tmp_path: Path) -> None:
        """Script, image and handler markup in a report show as characters; only the https link is a link."""
        from viewer.pages import open_page

        home = tmp_path / "home"
        folder = home / "runs" / gallery.demo.run_id
        shutil.copytree(gallery.demo.run_dir, folder)
        (folder / "report.md").write_text(HOSTILE)
        with serving(home) as url, open_page(browser) as page:
            page.goto(f"{url}/#run={folder.name}&tab=report")
            article = page.locator("#output article.markdown")
            expect(article.locator("h1")).to_have_text("Title <script>window.__xss=1</script>")
            expect(article).to_contain_text('<img src=x onerror="window.__xss=2">')
            assert article.locator("script, img, div").count() == 0
            assert [a.get_attribute("href") for a in article.locator("a").all()] == ["https://example.org/p?a=1"]
            assert article.locator("a").get_attribute("rel") == "noopener noreferrer"
            article.locator('button.cite[data-source="real2020"]').click()
            expect(page.locator("#source-panel")).to_contain_text("this citation is unresolved")
            assert page.evaluate("window.__xss") is None
