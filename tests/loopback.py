"""A loopback HTTP server for the web-tool tests: routes, recorded requests, nothing but 127.0.0.0/8."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["LoopbackServer", "Reply", "Request"]

Handler = Callable[["Request"], "Reply"]


@dataclass(frozen=True)
class Request:
    """One request a `LoopbackServer` received."""

    method: str
    path: str
    headers: dict[str, str]
    at: float


@dataclass(frozen=True)
class Reply:
    """What a route answers: status, headers, body."""

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


class LoopbackServer:
    """A threaded HTTP server on a loopback address that records every request it gets.

    Routes map a path to a `Reply` or a function of the `Request`; other paths are 404.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Reply | Handler] = {}
        self.requests: list[Request] = []
        self.release = threading.Event()
        """Set at teardown, so handlers that block on it (slow pages) end."""
        server = self

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                request = Request("GET", self.path, dict(self.headers.items()), time.monotonic())
                server.requests.append(request)
                route = server.routes.get(self.path.split("?")[0])
                reply = Reply(b"not found", 404) if route is None else route(request) if callable(route) else route
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading (a byte cap, a timeout): expected

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer((host, 0), _Handler)
        self._server.daemon_threads = True
        self.host = host
        self.port = int(self._server.server_address[1])
        # A short poll interval: shutdown() waits up to one interval for the loop to notice.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,), daemon=True)

    def url(self, path: str = "/") -> str:
        """The URL of `path` on this server."""
        return f"http://{self.host}:{self.port}{path}"

    def paths(self) -> list[str]:
        """The paths requested, in order."""
        return [r.path for r in self.requests]

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
