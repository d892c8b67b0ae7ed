"""A loopback HTTP server that misbehaves on cue: for testing retries and timeouts of model providers.

```python
from rolegraph.testing import Chat, FaultServer, Reset, Stall, rate_limited

with FaultServer([rate_limited(retry_after=1), Reset(), Stall(), Chat("hello")]) as server:
    model = OpenAIModel("m", base_url=server.url, require_key=False)
    completion = await model.complete([Message.user("hi")], settings=ModelSettings(attempt_timeout=1))
assert len(server.requests) == 4
```

Each request takes the next entry of the script: a `Status` (any status, headers and
body — `rate_limited` is a 429 with ``Retry-After``), `Reset` (the connection is
reset without an answer), `Stall` (no answer until the server closes or a number of
seconds pass), `Chat` (a valid OpenAI chat completion), or a function of the
`FaultRequest` returning one of those. A request past the end of the script gets a
500. The server binds to 127.0.0.1 only and runs in its own threads, so it serves
async and sync clients alike.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "Chat",
    "Fault",
    "FaultRequest",
    "FaultServer",
    "Reset",
    "Stall",
    "Status",
    "rate_limited",
]


@dataclass(frozen=True)
class FaultRequest:
    """One request a `FaultServer` received.

    Attributes:
        method: ``GET``, ``POST``, ...
        path: The path with its query, e.g. ``/v1/chat/completions``.
        headers: The request headers, names in lower case (``authorization`` included: a test may echo it).
        body: The request body, decoded as JSON when it is JSON (else the text).
        at: `time.monotonic()` when it arrived.
    """

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float


@dataclass(frozen=True)
class Status:
    """Answer with this status, headers and body (JSON when not a string)."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None


@dataclass(frozen=True)
class Reset:
    """Reset the connection (TCP RST) without answering."""


@dataclass(frozen=True)
class Stall:
    """Answer nothing until the server closes, or for `seconds`, then drop the connection."""

    seconds: float | None = None


@dataclass(frozen=True)
class Chat:
    """A valid OpenAI chat completion with this text and these tool calls (``(name, arguments JSON)``)."""

    text: str | None = "ok"
    tool_calls: Sequence[tuple[str, str]] = ()
    finish_reason: str | None = None
    model: str = "fault-server"
    usage: tuple[int, int] = (10, 5)

    def body(self, number: int) -> dict[str, Any]:
        """The response body, for request number `number`."""
        calls = [
            {"id": f"call_{number}_{i}", "type": "function", "function": {"name": name, "arguments": arguments}}
            for i, (name, arguments) in enumerate(self.tool_calls)
        ]
        message: dict[str, Any] = {"role": "assistant", "content": self.text}
        if calls:
            message["tool_calls"] = calls
        finish = self.finish_reason or ("tool_calls" if calls else "stop")
        prompt, completion = self.usage
        return {
            "id": f"chatcmpl-fault-{number}",
            "object": "chat.completion",
            "created": 0,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        }


Fault = Status | Reset | Stall | Chat | Callable[[FaultRequest], "Status | Reset | Stall | Chat"]
"""One scripted answer, or a function of the request giving one."""


def rate_limited(retry_after: float | str = 1, status: int = 429) -> Status:
    """A 429 (or `status`) asking the client to wait `retry_after` seconds (or until an HTTP date)."""
    value = retry_after if isinstance(retry_after, str) else f"{retry_after:g}"
    body = {"error": {"message": "Rate limit reached; retry later.", "type": "rate_limit_error"}}
    return Status(status, {"Retry-After": value}, body)


class FaultServer:
    """A threaded HTTP server on 127.0.0.1 that answers requests from a script of faults.

    Args:
        script: The answers, one per request, in order.

    Attributes:
        requests: Every request received, in order.
    """

    def __init__(self, script: Sequence[Fault]) -> None:
        self.script = list(script)
        self.requests: list[FaultRequest] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        server = self

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server._answer(self)

            def do_POST(self) -> None:
                server._answer(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,), daemon=True)

    @property
    def url(self) -> str:
        """The OpenAI-style API root: ``http://127.0.0.1:<port>/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def _next(self, request: FaultRequest) -> Status | Reset | Stall | Chat:
        with self._lock:
            self.requests.append(request)
            number = len(self.requests)
        if number > len(self.script):
            return Status(500, body={"error": {"message": f"fault script exhausted at request {number}"}})
        entry = self.script[number - 1]
        return entry if isinstance(entry, Status | Reset | Stall | Chat) else entry(request)

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length).decode("utf-8", errors="replace") if length else ""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        request = FaultRequest(
            handler.command, handler.path, {k.lower(): v for k, v in handler.headers.items()}, body, time.monotonic()
        )
        fault = self._next(request)
        handler.close_connection = True
        if isinstance(fault, Reset):
            # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            handler.connection.close()
            return
        if isinstance(fault, Stall):
            self._release.wait(fault.seconds)
            return
        status, headers, payload = (
            (200, {}, fault.body(len(self.requests)))
            if isinstance(fault, Chat)
            else (fault.status, fault.headers, fault.body)
        )
        data = payload.encode("utf-8") if isinstance(payload, str) else json.dumps(payload).encode("utf-8")
        try:
            handler.send_response(status)
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout): expected

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
