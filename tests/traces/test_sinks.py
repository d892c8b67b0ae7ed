"""The JSONL sink's writes: whole lines however the system call goes, and buffered starts written each interval."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from rolegraph.traces import sinks
from rolegraph.traces.redact import Redactor
from rolegraph.traces.sinks import HELD_WRITE_MAX, JsonlSink, read_jsonl
from rolegraph.traces.spans import SpanKind
from rolegraph.traces.tracer import Tracer

Write = Callable[[int, bytes, int], int]


def _trace(path: Path, *names: str, text: str = "") -> list[str]:
    """Write a span per name (with `text` as an attribute) and return the names read back from the file."""
    sink = JsonlSink(path, flush_interval=3600)
    tracer = Tracer("run-1", sinks=[sink], redactor=Redactor())
    for name in names:
        with tracer.span(SpanKind.CHAT, name, rolegraph__output__text=text):
            pass
    sink.close()
    return [str(r["name"]) for r in read_jsonl(path) if r["event"] == "span_end"]


def _wait_for(path: Path, count: int) -> list[str]:
    deadline = time.monotonic() + 30
    while len(names := [str(r["name"]) for r in read_jsonl(path)]) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return names


class TestWrites:
    @pytest.mark.parametrize("outcome", ["short", "interrupted"])
    def test_a_cut_short_write_is_completed(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, outcome: str
    ) -> None:
        """A write the C library cuts short, or that fails (-1: a signal, a full disk), is finished by `os.write`."""

        def held(fd: int, data: bytes, size: int) -> int:
            return os.write(fd, data[: size // 3]) if outcome == "short" else -1

        monkeypatch.setattr(sinks, "_held_write", held)
        assert _trace(tmp_path / "t.jsonl", "a", "b", "c") == ["a", "b", "c"]

    def test_without_the_c_library_records_are_written(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Where libc cannot be loaded by name (Windows), the file is written through `os.write`."""
        monkeypatch.setattr(sinks, "_held_write", None)
        assert _trace(tmp_path / "t.jsonl", "a", "b") == ["a", "b"]

    def test_a_long_write_releases_the_gil(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A record longer than `HELD_WRITE_MAX` is written whole, through `os.write`, not the GIL-holding call."""
        sizes: list[int] = []
        held: Write | None = sinks._held_write

        def spy(fd: int, data: bytes, size: int) -> int:
            sizes.append(size)
            assert held is not None
            return held(fd, data, size)

        monkeypatch.setattr(sinks, "_held_write", spy if held is not None else None)
        long = "x" * (HELD_WRITE_MAX + 1)
        path = tmp_path / "t.jsonl"
        assert _trace(path, "long", text=long) == ["long"]
        [_start, end] = read_jsonl(path)
        assert end["attributes"]["rolegraph.output.text"] == long
        assert all(size <= HELD_WRITE_MAX for size in sizes)

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
