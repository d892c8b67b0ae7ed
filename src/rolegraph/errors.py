"""The exceptions rolegraph raises, in one hierarchy.

```
RolegraphError                      base of everything rolegraph raises on purpose
├── DamagedFileError                a file rolegraph wrote and reads back is damaged (names file, line, field)
├── SpecError                       a workflow file is invalid (carries every problem found)
├── GraphError                      the compiled graph is invalid (cycles, unknown steps), a SpecError
├── LibraryError                    a library folder or note is malformed, a SpecError (names file and line)
├── ModelError                      a model provider failed (connection, bad response, missing weights)
│   └── ModelNotAvailableError      the provider cannot be used here (package or key missing)
├── ToolError                       raised *inside* a tool; the agent turns it into an error observation
├── AgentError                      an agent ended without a valid final answer
└── RunError                        a run could not complete (a step failed, the run was cancelled)
    ├── StepError                   a tool or function step could not give its output (bad arguments, a failure)
    ├── BudgetExceeded              a run or step reached one of its budget's limits
    ├── ResumeError                 a run cannot be resumed (unknown, changed workflow file, no run store)
    ├── ReplayError                 a run cannot be replayed (no run store, workflow file gone)
    └── ReplayDiverged              a replay reached a call its recording cannot answer (stops the replay)
```

Tool failures never escape the agent loop: they become observations with
`is_error=True`. Errors shown to users name the file, line and field, and say
what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "AgentError",
    "BudgetExceeded",
    "DamagedFileError",
    "GraphError",
    "LibraryError",
    "ModelError",
    "ModelNotAvailableError",
    "Problem",
    "ReplayDiverged",
    "ReplayError",
    "ResumeError",
    "RolegraphError",
    "RunError",
    "SpecError",
    "StepError",
    "ToolError",
]


class RolegraphError(Exception):
    """Base class of every error rolegraph raises on purpose."""


class DamagedFileError(RolegraphError):
    """A file rolegraph wrote and reads back (a trace, a run summary, a run store, an eval manifest)
    cannot be read: cut short, bytes changed, or a value of the wrong type.

    Attributes:
        path: The file.
        reason: What is wrong, naming the field when one is at fault.
        line: The 1-based line, for line-based files (a trace).
        advice: What the user can do about it.
    """

    def __init__(self, path: Path, reason: str, *, line: int | None = None, advice: str = "") -> None:
        self.path = path
        self.reason = reason
        self.line = line
        self.advice = advice
        super().__init__(self.describe())

    def describe(self, base: Path | None = None) -> str:
        """The message, with the file named relative to `base` when it is inside it (no local paths)."""
        path = self.path
        if base is not None and path.is_relative_to(base):
            path = path.relative_to(base)
        where = f"{path}, line {self.line}" if self.line is not None else str(path)
        return f"{where}: {self.reason}" + (f"; {self.advice}" if self.advice else "")


@dataclass(frozen=True)
class Problem:
    """One problem found in a workflow file.

    Attributes:
        message: What is wrong and what to do about it.
        path: The field path inside the document, e.g. ``steps.plan.depends_on``.
        file: The file the problem is in, if known.
        line: 1-based line number, if known.
        column: 1-based column number, if known.
    """

    message: str
    path: str = ""
    file: Path | None = None
    line: int | None = None
    column: int | None = None

    def location(self) -> str:
        """Return ``file:line:col`` (as much of it as is known)."""
        parts = [str(self.file) if self.file else "<workflow>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def __str__(self) -> str:
        where = f" ({self.path})" if self.path else ""
        return f"{self.location()}: {self.message}{where}"


class SpecError(RolegraphError):
    """A workflow document is invalid. Holds every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class GraphError(SpecError):
    """The workflow's step graph is invalid (cycle without a bound, unknown step, unreachable step)."""


class LibraryError(SpecError):
    """A library folder or one of its notes is malformed. Holds every problem found, each naming its file."""


class ModelError(RolegraphError):
    """A model provider failed to produce a completion."""


class ModelNotAvailableError(ModelError):
    """A model provider cannot be used on this machine (missing package, weights or key)."""


class ToolError(RolegraphError):
    """Raised inside a tool to report a failure; the agent sees it as an error observation."""


class AgentError(RolegraphError):
    """An agent could not produce a valid final answer within its step budget."""


class RunError(RolegraphError):
    """A workflow run could not complete."""


class BudgetExceeded(RunError):
    """A run or one of its steps reached a limit of its budget; the run stops, resumable with a higher limit.

    Attributes:
        limit: The limit reached (``max_tokens``, ``max_cost_usd``, ``max_wall_s``, ``max_tool_calls``,
            ``max_iterations``).
        scope: ``run``, or ``step <id>`` for a step's own budget.
        allowed: The limit's value.
        used: How much had been used when it tripped.
    """

    def __init__(self, limit: str, scope: str, allowed: float, used: float) -> None:
        self.limit = limit
        self.scope = scope
        self.allowed = allowed
        self.used = used
        super().__init__(f"{scope} budget exceeded: {limit} is {allowed:g}, used {used:g}")


class ResumeError(RunError):
    """A run cannot be resumed; the message says why and what to do."""


class ReplayError(RunError):
    """A run cannot be replayed (no run store, its workflow file is gone); the message says what to do."""


class ReplayDiverged(RunError):
    """Raised by a replay's journal to stop an agent at a call the recording cannot answer.

    Attributes:
        divergence: Where and how (a `rolegraph.durability.replay.Divergence`).
    """

    def __init__(self, divergence: Any) -> None:
        self.divergence = divergence
        super().__init__(f"replay diverged at {divergence.describe()}")


class StepError(RunError):
    """A tool or function step could not give its output: its arguments do not fit, the call failed,
    or what it returned is not the output the step declares. The message names the step and says why."""
