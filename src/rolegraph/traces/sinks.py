"""Trace sinks: where span records go. A sink implements one method, `emit`."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = ["JsonlSink", "MemorySink", "TraceSink", "read_jsonl"]


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


class JsonlSink:
    """Appends one JSON object per line to a file, flushed per record so a crash loses nothing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        torn = _ends_torn(path)
        # A lone surrogate (a model or page can produce one) is written as its JSON escape, not raised:
        # a sink must not fail, and `\ud800` reads back as the same string.
        self._file = path.open("a", encoding="utf-8", errors="backslashreplace")
        if torn:  # a crash cut the last line: end it, so the next record starts a line of its own
            self._file.write("\n")
        self._lock = threading.Lock()

    def emit(self, record: dict[str, Any]) -> None:
        """Write the record as one line."""
        line = json.dumps(record, ensure_ascii=False, default=str)
        with self._lock:
            if self._file.closed:
                return
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._file.close()


def _ends_torn(path: Path) -> bool:
    """Whether the file exists, is not empty, and does not end with a newline."""
    try:
        with path.open("rb") as f:
            f.seek(-1, 2)
            return f.read(1) != b"\n"
    except OSError:  # missing or empty
        return False


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
