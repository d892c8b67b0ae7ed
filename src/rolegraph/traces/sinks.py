"""Trace sinks: where span records go. A sink implements one method, `emit`."""

from __future__ import annotations

import json
import math
import os
import threading
import time
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import orjson

from rolegraph.appending import open_for_append, write_all

__all__ = ["FLUSH_INTERVAL_S", "JsonlSink", "MemorySink", "TraceSink", "dumps", "read_jsonl"]

FLUSH_INTERVAL_S = 0.02
"""At most this long between a buffered record (the start of a span) being emitted and reaching the file.
Shorter than the live index's interval (`rolegraph.traces.index_writer.INDEX_INTERVAL_S`), so the file, the
source of truth, does not lag behind the index derived from it: a run killed once the index shows a span open
has that span's start in its file too."""


@runtime_checkable
class TraceSink(Protocol):
    """Receives every trace record (a JSON-serialisable dict), in order."""

    def emit(self, record: dict[str, Any]) -> None:
        """Take one record. Must not raise; must be quick (it runs on the event loop)."""


class MemorySink:
    """Keeps records in a list: for tests and notebooks."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def emit(self, record: dict[str, Any]) -> None:
        """Append the record."""
        self.records.append(record)


def dumps(record: Any) -> bytes:
    """`record` as compact JSON in UTF-8 bytes (orjson; the standard library for what orjson refuses).

    orjson refuses a lone surrogate (a model or page can produce one), an integer past 64 bits: those
    records go through `json`, a surrogate written as its JSON escape (it reads back as the same string).
    """
    return _orjson(record, 0)


def _line(record: dict[str, Any]) -> bytes:
    """`dumps(record)` and a newline, in one buffer when orjson takes the record."""
    return _orjson(record, orjson.OPT_APPEND_NEWLINE)


def _orjson(record: Any, option: int) -> bytes:
    """`dumps` with orjson's `option`. A key that is not a string (rare) takes a second pass with
    ``OPT_NON_STR_KEYS``, which costs every record about 70% more when given from the start."""
    try:
        return orjson.dumps(record, default=str, option=option)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        pass
    try:
        return orjson.dumps(record, default=str, option=option | orjson.OPT_NON_STR_KEYS)
    except TypeError:
        text = json.dumps(record, ensure_ascii=False, default=str)
        if option & orjson.OPT_APPEND_NEWLINE:
            text += "\n"
        return text.encode("utf-8", "backslashreplace")


class JsonlSink:
    """Appends one JSON object per line to a file.

    Records are serialised once, to bytes, and buffered: the buffer is written (one
    system call) when a span ends or an event is recorded, and within `FLUSH_INTERVAL_S`
    otherwise (a background thread writes the start of a span that is still running, so
    a hung step shows in the file). A crash therefore leaves every finished span on
    disk, and loses at most the starts of spans opened in the last interval.

    Args:
        path: The file (created with its folder; appended to if it exists).
        flush_interval: The bound on how long a buffered record waits.
    """

    def __init__(self, path: Path, flush_interval: float = FLUSH_INTERVAL_S) -> None:
        self.path = path
        self._fd, torn = open_for_append(path, make_folder=True)
        try:
            if torn:  # a crash cut the last line: end it, so the next record starts a line of its own
                write_all(self._fd, torn)
        except BaseException:
            os.close(self._fd)
            raise
        self._buffer: list[bytes] = []
        self._lock = threading.Lock()
        self._closed = False
        self._interval = flush_interval
        self._flusher_told = False
        """Whether the flusher will pass before `flush_interval` is up: span ends write the buffer on the
        loop, and the flusher, told once per pass rather than once per span, writes what is left."""

    def emit(self, record: dict[str, Any]) -> None:
        """Serialise the record and buffer it; write the buffer if it ends a span or is an event."""
        try:  # `_line`, written out: this runs for every record
            line = orjson.dumps(record, default=str, option=orjson.OPT_APPEND_NEWLINE)
        except TypeError:  # a key that is not a string, a lone surrogate: `_line` knows what to do
            line = _line(record)
        now = record.get("event") != "span_start" or record.get("kind") == "invoke_workflow"
        with self._lock:
            if self._closed:
                return
            self._buffer.append(line)
            if now:
                self._write()
                return
            if self._flusher_told:  # its next pass writes this record with the others
                return
            self._flusher_told = True
        _FLUSHER.due(self, self._interval)

    def flush(self) -> None:
        """Write what is buffered."""
        with self._lock:
            self._flusher_told = False  # the flusher calls this: the next buffered record tells it again
            if not self._closed:
                self._write()

    def _write(self) -> None:
        buffer = self._buffer
        if buffer:
            # One record (a span's end, the usual case) is written as it is: no copy into a joined buffer.
            data = buffer[0] if len(buffer) == 1 else b"".join(buffer)
            buffer.clear()
            write_all(self._fd, data)

    def close(self) -> None:
        """Write what is buffered and close the file."""
        with self._lock:
            if not self._closed:
                self._write()
                self._closed = True
                os.close(self._fd)

    def __del__(self) -> None:
        """A sink dropped unclosed does not keep its file open (as a file object would not); its buffer is lost."""
        if not getattr(self, "_closed", True):
            self._closed = True
            os.close(self._fd)


class _Flusher:
    """One daemon thread that writes out, within their interval, the sinks holding buffered records.

    Each pass writes every sink that waits. The thread sleeps until the earliest deadline and is woken
    only by a sink due sooner than that (the first after an idle spell, or one with a shorter interval).
    """

    def __init__(self) -> None:
        self._due: dict[JsonlSink, float] = {}
        """The sinks to write, each with its deadline (`time.monotonic`)."""
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._next = math.inf
        """The deadline the thread sleeps until (infinite while idle)."""

    def due(self, sink: JsonlSink, interval: float) -> None:
        """Write `sink` out within `interval` seconds."""
        deadline = time.monotonic() + interval
        with self._wake:
            if sink in self._due:  # already waiting: its next pass writes this record too
                return
            self._due[sink] = deadline
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="rolegraph-trace-flush", daemon=True)
                self._thread.start()
            if deadline < self._next:
                self._next = deadline
                self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while True:
                    self._next = min(self._due.values(), default=math.inf)
                    wait = self._next - time.monotonic()
                    if wait <= 0:
                        break
                    self._wake.wait(None if self._next == math.inf else wait)
                due, self._due = self._due, {}
                self._next = math.inf
            for sink in due:
                sink.flush()

    def forget_thread(self) -> None:
        """In a forked child: the parent's thread does not exist here."""
        self._due = {}
        self._wake = threading.Condition()
        self._thread = None
        self._next = math.inf


_FLUSHER = _Flusher()
os.register_at_fork(after_in_child=_FLUSHER.forget_thread)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Read a trace file; a torn last line (a crash mid-write) is ignored."""
    records: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records
