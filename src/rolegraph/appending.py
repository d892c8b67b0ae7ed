"""Files that rolegraph writes by appending lines (a run's ``trace.jsonl`` and ``steps.jsonl``): opening one
that a crash may have cut mid-line, and writing a whole buffer with raw system calls.

A run killed during a write can leave its file's last line torn. `open_for_append` says so by returning the
newline to write before the next line, so that line starts on its own and only the torn one is lost.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["open_for_append", "write_all"]

_APPEND = os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def open_for_append(path: str | Path, *, make_folder: bool = False) -> tuple[int, bytes]:
    """A raw descriptor appending to `path` (created if missing; its folder too if `make_folder`), and what must
    go before the first line: ``b"\\n"`` if the file ends in a torn line, else nothing. A new file in an existing
    folder costs one ``open`` and one ``fstat``.

    Raises:
        OSError: The file cannot be opened (its folder is missing and not `make_folder`, say).
    """
    try:
        fd = os.open(path, _APPEND, 0o666)
    except FileNotFoundError:
        if not make_folder:
            raise
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, _APPEND, 0o666)
    try:
        size = os.fstat(fd).st_size
        return fd, (b"\n" if size and os.pread(fd, 1, size - 1) != b"\n" else b"")
    except BaseException:
        os.close(fd)
        raise


def write_all(fd: int, data: bytes) -> None:
    """Write all of `data` (a regular file takes it in one call unless the disk fills: then the rest, or the
    error)."""
    written = os.write(fd, data)
    if written < len(data):
        view = memoryview(data)[written:]
        while view:
            view = view[os.write(fd, view) :]
