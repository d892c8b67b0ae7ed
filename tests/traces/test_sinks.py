"""The JSONL sink: records orjson needs a second pass for, and buffered span starts written each interval."""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path

import pytest

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


class TestFile:
    def test_made_with_its_folder_and_appended_to(self, tmp_path: Path) -> None:
        """A trace file in a missing folder is made with it; a second sink on the file appends after the first's
        lines, ending a torn last line first."""
        path = tmp_path / "new" / "folder" / "t.jsonl"
        first = JsonlSink(path)
        first.emit({"event": "span_end", "name": "one"})
        first.close()
        with path.open("ab") as f:
            f.write(b'{"event": "span_end", "na')  # a crash cut the last line
        second = JsonlSink(path)
        second.emit({"event": "span_end", "name": "two"})
        second.close()
        assert path.read_bytes().splitlines()[1:] == [
            b'{"event": "span_end", "na',
            b'{"event":"span_end","name":"two"}',
        ]
        assert [r["name"] for r in read_jsonl(path)] == ["one", "two"]

    @pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="sees open files through /proc")
    def test_a_sink_dropped_unclosed_keeps_no_file_open(self, tmp_path: Path) -> None:
        """A sink nobody closed (a test's, a notebook's) closes its file when it is dropped, as a file object does."""
        path = tmp_path / "t.jsonl"
        sink = JsonlSink(path)
        assert _opened_on(path) == 1
        del sink
        gc.collect()
        assert _opened_on(path) == 0


def _opened_on(path: Path) -> int:
    """How many of this process's descriptors are open on `path`."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") == str(path)
        except OSError:  # closed meanwhile (the listing's own descriptor)
            continue
    return count


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
