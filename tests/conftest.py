"""Suite-wide test setup: network tests off by default, no connection leaves the machine, and
loopback web servers for the web tools.

Every server here listens on 127.0.0.0/8; no test sends traffic anywhere else: a connection from
the test process to any other address fails at once (`no_internet`), so no test can reach a real
hosted model or search engine by mistake, whatever keys the environment holds.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from typing import Any

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


class InternetRefused(OSError):
    """A test tried to connect to an address outside this machine."""


def _loopback(address: Any) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if not isinstance(host, str):
        return True  # an AF_UNIX path or similar: local by nature
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a host name other than localhost: it would be resolved and reached


@pytest.fixture(autouse=True)
def no_internet(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse every connection from the test process to a non-loopback address (tests marked
    ``network`` excepted, which run only when ROLEGRAPH_NETWORK_TESTS=1)."""
    if "network" in request.keywords:
        return
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address):
            raise InternetRefused(f"tests must not leave this machine: connection to {address!r} refused")

    def connect(sock: socket.socket, address: Any) -> None:
        check(sock, address)
        real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        check(sock, address)
        return real_connect_ex(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


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
