"""The viewer's layout at 1280x800 and 1400x900 in Chromium: nothing scrolls or is cut off sideways (the
workflow graph included, however many steps it has), lane labels never overlap, every time axis uses one
tick format, badges are whole, long errors wrap, and run figures ("$0") never break onto a line of their own."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chromium import needs_chromium
from viewer.conftest import Gallery
from viewer.pages import (
    CUT_BADGES,
    OVERFLOWING,
    OVERLAPPING_LABELS,
    SIZES,
    TICKS,
    WRAPPED_FIGURES,
    open_page,
    playwright_api,
    screenshot,
    serving,
)

pytestmark = needs_chromium
expect = playwright_api.expect

WIDE = "rolegraph: 1\nname: wide_review\nsteps:\n" + "".join(
    f"  {name}: {{role: researcher, task: 'Do {name}.'{', depends_on: [' + previous + ']' if previous else ''}}}\n"
    for previous, name in zip(
        [None, *[f"step_{i}_gather_background_material" for i in range(8)]],
        [f"step_{i}_gather_background_material" for i in range(9)],
        strict=True,
    )
)
LONG_ERROR = (
    "step 'research' failed: researcher: the tool returned "
    + "https://example.org/"
    + "a" * 240
    + " and then "
    + "a long explanation " * 30
)
TICK_FORMATS = [r"\d+(\.\d+)? ms", r"\d+(\.\d+)? s", r"(\d+:)?\d+:\d\d"]


@pytest.fixture(scope="module")
def awkward(gallery: Gallery, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """A home with a failed run whose error is very long, and a run of a nine-step chain that just started;
    the viewer's URL and the two run ids."""
    home = tmp_path_factory.mktemp("awkward") / "home"
    failed = home / "runs" / gallery.failed.run_id
    shutil.copytree(gallery.failed.run_dir, failed)
    summary = json.loads((failed / "run.json").read_text())
    (failed / "run.json").write_text(json.dumps({**summary, "error": LONG_ERROR}))
    wide = home / "runs" / "20261201-120000-0123456789ab"
    shutil.copytree(gallery.demo.run_dir, wide)
    (wide / "wide.yaml").write_text(WIDE)
    summary = json.loads((wide / "run.json").read_text())
    (wide / "run.json").write_text(
        json.dumps(
            {**summary, "run_id": wide.name, "workflow": "wide_review", "workflow_file": str(wide / "wide.yaml")}
        )
    )
    (wide / "trace.jsonl").write_text("")
    with serving(home) as url:
        yield url, failed.name, wide.name


def check_layout(page: Any) -> None:
    """Every layout property the issue asked for, measured in the page as it is."""
    assert page.evaluate(OVERFLOWING) == []
    assert page.evaluate(CUT_BADGES) == []
    assert page.evaluate(WRAPPED_FIGURES) == []
    assert page.evaluate(OVERLAPPING_LABELS) == []
    for axis in ("#lanes .axis .tick", ".wf-header .tick"):
        ticks = page.evaluate(TICKS, axis)
        if ticks:
            formats = {next((f for f in TICK_FORMATS if re.fullmatch(f, t)), t) for t in ticks}
            assert len(formats) == 1, ticks


@pytest.mark.parametrize(("width", "height"), SIZES)
class TestLayout:
    def test_gallery_pages(
        self, browser: Any, gallery_server: str, gallery: Gallery, width: int, height: int, tmp_path: Path
    ) -> None:
        """A run's trace (parallel lanes; a route loop, resumed), its report with a source open, a comparison
        and an eval fit the window."""
        pages = {
            "demo": f"#run={gallery.demo.run_id}",
            "loop": f"#run={gallery.resumed.run_id}",
            "report": f"#run={gallery.demo.run_id}&tab=report&source=hu2021lora",
            "compare": f"#compare={gallery.demo.run_id}&with={gallery.variant.run_id}",
            "replay": f"#run={gallery.changed.result.run_id}",
            "eval": f"#eval={gallery.eval_id}",
        }
        with open_page(browser, width, height) as page:
            for name, address in pages.items():
                page.goto(f"{gallery_server}/{address}")
                ready = {"report": "#source-panel h2", "compare": "#first-divergence", "eval": "#eval-metrics"}
                expect(page.locator(ready.get(name, "#graph svg"))).to_be_visible()
                page.wait_for_load_state("networkidle")
                screenshot(page, tmp_path, f"{name}-{width}", docs=False)
                check_layout(page)

    def test_a_long_error_and_a_wide_graph(
        self, browser: Any, awkward: tuple[str, str, str], width: int, height: int, tmp_path: Path
    ) -> None:
        """A long error wraps inside the run's header; a nine-step chain fits its card (the overview stacks),
        its names cut with "…" and whole in each node's tooltip."""
        url, failed, wide = awkward
        with open_page(browser, width, height) as page:
            page.goto(f"{url}/#run={failed}")
            error = page.locator("#run-head pre.error")
            expect(error).to_contain_text("https://example.org/aaaa")
            assert error.evaluate("e => e.scrollWidth <= e.clientWidth")
            assert error.evaluate("e => e.getBoundingClientRect().height") > 40  # wrapped onto several lines
            check_layout(page)
            screenshot(page, tmp_path, f"long-error-{width}", docs=False)

            page.goto(f"{url}/#run={wide}")
            nodes = page.locator("#graph .node")
            expect(nodes).to_have_count(9)
            expect(page.locator(".overview")).to_have_class(re.compile(r"\bstacked\b"))
            check_layout(page)
            name = nodes.first.locator("text.node-name")
            assert name.text_content().endswith("…")
            assert nodes.first.locator("title").text_content().startswith("step_0_gather_background_material:")
            assert name.evaluate("t => t.getComputedTextLength()") <= nodes.first.locator("rect").evaluate(
                "r => r.width.baseVal.value"
            )
            screenshot(page, tmp_path, f"wide-{width}", docs=False)


class TestAxis:
    @pytest.mark.parametrize(
        ("total", "labels"),
        [
            (0.44, ["0 ms", "100 ms", "200 ms", "300 ms", "400 ms"]),
            (58.0, ["0 s", "10 s", "20 s", "30 s", "40 s", "50 s"]),
            (2.4, ["0.0 s", "0.5 s", "1.0 s", "1.5 s", "2.0 s"]),
            (3.7, ["0 s", "1 s", "2 s", "3 s"]),
            (150.0, ["0:00", "0:30", "1:00", "1:30", "2:00", "2:30"]),
            (5400.0, ["0:00:00", "0:15:00", "0:30:00", "0:45:00", "1:00:00", "1:15:00", "1:30:00"]),
        ],
    )
    def test_one_format_per_axis(self, page: Any, gallery_server: str, total: float, labels: list[str]) -> None:
        """Ticks fall on round steps and share one format: ms, s or m:ss, never "50.00 s" beside "2m 30s"."""
        page.goto(gallery_server)
        found = page.evaluate(
            "async (total) => (await import('/static/dom.js')).axisTicks(total).map((t) => t.label)", total
        )
        assert found == labels
