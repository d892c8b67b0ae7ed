"""A tiny eval project: a two-note library, a research-then-write workflow, an eval set and scripted models.

The eval tests (`tests/evals`), the README's quality benchmark tests and the damaged-file suite all run evals
over it; each writes it with `write_eval_project`, its own scripts and, if it needs another, its own eval set.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from projects import write_library, write_script

NOTES = {
    "alpha2020": "Alpha inserts small adapter layers into a frozen network. The adapters train only a few weights.",
    "beta2021": "Beta writes each weight update as a product of low-rank matrices. The update merges after training.",
}
ALPHA_QUOTE = "The adapters train only a few weights."
BETA_QUOTE = "The update merges after training."
CLAIMS = {ALPHA_QUOTE: "Adapters train only a few weights.", BETA_QUOTE: "Updates merge after training."}
"""What each quote supports (the claim text scripted beside it)."""


def script(claims: list[tuple[str, str]], paragraphs: list[tuple[list[str], str]]) -> list[dict[str, Any]]:
    """One model's whole run: a search, the researcher's claims, the writer's report."""
    return [
        {"tool": "library_search", "args": {"query": "adapters low-rank"}, "thought": "search"},
        {"final": {"claims": [{"source_id": s, "evidence": q, "claim": CLAIMS[q]} for s, q in claims]}},
        {
            "final": {
                "title": "Review",
                "paragraphs": [{"citations": cites, "text": text} for cites, text in paragraphs],
            }
        },
    ]


# "good" cites both gold sources and states both facts; "thin" cites one source and states one fact.
GOOD = script(
    [("alpha2020", ALPHA_QUOTE), ("beta2021", BETA_QUOTE)],
    [(["alpha2020"], "Adapters train few weights."), (["beta2021"], "Low-rank updates merge after training.")],
)
THIN = script(
    [("alpha2020", ALPHA_QUOTE)],
    [(["alpha2020"], "Adapters train few weights."), (["alpha2020"], "They are small.")],
)
WORKFLOW = """\
rolegraph: 1
name: review
library: library
inputs:
  topic: {type: string, default: adapters}
steps:
  research:
    role: researcher
    task: "Research {{ inputs.topic }}."
  write:
    role: writer
    depends_on: [research]
    task: "Write about {{ inputs.topic }}."
outputs:
  report: {path: report.md, render: report, from: write}
"""
EVALSET = """\
rolegraph_eval: 1
name: tiny
questions:
  - id: adapters
    inputs: {topic: adapters}
    gold_sources: [alpha2020, beta2021]
    must_include: [few weights, low-rank]
    must_not_include: [full fine-tuning]
"""


def write_eval_project(folder: Path, scripts: Mapping[str, list[dict[str, Any]]], evalset: str = EVALSET) -> Path:
    """The project in `folder`: the library, ``<name>.yaml`` for each script, ``review.yaml`` and ``set.yaml``."""
    write_library(folder, NOTES)
    for name, entries in scripts.items():
        write_script(folder, name, entries)
    (folder / "review.yaml").write_text(WORKFLOW)
    (folder / "set.yaml").write_text(evalset)
    return folder
