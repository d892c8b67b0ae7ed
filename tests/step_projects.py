"""A scripted project with tool and function steps: a search, a fan-out of searches, two functions, a writer."""

from __future__ import annotations

import textwrap
from pathlib import Path

from projects import write_library, write_script

NOTES = {
    "alpha2020": "Alpha inserts small adapter layers into a frozen network. The adapters train only a few weights.",
    "beta2021": "Beta writes each weight update as a product of low-rank matrices. The update merges after training.",
    "gamma2022": "Gamma prepends trainable prefix vectors to each layer. Only the prefix is learned.",
}

STEPS = '''\
"""Functions of the steps project: plain Python, no rolegraph import needed."""

import asyncio

from rolegraph.tools.sources import Source
from rolegraph.tools.tool import ToolResult


def count_hits(results: list) -> dict:
    """How many hits each search found, and the best id of each."""
    return {"counts": [len(r["data"]) for r in results], "best": [r["data"][0]["id"] for r in results if r["data"]]}


async def note(text: str) -> ToolResult:
    """A note registered as a source, which later agents may cite."""
    await asyncio.sleep(0)
    source = Source(id="note1", title="A note", text=text)
    return ToolResult(content=text, data={"words": len(text.split())}, sources=[source])


def shout(text: str) -> str:
    """Not a mapping: the output is {"result": ...}."""
    return text.upper()
'''

WORKFLOW = """\
rolegraph: 1
name: steps_demo
library: library
inputs:
  topic: {type: string, default: adapters}
  queries: {type: list, default: [low-rank update, prefix vectors]}
models:
  default: scripted:writer.yaml
steps:
  find:
    tool: library_search
    args: {query: "{{ inputs.topic }}", max_results: 2}
  each:
    tool: library_search
    for_each: {items: inputs.queries, as: query}
    args: {query: "{{ query }}", max_results: 1}
  tally:
    function: my_steps:count_hits
    depends_on: [find, each]
    args: {results: "{{ [steps.find] + steps.each }}"}
    output: {counts: "list[integer]", best: "list[source_id]"}
  remark:
    function: my_steps:note
    args: {text: "A remark about {{ inputs.topic }} written by a function step."}
  loud:
    function: my_steps:shout
    depends_on: [find]
    args: {text: "{{ steps.find.data[0].title }}"}
  write:
    role: writer
    depends_on: [tally, remark]
    task: |
      Write about {{ inputs.topic }}; best papers: {{ steps.tally.best | join(', ') }}; note: {{ steps.remark.sources }}
outputs:
  report: {path: report.md, render: report, from: write}
  sources: {path: sources.json, render: sources}
"""

WRITER = [
    {
        "final": {
            "title": "Adapters",
            "paragraphs": [
                {"citations": ["alpha2020"], "text": "Adapters train few weights."},
                {"citations": ["beta2021", "note1"], "text": "Low-rank updates merge; a note agrees."},
            ],
        },
        "thought": "write",
    }
]


def write_steps_project(folder: Path, workflow: str = WORKFLOW) -> Path:
    """The project (library, functions module, writer script, workflow); returns the workflow file."""
    folder.mkdir(parents=True, exist_ok=True)
    write_library(folder, NOTES)
    (folder / "my_steps.py").write_text(STEPS)
    write_script(folder, "writer", WRITER)
    path = folder / "steps.yaml"
    path.write_text(textwrap.dedent(workflow))
    return path


STEP_CALLS = 1 + 2 + 3 + 1
"""Journal entries of an uninterrupted run: tool steps (1 + 2 items), function steps (3), the writer's model call."""
