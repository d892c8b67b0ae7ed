"""Agent steps whose answer the engine composes from the model's choices: gathering and extractive writing.

- A role answering `EvidenceOutput` (the built-in ``gatherer``) is shown the best
  sentences of the passages its step was given, numbered, and picks and rates them
  (`rolegraph.agents.gathering`).
- A critic (a role answering `CritiqueOutput`) checking ``per_claim`` (the default
  on the embedded ``local`` model) that reads evidence gives a verdict on each claim
  its task lists, in order (`rolegraph.agents.checking`); a ``free`` one answers as
  any agent does.
- A writer (a role answering `ReportOutput`) writing ``extractive`` is shown the
  evidence it reads grouped by question and chooses each paragraph's order and
  joining words (`rolegraph.agents.extractive`); an ``abstractive`` writer that reads
  evidence is shown it the same way, grouped by question (`prose_task`), and writes
  the paragraphs itself; writers with no evidence to read write as any agent does.

The model's own answer is traced on its ``invoke_agent`` span as usual; the
composed output, the step's, on a ``run_guardrail`` span named ``compose``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from rolegraph.agents.agent import AgentResult
from rolegraph.agents.checking import VERDICTS, checks_model, compose_critique
from rolegraph.agents.extractive import (
    arrangement_model,
    compose_report,
    evidence_groups,
    groups_evidence,
    numbered_groups,
    report_title,
)
from rolegraph.agents.gathering import candidates, compose_evidence, numbered, picks_model
from rolegraph.agents.roles import Checking, CritiqueOutput, EvidenceOutput, ReportOutput, Role, Writing
from rolegraph.errors import StepError
from rolegraph.models.model import Model
from rolegraph.runtime.scheduler import StepCall, StepOutcome
from rolegraph.tools.sources import SourceRegistry
from rolegraph.traces.spans import SpanKind
from rolegraph.traces.tracer import Tracer

__all__ = [
    "RunAgent",
    "checking_of",
    "composes",
    "prose_task",
    "run_checker",
    "run_extractive_writer",
    "run_gatherer",
    "writing_of",
]

RunAgent = Callable[[Role, str, Sequence[str]], Awaitable[AgentResult]]
"""Runs the step's agent as a given role, on a given task, seeing the given sources."""


def writing_of(role: Role, model: Model) -> Writing:
    """How a writer writes: its role's `writing`, else extractive on the embedded ``local`` model only."""
    if role.writing is not None:
        return role.writing
    return "extractive" if model.name == "local" else "abstractive"


def checking_of(role: Role, model: Model) -> Checking:
    """How a critic of evidence answers: its role's `checking`, else per claim on the embedded ``local`` model only."""
    if role.checking is not None:
        return role.checking
    return "per_claim" if model.name == "local" else "free"


def composes(role: Role, model: Model) -> str | None:
    """``gather``, ``check`` or ``extract`` when the engine may compose the step's answer, ``prose`` for a
    writer writing its own paragraphs (its task gains the evidence), else None."""
    if issubclass(role.output_model, EvidenceOutput):
        return "gather"
    if issubclass(role.output_model, CritiqueOutput) and checking_of(role, model) == "per_claim":
        return "check"
    if issubclass(role.output_model, ReportOutput):
        return "extract" if writing_of(role, model) == "extractive" else "prose"
    return None


def _passages(call: StepCall, known: Sequence[str], sources: SourceRegistry) -> list[tuple[str, str]]:
    """``(source id, text)`` of each source the step may cite: the passage text its item or upstream holds
    for it (a search hit's ``text``), else the registered source's text."""
    texts: dict[str, str] = {}

    def visit(value: Any) -> None:
        if isinstance(value, Mapping):
            key = value.get("source_id", value.get("id"))
            if isinstance(key, str) and isinstance(value.get("text"), str) and value["text"].strip():
                texts.setdefault(key, value["text"])
            for inner in value.values():
                visit(inner)
        elif isinstance(value, list):
            for inner in value:
                visit(inner)

    visit(call.item if call.item is not None else call.upstream)
    found = []
    for source_id in known:
        source = sources.get(source_id)
        text = texts.get(source_id) or (source.text if source is not None else "")
        if text:
            found.append((source_id, text))
    return found


def _composed(tracer: Tracer, kind: str, output: dict[str, Any], **attributes: Any) -> dict[str, Any]:
    with tracer.span(SpanKind.RUN_GUARDRAIL, f"compose {kind}", rolegraph__compose=kind) as span:
        span.set(rolegraph__output=output, **attributes)
    return output


