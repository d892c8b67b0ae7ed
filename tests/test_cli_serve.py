"""`rolegraph serve`: the viewer on a local port, loopback by default."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from rolegraph.cli import app
from rolegraph.cli.serve import allowed_hosts, can_show_pages, is_loopback


class TestServe:
    @pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2"])
    def test_serves_the_runs_of_the_home(self, host: str, tmp_path: Path) -> None:
        """`serve --port 0 --no-open` binds the loopback address it is given (127.0.0.1 by default), says where,
        answers the API to requests naming that address, and stops on Ctrl-C."""
        env = {**os.environ, "ROLEGRAPH_HOME": str(tmp_path / "home")}
        command = [sys.executable, "-m", "rolegraph", "serve", "--port", "0", "--no-open"]
        command += [] if host == "127.0.0.1" else ["--host", host]
        with subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) as process:
            try:
                assert process.stderr is not None
                line = process.stderr.readline()
                match = re.search(rf"rolegraph viewer on (http://{re.escape(host)}:\d+/)", line)
                assert match, line
                response = httpx.get(match[1] + "api/runs", timeout=10)
                assert (response.status_code, response.json()) == (200, {"runs": []})
                assert "<title>rolegraph runs</title>" in httpx.get(match[1], timeout=10).text
            finally:
                process.send_signal(signal.SIGINT)
                process.wait(timeout=20)

    def test_help_names_the_options(self) -> None:
        """`serve --help` documents --host, --port and --open/--no-open."""
        result = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0
        for option in ("--host", "--port", "--open", "--no-open"):
            assert option in result.stdout

    def test_beyond_loopback_warns(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """`--host 0.0.0.0` warns that every trace becomes readable (the server itself is not started here)."""
        started: list[tuple[str, int]] = []

        def run(server: uvicorn.Server) -> None:  # listening on every interface is not for a test machine
            started.append((server.config.host, server.config.port))

        monkeypatch.setattr(uvicorn.Server, "run", run)
        monkeypatch.setenv("ROLEGRAPH_HOME", str(tmp_path))
        result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--no-open"], env={"COLUMNS": "300"})
        assert result.exit_code == 0, result.output
        assert started == [("0.0.0.0", 8765)]
        assert "warning serving on 0.0.0.0, not loopback: anyone who can reach this address" in result.stderr

    @pytest.mark.parametrize(
        ("host", "loopback"),
        [
            ("127.0.0.1", True),
            ("127.0.0.2", True),
            ("localhost", True),
            ("::1", True),
            ("[::1]", True),
            ("0.0.0.0", False),
            ("::", False),
            ("192.168.1.10", False),
            ("example.org", False),
        ],
    )
    def test_loopback_hosts(self, host: str, loopback: bool) -> None:
        """Only loopback addresses count as local; anything else gets the warning and open host checks."""
        assert is_loopback(host) is loopback

    def test_the_bound_address_is_an_allowed_host(self) -> None:
        """The Host check accepts the address the viewer binds, besides the usual loopback names."""
        assert allowed_hosts("127.0.0.2") == ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2")
        assert allowed_hosts("::1") == ("127.0.0.1", "localhost", "::1", "[::1]")

    @pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="there, a browser can always open")
    def test_pages_open_only_on_a_desktop(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without DISPLAY or WAYLAND_DISPLAY no browser is started (it would be a text one, in the terminal)."""
        monkeypatch.delenv("DISPLAY", raising=False)
        monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
        assert can_show_pages() is False
        monkeypatch.setenv("DISPLAY", ":0")
        assert can_show_pages() is True
