"""Roles: what an agent is told, which tools it has, and the typed answer it must give.

The built-in roles cover a literature review: a planner splits a topic into
questions; researchers answer them with claims backed by quotes from retrieved
sources, or gatherers choose the evidence for a question among the sentences of
the passages a search found; a critic checks the claims; a writer turns them
into a cited report. Workflows override any field of a built-in role, or define
new roles with typed output fields (see `output_model`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, Protocol, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from rolegraph.models.envelope import THOUGHT_MAX_CHARS

__all__ = [
    "BUILTIN_ROLES",
    "BUILTIN_ROLE_NAMES",
    "QUESTION_PATTERN",
    "QUOTE_MARK",
    "SOURCE_ID_MARK",
    "Checking",
    "Claim",
    "CritiqueOutput",
    "Evidence",
    "EvidenceOutput",
    "FieldSpec",
    "Paragraph",
    "PlanOutput",
    "Quote",
    "ReportOutput",
    "ResearchOutput",
    "Role",
    "SourceId",
    "Writing",
    "field_definition",
    "field_type",
    "output_model",
]

SOURCE_ID_MARK = "x-rolegraph-source-id"
"""JSON Schema key marking a string that must be the id of a retrieved source."""

QUOTE_MARK = "x-rolegraph-quote"
"""JSON Schema key marking a string that must be a sentence quoted from the source cited beside it."""

SourceId = Annotated[str, Field(json_schema_extra={SOURCE_ID_MARK: True})]
"""A citation: the id of a source a tool returned. Agents can only fill it with ids they have seen."""

Quote = Annotated[str, Field(min_length=1, max_length=400, json_schema_extra={QUOTE_MARK: True})]
"""Evidence: a sentence copied from the source cited in the same object (its `SourceId` field)."""

Short = Annotated[str, Field(min_length=1, max_length=200)]


class _Output(BaseModel):
    model_config = ConfigDict(extra="forbid")


QUESTION_PATTERN = r"^(What|How|Which|Why) [^?\"]{8,180}\?$"
"""How a planner's question is decoded under a grammar (a schema hint, not checked on validation): a small
model left free writes its topic back as a "question", and one made to start with any question word
drifts into other languages after the rarer ones."""


Question = Annotated[str, Field(min_length=5, max_length=200, json_schema_extra={"pattern": QUESTION_PATTERN})]


class PlanOutput(_Output):
    """The planner's answer: research questions covering the topic."""

    # At least two: a plan of one question is no plan, and a small model stops early if allowed.
    questions: list[Question] = Field(min_length=2, max_length=5)


class Claim(_Output):
    """One finding, with the source it came from and the quote that supports it.

    Field order is generation order: a model picks the source, copies a sentence
    from it, then states the claim that sentence supports.
    """

    source_id: SourceId
    evidence: Quote
    """A sentence quoted from the cited source's text."""
    claim: Short


class ResearchOutput(_Output):
    """A researcher's answer: claims, each backed by a retrieved source."""

    claims: list[Claim] = Field(max_length=3)

    @field_validator("claims")
    @classmethod
    def _drop_repeats(cls, claims: list[Claim]) -> list[Claim]:
        # Small models repeat themselves; a repeated claim adds nothing but tokens downstream.
        return list({(c.source_id, c.evidence, c.claim): c for c in claims}.values())


class Evidence(_Output):
    """One piece of evidence for a question: a sentence of a retrieved passage, and how relevant it is.

    A gatherer's model does not copy the sentence: it picks it by number among the
    sentences it was shown, so `evidence` is a sentence of `source_id` by construction.
    """

    source_id: SourceId
    evidence: Quote
    """A sentence of the cited source's retrieved text."""
    relevance: int = Field(ge=0, le=10)
    """How well the sentence answers the question, 0 to 10, as the model judged it."""


class EvidenceOutput(_Output):
    """A gatherer's answer: the evidence chosen for one question, best first."""

    question: str = ""
    """The question the evidence answers (the engine keeps it from the gatherer's item)."""
    evidence: list[Evidence] = Field(max_length=6)


def _drop_required(schema: dict[str, Any]) -> None:
    # `drop` has a default, so answers written before it existed stay valid, but a model
    # decoding under the schema must still write it: the critic's judgement is the list.
    schema["required"] = ["drop", *schema.get("required", [])]


