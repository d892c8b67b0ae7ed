"""What the scheduler exchanges with the rest of the engine: step calls and outcomes, step states, checkpoints.

`StepCall` and `StepOutcome` are slotted dataclasses, built per step and never validated in-process;
`StepState` is the pydantic model of where a step stands (a run's result, a step-log line, a checkpoint row).
`rolegraph.runtime.scheduler` exports them all with the scheduler.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field, TypeAdapter

from rolegraph.models.model import Usage

__all__ = [
    "OUTCOME",
    "Checkpoint",
    "Checkpointer",
    "StepCall",
    "StepExecutor",
    "StepListener",
    "StepOutcome",
    "StepState",
    "StepStatus",
]

StepStatus = Literal["pending", "running", "completed", "failed", "skipped", "cancelled", "budget_exceeded"]


@dataclass(slots=True)
class StepCall:
    """One unit of work for an executor: a step's agent on a rendered task, or a tool or
    function on rendered arguments. Plain data (a slotted dataclass: built per step, never validated in-process)."""

    run_id: str
    step_id: str
    task: str = ""
    """The rendered task (an agent step)."""
    args: dict[str, Any] | None = None
    """The rendered arguments (a tool or function step)."""
    item: Any = None
    """The `for_each` item this call works on."""
    item_index: int | None = None
    """Position of the item for a `for_each` step."""
    visit: int = 1
    """1 on the first run of the step, more when a route sent work back to it."""
    attempt: int = 1
    """1 on an item's first try, more when ``on_item_error: retry:N`` tries it again (new call ids)."""
    upstream: dict[str, Any] = field(default_factory=dict)
    """Outputs of the step's direct dependencies and of the upstream steps its templates read."""


@dataclass(slots=True)
class StepOutcome:
    """What an executor returns for a `StepCall`. Plain data (a slotted dataclass; `OUTCOME` reads and writes it as
    JSON)."""

    output: dict[str, Any]
    usage: Usage = field(default_factory=Usage)
    tool_calls: int = 0


OUTCOME: TypeAdapter[StepOutcome] = TypeAdapter(StepOutcome)
"""A `StepOutcome` to JSON data and back, validated: where one is stored or read back (the run store)."""


class StepExecutor(Protocol):
    """Runs one step call. The in-process executor runs an agent; others may run it elsewhere."""

    async def execute(self, call: StepCall) -> StepOutcome:
        """Run `call` and return its validated output."""
        ...


class StepState(BaseModel):
    """Where one step stands."""

    step_id: str
    status: StepStatus = "pending"
    output: Any = None
    """The step's output: a dict, or a list of dicts for a `for_each` step."""
    error: str | None = None
    visits: int = 0
    usage: Usage = Field(default_factory=Usage)
    tool_calls: int = 0
    skipped_items: list[dict[str, Any]] = Field(default_factory=list)
    """Items of a ``for_each`` step with ``on_item_error: skip`` that failed, left out of its output:
    ``{index, item, error}`` each, in item order."""

    def as_data(self) -> dict[str, Any]:
        """The state as JSON data, as ``model_dump(mode="json")`` gives it for JSON outputs, without pydantic's
        serialiser: what a checkpoint and a step-log line hold, built once per completed step."""
        return {
            "step_id": self.step_id,
            "status": self.status,
            "output": self.output,
            "error": self.error,
            "visits": self.visits,
            "usage": {"input_tokens": self.usage.input_tokens, "output_tokens": self.usage.output_tokens},
            "tool_calls": self.tool_calls,
            "skipped_items": self.skipped_items,
        }


@dataclass
class Checkpoint:
    """The scheduler's state, enough to resume a run: every step's state and the routes' counters.

    Handed to `Checkpointer.save`, `states` holds only the steps whose state changed since the
    last save and that are not running (a checkpoint costs what changed, not the length of the run;
    a resume runs a step's unfinished visit again whether or not its start was saved); loaded back,
    it holds every step that was ever saved.
    """

    states: dict[str, StepState]
    route_fired: dict[tuple[str, int], int] = field(default_factory=dict)
    """How often each route (step id, route number) has fired."""
    routed: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The ``routed`` template context a fired route passed to its target."""


class Checkpointer(Protocol):
    """Where a durable run's scheduler saves its progress (the run store)."""

    def save(self, checkpoint: Checkpoint) -> None:
        """Write what changed, atomically: the states in `checkpoint` (the steps that changed since the
        last save) replace those steps' saved states; the route counters and routed contexts replace
        theirs. Must serialise before returning (the states are the scheduler's live objects)."""
        ...

    def save_item(self, step_id: str, visit: int, index: int, outcome: StepOutcome) -> None:
        """Record a finished item of a ``for_each`` step."""
        ...

    def items(self, step_id: str, visit: int) -> dict[int, StepOutcome]:
        """The recorded items of one visit of a ``for_each`` step, by index."""
        ...


StepListener = Callable[[StepState], None]
"""Called with a step's state each time the step changes status."""
