"""Where rolegraph keeps things: the one owner of every path under ``$ROLEGRAPH_HOME``.

```
$ROLEGRAPH_HOME/                 (default ./.rolegraph)
  index.sqlite                   the live index of runs and spans (`rolegraph.traces.store`)
  cache.sqlite                   the model-call cache, when a run turns it on (`rolegraph.models.cache`)
  prices.yaml                    the user's price table
  batches/<batch_id>/            one batch's manifest (`rolegraph.evals.batch`)
  evals/<eval_id>/               one eval's manifest and reports
  runs/<run_id>/                 one run (`RunFolder`)
    run.json                     the run's summary
    trace.jsonl                  every span
    sources.jsonl                every retrieved source with its text (none: no file; run.json says 0)
    run.sqlite                   the run store: checkpoints and the call journal
    run.lock                     the run's lock, only where the file system cannot lock the folder itself
    steps.jsonl                  each completed step's state, one JSON line per visit (the last wins)
    steps/<step_id>.json         the same, one file per step, in runs made before steps.jsonl (still read)
```

Nothing here imports the rest of rolegraph: every layer (traces, runtime,
durability, the CLI and the viewer) names run files through this module.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rolegraph.appending import write_all

__all__ = [
    "LOCK_FILE",
    "SOURCES_FILE",
    "STEPS_FILE",
    "STORE_FILE",
    "SUMMARY_FILE",
    "TRACE_FILE",
    "Home",
    "RunFolder",
    "home_dir",
    "is_run_id",
    "new_run_id",
    "write_replacing",
]

TRACE_FILE = "trace.jsonl"
SUMMARY_FILE = "run.json"
SOURCES_FILE = "sources.jsonl"
"""Every retrieved source with its full text (a ``sources.json`` output leaves the text out)."""
STORE_FILE = "run.sqlite"
LOCK_FILE = "run.lock"
"""Held (``flock``) by the process working on a run, only where the file system cannot lock the run folder
itself (NFS); elsewhere the folder is locked and this file is not made (`rolegraph.durability.durable`)."""
STEPS_FILE = "steps.jsonl"
"""Each completed step visit's state, one JSON line each, in completion order (``rolegraph.runtime.step_log``)."""
STEPS_DIR = "steps"
"""The older layout: one ``steps/<step_id>.json`` per completed step (still read when there is no ``steps.jsonl``)."""

_RUN_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6,32}")


_ID_BITS = random.Random(os.urandom(16))
"""Where run ids' random bits come from: seeded once from the system's randomness (and again in a forked child,
which would otherwise repeat its parent's ids), private so a program's ``random.seed`` cannot repeat ids. Not
`secrets`: its system call per id releases the GIL on the event loop, which then waits to take it back from the
run-file threads; an id needs to be unique, not unguessable."""
os.register_at_fork(after_in_child=lambda: _ID_BITS.seed(os.urandom(16)))