class CritiqueOutput(_Output):
    """The critic's answer: the numbers of the claims it rejects, then accept or revise, with the issues.

    Claims are numbered 1, 2, ... in the order its task lists them (across questions). A
    rejected claim is one its evidence does not support, or that does not answer its question.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra=_drop_required)

    drop: list[int] = Field(default_factory=list, max_length=12)
    """Numbers of the claims to leave out of the report."""
    verdict: Literal["accept", "revise"]
    issues: list[Short] = Field(default_factory=list, max_length=5)


class Paragraph(_Output):
    """One paragraph of a report and the sources it rests on.

    Citations come first: a model generating in field order picks its sources,
    then writes the text with them in view.
    """

    citations: list[SourceId] = Field(min_length=1, max_length=6)
    text: Annotated[str, Field(min_length=1, max_length=1600)]


class ReportOutput(_Output):
    """The writer's answer: a titled report of cited paragraphs."""

    title: Annotated[str, Field(min_length=1, max_length=150)]
    paragraphs: list[Paragraph] = Field(min_length=1, max_length=6)

    @field_validator("paragraphs")
    @classmethod
    def _drop_repeats(cls, paragraphs: list[Paragraph]) -> list[Paragraph]:
        # Small models repeat whole paragraphs; a report should not.
        return list({(p.text, tuple(p.citations)): p for p in paragraphs}.values())


Checking = Literal["per_claim", "free"]
"""How a critic of evidence answers: a verdict per claim (``per_claim``), or its own critique (``free``)."""

Writing = Literal["extractive", "abstractive"]
"""How a writer writes: ``extractive``, paragraphs assembled from the quoted evidence (the model
orders the sentences and picks the words that join them); ``abstractive``, the model writes prose."""


class Role(BaseModel):
    """A role, resolved: built-in defaults merged with a workflow's overrides."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    name: str
    description: str = ""
    instructions: str
    tools: tuple[str, ...] = ()
    output_model: type[BaseModel]
    max_steps: int = 6
    min_tool_calls: int = 0
    """Tool calls the agent must make before it may answer (a researcher must search first)."""
    model: str | None = None
    """A model name from the workflow's `models`, or None for the default."""
    thought_chars: int = THOUGHT_MAX_CHARS
    """Longest thought the model may write before its final answer (0: none, the answer at once)."""
    writing: Writing | None = None
    """For a writer (an answer of `ReportOutput`): how it writes; None: extractive on the embedded
    ``local`` model, abstractive on any other."""
    checking: Checking | None = None
    """For a critic (an answer of `CritiqueOutput`) that reads evidence: ``per_claim``, the model gives
    a verdict on each claim its task lists and the engine writes the critique; ``free``, the model
    writes it. None: per_claim on the embedded ``local`` model, free on any other."""


BUILTIN_ROLES: dict[str, Role] = {
    "planner": Role(
        name="planner",
        description="Splits a topic into research questions.",
        instructions=(
            "You plan a literature review. Break the topic into distinct, specific research "
            "questions that together cover it. Each question should be answerable from papers."
        ),
        output_model=PlanOutput,
        max_steps=2,
    ),
    "researcher": Role(
        name="researcher",
        description="Answers one question with claims backed by quotes from retrieved sources.",
        instructions=(
            "You answer a research question from the library. First search the library with a few "
            "keywords from the question, then state claims. Each claim names the id of a source a "
            "search returned and quotes a sentence from that source as evidence."
        ),
        tools=("library_search", "read_document"),
        output_model=ResearchOutput,
        max_steps=3,
        min_tool_calls=1,
    ),
    "gatherer": Role(
        name="gatherer",
        description="Chooses the evidence that answers one question among the sentences of retrieved passages.",
        instructions=(
            "You gather evidence for a research question. You are shown numbered sentences from "
            "passages a search found. Choose the sentences that answer the question, best first, "
            "and rate how relevant each is from 0 (not at all) to 10 (answers it directly)."
        ),
        output_model=EvidenceOutput,
        max_steps=1,
    ),
    "critic": Role(
        name="critic",
        description="Checks the researchers' claims against their evidence.",
        instructions=(
            "You review research findings. Check that each claim is supported by its evidence "
            "quote and answers its question. List the numbers of the claims that fail (drop), then "
            "answer 'accept' if the findings are supported, or 'revise' and list the issues."
        ),
        output_model=CritiqueOutput,
        max_steps=2,
    ),
    "writer": Role(
        name="writer",
        description="Writes a short report whose every paragraph cites its sources.",
        instructions=(
            "You write a short literature review from research findings. Write paragraphs that "
            "summarise the findings; each paragraph cites the ids of the sources it uses. "
            "Cite only source ids that appear in the findings."
        ),
        output_model=ReportOutput,
        max_steps=2,
    ),
}

