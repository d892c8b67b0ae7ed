"""Scripted projects for the viewer tests, with parallel branches and untrusted content, and recording their runs.

The demo workflow plans, researches two questions in parallel (`research_a` and
`research_b`, each with its own scripted model and a slow custom tool, so the
branches overlap in time and take visible time), then writes. A second workflow
records a run whose trace holds HTML and script payloads, as a web page could.

`record_lineage` records the runs a user compares: a review loop whose critic asks
for a revision twice (its route fires once, then its ``max_times`` blocks it), stopped
by its budget and resumed; an identical replay of it; and a replay that diverges
because the writer's task changed since. `record_skipped` records a run whose `for_each` step went on
without a failed item (``on_item_error: skip``). `record_eval` records an eval of the demo
workflow through ``rolegraph eval``, which leaves its report in the eval's folder.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

import rolegraph
from projects import write_library, write_script
from rolegraph.cli import app
from rolegraph.durability.replay import ReplayReport, replay
from rolegraph.durability.resume import resume
from rolegraph.runtime.result import RunResult
from rolegraph.workflows.spec import Budget

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


def record(workflow: Path, home: Path, status: str = "completed", budget: Budget | None = None) -> RunResult:
    """Run a workflow to its end under `home`, in a thread of its own (callers may be inside an event loop)."""
    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(asyncio.run, rolegraph.load(workflow).run(home=home, budget=budget)).result()
    assert result.status == status, result.error
    return result


def record_variant(folder: Path, home: Path) -> RunResult:
    """The demo again, but its first researcher searches other words and the writer words the report otherwise."""
    demo, _, _ = write_project(folder)
    write_script(
        folder,
        "research_a",
        researcher(
            "parameter-efficient fine-tuning",
            "hu2021lora",
            "LoRA freezes the pretrained weights and injects trainable low-rank matrices into each layer.",
            "LoRA keeps the model frozen.",
            "Search the library for parameter-efficient methods.",
            0.2,
        ),
    )
    report = WRITER[0]["final"]
    paragraphs = [
        {"citations": ["hu2021lora"], "text": "LoRA keeps the pretrained model frozen and trains low-rank matrices."},
        report["paragraphs"][1],
    ]
    write_script(folder, "writer", [{**WRITER[0], "final": {**report, "paragraphs": paragraphs}}])
    return record(demo, home)


LOOP_CLAIM = {"source_id": "hu2021lora", "evidence": NOTES["hu2021lora"].split(". ")[1] + ".", "claim": "Few."}
LOOP_SCRIPTS: dict[str, list[dict[str, Any]]] = {
    "loop_planner": PLANNER,
    "loop_researcher": [
        step
        for round_ in (1, 2, 3)
        for step in (
            {"tool": "library_search", "args": {"query": f"low-rank round {round_}"}, "thought": f"round {round_}"},
            {"final": {"claims": [LOOP_CLAIM]}, "thought": "one claim"},
        )
    ],
    "loop_critic": [
        {"final": {"verdict": "revise", "issues": ["too thin"]}, "thought": "again"},
        {"final": {"verdict": "revise", "issues": ["still thin"]}, "thought": "again"},
    ],
    "loop_writer": [
        {
            "final": {
                "title": "LoRA, reviewed twice",
                "paragraphs": [
                    {"citations": ["hu2021lora"], "text": "LoRA trains a tiny share of the weights."},
                    {"citations": ["hu2021lora"], "text": "The update merges after training."},
                ],
            },
            "thought": "Write from the one finding.",
        }
    ],
}
LOOP = """\
rolegraph: 1
name: revise_loop
library: library
models:
  default: scripted:loop_planner.yaml
  research: scripted:loop_researcher.yaml
  review: scripted:loop_critic.yaml
  write: scripted:loop_writer.yaml
roles:
  researcher: {model: research}
  critic: {model: review}
  writer: {model: write}