def new_run_id() -> str:
    """A fresh run id: the UTC start time, then 48 random bits (runs started in one second never collide)."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{_ID_BITS.getrandbits(48):012x}"


def is_run_id(text: str) -> bool:
    """Whether `text` has the shape of a run id (so it is safe as a folder name)."""
    return _RUN_ID.fullmatch(text) is not None


def home_dir() -> Path:
    """Where runs are kept: ``$ROLEGRAPH_HOME``, or ``./.rolegraph``."""
    return Path(os.environ.get("ROLEGRAPH_HOME", ".rolegraph"))


@dataclass(frozen=True)
class RunFolder:
    """The files of one run folder."""

    path: Path

    @property
    def run_id(self) -> str:
        """The folder's name, which is the run's id."""
        return self.path.name

    @property
    def trace(self) -> Path:
        """``trace.jsonl``."""
        return self.path / TRACE_FILE

    @property
    def summary(self) -> Path:
        """``run.json``."""
        return self.path / SUMMARY_FILE

    @property
    def sources(self) -> Path:
        """``sources.jsonl``."""
        return self.path / SOURCES_FILE

    @property
    def store(self) -> Path:
        """``run.sqlite``."""
        return self.path / STORE_FILE

    @property
    def lock(self) -> Path:
        """``run.lock``: the run's lock where the folder itself cannot be locked."""
        return self.path / LOCK_FILE

    @property
    def step_log(self) -> Path:
        """``steps.jsonl``: each completed step visit's state, one JSON line each."""
        return self.path / STEPS_FILE

    @property
    def steps(self) -> Path:
        """``steps/``: one JSON file per completed step, in runs made before ``steps.jsonl``."""
        return self.path / STEPS_DIR

    def step_file(self, step_id: str) -> Path:
        """``steps/<step_id>.json`` (the older layout)."""
        return self.steps / f"{step_id}.json"

    def step_states(self) -> dict[str, dict[str, Any]]:
        """Each completed step's last saved state (JSON data), by step id, in the order steps first completed.

        Read from ``steps.jsonl`` (a step's last line wins; a line that does not decode, as a kill can leave
        the last one, or that is not a state is skipped: that step reads as its line before, or as missing), or,
        in a run folder made before it, from ``steps/<step_id>.json`` (a damaged file is skipped alike).
        """
        try:
            with self.step_log.open("rb") as lines:
                return _last_states(lines)
        except FileNotFoundError:
            pass
        except OSError:
            return {}
        states: dict[str, dict[str, Any]] = {}
        try:
            paths = sorted(self.steps.glob("*.json"))
        except OSError:
            return {}
        for path in paths:
            try:
                state = json.loads(path.read_bytes())
            except (OSError, ValueError, RecursionError):
                continue
            if isinstance(state, dict):
                states[path.stem] = state
        return states

    def read_summary(self) -> dict[str, Any]:
        """The run's ``run.json``, or {} if it is missing, unreadable or not a JSON object."""
        try:
            summary = json.loads(self.summary.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return summary if isinstance(summary, dict) else {}

    def stamp(self, *names: str) -> str:
        """A string that changes whenever one of the named files of the folder changes (size or time)."""
        parts = []
        for name in names:
            try:
                stat = (self.path / name).stat()
                parts.append(f"{stat.st_mtime_ns}:{stat.st_size}")
            except OSError:
                parts.append("-")
        return "/".join(parts)

    def has_run_files(self) -> bool:
        """Whether the folder holds a trace or a summary (so it is a run folder, perhaps damaged)."""
        return self.trace.is_file() or self.summary.is_file()


_REPLACING = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def write_replacing(path: Path, data: bytes) -> None:
    """Make `data` the content of `path`: written to ``<path>.tmp``, then renamed over it, so a crash leaves the
    old file or the new one, never a torn one (``run.json``, ``sources.jsonl``, a new run store).

    Bare system calls, no file object: `open` adds a stat, a terminal check and a seek to the open, write and
    close, and its buffered layers cost a run's two ``run.json`` writes about a third of their CPU.
    """
    tmp = f"{path}.tmp"
    fd = os.open(tmp, _REPLACING, 0o666)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _last_states(lines: Iterable[bytes]) -> dict[str, dict[str, Any]]:
    """Each step's last state among JSON lines, skipping a line that does not decode or names no step."""
    states: dict[str, dict[str, Any]] = {}
    for line in lines:
        try:
            state = json.loads(line)
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            continue
        if isinstance(state, dict) and isinstance(state.get("step_id"), str):
            states[state["step_id"]] = state
    return states


@dataclass(frozen=True)
class Home:
    """``$ROLEGRAPH_HOME``: runs, evals, the index and the user's price table."""

    path: Path

    @classmethod
    def from_env(cls) -> Home:
        """The home `home_dir` names."""
        return cls(home_dir())

    @property
    def runs(self) -> Path:
        """``runs/``."""
        return self.path / "runs"

    @property
    def evals(self) -> Path:
        """``evals/``."""
        return self.path / "evals"

    @property
    def batches(self) -> Path:
        """``batches/``."""
        return self.path / "batches"

    @property
    def index(self) -> Path:
        """``index.sqlite``."""
        return self.path / "index.sqlite"

    @property
    def cache(self) -> Path:
        """``cache.sqlite``: the model-call cache shared by the home's runs."""
        return self.path / "cache.sqlite"

    @property
    def prices(self) -> Path:
        """``prices.yaml``."""
        return self.path / "prices.yaml"

    def run(self, run_id: str) -> RunFolder:
        """The folder of run `run_id` (absolute).

        Raises:
            ValueError: `run_id` is not a run id (it could name a path outside the home).
        """
        if not is_run_id(run_id):
            raise ValueError(f"{run_id!r} is not a run id")
        return RunFolder((self.runs / run_id).absolute())
