"""The step log: each completed step's state as one line of the run's ``steps.jsonl``, written off the event loop.

The step log is what the viewer, ``rolegraph diff``, re-scoring and the run's outputs
read a step's output from (`rolegraph.layout.RunFolder.step_states`); the run store's
row is what a resume reads. The loop only serialises the state (it is the scheduler's
live object) into one JSON line, redacted; the run store's row of the step that just
completed is the same text (`StepLog.take`: each state is redacted and serialised
once, not once for each file). One writer thread per process appends the lines, in
the order they were handed over (a step that runs again has several lines: its last
is its final state). Woken by a line, the thread gathers more for `GATHER_S` (0.1 s),
then appends each run's gathered lines with one ``write()`` on the run's file opened
``O_APPEND``: one system call per run and batch (a file per step cost four per step,
each a fight for the GIL with the event loop). The log is not flushed to disk (no
fsync): it is derived from the store, whose commits are what survive a crash. A run
waits for its lines before it records its end (`StepLog.close`), so a finished run has
every line. A run killed meanwhile may lack the lines of its last steps (or its last
line may be torn: readers skip a line that does not decode); the store has their
states, and a resume first ends a torn last line with a newline, then appends the
states of the steps it restores (`StepLog.restore`).
"""

from __future__ import annotations

import json
import os
import queue
import threading
from collections.abc import Iterable
from typing import Any

import orjson

from rolegraph.appending import open_for_append, write_all
from rolegraph.layout import RunFolder
from rolegraph.runtime.scheduler import StepListener, StepState
from rolegraph.traces.tracer import Tracer

__all__ = ["GATHER_S", "MAX_OPEN", "StepLog", "json_line"]

GATHER_S = 0.1
"""How long the writer thread, woken by a line, waits for more before writing them (a run that waits for
its lines does not wait this long). Each batch wakes the thread and hands it the GIL a few times, which the
event loop's thread pays for; at 20 ms, a chain of 100 steps woke it about 18 times, at 0.1 s about 6. A kill
may lose this much of the log's last lines: a resume appends them from the run store."""
MAX_OPEN = 64
"""How many runs' logs the writer keeps open between batches (the least recently written are closed: ten
thousand concurrent runs must not hold ten thousand descriptors)."""


