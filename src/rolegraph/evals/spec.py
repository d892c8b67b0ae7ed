"""The eval set document: questions for a workflow, and what a good answer to each has.

```yaml
rolegraph_eval: 1
name: library_questions
questions:
  - id: lora
    inputs: {topic: low-rank adaptation}
    gold_sources: [hu2021lora, "arxiv:2305.14314"]
    must_include: [low-rank]
    must_not_include: [reinforcement learning]
    tags: [peft]
```
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = ["EvalQuestion", "EvalSet"]

QuestionId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", max_length=64)]
"""A question's id: letters, digits, ``_``, ``.`` and ``-``."""
Fact = Annotated[str, StringConstraints(min_length=1, max_length=400)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EvalQuestion(_Strict):
    """One question: the workflow's inputs, and what a good answer has."""

    id: QuestionId
    """Unique within the set; names the question in reports."""
    inputs: dict[str, Any] = Field(default_factory=dict)
    """Inputs for the workflow run (as `--input` would give them)."""
    gold_sources: list[Fact] = Field(default_factory=list)
    """Sources a good answer cites: library ids (``hu2021lora``), ``doi:...`` or ``arxiv:...``."""
    must_include: list[Fact] = Field(default_factory=list)
    """Facts the report must state (matched case-, space- and punctuation-insensitively)."""
    must_not_include: list[Fact] = Field(default_factory=list)
    """Facts the report must not state (each hit is counted in ``forbidden_facts``)."""
    tags: list[str] = Field(default_factory=list)
    """Free labels, for slicing results."""


class EvalSet(_Strict):
    """A versioned set of questions to evaluate a workflow on."""

    rolegraph_eval: Literal[1]
    """Format version, ``1``."""
    name: str = Field(min_length=1, max_length=120)
    description: str = ""
    questions: list[EvalQuestion] = Field(min_length=1)
