"""Recorded runs for the viewer tests, made with real (scripted) workflow runs; Chromium and pages for the page
tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rolegraph.durability.replay import ReplayReport
from rolegraph.runtime.result import RunResult
from viewer.recording import record, record_eval, record_lineage, record_variant, write_project


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RunResult, RunResult]:
    """A home with three runs: a failed one, an untrusted one and the demo (parallel research), recorded in
    that order; returns (home, demo, untrusted) (`failed_run` gives the failed one)."""
    folder = tmp_path_factory.mktemp("viewer")
    demo, untrusted, broken = write_project(folder / "project")
    home = folder / "home"
    record(broken, home, status="failed")
    bad = record(untrusted, home)
    good = record(demo, home)
    return home, good, bad


@pytest.fixture(scope="module")
def failed_run(recorded: tuple[Path, RunResult, RunResult]) -> str:
    """The id of the recorded run that failed (its `research` step failed, `write` was skipped)."""
    home, demo, untrusted = recorded
    [run_id] = {p.name for p in (home / "runs").iterdir()} - {demo.run_id, untrusted.run_id}
    return run_id


@dataclass(frozen=True)
class Gallery:
    """A home holding every kind of run the viewer marks, and an eval (see `gallery`)."""

    home: Path
    demo: RunResult
    variant: RunResult
    """The demo with another search and another report: it differs from `demo` from research_a's first call."""
    resumed: RunResult
    """The review loop, stopped by its budget and resumed; its route fired once, then was blocked."""
    same: ReplayReport
    """An identical replay of `resumed`."""
    changed: ReplayReport
    """A replay of `resumed` that diverged (the writer's task changed)."""
    failed: RunResult
    eval_id: str


@pytest.fixture(scope="session")
def gallery(tmp_path_factory: pytest.TempPathFactory) -> Gallery:
    """Runs of every kind in one home: demo, a variant of it, a failed run, a resumed run, its replays; an eval
    (made once per session: tests only read it, or copy runs out of it to change them)."""
    folder = tmp_path_factory.mktemp("gallery")
    demo_file, _, broken = write_project(folder / "project")
    home = folder / "home"
    failed = record(broken, home, status="failed")
    resumed, same, changed = record_lineage(folder / "loop", home)
    eval_id = record_eval(demo_file, home)
    demo = record(demo_file, home)
    variant = record_variant(folder / "variant", home)
    return Gallery(home, demo, variant, resumed, same, changed, failed, eval_id)


@pytest.fixture(scope="session")
def gallery_server(gallery: Gallery) -> Iterator[str]:
    """The viewer over the gallery; its base URL."""
    from viewer.pages import serving  # imported here: it skips the module without Playwright

    with serving(gallery.home) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, once per module (Playwright's sync API keeps an event loop running in the
    main thread while it is open, which the asyncio tests of the next modules must not find)."""
    from rolegraph.tools.browser import CHROMIUM_FLAGS, find_chromium
    from viewer.pages import playwright_api

    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=find_chromium(), args=list(CHROMIUM_FLAGS))
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page, 1440x900, that fails the test on any page error or failed request."""
    from viewer.pages import open_page

    with open_page(browser) as opened:
        yield opened
