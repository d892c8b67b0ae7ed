"""Scripted projects for the durability tests: a looping multi-step review, and a run that waits to be released."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from projects import write_library, write_script
from rolegraph.layout import RunFolder
from rolegraph.traces.sinks import read_jsonl

NOTES = {
    "alpha2020": "Alpha inserts small adapter layers into a frozen network. The adapters train only a few weights.",
    "beta2021": "Beta writes each weight update as a product of low-rank matrices. The update merges after training.",
}
ALPHA = "The adapters train only a few weights."
BETA = "The update merges after training."


async def run_in_process(path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`rolegraph run PATH --quiet` in a process of its own under `env` (to be killed at a kill point)."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "rolegraph", "run", str(path), "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _research(round_: int) -> list[dict[str, Any]]:
    return [
        {"tool": "library_search", "args": {"query": "adapters"}, "thought": f"round {round_}: adapters"},
        {"final": {"claims": [{"source_id": "alpha2020", "evidence": ALPHA, "claim": f"Cheap ({round_})."}]}},
        {"tool": "library_search", "args": {"query": "low-rank"}, "thought": f"round {round_}: low-rank"},
        {"final": {"claims": [{"source_id": "beta2021", "evidence": BETA, "claim": f"Mergeable ({round_})."}]}},
    ]


SCRIPTS: dict[str, list[dict[str, Any]]] = {
    "planner": [{"final": {"questions": ["What do adapters do?", "What are low-rank updates?"]}, "thought": "plan"}],
    "researcher": _research(1) + _research(2),
    "critic": [
        {"final": {"verdict": "revise", "issues": ["too thin"]}, "thought": "again"},
        {"final": {"verdict": "accept", "issues": []}, "thought": "fine"},
    ],
    "writer": [
        {
            "final": {
                "title": "Adapters",
                "paragraphs": [
                    {"citations": ["alpha2020"], "text": "Adapters are cheap."},
                    {"citations": ["beta2021", "alpha2020"], "text": "Updates merge."},
                ],
            },
            "thought": "write",
        }
    ],
}

LOOP = """\
rolegraph: 1
name: durable
library: library
models:
  default: scripted:planner.yaml
  research: scripted:researcher.yaml
  review: scripted:critic.yaml
  write: scripted:writer.yaml
roles:
  researcher: {model: research}
  critic: {model: review}
  writer: {model: write}
steps:
  plan: {role: planner, task: "Plan a review of adapters."}
  research:
    role: researcher
    depends_on: [plan]
    for_each: {items: steps.plan.questions, as: question, max_concurrency: 1}
    task: "Answer: {{ question }}"
  review:
    role: critic
    depends_on: [research]
    task: "Review {{ steps.research | length }} findings."
    routes:
      - {when: "output.verdict == 'revise'", goto: research, max_times: 1}
  write:
    role: writer
    depends_on: [review, research]
    task: "Write the review."
outputs:
  report: {path: report.md, render: report, from: write}
  sources: {path: sources.json, render: sources}
settings: {max_concurrency: 1}
"""

LOOP_CHATS = 1 + 8 + 2 + 1
"""Model calls of an uninterrupted run of `LOOP`."""
LOOP_TOOLS = 4
"""Tool calls of an uninterrupted run of `LOOP`."""


def write_loop_project(folder: Path, extra: str = "") -> Path:
    """The looping review (plan, research fanned out, review routing back once, write); returns its file."""
    folder.mkdir(parents=True, exist_ok=True)
    write_library(folder, NOTES)
    for role, script in SCRIPTS.items():
        write_script(folder, role, script)
    path = folder / "durable.yaml"
    path.write_text(LOOP + textwrap.dedent(extra))
    return path


WAITING = """\
rolegraph: 1
name: waiting
models:
  default: scripted:planner.yaml
  hold: scripted:waiter.yaml
roles:
  waiter:
    instructions: Wait until released.
    tools: ["slow_tools:wait_here"]
    output: {note: string}
    min_tool_calls: 1
    model: hold
steps:
  plan: {role: planner, task: "Plan."}
  hold: {role: waiter, depends_on: [plan], task: "Hold."}
