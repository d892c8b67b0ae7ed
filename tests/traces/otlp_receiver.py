"""A loopback OTLP/HTTP trace receiver: decodes each POST /v1/traces as an ExportTraceServiceRequest."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span


class OtlpReceiver:
    """Receives OTLP/HTTP protobuf trace exports on 127.0.0.1; with `hold`, answers none until `release` is set."""

    def __init__(self, *, hold: bool = False) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.bodies: list[bytes] = []
        self.paths: list[str] = []
        self.answered = 0
        self.arrived = threading.Event()
        self.release = threading.Event()
        if not hold:
            self.release.set()
        receiver = self

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                receiver.paths.append(self.path)
                receiver.bodies.append(body)
                receiver.requests.append(request)
                receiver.arrived.set()
                receiver.release.wait(60)
                reply = ExportTraceServiceResponse().SerializeToString()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/x-protobuf")
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                    receiver.answered += 1
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the exporter gave up waiting: expected when it is held

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,), daemon=True)
        self._thread.start()

    def spans(self) -> list[Span]:
        """Every span received, in arrival order."""
        return [s for r in self.requests for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans]

    def resources(self) -> list[dict[str, Any]]:
        """The resource attributes of every batch received."""
        return [
            {a.key: _value(a.value) for a in rs.resource.attributes} for r in self.requests for rs in r.resource_spans
        ]

    def close(self) -> None:
        """Answer whatever is held, then stop."""
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


def attributes(span: Span) -> dict[str, Any]:
    """A received span's attributes as Python values."""
    return {a.key: _value(a.value) for a in span.attributes}
