"""The model-call cache in Chromium: a run whose calls the cache answered shows its line (calls, tokens saved)
in the run's panel; a run without hits shows none."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import rolegraph
from chromium import needs_chromium
from rolegraph.runtime.result import RunResult
from viewer.pages import playwright_api, serving
from viewer.recording import write_project

pytestmark = needs_chromium
expect = playwright_api.expect


def cached_run(workflow: Path, home: Path) -> RunResult:
    """Run the workflow with the model-call cache on, in a thread of its own (the test may hold an event loop)."""
    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(asyncio.run, rolegraph.load(workflow).run(home=home, cache=True)).result()
    assert result.status == "completed", result.error
    return result


@pytest.fixture(scope="module")
def twice(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, RunResult, RunResult]]:
    """The viewer over a home where the demo ran twice with the cache on: the first run fills the cache, the
    second is answered from it; its URL and both runs."""
    folder = tmp_path_factory.mktemp("cache")
    demo, _, _ = write_project(folder / "project")
    home = folder / "home"
    first = cached_run(demo, home)
    second = cached_run(demo, home)
    with serving(home) as url:
        yield url, first, second


class TestCacheLine:
    def test_a_run_with_hits_shows_its_savings(self, page: Any, twice: tuple[str, RunResult, RunResult]) -> None:
        """The second run's panel says how many calls the cache answered and the tokens they saved, as run.json
        records them."""
        url, _, second = twice
        saved = second.cache
        assert saved is not None and saved.hits > 0
        page.goto(f"{url}/#run={second.run_id}")
        line = page.locator('#panel [data-field="cache"]')
        expect(line).to_be_visible()
        expect(line).to_contain_text(
            f"{saved.hits} calls answered from the cache saved {saved.input_tokens:,} in + {saved.output_tokens:,} out"
        )

    def test_a_run_without_hits_shows_no_cache_line(self, page: Any, twice: tuple[str, RunResult, RunResult]) -> None:
        """The first run (the cache was on but answered nothing) has no cache line in its panel."""
        url, first, _ = twice
        assert first.cache is not None and first.cache.hits == 0
        page.goto(f"{url}/#run={first.run_id}")
        expect(page.locator("#panel [data-field='usage by step']")).to_be_visible()
        expect(page.locator('#panel [data-field="cache"]')).to_have_count(0)
