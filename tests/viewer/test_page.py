"""The viewer page in a real Chromium (Debian's, through Playwright), against uvicorn on 127.0.0.1.

Each test loads recorded runs and checks what a user sees: the runs list, the
timeline and graph of the demo run's steps, span details on click, and that
trace content holding HTML and script is shown as text and never runs.
Screenshots go to the test's tmp folder; with ROLEGRAPH_VIEWER_SCREENSHOTS=1
they are also copied to docs/images/ for the README.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from chromium import needs_chromium
from rolegraph.runtime.result import RunResult
from viewer.pages import playwright_api, screenshot, serving
from viewer.recording import PAYLOAD_QUERY, PAYLOAD_THOUGHT

pytestmark = needs_chromium

COMPLETED = "rgb(46, 157, 79)"  # --ok, the stroke of a completed step's node
FAILED = "rgb(201, 48, 44)"  # --fail


@pytest.fixture(scope="module")
def server(recorded: tuple[Path, RunResult, RunResult]) -> Iterator[str]:
    """The viewer over the recorded runs; its base URL."""
    with serving(recorded[0]) as url:
        yield url


class TestRunPage:
    def test_runs_list_timeline_graph_and_span_details(
        self, page: playwright_api.Page, server: str, recorded: tuple[Path, RunResult, RunResult], tmp_path: Path
    ) -> None:
        """The page lists the runs, draws each step in graph, lanes and waterfall, and shows a clicked span."""
        _, demo, untrusted = recorded
        page.goto(f"{server}/#run={demo.run_id}")
        runs = page.locator("#run-list .run-item")
        playwright_api.expect(runs).to_have_count(3)
        assert runs.first.get_attribute("data-run") == demo.run_id  # newest first
        playwright_api.expect(runs.first).to_contain_text("lora_review")
        playwright_api.expect(runs.nth(1)).to_contain_text(untrusted.run_id)
        playwright_api.expect(page.locator("#run-status")).to_have_text("completed")

        steps = ["plan", "research_a", "research_b", "write"]
        for step in steps:
            node = page.locator(f'#graph .node[data-step="{step}"]')
            playwright_api.expect(node).to_have_attribute("data-status", "completed")
            assert node.locator("rect").evaluate("r => getComputedStyle(r).stroke") == COMPLETED
            playwright_api.expect(page.locator(f'.wf-row.kind-invoke_agent[data-step="{step}"]')).to_have_count(1)
            playwright_api.expect(page.locator(f'#lanes .lane-bar[data-step="{step}"]')).to_have_count(1)
        assert page.locator("#graph path.edge").count() == 4
        # The two research branches ran at once: they sit in different lanes.
        lane_of = {
            step: page.locator(f'#lanes .lane-bar[data-step="{step}"]').evaluate("b => b.parentElement.dataset.lane")
            for step in ("research_a", "research_b")
        }
        assert lane_of["research_a"] != lane_of["research_b"]
        # Before any click, the panel has the run's usage per step, role and model.
        usage = page.locator('#panel [data-field="usage by step"] td:first-child')
        playwright_api.expect(usage).to_have_text(steps)
        screenshot(page, tmp_path, "run", docs=False)

        # Click the skim tool call of research_a: its arguments and result show in the panel.
        page.locator('.wf-row.kind-execute_tool[data-step="research_a"]', has_text="skim").click()
        panel = page.locator("#panel")
        playwright_api.expect(panel.locator("h2")).to_have_text("execute_tool skim")
        arguments = panel.locator('[data-field="tool arguments"] pre')
        playwright_api.expect(arguments).to_contain_text('"source_id": "hu2021lora"')
        playwright_api.expect(panel.locator('[data-field="tool result"] pre')).to_have_text("skimmed hu2021lora")

        # Click the react step that searched: its thought, the model's tool call and the sources found.
        page.locator('.wf-row.kind-react_step[data-step="research_a"]').first.click()
        playwright_api.expect(panel.locator('[data-field="thought"] pre')).to_have_text(
            "Search the library for LoRA's parameter savings."
        )
        page.keyboard.press("ArrowDown")  # the react step's model call
        playwright_api.expect(panel.locator("h2")).to_have_text("chat scripted:research_a.yaml")
        playwright_api.expect(panel.locator('[data-field="tool calls"]')).to_contain_text("library_search")
        page.keyboard.press("ArrowDown")  # then its tool call
        playwright_api.expect(panel.locator("h2")).to_have_text("execute_tool library_search")
        playwright_api.expect(panel.locator('[data-field^="sources"] li').first).to_contain_text("hu2021lora")
        screenshot(page, tmp_path, "span")

        # Clicking a graph node selects that step's agent span.
        page.locator('#graph .node[data-step="write"]').click()
        playwright_api.expect(panel.locator("h2")).to_have_text("invoke_agent writer")
        playwright_api.expect(panel.locator('[data-field="answer"] pre')).to_contain_text("Low-rank adaptation")
        assert f"run={demo.run_id}" in page.url and "span=" in page.url

    def test_untrusted_trace_content_is_text_and_never_runs(
        self, page: playwright_api.Page, server: str, recorded: tuple[Path, RunResult, RunResult], tmp_path: Path
    ) -> None:
        """HTML and script in a thought, task or tool argument show literally, in the details, the span search
        and a comparison: no element made, no script run."""
        _, demo, untrusted = recorded
        page.goto(f"{server}/#run={untrusted.run_id}")
        row = page.locator(".wf-row.kind-react_step").first
        playwright_api.expect(row).to_contain_text("<img src=x")
        row.click()
        panel = page.locator("#panel")
        playwright_api.expect(panel.locator('[data-field="thought"] pre')).to_have_text(PAYLOAD_THOUGHT)
        page.locator(".wf-row.kind-invoke_agent").click()
        playwright_api.expect(panel.locator('[data-field="task"] pre')).to_contain_text(
            "<script>window.__xss=3</script>"
        )
        page.locator(".wf-row.kind-execute_tool").click()
        playwright_api.expect(panel.locator('[data-field="tool arguments"] pre')).to_contain_text(PAYLOAD_QUERY)
        assert page.evaluate("window.__xss") is None
        assert page.locator("main img, main script, main b:text('bold')").count() == 0
        screenshot(page, tmp_path, "untrusted", docs=False)

        # Searched for, and compared with another run, the same content stays text.
        page.locator("#span-search").fill("<b>bold</b>")
        playwright_api.expect(page.locator(".wf-row.match .hint.hit").first).to_contain_text("<b>bold</b>")
        page.goto(f"{server}/#compare={untrusted.run_id}&with={demo.run_id}")
        playwright_api.expect(page.locator("#compare-steps")).to_contain_text(PAYLOAD_QUERY)
        assert page.evaluate("window.__xss") is None
        assert page.locator("main img, main script, main b:text('bold')").count() == 0

    def test_failed_run(self, page: playwright_api.Page, server: str, failed_run: str, tmp_path: Path) -> None:
        """Choosing a failed run in the list shows its error, its failed step red and the skipped one dashed grey."""
        page.goto(server)
        page.locator(f'#run-list .run-item[data-run="{failed_run}"]').click()
        playwright_api.expect(page.locator("#run-status")).to_have_text("failed")
        playwright_api.expect(page.locator("#run-head pre.error")).to_contain_text(
            "no valid answer after 5 model calls"
        )
        failed = page.locator('#graph .node[data-step="research"]')
        playwright_api.expect(failed).to_have_attribute("data-status", "failed")
        assert failed.locator("rect").evaluate("r => getComputedStyle(r).stroke") == FAILED
        skipped = page.locator('#graph .node[data-step="write"] rect')
        assert skipped.evaluate("r => getComputedStyle(r).strokeDasharray") != "none"
        playwright_api.expect(page.locator(".wf-row.kind-invoke_agent .status-tag")).to_have_text("error")
        screenshot(page, tmp_path, "failed", docs=False)


class TestLive:
    def test_a_running_run_updates_in_place(
        self, page: playwright_api.Page, recorded: tuple[Path, RunResult, RunResult], tmp_path: Path
    ) -> None:
        """A run cut mid-way shows running steps; as the rest of its trace arrives the page turns it completed."""
        demo = recorded[1]
        folder = tmp_path / "home" / "runs" / demo.run_id
        shutil.copytree(demo.run_dir, folder)
        lines = (folder / "trace.jsonl").read_text().splitlines(keepends=True)
        cut = next(i for i, line in enumerate(lines) if '"span_end"' in line and '"research_b"' in line)
        (folder / "trace.jsonl").write_text("".join(lines[:cut]))
        summary = (folder / "run.json").read_text()
        (folder / "run.json").write_text(summary.replace('"completed"', '"failed"'))
        with serving(tmp_path / "home") as url:
            page.goto(f"{url}/#run={demo.run_id}")
            playwright_api.expect(page.locator("#live-flag")).to_be_visible()
            node = page.locator('#graph .node[data-step="write"]')
            playwright_api.expect(node).to_have_attribute("data-status", "pending")
            running = page.locator('#graph .node[data-step="research_b"]')
            playwright_api.expect(running).to_have_attribute("data-status", "running")
            playwright_api.expect(page.locator("#run-status")).to_have_text("running / unfinished")
            screenshot(page, tmp_path, "live", docs=False)
            with (folder / "trace.jsonl").open("a") as trace:
                trace.write("".join(lines[cut:]))
            (folder / "run.json").write_text(summary)
            playwright_api.expect(page.locator("#run-status")).to_have_text("completed")
            playwright_api.expect(node).to_have_attribute("data-status", "completed")
            playwright_api.expect(page.locator("#live-flag")).to_be_hidden()
            playwright_api.expect(page.locator('.wf-row.kind-invoke_agent[data-step="write"]')).to_have_count(1)
