"""Step files: each completed step's state in ``steps/<step_id>.json``, written off the event loop.

A step file is what the viewer, ``rolegraph diff`` and the run's outputs read a
step's output from; the run store's row is what a resume reads. Making a file costs
more than the rest of a quick step's bookkeeping (about 150 µs on an ext4 disk),
so the loop only serialises the state (it is the scheduler's live object) and one
writer thread per process makes the files, in the order they were handed over (a
step that runs again ends with its last state): woken by a file, it gathers more for
`GATHER_S` (20 ms) and writes them all, so it wakes once per batch rather than per
step. Step files are not flushed to disk (no fsync): they are derived from the
store, whose commits are what survive a crash. A run waits for its files before it
records its end (`StepFiles.close`), so a finished run has every file. A run killed
meanwhile may lack the files of its last steps, or hold an earlier visit's state for a
step a route sent back; the store has their states, and a resume writes the files of
the steps it restores from them (`StepFiles.restore`).
"""

from __future__ import annotations

import json
import os
import queue
import threading
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path
from typing import Any

import orjson

from rolegraph.layout import RunFolder
from rolegraph.runtime.scheduler import StepListener, StepState
from rolegraph.traces.tracer import Tracer

__all__ = ["GATHER_S", "StepFiles", "indented_json", "write_atomically"]

GATHER_S = 0.02
"""How long the writer thread, woken by a file, waits for more before writing them (a run that waits for
its files does not wait this long)."""


def write_atomically(path: Path, text: str | bytes) -> None:
    """Write-then-rename: a crash leaves the previous file or the new one, never a torn one."""
    tmp = path.with_name(path.name + ".tmp")
    if isinstance(text, bytes):
        tmp.write_bytes(text)
    else:
        tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def indented_json(data: Any) -> bytes:
    """`data` as JSON indented by two spaces, in UTF-8 (orjson; the standard library for what it refuses:
    a lone surrogate, an integer past 64 bits)."""
    try:
        return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8", "backslashreplace")


class _File:
    """A file handed to the writer (slotted, made once per completed step)."""

    __slots__ = ("data", "owner", "path")

    def __init__(self, owner: StepFiles, path: str, data: bytes) -> None:
        self.owner = owner
        self.path = path
        self.data = data


def _write_file(file: _File) -> None:
    """Write-then-rename, at the level of file descriptors (the writer's loop, per step: no file objects)."""
    tmp = file.path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(file.data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    os.replace(tmp, file.path)


class _Writer:
    """The process's one step-file writer thread (started with the first file), fed in order.

    Woken by the first file handed over, it waits `GATHER_S` for more before writing what it holds (woken
    once per batch, not per file: each wake is a context switch and a fight for the GIL with the event
    loop); a run waiting for its files (`StepFiles.close`) cuts that wait short.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[_File | threading.Event] = queue.SimpleQueue()
        self._urgent = threading.Event()
        """Set when a run waits for its files: stop gathering."""
        self._thread: threading.Thread | None = None
        self._pid = 0
        """The process the thread was started in (a forked child has no writer thread yet)."""
        self._lock = threading.Lock()

    def put(self, item: _File | threading.Event) -> None:
        if self._pid != os.getpid():  # the thread never ends (`_work` catches what a file raises)
            with self._lock:
                if self._pid != os.getpid():
                    self._urgent = threading.Event()
                    self._thread = threading.Thread(target=self._work, name="rolegraph-step-files", daemon=True)
                    self._thread.start()
                    self._pid = os.getpid()
        self._queue.put(item)
        if isinstance(item, threading.Event):  # after the put: the batch that clears it holds the waiter
            self._urgent.set()

    def _work(self) -> None:
        get, waiting, urgent = self._queue.get, self._queue.get_nowait, self._urgent
        while True:
            item = get()
            urgent.wait(GATHER_S)
            urgent.clear()
            while True:  # every item waiting, in order, before the next blocking wait
                self._do(item)
                try:
                    item = waiting()
                except queue.Empty:
                    break

    @staticmethod
    def _do(item: _File | threading.Event) -> None:
        if isinstance(item, threading.Event):
            item.set()  # every file handed over before it is written
            return
        try:
            try:
                _write_file(item)
            except FileNotFoundError:  # the run's first file: no steps/ folder yet
                with suppress(FileExistsError):
                    os.mkdir(os.path.dirname(item.path))  # not its parents: a run folder removed is an error
                _write_file(item)
        except Exception as exc:  # never let the thread die: a run waiting on it would wait for ever
            item.owner.failed = item.owner.failed or exc


_WRITER = _Writer()


class StepFiles:
    """One run's step files.

    Args:
        folder: The run folder.
        tracer: The run's tracer: its redactor is applied to every file (no secret in a step file).
    """

    def __init__(self, folder: RunFolder, tracer: Tracer) -> None:
        self.folder = folder
        self.tracer = tracer
        self.failed: Exception | None = None
        """The first file that could not be written (raised by `close`)."""
        self._handed = False
        self._steps = str(folder.steps) + os.sep

    def _hand(self, state: StepState) -> None:
        data = indented_json(self.tracer.redactor.value(state.as_data()))
        self._handed = True
        _WRITER.put(_File(self, f"{self._steps}{state.step_id}.json", data))

    def listener(self, then: StepListener | None) -> StepListener:
        """A step listener that hands each completed step's state to the writer, then calls `then`."""

        def listener(state: StepState) -> None:
            if state.status == "completed":
                self._hand(state)
            if then is not None:
                then(state)

        return listener

    def restore(self, states: Iterable[StepState]) -> None:
        """Write the files of the completed steps a resume restored, from their saved states: a killed run
        may have left a step without its file, or with the file of an earlier visit."""
        for state in states:
            if state.status == "completed":
                self._hand(state)

    def close(self) -> None:
        """Wait until every file handed over is written (blocks: call it from a thread, not the loop).

        Raises:
            OSError: A file could not be written (the first error met).
        """
        if self._handed:
            done = threading.Event()
            _WRITER.put(done)
            done.wait()
        if self.failed is not None:
            raise self.failed
