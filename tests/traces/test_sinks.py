"""The JSONL sink: records orjson needs a second pass for, and buffered span starts written each interval."""

from __future__ import annotations

import time
from pathlib import Path

from rolegraph.traces.redact import Redactor
from rolegraph.traces.sinks import JsonlSink, read_jsonl
from rolegraph.traces.spans import SpanKind
from rolegraph.traces.tracer import Tracer


def _wait_for(path: Path, count: int) -> list[str]:
    deadline = time.monotonic() + 30
    while len(names := [str(r["name"]) for r in read_jsonl(path)]) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return names


class TestWrites:
    def test_non_string_keys_are_written_as_text(self, tmp_path: Path) -> None:
        """An attribute mapping with integer keys is written (its keys as strings), as before orjson's fast path."""
        path = tmp_path / "t.jsonl"
        sink = JsonlSink(path)
        tracer = Tracer("run-1", sinks=[sink], redactor=Redactor())
        with tracer.span(SpanKind.CHAT, "chat", scores={1: "a", 2: "b"}):
            pass
        sink.close()
        assert [r["attributes"] for r in read_jsonl(path)] == [{"scores": {"1": "a", "2": "b"}}] * 2


class TestFlusher:
    def test_starts_buffered_after_a_pass_are_written_too(self, tmp_path: Path) -> None:
        """Once the flusher has written a span's start, the start of a span opened later is written within the
        interval too (the flusher is told again after each pass)."""
        path = tmp_path / "t.jsonl"
        sink = JsonlSink(path, flush_interval=0.05)
        tracer = Tracer("run-1", sinks=[sink], redactor=Redactor())
        with tracer.span(SpanKind.INVOKE_AGENT, "first"):
            assert _wait_for(path, 1) == ["first"]
            with tracer.span(SpanKind.CHAT, "second"):
                assert _wait_for(path, 2) == ["first", "second"]
                with tracer.span(SpanKind.EXECUTE_TOOL, "third"):
                    assert _wait_for(path, 3) == ["first", "second", "third"]
        sink.close()
