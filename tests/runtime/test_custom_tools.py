"""User tools referenced by import path, and setup errors of a run (before anything is written)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import rolegraph
from rolegraph.errors import ModelNotAvailableError

TOOLS = '''
from rolegraph import tool

@tool
def word_count(text: str) -> int:
    """Count the words in a text."""
    return len(text.split())
'''

SCRIPT = """
- {tool: word_count, args: {text: "one two three"}, thought: count them}
- {final: {count: 3}, thought: the tool said 3}
"""

WORKFLOW = """
rolegraph: 1
name: counting
models: {default: "scripted:script.yaml"}
roles:
  counter:
    instructions: Count words.
    tools: ["my_tools:word_count"]
    output: {count: integer}
steps:
  count: {role: counter, task: "Count the words in: one two three"}
outputs:
  result: {path: count.json, render: json, from: count}
"""


class TestCustomTools:
    async def test_import_path_tool_is_called_and_traced(self, tmp_path: Path) -> None:
        """The tool module next to the workflow is imported, called with the model's arguments, and traced."""
        (tmp_path / "my_tools.py").write_text(TOOLS)
        (tmp_path / "script.yaml").write_text(textwrap.dedent(SCRIPT))
        (tmp_path / "wf.yaml").write_text(WORKFLOW)
        result = await rolegraph.load(tmp_path / "wf.yaml").run(home=tmp_path / "home")
        assert result.status == "completed", result.error
        assert result.step_outputs["count"] == {"count": 3}
        assert result.outputs["result"].read_text().strip() == '{\n  "count": 3\n}'
        [tool_span] = [s for s in result.trace.walk() if s.kind == "execute_tool"]
        assert tool_span.name == "execute_tool word_count"
        assert tool_span.attributes["rolegraph.tool.result"] == "3"
        assert tool_span.attributes["rolegraph.tool.is_error"] is False


class TestSetupErrors:
    async def test_missing_model_leaves_no_run_behind(self, tmp_path: Path) -> None:
        """A model that cannot be loaded is reported before the run folder is made."""
        (tmp_path / "my_tools.py").write_text(TOOLS)
        (tmp_path / "wf.yaml").write_text(WORKFLOW.replace("script.yaml", "missing.yaml"))
        with pytest.raises(ModelNotAvailableError, match=r"missing\.yaml"):
            await rolegraph.load(tmp_path / "wf.yaml").run(home=tmp_path / "home")
        assert not (tmp_path / "home").exists()
