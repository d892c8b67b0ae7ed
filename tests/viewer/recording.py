"""Scripted projects for the viewer tests, with parallel branches and untrusted content, and recording their runs.

The demo workflow plans, researches two questions in parallel (`research_a` and
`research_b`, each with its own scripted model and a slow custom tool, so the
branches overlap in time and take visible time), then writes. A second workflow
records a run whose trace holds HTML and script payloads, as a web page could.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import rolegraph
from projects import write_library, write_script
from rolegraph.runtime.result import RunResult

NOTES = {
    "hu2021lora": (
        "LoRA freezes the pretrained weights and injects trainable low-rank matrices into each layer. "
        "It cuts the number of trainable parameters by ten thousand times. The update merges after training."
    ),
    "dettmers2023qlora": (
        "QLoRA backpropagates through a frozen four-bit quantised model into low-rank adapters. "
        "It fine-tunes a 65B model on a single 48GB GPU."
    ),
    "houlsby2019adapters": (
        "Adapter modules add a few trainable parameters per task. The original network stays fixed."
    ),
}

TOOLS = '''
import asyncio

from rolegraph import tool


@tool
async def skim(source_id: str, seconds: float = 0.15) -> str:
    """Skim a document slowly (a stand-in for a slow web tool)."""
    await asyncio.sleep(seconds)
    return f"skimmed {source_id}"
'''

PLANNER = [
    {
        "final": {"questions": ["How does LoRA reduce trainable parameters?", "How does QLoRA save memory?"]},
        "thought": "Two questions: one on the parameter count, one on memory.",
    }
]


def researcher(query: str, key: str, evidence: str, claim: str, thought: str, seconds: float) -> list[dict[str, Any]]:
    return [
        {"tool": "library_search", "args": {"query": query}, "thought": thought},
        {"tool": "skim", "args": {"source_id": key, "seconds": seconds}, "thought": f"Skim {key} before claiming."},
        {"final": {"claims": [{"source_id": key, "evidence": evidence, "claim": claim}]}, "thought": "One claim."},
    ]


WRITER = [
    {
        "final": {
            "title": "Low-rank adaptation",
            "paragraphs": [
                {"citations": ["hu2021lora"], "text": "LoRA trains few parameters."},
                {"citations": ["dettmers2023qlora"], "text": "QLoRA fits large models on one GPU."},
            ],
        },
        "thought": "Write one paragraph per finding.",
    }
]

DEMO = """\
rolegraph: 1
name: lora_review
library: library
models:
  default: scripted:planner.yaml
  ra: scripted:research_a.yaml
  rb: scripted:research_b.yaml
  write: scripted:writer.yaml
roles:
  researcher: {tools: [library_search, read_document, "slow_tools:skim"]}
  writer: {model: write}
steps:
  plan: {role: planner, task: "Plan research on LoRA."}
  research_a: {role: researcher, depends_on: [plan], model: ra, task: "{{ steps.plan.questions[0] }}"}
  research_b: {role: researcher, depends_on: [plan], model: rb, task: "{{ steps.plan.questions[1] }}"}
  write: {role: writer, depends_on: [research_a, research_b], task: "Write the review."}
outputs:
  report: {path: report.md, render: report, from: write}
  sources: {path: sources.json, render: sources}
"""

PAYLOAD_THOUGHT = 'Page said: <img src=x onerror="window.__xss=1"><script>window.__xss=2</script> end.'
PAYLOAD_QUERY = "<b>bold</b> adapters"
UNTRUSTED = """\
rolegraph: 1
name: untrusted
library: library
models: {default: "scripted:untrusted_model.yaml"}
steps:
  research: {role: researcher, task: "Research <script>window.__xss=3</script> adapters."}
"""


BROKEN = """\
rolegraph: 1
name: broken
library: library
models: {default: "scripted:garbage.yaml"}
settings: {fail_fast: false}
steps:
  research: {role: researcher, task: "Research adapters."}
  write: {role: writer, depends_on: [research], task: "Write."}
"""


def write_project(folder: Path) -> tuple[Path, Path, Path]:
    """The demo, untrusted and broken workflows, their library, scripts and tool module; the workflow files."""
    write_library(folder, NOTES)
    (folder / "slow_tools.py").write_text(TOOLS)
    write_script(folder, "planner", PLANNER)
    write_script(
        folder,
        "research_a",
        researcher(
            "low-rank trainable parameters",
            "hu2021lora",
            "It cuts the number of trainable parameters by ten thousand times.",
            "LoRA trains 10,000x fewer parameters.",
            "Search the library for LoRA's parameter savings.",
            0.2,
        ),
    )
    write_script(
        folder,
        "research_b",
        researcher(
            "four-bit quantised memory",
            "dettmers2023qlora",
            "It fine-tunes a 65B model on a single 48GB GPU.",
            "QLoRA fits 65B on one GPU.",
            "Search the library for QLoRA's memory use.",
            0.35,
        ),
    )
    write_script(folder, "writer", WRITER)
    write_script(
        folder,
        "untrusted_model",
        [
            {"tool": "library_search", "args": {"query": PAYLOAD_QUERY}, "thought": PAYLOAD_THOUGHT},
            {"final": {"claims": []}, "thought": "Nothing to claim."},
        ],
    )
    write_script(folder, "garbage", [{"text": "not JSON at all"}] * 5)
    (folder / "review.yaml").write_text(DEMO)
    (folder / "untrusted.yaml").write_text(UNTRUSTED)
    (folder / "broken.yaml").write_text(BROKEN)
    return folder / "review.yaml", folder / "untrusted.yaml", folder / "broken.yaml"


def record(workflow: Path, home: Path, status: str = "completed") -> RunResult:
    """Run a workflow to its end under `home`, in a thread of its own (callers may be inside an event loop)."""
    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(asyncio.run, rolegraph.load(workflow).run(home=home)).result()
    assert result.status == status, result.error
    return result
