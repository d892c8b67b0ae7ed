"""What scoring needs from one run, gathered into a `RunRecord`.

Records are built from a finished `RunResult` while it is in memory
(`record_of`), or from a run folder on disk (`record_from_dir`): its
``steps.jsonl`` (each completed step's state; ``steps/<id>.json`` in older runs),
``sources.jsonl`` (every retrieved source with its full text, which claim
support checks quotes against; none when ``run.json`` says ``"sources": 0``), ``trace.jsonl``
(tokens, cost) and ``run.json`` (status, time, inputs, model overrides). Both
give the same record, so a past run can be re-scored, e.g. against a corrected
eval set or with a judge.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from rolegraph.agents.citations import answer_schema, find_citations, find_claims, strings_in
from rolegraph.agents.evidence import segment
from rolegraph.errors import DamagedFileError, RolegraphError
from rolegraph.layout import SOURCES_FILE, RunFolder
from rolegraph.runtime.executor import step_output_model
from rolegraph.runtime.outputs import INLINE_CITATION
from rolegraph.runtime.result import RunResult
from rolegraph.runtime.scheduler import StepState
from rolegraph.tools.sources import Source
from rolegraph.traces.pricing import PriceTable
from rolegraph.traces.records import read_summary
from rolegraph.traces.trace import Trace
from rolegraph.traces.usage import roll_up
from rolegraph.workflow import Workflow

__all__ = [
    "ClaimRef",
    "RunFolderError",
    "RunRecord",
    "cited_sentences",
    "record_from_dir",
    "record_of",
    "report_claims",
]


class RunFolderError(RolegraphError):
    """A run folder lacks what scoring needs (or is not a run of the workflow under test)."""


class ClaimRef(BaseModel):
    """One quoted claim in a step's output: the source it cites, the quote it gives and what it claims."""

    step: str
    source_id: str
    evidence: str
    claim: str = ""
    """The claim's own text (a `Claim`'s ``claim``; the object's other text fields); empty if it has none."""
    quoted: bool = True
    """False for a sentence of the report: it cites sources but quotes none (`evidence` is empty), and is
    scored against the best-matching sentence of the sources it cites."""
    cites: list[str] = Field(default_factory=list)
    """Every source a report sentence cites (`source_id` is the first); empty for a quoted claim."""


class RunRecord(BaseModel):
    """One run, reduced to what the metrics read."""

    run_id: str = ""
    status: str = "completed"
    error: str | None = None
    sources: list[Source] = Field(default_factory=list)
    """Every source the run's tools retrieved, with its text."""
    citations: list[str] = Field(default_factory=list)
    """Every citation in every step's output (a repeated citation counts each time)."""
    cited: list[str] = Field(default_factory=list)
    """Distinct sources the report cites (every step's citations if the workflow writes no report)."""
    claims: list[ClaimRef] = Field(default_factory=list)
    """Every quoted claim in every step's output."""
    report_title: str = ""
    """The report's title (a report step's ``title`` field), kept apart from its body."""
    report_text: str = ""
    """The report's body: its paragraphs' text, without its title, citations or reference list."""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = 0.0
    """USD; None when a model's price is unknown."""
    duration_s: float = 0.0
    inputs: dict[str, Any] = Field(default_factory=dict)
    """The run's resolved inputs (from ``run.json``; empty for an in-memory record)."""
    overrides: dict[str, Any] = Field(default_factory=dict)
    """The run's model override and settings, ``{"model": ..., "settings": {...}}`` (from ``run.json``)."""


def _outputs(output: Any) -> list[Any]:
    """A step's outputs: one, or one per item of a `for_each` step."""
    return [o for o in output if o is not None] if isinstance(output, list) else [output]


def record_of(result: RunResult, workflow: Workflow, prices: PriceTable | None = None) -> RunRecord:
    """The record of a finished run of `workflow`: citations and claims found through each role's schema."""
    record = _record(workflow, result.step_outputs, result.trace, prices)
    return record.model_copy(
        update={
            "run_id": result.run_id,
            "status": result.status,
            "error": result.error,
            "sources": result.sources,
            "duration_s": result.duration_s,
        }
    )


def record_from_dir(run_dir: Path, workflow: Workflow, prices: PriceTable | None = None) -> RunRecord:
    """The record of the run kept in `run_dir`, as `record_of` gave it when the run finished.

    Raises:
        RunFolderError: The folder is not a finished run of `workflow`, or it predates
            ``sources.jsonl`` (older runs kept no source text: they cannot be re-scored). A run whose
            ``run.json`` says ``"sources": 0`` has no ``sources.jsonl`` and is read with no sources.
    """
    summary = _summary(run_dir)
    if summary.get("workflow") != workflow.spec.name:
        raise RunFolderError(
            f"run {run_dir.name} is a run of workflow {summary.get('workflow')!r}, not {workflow.spec.name!r}"
        )
    if summary.get("status") not in ("completed", "failed", "cancelled", "budget_exceeded"):
        raise RunFolderError(f"run {run_dir.name} has not finished (status {summary.get('status')!r})")
    sources_file = run_dir / SOURCES_FILE
    has_sources_file = sources_file.is_file()
    if not has_sources_file and summary.get("sources") != 0:  # a run with no sources writes no file
        raise RunFolderError(
            f"run {run_dir.name} has no {SOURCES_FILE} (it was made by an older rolegraph, which kept no "
            "source text): it cannot be re-scored; run the question again"
        )
    try:
        lines = sources_file.read_text("utf-8").splitlines() if has_sources_file else []
        sources = [Source.model_validate_json(line) for line in lines if line]
        steps = [StepState.model_validate(state) for state in RunFolder(run_dir).step_states().values()]
    except (OSError, ValidationError, ValueError) as exc:
        raise RunFolderError(f"run {run_dir.name}: cannot read its files: {exc}") from None
    done = {s.step_id: s.output for s in steps if s.status == "completed"}
    outputs = {step: done[step] for step in workflow.spec.steps if step in done}  # the run's own order
    record = _record(workflow, outputs, Trace.load(RunFolder(run_dir).trace), prices)
    return record.model_copy(
        update={
            "run_id": str(summary.get("run_id", run_dir.name)),
            "status": summary["status"],
            "error": summary.get("error"),
            "sources": sources,
            "duration_s": float(summary.get("duration_s") or 0.0),
            "inputs": dict(summary.get("inputs") or {}),
            "overrides": dict(summary.get("overrides") or {}),
        }
    )


