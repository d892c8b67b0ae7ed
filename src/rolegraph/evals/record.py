"""What scoring needs from one run, gathered into a `RunRecord`.

Records are built from a finished `RunResult` while it is in memory
(`record_of`): claim support checks quotes against the sources' full text,
which the run folder does not keep (``sources.json`` leaves text out), so a run
cannot yet be re-scored from disk alone.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from rolegraph.agents.citations import answer_schema, find_citations, find_quotes, strings_in
from rolegraph.tools.sources import Source
from rolegraph.traces.pricing import PriceTable
from rolegraph.traces.usage import roll_up
from rolegraph.workflows.executor import resolve_role
from rolegraph.workflows.run import RunResult, Workflow

__all__ = ["ClaimRef", "RunRecord", "record_of"]


class ClaimRef(BaseModel):
    """One quoted claim in a step's output: the source it cites and the quote it gives."""

    step: str
    source_id: str
    evidence: str


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
    report_text: str = ""
    """The report's prose: title and paragraphs, without citations."""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = 0.0
    """USD; None when a model's price is unknown."""
    duration_s: float = 0.0


def _outputs(output: Any) -> list[Any]:
    """A step's outputs: one, or one per item of a `for_each` step."""
    return [o for o in output if o is not None] if isinstance(output, list) else [output]


def record_of(result: RunResult, workflow: Workflow, prices: PriceTable | None = None) -> RunRecord:
    """The record of a finished run of `workflow`: citations and claims found through each role's schema."""
    spec = workflow.spec
    report_steps = [o.from_ for o in spec.outputs.values() if o.render == "report" and o.from_]
    if not report_steps:  # no report: the answer is what the last steps say
        report_steps = [step for step in workflow.graph.nodes if workflow.graph.out_degree(step) == 0]
    citations: list[str] = []
    cited: list[str] = []
    claims: list[ClaimRef] = []
    texts: list[str] = []
    for step_id, output in result.step_outputs.items():
        schema = answer_schema(resolve_role(spec, spec.steps[step_id].role).output_model)
        for data in _outputs(output):
            found = list(find_citations(schema, data))
            citations += found
            claims += [ClaimRef(step=step_id, source_id=s, evidence=q) for s, q in find_quotes(schema, data)]
            if step_id in report_steps:
                cited += found
                texts += [text for text in strings_in(data) if text not in found]
    usage = roll_up(result.trace, prices).total
    return RunRecord(
        run_id=result.run_id,
        status=result.status,
        error=result.error,
        sources=result.sources,
        citations=citations,
        cited=list(dict.fromkeys(cited)),
        claims=claims,
        report_text="\n".join(texts),
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cost_usd=usage.cost_usd,
        duration_s=result.duration_s,
    )