async def run_gatherer(
    call: StepCall,
    role: Role,
    run: RunAgent,
    *,
    known: Sequence[str],
    sources: SourceRegistry,
    tracer: Tracer,
) -> StepOutcome:
    """Offer the best sentences of the step's passages by number; the model's picks become its evidence.

    Sentences are ranked by the words of the task, those of the item's ``question`` (when it has
    one) above all, and those of the item's ``paper`` (the paper the question is about) first.

    With nothing to offer, the answer is no evidence, and no model is called.
    """
    item = call.item if isinstance(call.item, Mapping) else {}
    focus = str(item.get("question") or "")
    paper = item.get("paper")
    offered = candidates(
        call.task, _passages(call, known, sources), focus=focus, prefer=paper if isinstance(paper, str) else None
    )
    if not offered:
        return StepOutcome(output=_composed(tracer, "evidence", {"evidence": []}, rolegraph__offered=0))
    picking = role.model_copy(update={"output_model": picks_model(len(offered)), "tools": ()})
    listing = numbered(offered)
    task = f"{call.task.rstrip()}\n\nSentences (answer with their numbers):\n{listing}"
    result = await run(picking, task, known)
    question = item.get("question")
    composed = {**compose_evidence(offered, result.output), "question": question if isinstance(question, str) else ""}
    output = _validated(EvidenceOutput, composed)
    offered_list = [{"source_id": c.source_id, "sentence": c.sentence, "score": c.score} for c in offered]
    _composed(tracer, "evidence", output, rolegraph__offered=offered_list)
    return StepOutcome(output=output, usage=result.usage, tool_calls=result.tool_calls)


async def run_extractive_writer(
    call: StepCall,
    role: Role,
    run: RunAgent,
    *,
    known: Sequence[str],
    sources: SourceRegistry,
    tracer: Tracer,
) -> StepOutcome | None:
    """Show the evidence grouped by question; the model's order and joining words become the report.

    Returns None when the step reads no evidence (the writer then writes as any agent does).

    Raises:
        StepError: A step it reads groups evidence (``groups``) and kept none: there is nothing to write from.
    """
    groups = [g for g in evidence_groups(call.upstream) if all(s in sources for s, _ in g.evidence)]
    if not groups and groups_evidence(call.upstream):
        raise StepError(
            f"step {call.step_id!r}: no evidence is left to write from (every claim was left out); "
            "the report would cite nothing"
        )
    if not groups:
        return None
    ids = list(dict.fromkeys(s for g in groups for s, _ in g.evidence))
    arranging = role.model_copy(
        update={"output_model": arrangement_model(tuple(len(g.evidence) for g in groups)), "tools": ()}
    )
    task = (
        f"{call.task.rstrip()}\n\nEach paragraph is made of the sentences below, verbatim. For each paragraph, "
        "give the order its sentences read best in, and the word that joins each sentence to the one before "
        '("" for none).'
        f"\n\n{numbered_groups(groups)}"
    )
    result = await run(arranging, task, ids)
    report = compose_report(report_title(call.task), groups, result.output)
    output = _validated(ReportOutput, report)
    _composed(tracer, "report", output, rolegraph__groups=len(groups))
    return StepOutcome(output=output, usage=result.usage, tool_calls=result.tool_calls)


def prose_task(call: StepCall, known: Sequence[str], sources: SourceRegistry) -> tuple[str, list[str]]:
    """A prose writer's task and the sources it may cite: with the evidence it reads, the task lists it
    grouped by question (as an extractive writer sees it) and asks for one paragraph per group in the
    writer's own words, each sentence citing its paper inline; the sources are those of the evidence.
    Without evidence, the step's own task and sources."""
    groups = [g for g in evidence_groups(call.upstream) if all(s in sources for s, _ in g.evidence)]
    if not groups:
        return call.task, list(known)
    titles = {s: found.title for g in groups for s, _ in g.evidence if (found := sources.get(s)) is not None}
    task = (
        f"{call.task.rstrip()}\n\nWrite one paragraph for each group of evidence below, in your own words, "
        "saying what the evidence says and nothing it does not. End each sentence with the id of the paper it "
        "comes from, as [@id].\n\n" + numbered_groups(groups, titles)
    )
    return task, list(titles)


async def run_checker(call: StepCall, role: Role, run: RunAgent, *, tracer: Tracer) -> StepOutcome | None:
    """The model gives a verdict on each claim the step reads, in order; the verdicts become the critique.

    The claims are those of the evidence the step reads (`evidence_groups`), counted across groups
    in order, as the critic's task lists them (`rolegraph.agents.checking.numbered_claims` writes
    such a list). Returns None when the step reads no evidence (the critic then answers as any
    agent does).
    """
    groups = evidence_groups(call.upstream)
    count = sum(len(g.evidence) for g in groups)
    if count == 0:
        return None
    checking = role.model_copy(update={"output_model": checks_model(count), "tools": ()})
    task = (
        f"{call.task.rstrip()}\n\nFor each of the {count} claims, in order, say whether its evidence supports it "
        f"and answers its question ({' or '.join(VERDICTS)}), then accept or revise the findings."
    )
    result = await run(checking, task, [])
    output = _validated(CritiqueOutput, compose_critique(result.output))
    _composed(tracer, "critique", output, rolegraph__claims=count)
    return StepOutcome(output=output, usage=result.usage, tool_calls=result.tool_calls)


def _validated(model: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    return model.model_validate(data).model_dump(mode="json")
