"""Every example workflow loads cleanly and every tool it names resolves."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from rolegraph.cli import app
from rolegraph.runtime.executor import resolve_role
from rolegraph.tools.library import Library
from rolegraph.tools.registry import resolve_tools
from rolegraph.workflow import Workflow

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
class TestExamples:
    """examples/*.yaml."""

    def test_validates(self, path: Path) -> None:
        """`rolegraph validate` accepts the example."""
        result = CliRunner().invoke(app, ["validate", str(path)])
        assert result.exit_code == 0, result.output

    async def test_tools_resolve(self, path: Path) -> None:
        """Every tool a role of the example names can be built."""
        workflow = Workflow.load(path)
        spec = workflow.spec
        refs = sorted({ref for step in spec.steps.values() for ref in resolve_role(spec, step.role).tools})
        library = Library.from_dir(path.parent / spec.library) if spec.library else None
        tools = resolve_tools(refs, library=library, search_path=path.parent)
        assert sorted(t.name for t in tools) == refs
        for tool in tools:
            await tool.aclose()


def test_web_example_exists() -> None:
    """The web research example is among those checked."""
    assert "web_research.yaml" in [p.name for p in EXAMPLES]