def _summary(run_dir: Path) -> dict[str, Any]:
    """The run's ``run.json``, read strictly (`rolegraph.traces.records.read_summary`).

    Raises:
        RunFolderError: There is none, or it is damaged.
    """
    folder = RunFolder(run_dir)
    if not folder.summary.is_file():
        raise RunFolderError(f"{run_dir} is not a run folder: it has no run.json")
    try:
        return read_summary(folder.summary)
    except DamagedFileError as exc:
        raise RunFolderError(str(exc)) from None


def _body(output: Any) -> Any:
    """A report step's output without its title: the title is a heading, not what the report says."""
    return {k: v for k, v in output.items() if k != "title"} if isinstance(output, dict) else output


_MARKS = re.compile(r"(?:\s*\[@[^\]\s]+\])+")


def cited_sentences(text: str) -> list[tuple[str, list[str]]]:
    """The sentences of a paragraph's `text`, each with the sources its inline ``[@id]`` markers cite.

    Markers cite the sentence they follow (``... matrices [@hu2021lora].`` or ``... matrices. [@hu2021lora]``);
    a sentence with none gets an empty list. Markers are taken out of the sentences.
    """
    found: list[tuple[str, list[str]]] = []
    at = 0
    for match in [*_MARKS.finditer(text), None]:
        chunk = text[at : match.start() if match else len(text)]
        pieces = [p for p in segment(chunk) if any(c.isalnum() for c in p)]
        if not pieces and found and match is None:
            break
        if chunk.lstrip()[:1] in (".", "!", "?") and found:  # the stop after a marker ends the sentence before
            found[-1] = (found[-1][0].rstrip() + chunk.lstrip()[0], found[-1][1])
        found += [(p, []) for p in pieces]
        if match is not None:
            ids = INLINE_CITATION.findall(match.group(0))
            if found:
                found[-1] = (found[-1][0], [*found[-1][1], *ids])
            at = match.end()
    return found


def report_claims(step_id: str, output: Any) -> list[ClaimRef]:
    """Every sentence of a report's paragraphs that cites a source, as an unquoted claim (`ClaimRef.quoted`).

    A sentence cites what its inline markers name; a sentence without one rests on its paragraph's
    citations (its ``citations`` field and the paragraph's inline markers).
    """
    paragraphs = output.get("paragraphs") if isinstance(output, Mapping) else None
    claims: list[ClaimRef] = []
    for paragraph in paragraphs if isinstance(paragraphs, list) else []:
        if not isinstance(paragraph, Mapping) or not isinstance(paragraph.get("text"), str):
            continue
        found = cited_sentences(paragraph["text"])
        listed = [c for c in paragraph.get("citations") or [] if isinstance(c, str)]
        whole = list(dict.fromkeys([*listed, *(i for _, ids in found for i in ids)]))
        for sentence, inline in found:
            cites = list(dict.fromkeys(inline)) or whole
            if cites:
                claims.append(
                    ClaimRef(step=step_id, source_id=cites[0], evidence="", claim=sentence, quoted=False, cites=cites)
                )
    return claims


def _record(workflow: Workflow, step_outputs: Mapping[str, Any], trace: Trace, prices: PriceTable | None) -> RunRecord:
    """What the steps' outputs and the trace say: citations, claims, report text, tokens and cost."""
    spec = workflow.spec
    report_steps = [o.from_ for o in spec.outputs.values() if o.render == "report" and o.from_]
    if not report_steps:  # no report: the answer is what the last steps say
        report_steps = [step for step in workflow.graph.nodes if workflow.graph.out_degree(step) == 0]
    citations: list[str] = []
    cited: list[str] = []
    claims: list[ClaimRef] = []
    texts: list[str] = []
    titles: list[str] = []
    for step_id, output in step_outputs.items():
        model = step_output_model(spec, step_id)
        if model is None:  # a tool step, or a function step of undeclared output: no citation fields
            continue
        schema = answer_schema(model)
        for data in _outputs(output):
            found = list(find_citations(schema, data))
            citations += found
            claims += [
                ClaimRef(step=step_id, source_id=c.source_id, evidence=c.quote, claim=c.claim)
                for c in find_claims(schema, data)
            ]
            if step_id in report_steps:
                claims += report_claims(step_id, data)
                cited += found
                texts += [text for text in strings_in(_body(data)) if text not in found]
                if isinstance(data, dict) and isinstance(data.get("title"), str):
                    titles.append(data["title"])
    usage = roll_up(trace, prices).total
    return RunRecord(
        citations=citations,
        cited=list(dict.fromkeys(cited)),
        claims=claims,
        report_title="\n".join(titles),
        report_text="\n".join(texts),
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cost_usd=usage.cost_usd,
    )
