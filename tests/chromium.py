"""The skip rule shared by the tests that drive real Chromium (the browser tool, the viewer page)."""

from __future__ import annotations

import os

import pytest

from rolegraph.errors import ToolError
from rolegraph.tools.browser import find_chromium

__all__ = ["needs_chromium"]


def _has_chromium() -> bool:
    try:
        find_chromium()
    except ToolError:
        return False
    return True


# A newcomer's machine may lack Chromium: skip there, with the fix in the reason.
# CI installs it (.ci/run) and sets CI=true, where a missing browser is a failure, not a skip.
needs_chromium = pytest.mark.skipif(
    not _has_chromium() and os.environ.get("CI") != "true",
    reason="needs Chromium: apt-get install chromium (or set ROLEGRAPH_CHROMIUM)",
)
