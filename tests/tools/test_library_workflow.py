"""A workflow over a PDF library, end to end on scripted models: page citations reach report.md and sources.bib."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import rolegraph

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pdf_review.yaml"
MERGED = "The merged model then runs exactly as fast as the original one, with no extra layer at inference time."
ADAPTERS_ONLY = "Only the adapters are updated, so the optimiser state is small as well."
SOFT_PROMPT = "Only those vectors are trained, so a task costs a few thousand parameters."

SCRIPTS: dict[str, list[dict[str, Any]]] = {
    "planner": [{"final": {"questions": ["How do adapters keep fine-tuning cheap?", "What do soft prompts train?"]}}],
    "researcher": [
        {"tool": "library_search", "args": {"query": "merged adapters inference speed"}},
        {"tool": "library_search", "args": {"query": "quantised 4-bit optimiser state"}},
        {"tool": "library_search", "args": {"query": "soft prompt vectors"}},
        {
            "final": {
                "claims": [
                    {"source_id": "example2025lowrank#p2", "evidence": MERGED, "claim": "Merging costs nothing."},
                    {"source_id": "example2025quantised#p2", "evidence": ADAPTERS_ONLY, "claim": "Small state."},
                    {"source_id": "example2025prompts", "evidence": SOFT_PROMPT, "claim": "Few parameters."},
                ]
            }
        },
    ],
    "writer": [
        {
            "final": {
                "title": "Cheap fine-tuning",
                "paragraphs": [
                    {"citations": ["example2025lowrank#p2"], "text": "Merged adapters add no inference cost."},
                    {
                        "citations": ["example2025quantised#p2", "example2025lowrank#p2", "example2025prompts"],
                        "text": "Quantised bases keep optimiser state small, and soft prompts are smaller still.",
                    },
                ],
            }
        }
    ],
}


@pytest.fixture
def workflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """examples/pdf_review.yaml with scripted models, beside the example's PDF library."""
    monkeypatch.setenv("ROLEGRAPH_HOME", str(tmp_path / "home"))
    spec = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    spec["library"] = str(EXAMPLE.parent / spec["library"])
    spec["models"] = {"default": "scripted:planner.yaml", "research": "scripted:researcher.yaml"}
    spec["models"]["write"] = "scripted:writer.yaml"
    spec["roles"] = {"researcher": {"model": "research"}, "writer": {"model": "write"}}
    spec["steps"]["research"]["for_each"]["max_items"] = 1  # one researcher: its script runs in order
    for role, script in SCRIPTS.items():
        (tmp_path / f"{role}.yaml").write_text(yaml.safe_dump(script, sort_keys=False), encoding="utf-8")
    path = tmp_path / "pdf_review.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


async def test_report_cites_pdf_pages(workflow: Path) -> None:
    """Claims quote sentences of the retrieved pages; the report cites [n, p. k] with one reference per document."""
    result = await rolegraph.load(workflow).run({})
    assert result.status == "completed", result.error
    report = result.outputs["report"].read_text(encoding="utf-8")
    assert report == (
        "# Cheap fine-tuning\n"
        "\n"
        "Merged adapters add no inference cost. [1, p. 2]\n"
        "\n"
        "Quantised bases keep optimiser state small, and soft prompts are smaller still. [2, p. 2][1, p. 2][3]\n"
        "\n"
        "## References\n"
        "\n"
        "[1] rolegraph developers (2025). *Low-Rank Adapters: A Short Primer*. rolegraph example library. "
        "`example2025lowrank`\n"
        "[2] rolegraph developers (2025). *Fine-Tuning Quantised Models*. rolegraph example library. "
        "https://doi.org/10.5555/rolegraph.example.2 `example2025quantised`\n"
        "[3] rolegraph developers (2025). *Soft Prompts and Prefixes*. rolegraph example library. "
        "`example2025prompts`\n"
    )
    bibtex = result.outputs["bibliography"].read_text(encoding="utf-8")
    assert "@misc{example2025quantised," in bibtex and "doi = {10.5555/rolegraph.example.2}" in bibtex
    assert "#p" not in bibtex


async def test_a_misquote_of_a_page_is_refused(workflow: Path) -> None:
    """Evidence must be text of the cited page: a sentence from another page of the same PDF is rejected."""
    script = yaml.safe_load((workflow.parent / "researcher.yaml").read_text())
    wrong = {"final": {"claims": [{"source_id": "example2025lowrank#p1", "evidence": MERGED, "claim": "Wrong page."}]}}
    (workflow.parent / "researcher.yaml").write_text(yaml.safe_dump(script[:-1] + [wrong] * 5, sort_keys=False))
    result = await rolegraph.load(workflow).run({})
    assert result.status == "failed"
    assert result.error is not None and "example2025lowrank#p1" in result.error, result.error
