"""Comparing two runs in Chromium, replays and resumed runs marked, and route decisions on the graph."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chromium import needs_chromium
from viewer.conftest import Gallery
from viewer.pages import playwright_api, screenshot

pytestmark = needs_chromium
expect = playwright_api.expect


class TestCompareView:
    def test_compare_from_a_run_to_the_first_divergence(
        self, page: Any, gallery_server: str, gallery: Gallery, tmp_path: Path
    ) -> None:
        """From a run, "compare with" another opens both side by side: summaries, the first divergence (its tool
        call marked), every step, and the two reports; the address reopens the same comparison."""
        a, b = gallery.demo.run_id, gallery.variant.run_id
        page.goto(f"{gallery_server}/#run={a}")
        page.locator("#compare-select").select_option(b)
        page.locator("#compare-go").click()
        expect(page.locator("#compare")).to_be_visible()
        assert page.url.endswith(f"#compare={a}&with={b}")
        expect(page.locator('.compare-run[data-side="A"] code')).to_have_text(a)
        expect(page.locator('.compare-run[data-side="B"] code')).to_have_text(b)
        divergence = page.locator("#first-divergence")
        expect(divergence).to_contain_text("step research_a, tool call 1:")
        expect(divergence).to_contain_text('library_search {"query": "parameter-efficient fine-tuning"}')
        steps = page.locator("#compare-steps")
        expect(steps.locator("tr.first")).to_have_attribute("data-step", "research_a")
        expect(steps.locator("tr.differs")).to_have_count(2)  # research_a and write
        expect(steps.locator('.call-pair.first[data-call="0"] code').nth(1)).to_contain_text("parameter-efficient")
        expect(steps.locator("tr.totals")).to_contain_text("2 of 4 steps differ")
        reports = page.locator('.report-pair[data-output="report"] article.markdown')
        expect(reports).to_have_count(2)
        expect(reports.nth(0)).to_contain_text("LoRA trains few parameters.")
        expect(reports.nth(1)).to_contain_text("LoRA keeps the pretrained model frozen")
        screenshot(page, tmp_path, "compare")

        page.goto("about:blank")
        page.goto(f"{gallery_server}/#compare={a}&with={b}")
        expect(page.locator("#first-divergence")).to_contain_text("step research_a, tool call 1:")
        page.locator("#swap").click()
        expect(page.locator('.compare-run[data-side="A"] code')).to_have_text(b)

    def test_a_resumed_run_and_its_identical_replay(self, page: Any, gallery_server: str, gallery: Gallery) -> None:
        """An identical replay opened from its run page compares without divergence."""
        page.goto(f"{gallery_server}/#run={gallery.same.result.run_id}")
        page.locator("#replay-of a", has_text="compare").click()
        expect(page.locator("#first-divergence h2")).to_have_text("No divergence")
        expect(page.locator("#compare-steps tr.differs")).to_have_count(0)


class TestLineageMarks:
    def test_replays_and_resumes_in_the_list_and_on_the_page(
        self, page: Any, gallery_server: str, gallery: Gallery
    ) -> None:
        """The list marks replays and resumed runs, and shows a diverged replay as diverged, not failed; its page
        says what it replays and where it stopped, instead of an error."""
        page.goto(gallery_server)
        changed = page.locator(f'#run-list .run-item[data-run="{gallery.changed.result.run_id}"]')
        expect(changed.locator(".mark-replay")).to_have_text("replay")
        expect(changed.locator(".run-status")).to_have_text("diverged")
        assert "status-failed" not in (changed.locator(".dot").get_attribute("class") or "")
        resumed = page.locator(f'#run-list .run-item[data-run="{gallery.resumed.run_id}"]')
        expect(resumed.locator(".mark-resumed")).to_have_text("resumed")
        failed = page.locator(f'#run-list .run-item[data-run="{gallery.failed.run_id}"]')
        expect(failed.locator(".run-status")).to_have_text("failed")

        changed.click()
        expect(page.locator("#run-status")).to_have_text("diverged")
        expect(page.locator("#replay-of")).to_contain_text(f"replay of {gallery.resumed.run_id}")
        expect(page.locator("#run-divergence")).to_contain_text(
            "step write, call write#1/chat/1 (chat): prompt changed"
        )
        expect(page.locator("#run-head pre.error")).to_have_count(0)
        page.locator("#replay-of a", has_text="compare").click()
        expect(page.locator("#first-divergence")).to_contain_text("step write")
        expect(page.locator("#first-divergence")).to_contain_text("prompt changed")

        page.goto(f"{gallery_server}/#run={gallery.resumed.run_id}")
        expect(page.locator("#resumed")).to_have_text("resumed · 2 invocations")
        expect(page.locator("#lanes .resume-mark")).to_have_count(1)


class TestRouteDecisions:
    def test_a_route_that_fired_then_was_blocked(
        self, page: Any, gallery_server: str, gallery: Gallery, tmp_path: Path
    ) -> None:
        """The loop's route edge is drawn as fired, labelled with how often it fired and was blocked."""
        page.goto(f"{gallery_server}/#run={gallery.resumed.run_id}")
        edge = page.locator('#graph path.edge-route[data-route="review->research"]')
        expect(edge).to_have_attribute("data-state", "fired")
        expect(page.locator('#graph text.route-label[data-route="review->research"]')).to_have_text(
            "fired \u00d71, blocked \u00d71 (max 1)"
        )
        assert edge.evaluate("e => getComputedStyle(e).strokeDasharray") == "none"  # solid: it fired
        hints = page.locator(".wf-row.kind-route .hint")
        expect(hints).to_have_text(
            ["fired (1 of at most 1)", "blocked: its condition held, but it already fired 1 times"]
        )
        screenshot(page, tmp_path, "loop")
