"""What a run gives back: `RunResult`, and `classify` — the pure rule for a run's final status."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from rich.console import RenderableType

from rolegraph.errors import BudgetExceeded
from rolegraph.layout import RunFolder
from rolegraph.models.model import Usage
from rolegraph.runtime.scheduler import StepState
from rolegraph.tools.sources import Source
from rolegraph.traces.render import run_html, run_rich
from rolegraph.traces.trace import Trace

__all__ = ["CacheSavings", "CitationCount", "Outcome", "RunResult", "RunStatus", "classify"]

RunStatus = Literal["completed", "failed", "cancelled", "budget_exceeded"]


class CitationCount(BaseModel):
    """Citations in the run's reports, and how many name no retrieved source (should be 0)."""

    total: int = 0
    unresolved: int = 0


class CacheSavings(BaseModel):
    """What the model-call cache saved a run: the calls it answered and what they would have cost."""

    hits: int = 0
    """Model calls answered from the cache (not made)."""
    input_tokens: int = 0
    """Input tokens those calls did not spend."""
    output_tokens: int = 0
    """Output tokens they did not spend."""
    cost_usd: float | None = 0.0
    """Their cost in USD under the home's prices (None when a model has no known price)."""


@dataclass(frozen=True)
class Outcome:
    """A run's final status and, unless it completed, why."""

    status: RunStatus
    error: str | None = None


def classify(
    states: Mapping[str, StepState],
    *,
    budget_error: BudgetExceeded | None,
    timed_out_after: float | None,
) -> Outcome:
    """The status of a run whose scheduler has stopped, from what its steps came to.

    A budget stop wins over a timeout, a timeout over failed steps; a run completes
    only when no step failed, was cancelled or was skipped.

    Args:
        states: Each step's final state.
        budget_error: The budget limit the run reached, if any.
        timed_out_after: The ``run_timeout`` (seconds) the run ran out of, if it did.
    """
    if budget_error is not None:
        return Outcome("budget_exceeded", str(budget_error))
    if timed_out_after is not None:
        return Outcome("failed", f"the run did not finish within settings.run_timeout ({timed_out_after:g}s)")
    failed = [s for s in states.values() if s.status in ("failed", "cancelled", "skipped")]
    if failed:
        first = next((s for s in failed if s.error), failed[0])
        return Outcome("failed", f"step {first.step_id!r} {first.status}: {first.error or ''}".strip())
    return Outcome("completed")


class RunResult(BaseModel):
    """The outcome of one run."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    run_id: str
    status: RunStatus
    run_dir: Path
    outputs: dict[str, Path] = Field(default_factory=dict)
    """Files written, by output name."""
    steps: dict[str, StepState] = Field(default_factory=dict)
    """Final state of each step, with its output."""
    sources: list[Source] = Field(default_factory=list)
    """Every source the run's tools retrieved."""
    usage: Usage = Field(default_factory=Usage)
    citations: CitationCount = Field(default_factory=CitationCount)
    error: str | None = None
    duration_s: float = 0.0
    """Wall time since the run first started (resumes included)."""
    resumed_steps: list[str] = Field(default_factory=list)
    """Steps restored from the run store's checkpoint, not run again (a resumed run)."""
    executed_steps: list[str] = Field(default_factory=list)
    """Steps whose agents ran in this invocation, in start order."""
    replayed_calls: int = 0
    """Recorded calls this invocation answered from the run's journal (a resumed run)."""
    resent_calls: int = 0
    """Recorded calls this invocation sent again because their request had changed (a resume after an edit)."""
    cache: CacheSavings | None = None
    """What the model-call cache saved, over every invocation; None when the run did not use the cache."""

    @property
    def folder(self) -> RunFolder:
        """The run's folder and its files."""
        return RunFolder(self.run_dir)

    @property
    def trace(self) -> Trace:
        """The run's trace, read from its JSONL file."""
        return Trace.load(self.folder.trace)

    @property
    def step_outputs(self) -> dict[str, Any]:
        """Output of each completed step."""
        return {k: s.output for k, s in self.steps.items() if s.status == "completed"}

    def _trace_or_none(self) -> Trace | None:
        return self.trace if self.folder.trace.is_file() else None

    def _repr_html_(self) -> str:
        """The run in Jupyter: escaped HTML with status, usage, outputs, steps and nested spans."""
        return run_html(self.summary(), self._trace_or_none())

    def __rich__(self) -> RenderableType:
        """The run in a terminal (``rich.print(result)``): a summary line, its steps and its span tree."""
        return run_rich(self.summary(), self._trace_or_none())

    def summary(self) -> dict[str, Any]:
        """The run as the CLI's ``--json`` object."""
        return {
            "run_id": self.run_id,
            "status": self.status,
            "outputs": {k: str(v) for k, v in self.outputs.items()},
            "usage": self.usage.model_dump(),
            "trace": str(self.folder.trace),
            "citations": self.citations.model_dump(),
            "steps": {k: s.status for k, s in self.steps.items()},
            "skipped_items": {k: s.skipped_items for k, s in self.steps.items() if s.skipped_items},
            "error": self.error,
            "duration_s": round(self.duration_s, 3),
            "resumed_steps": self.resumed_steps,
            "executed_steps": self.executed_steps,
            "replayed_calls": self.replayed_calls,
            "resent_calls": self.resent_calls,
            "cache": self.cache.model_dump() if self.cache is not None else None,
        }