outputs:
  held: {path: held.json, render: json, from: hold}
"""

SLOW_TOOLS = '''\
"""A tool that waits for the test: it writes `started`, then waits for `release` (or, stubborn, ignores cancels)."""

import asyncio
import os
from pathlib import Path

from rolegraph import tool


@tool
async def wait_here(note: str) -> str:
    """Wait until the test releases the run."""
    folder = Path(os.environ["DURABLE_TEST_DIR"])
    (folder / "started").write_text(note)
    try:
        while not (folder / "release").exists():
            await asyncio.sleep(0.02)
    except asyncio.CancelledError:
        (folder / "cancel_seen").write_text("1")
        while (folder / "stubborn").exists():
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                pass
        raise
    return f"released: {note}"
'''


def write_waiting_project(folder: Path) -> Path:
    """A run whose second step waits in a tool until `folder/release` exists; returns its file."""
    folder.mkdir(parents=True, exist_ok=True)
    write_script(folder, "planner", SCRIPTS["planner"])
    write_script(
        folder,
        "waiter",
        [{"tool": "wait_here", "args": {"note": "x"}, "thought": "wait"}, {"final": {"note": "done"}}],
    )
    (folder / "slow_tools.py").write_text(SLOW_TOOLS)
    path = folder / "waiting.yaml"
    path.write_text(WAITING)
    return path


def outputs_of(run_dir: Path) -> dict[str, Any]:
    """What a run produced, for comparing runs: its output files and every step's output."""
    files = {
        p.name: p.read_text()
        for p in sorted(run_dir.iterdir())
        if p.suffix in (".md", ".json") and p.name != "run.json"
    }
    steps = {step: state["output"] for step, state in RunFolder(run_dir).step_states().items()}
    summary = json.loads((run_dir / "run.json").read_text())
    return {"files": files, "steps": steps, "usage": summary["usage"], "status": summary["status"]}


def trace_lines(run_dir: Path) -> int:
    """How many records the run's trace holds."""
    return len(read_jsonl(run_dir / "trace.jsonl"))


def edit(path: Path, old: str, new: str) -> None:
    """Replace `old` (which must be there) by `new` in a file."""
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new))


def touch(path: Path, text: str = "") -> None:
    """Create `path` (and its folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def wait_until_exists(path: Path, timeout: float = 60.0) -> None:
    """Block until `path` exists (a run reached a known point); fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


EDITED = """\
rolegraph: 1
name: edited
models:
  default: scripted:first.yaml
  second: scripted:second.yaml
roles:
  worker: {instructions: Answer., output: {note: string}, max_steps: 1}
  other: {instructions: Answer., output: {note: string}, model: second, max_steps: 1}
steps:
  first: {role: worker, task: "Describe the first thing."}
  second: {role: other, task: "Describe the second thing."}
settings: {max_concurrency: 1, fail_fast: false}
"""
INVALID = [{"text": "not JSON"}, {"text": "still not JSON"}, {"text": "never JSON"}]
"""Answers that are not the step's output: with one acting step and one repair, the step fails after three."""


def write_edited_project(folder: Path) -> Path:
    """Two independent steps that both fail on the first run (three invalid answers); `second`'s script then
    holds a valid answer, which only a call sent again (not the recorded one replayed) reaches."""
    folder.mkdir(parents=True, exist_ok=True)
    write_script(folder, "first", INVALID)
    write_script(folder, "second", [*INVALID, {"final": {"note": "the second thing, described"}}])
    path = folder / "edited.yaml"
    path.write_text(EDITED)
    return path


def store_as_a_kill_leaves(run_dir: Path, into: Path) -> Path:
    """A copy of the run folder's store as a kill would leave it now (its file and write-ahead log): a live run's
    own connection keeps the store locked, so what it has committed is read from the copy."""
    into.mkdir(parents=True)
    store = RunFolder(run_dir).store
    for suffix in ("", "-wal"):
        source = Path(f"{store}{suffix}")
        if source.exists():
            (into / source.name).write_bytes(source.read_bytes())
    return into
