"""An eval's page in Chromium: the metrics with their meaning and direction, the model's name for its column,
every run linked to its page, and each run's report excerpt."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from chromium import needs_chromium
from rolegraph.evals.metrics import METRICS
from viewer.conftest import Gallery
from viewer.pages import playwright_api, screenshot

pytestmark = needs_chromium
expect = playwright_api.expect


class TestEvalPage:
    def test_eval_report_linked_to_runs(self, page: Any, gallery_server: str, gallery: Gallery, tmp_path: Path) -> None:
        """The Evals list opens an eval's report; its run links open the runs."""
        page.goto(gallery_server)
        page.locator("#side-evals").click()
        page.locator(f'#eval-list .run-item[data-eval="{gallery.eval_id}"]').click()
        expect(page.locator("#eval h1")).to_have_text("Eval lora_questions on workflow lora_review")
        metrics = page.locator("#eval-metrics")
        expect(metrics.locator("thead th").nth(1)).to_have_text("scripted:planner.yamlworkflow default")
        recall = metrics.locator('tr[data-metric="source_recall"]')
        expect(recall.locator("th")).to_have_text("source_recall ↑")
        expect(recall.locator("td.meaning")).to_contain_text("Share of the question's gold sources the report cites.")
        expect(recall.locator("td.meaning")).to_contain_text("higher is better")
        expect(metrics.locator('tr[data-metric="wall_time_s"] th')).to_have_text("wall_time_s ↓")
        tokens = metrics.locator('tr[data-metric="tokens"] td.num')
        expect(tokens).to_have_text(re.compile(r"^\d+ ± \d+ \(2\)$"))  # a count, in whole numbers as in the CLI
        expect(recall.locator("td.num")).to_have_text("1.00 ± 0.00 (2)")
        expect(page.locator("#eval .facts")).to_contain_text(gallery.eval_id)
        plots = page.locator(".eval-plots figure img")
        expect(plots).to_have_count(len(METRICS) + 1)  # every metric, and completed
        page.wait_for_load_state("networkidle")
        assert all(img.evaluate("i => i.complete && i.naturalWidth > 0") for img in plots.all())
        expect(page.locator("#eval .excerpt blockquote").first).to_have_text(
            "Low-rank adaptation LoRA trains few parameters. QLoRA fits large models on one GPU."
        )
        screenshot(page, tmp_path, "eval")
        link = page.locator("#eval-runs a.run-link").first
        run_id = link.text_content()
        link.click()
        expect(page.locator("#run")).to_be_visible()
        expect(page.locator("#run-status")).to_have_text("completed")
        assert page.url.endswith(f"#run={run_id}")