def json_line(data: Any) -> bytes:
    """`data` as one line of JSON ending in a newline, in UTF-8 (orjson; the standard library for what it
    refuses: a lone surrogate, written as its ``\\u`` escape, an integer past 64 bits)."""
    try:
        return orjson.dumps(data, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(data, ensure_ascii=False).encode("utf-8", "backslashreplace") + b"\n"


class _Close:
    """A run waiting for its lines: set once every line handed over before it is written, its file closed."""

    __slots__ = ("done", "owner")

    def __init__(self, owner: StepLog) -> None:
        self.owner = owner
        self.done = threading.Event()


class _Writer:
    """The process's one step-log writer thread (started with the first line), fed in order.

    Woken by the first line handed over, it waits `GATHER_S` for more before writing what it holds (woken
    once per batch, not per line: each wake is a context switch and a fight for the GIL with the event
    loop); a run waiting for its lines (`StepLog.close`) cuts that wait short. Only this thread touches the
    files' descriptors.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[StepLog, bytes] | _Close] = queue.SimpleQueue()
        self._urgent = threading.Event()
        """Set when a run waits for its lines: stop gathering."""
        self._started = False
        """Whether this process's thread was started (a forked child starts its own: `_forked`)."""
        self._lock = threading.Lock()
        self._open: dict[StepLog, int] = {}
        """The runs' logs open, least recently written first."""

    def put(self, item: tuple[StepLog, bytes] | _Close) -> None:
        if not self._started:  # the thread never ends (`_write` catches what a file raises)
            with self._lock:
                if not self._started:
                    threading.Thread(target=self._work, name="rolegraph-step-log", daemon=True).start()
                    self._started = True
        self._queue.put(item)
        if isinstance(item, _Close):  # after the put: the batch that clears it holds the waiter
            self._urgent.set()

    def _forked(self) -> None:
        """In a forked child (``os.register_at_fork``): no writer thread yet, and the parent's queue, lock and
        descriptors are not the child's own. (Checked here once, not with a ``getpid()`` system call per line.)"""
        self._queue = queue.SimpleQueue()
        self._urgent = threading.Event()
        self._lock = threading.Lock()
        self._open = {}
        self._started = False

    def _work(self) -> None:
        get, waiting, urgent = self._queue.get, self._queue.get_nowait, self._urgent
        while True:
            item = get()
            urgent.wait(GATHER_S)
            urgent.clear()
            lines: dict[StepLog, list[bytes]] = {}
            while True:  # every item waiting, in order, before the next blocking wait
                if isinstance(item, _Close):
                    self._write(lines)  # every line handed over before it
                    lines = {}
                    self._close(item.owner)
                    item.done.set()
                else:
                    lines.setdefault(item[0], []).append(item[1])
                try:
                    item = waiting()
                except queue.Empty:
                    break
            self._write(lines)

    def _write(self, lines: dict[StepLog, list[bytes]]) -> None:
        """Each run's lines appended with one ``write()``."""
        for owner, data in lines.items():
            if owner.failed is not None:  # its file failed: the run's end will raise it, not write past a gap
                continue
            try:
                fd = self._open.pop(owner, None)
                head = b""
                if fd is None:
                    fd, head = open_for_append(owner.path)
                self._open[owner] = fd
                write_all(fd, head + b"".join(data))
                if len(self._open) > MAX_OPEN:
                    self._close(next(iter(self._open)))
            except Exception as exc:  # never let the thread die: a run waiting on it would wait for ever
                owner.failed = exc
                self._close(owner)

    def _close(self, owner: StepLog) -> None:
        fd = self._open.pop(owner, None)
        if fd is not None:
            try:
                os.close(fd)
            except OSError as exc:
                owner.failed = owner.failed or exc


_WRITER = _Writer()
os.register_at_fork(after_in_child=_WRITER._forked)


class StepLog:
    """One run's step log (``steps.jsonl``).

    Args:
        folder: The run folder.
        tracer: The run's tracer: its redactor is applied to every line (no secret in the step log).
    """

    def __init__(self, folder: RunFolder, tracer: Tracer) -> None:
        self.path = str(folder.step_log)
        self.tracer = tracer
        self.failed: Exception | None = None
        """The first write that failed (raised by `close`)."""
        self._handed = False
        self._texts: dict[str, tuple[int, bytes]] = {}
        """The line last handed over for each step not yet taken (`take`), with the visit it was for."""

    def _hand(self, state: StepState) -> None:
        data = json_line(self.tracer.redactor.value(state.as_data()))
        self._handed = True
        self._texts[state.step_id] = (state.visits, data)
        _WRITER.put((self, data))

    def take(self, state: StepState) -> str | None:
        """The JSON text (redacted) of `state`'s line, if one was handed over for this visit since the last take
        and `state` is still completed: the run store's row for it, without serialising it again.

        The scheduler saves a step's checkpoint in the same turn of the loop as it reports the step completed,
        so the state is then as its line has it; a route that sent the step back meanwhile made it pending (its
        row is serialised anew). Each line is taken once: a later save serialises the state as it is then.
        """
        handed = self._texts.pop(state.step_id, None)
        if handed is None or state.status != "completed" or handed[0] != state.visits:
            return None
        return handed[1][:-1].decode()

    def listener(self, then: StepListener | None) -> StepListener:
        """A step listener that hands each completed step's state to the writer, then calls `then`."""

        def listener(state: StepState) -> None:
            if state.status == "completed":
                self._hand(state)
            if then is not None:
                then(state)

        return listener

    def restore(self, states: Iterable[StepState]) -> None:
        """Append the states of the completed steps a resume restored: a killed run may have left a step
        without its line, or with an earlier visit's line last."""
        for state in states:
            if state.status == "completed":
                self._hand(state)

    def close(self) -> None:
        """Wait until every line handed over is written and the file closed (blocks: call it from a thread,
        not the loop).

        Raises:
            OSError: A line could not be written (the first error met).
        """
        if self._handed:
            closing = _Close(self)
            _WRITER.put(closing)
            closing.done.wait()
        if self.failed is not None:
            raise self.failed