BUILTIN_ROLE_NAMES: frozenset[str] = frozenset(BUILTIN_ROLES)

_SCALARS: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "source_id": SourceId,
}
_LIST = re.compile(r"^list\[\s*(\w+)\s*\]$")
_ENUM = re.compile(r"^enum\[(.+)\]$")


def field_type(spec: str) -> Any:
    """The Python type for a YAML output type such as ``list[source_id]`` or ``enum[a, b]``.

    Raises:
        ValueError: The type is not one rolegraph knows.
    """
    spec = spec.strip()
    if spec in _SCALARS:
        return _SCALARS[spec]
    if match := _LIST.match(spec):
        inner = match.group(1)
        if inner not in _SCALARS:
            raise ValueError(f"unknown list item type {inner!r}; use one of {', '.join(_SCALARS)}")
        item_type = _SCALARS[inner]
        return list[item_type]  # type: ignore[valid-type]  # built at runtime from the YAML type name
    if match := _ENUM.match(spec):
        values = tuple(v.strip().strip("'\"") for v in match.group(1).split(",") if v.strip())
        if not values:
            raise ValueError("enum[] needs at least one value")
        return Literal[values]  # a Literal of the YAML's values
    raise ValueError(
        f"unknown type {spec!r}; use string, integer, number, boolean, source_id, list[<type>] or enum[a, b]"
    )


class FieldSpec(Protocol):
    """An output field written in full: its type, description and bounds (a workflow's `OutputField`)."""

    @property
    def type(self) -> str:
        """A type `field_type` reads, or ``enum`` with `values`."""

    @property
    def description(self) -> str:
        """What the field means, for the model."""

    @property
    def minimum(self) -> float | None:
        """Least value (of a number, or of each number of a list)."""

    @property
    def maximum(self) -> float | None:
        """Greatest value (of a number, or of each number of a list)."""

    @property
    def min_items(self) -> int | None:
        """Fewest items of a list."""

    @property
    def max_items(self) -> int | None:
        """Most items of a list."""

    @property
    def values(self) -> Sequence[str] | None:
        """The values of an ``enum``."""


def field_definition(spec: str | FieldSpec) -> tuple[Any, Any]:
    """The pydantic ``(type, Field)`` of one output field: required, with its description and bounds.

    Raises:
        ValueError: The type is not one rolegraph knows.
    """
    if isinstance(spec, str):
        return field_type(spec), ...
    kind: Any = Literal[tuple(spec.values or ())] if spec.type.strip() == "enum" else field_type(spec.type)
    if spec.minimum is not None or spec.maximum is not None:
        bounded = get_args(kind)[0] if get_origin(kind) is list else kind  # a list's bounds are its items'
        bounded = Annotated[bounded, Field(ge=spec.minimum, le=spec.maximum)]
        kind = list[bounded] if get_origin(kind) is list else bounded  # type: ignore[valid-type]  # built at runtime
    field = Field(..., description=spec.description or None, min_length=spec.min_items, max_length=spec.max_items)
    return kind, field


def output_model(role_name: str, fields: Mapping[str, str | FieldSpec]) -> type[BaseModel]:
    """Build a role's output model from its fields: YAML types (``list[source_id]``) or `FieldSpec`s.

    Every field is required; descriptions and bounds reach the model's JSON Schema.
    """
    definitions: dict[str, Any] = {name: field_definition(spec) for name, spec in fields.items()}
    model_name = "".join(part.capitalize() for part in role_name.split("_")) + "Output"
    return create_model(model_name, __base__=_Output, **definitions)