steps:
  plan: {role: planner, task: "Plan a review of LoRA."}
  research: {role: researcher, depends_on: [plan], task: "Research {{ steps.plan.questions[0] }}"}
  review:
    role: critic
    depends_on: [research]
    task: "Review the findings."
    routes:
      - {when: "output.verdict == 'revise'", goto: research, max_times: 1}
  write: {role: writer, depends_on: [review, research], task: "Write the review."}
outputs:
  report: {path: report.md, render: report, from: write}
"""


def record_lineage(folder: Path, home: Path) -> tuple[RunResult, ReplayReport, ReplayReport]:
    """The loop run (stopped by its budget, then resumed), an identical replay, a diverged replay."""
    write_library(folder, NOTES)
    for name, script in LOOP_SCRIPTS.items():
        write_script(folder, name, script)
    workflow = folder / "loop.yaml"
    workflow.write_text(LOOP)
    stopped = record(workflow, home, status="budget_exceeded", budget=Budget(max_iterations=2))

    def in_thread(coroutine: Any) -> Any:
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, coroutine).result()

    resumed = in_thread(resume(stopped.run_dir, budget=Budget(max_iterations=100)))
    assert resumed.status == "completed", resumed.error
    same = in_thread(replay(resumed.run_dir))
    assert same.status == "identical", same.divergence
    workflow.write_text(LOOP.replace("Write the review.", "Write the review in French."))
    changed = in_thread(replay(resumed.run_dir))
    assert changed.status == "diverged"
    return resumed, same, changed


SCREEN_CLAIM = {"source_id": "hu2021lora", "evidence": LOOP_CLAIM["evidence"], "claim": "Few parameters."}
SCREEN_SCRIPT = [
    {"tool": "library_search", "args": {"query": "LoRA"}, "thought": "Search LoRA."},
    {"final": {"claims": [SCREEN_CLAIM]}, "thought": "One claim."},
    *[{"text": "I would rather not say."}] * 3,  # the second item: never a valid answer, so it fails
    {"tool": "library_search", "args": {"query": "adapters"}, "thought": "Search adapters."},
    {"final": {"claims": []}, "thought": "Nothing to claim."},
]
SCREEN = """\
rolegraph: 1
name: screening
library: library
inputs:
  topics: {type: list, default: [LoRA, prompt tuning, adapters]}
models: {default: "scripted:screen.yaml"}
roles:
  researcher: {max_steps: 1}
steps:
  screen:
    role: researcher
    for_each: {items: inputs.topics, as: topic, max_concurrency: 1, on_item_error: skip}
    task: "Screen the library for {{ topic }}."
"""
"""One item at a time, so the script's answers go to the items in order: the second item fails and is skipped."""


def record_skipped(folder: Path, home: Path) -> RunResult:
    """A screening run whose `for_each` step skipped its second item (`on_item_error: skip`), and completed."""
    write_library(folder, NOTES)
    write_script(folder, "screen", SCREEN_SCRIPT)
    workflow = folder / "screening.yaml"
    workflow.write_text(SCREEN)
    result = record(workflow, home)
    assert [s["index"] for s in result.steps["screen"].skipped_items] == [1], result.steps["screen"]
    return result


EVALSET = """\
rolegraph_eval: 1
name: lora_questions
questions:
  - id: lora_basics
    gold_sources: [hu2021lora, dettmers2023qlora]
    must_include: [few parameters, one GPU]
"""


def record_eval(workflow: Path, home: Path) -> str:
    """Run ``rolegraph eval`` on the demo workflow with two repeats; the eval's id."""
    evalset = workflow.parent / "questions.yaml"
    evalset.write_text(EVALSET)
    arguments = ["eval", str(workflow), str(evalset), "--repeat", "2", "--json"]
    with ThreadPoolExecutor(1) as pool:  # its own thread: the caller may be inside an event loop (Playwright's)
        result = pool.submit(CliRunner().invoke, app, arguments, env={"ROLEGRAPH_HOME": str(home)}).result()
    assert result.exit_code == 0, result.output
    [folder] = (home / "evals").iterdir()
    return folder.name
