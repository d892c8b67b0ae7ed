"""A small workflow project for the trace tests: two scripted steps, a quick tool and one that stalls."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PROBE_TOOLS = '''
import asyncio
from pathlib import Path

from rolegraph import tool


@tool
def lookup(query: str) -> str:
    """Look a query up in the notes."""
    return f"notes about {query}"


@tool
async def stall(query: str) -> str:
    """Signal that it started (a file beside this module), then never return: the crash tests kill it."""
    (Path(__file__).parent / "stalled").write_text(query)
    await asyncio.Event().wait()
    return ""
'''

PROBE_WORKFLOW = """
rolegraph: 1
name: probe
inputs:
  topic: {type: string}
models: {default: "scripted:script.yaml"}
roles:
  analyst:
    instructions: Look things up, then summarise.
    tools: ["probe_tools:lookup", "probe_tools:stall"]
    output: {summary: string}
steps:
  first: {role: analyst, task: "Study {{ inputs.topic }}"}
  second: {role: analyst, depends_on: [first], task: "Check {{ steps.first.summary }}"}
"""


def probe_project(folder: Path, script: list[dict[str, Any]], settings: str = "") -> Path:
    """A two-step workflow (tools `lookup` and `stall` from a module beside it) on a scripted model; its path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "probe_tools.py").write_text(PROBE_TOOLS)
    (folder / "script.yaml").write_text(json.dumps(script))
    path = folder / "probe.yaml"
    path.write_text(PROBE_WORKFLOW + (f"settings: {settings}\n" if settings else ""))
    return path


def probe_script(topic: str) -> list[dict[str, Any]]:
    """A script for both steps of the probe workflow: each looks `topic` up, then answers with it."""
    return [
        {"tool": "lookup", "args": {"query": topic}, "thought": f"search {topic}"},
        {"final": {"summary": f"about {topic}"}, "thought": "done"},
        {"tool": "lookup", "args": {"query": topic}, "thought": f"search {topic}"},
        {"final": {"summary": f"checked {topic}"}, "thought": "done"},
    ]
