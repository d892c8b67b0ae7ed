"""Token counts: `Usage`, the one type for a model call's, a step's, a run's and a trace's tokens.

A leaf, so that every layer can speak it: models return it, the engine sums it,
and a trace read back (`rolegraph.traces.trace.Trace.usage`) gives the same type
as the run that wrote it (`RunResult.usage`).
"""

from __future__ import annotations

from pydantic import BaseModel

__all__ = ["Usage"]


class Usage(BaseModel):
    """Token counts of one model call (or a sum of calls)."""

    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
        )

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens
