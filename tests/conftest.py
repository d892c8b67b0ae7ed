"""Suite-wide test setup: network tests off by default, and loopback web servers for the web tools.

Every server here listens on 127.0.0.0/8; no test sends traffic anywhere else.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from loopback import LoopbackServer

NETWORK_ENV = "ROLEGRAPH_NETWORK_TESTS"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked ``network`` unless ROLEGRAPH_NETWORK_TESTS=1 (these machines reach package registries only)."""
    skip = pytest.mark.skipif(
        os.environ.get(NETWORK_ENV) != "1", reason=f"needs the internet; set {NETWORK_ENV}=1 to run"
    )
    for item in items:
        if "network" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def web() -> Iterator[LoopbackServer]:
    """A web server on 127.0.0.1 (tests allow it through the URL policy)."""
    with LoopbackServer("127.0.0.1") as server:
        yield server


@pytest.fixture
def trap() -> Iterator[LoopbackServer]:
    """A server on 127.0.0.2, which no test allows: it must never receive a request."""
    with LoopbackServer("127.0.0.2") as server:
        yield server
