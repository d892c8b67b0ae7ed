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


SLOW = frozenset(
    {
        "tests/test_cli_resume.py",  # kills the CLI at 31 points and resumes each, in subprocesses
        "tests/test_canary.py",  # hostile runs, killed and resumed, scanned for secrets
        "tests/test_benchmarks.py",  # runs every benchmark scenario at smoke size
        "tests/agents/test_agent_fuzz.py",  # property-based fuzzing of the agent loop
        "tests/runtime/test_workflow_faults.py",  # fault injection: hangs, timeouts, cancellations
        "tests/models/test_openai_faults.py",  # a fault server: resets, stalls, retries with backoff
        "tests/workflows/test_loader_abuse.py",  # YAML bombs and deep nesting at their limits
        "tests/tools/test_browser.py",  # real Chromium
        "tests/tools/test_browser_guard.py",  # real Chromium against a tripwire, and its net log
        "tests/tools/test_library_pdfs.py::TestLongPdf",  # a 500-page PDF indexed under tracemalloc
        "tests/tools/test_library_pdfs.py::TestChromiumPdf",  # real Chromium prints a PDF
        "tests/viewer/test_page.py",  # real Chromium
        "tests/test_cli.py::TestConsoleScript",  # the installed command, in subprocesses
        "tests/test_cli_style.py::TestVersion::test_console_script",  # the installed command, in a subprocess
        "tests/test_cli_init.py::TestGeneratedTests",  # a scaffolded project's tests, in a pytest subprocess
        "tests/evals/test_cli.py::TestKilledEval",  # an eval SIGKILLed in a subprocess, then resumed
        "tests/test_cli_serve.py::TestServe",  # a real uvicorn server in a subprocess
        "tests/traces/test_store.py::TestCrash",  # a run SIGKILLed in a subprocess
        "tests/runtime/test_steps.py::TestKilled",  # tool and function steps SIGKILLed in subprocesses, resumed
        "tests/distributed/test_ray_executor.py::TestRayExecutor",  # a real local Ray cluster
        "tests/distributed/test_two_nodes.py",  # a real two-node Ray cluster on 127.0.0.1, a node killed
        "tests/models/test_keys.py::TestInATerminal",  # rolegraph run on a pseudo-terminal, in a subprocess
        "tests/models/test_keys.py::TestWithoutATerminal::test_the_cli_exits_2_naming_the_variable",  # subprocess
        "tests/models/test_providers.py::TestOllamaNotRunning::test_the_cli_says_so_and_exits_2",  # subprocess
    }
)
"""Modules and classes (node id prefixes) in the full suite only; with the tests marked ``local_model``,
they make up the ``slow`` marker.
``uv run pytest -m "not slow"`` is the fast lane for day-to-day work; CI runs everything."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked ``network`` unless ROLEGRAPH_NETWORK_TESTS=1 (these machines reach package registries
    only); mark the slow suites ``slow``."""
    skip = pytest.mark.skipif(
        os.environ.get(NETWORK_ENV) != "1", reason=f"needs the internet; set {NETWORK_ENV}=1 to run"
    )
    for item in items:
        if "network" in item.keywords:
            item.add_marker(skip)
        node = item.nodeid
        if "local_model" in item.keywords or any(node == s or node.startswith((s + "::", s + "[")) for s in SLOW):
            item.add_marker(pytest.mark.slow)


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


@pytest.fixture(autouse=True)
def no_key_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never ask for an API key, even when the suite runs in a terminal (``pytest -s``): a missing key
    fails as it does in CI. The tests of the prompt switch this off for themselves."""
    monkeypatch.setenv("ROLEGRAPH_NO_PROMPT", "1")


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
