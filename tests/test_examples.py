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

    async def test_tools_resolve(self, path: Path, tmp_path: Path) -> None:
        """Every tool a role or a tool step of the example names can be built (over its library, if it has one)."""
        workflow = Workflow.load(path)
        spec = workflow.spec
        refs = sorted(
            {ref for step in spec.steps.values() if step.role for ref in resolve_role(spec, step.role).tools}
            | {step.tool for step in spec.steps.values() if step.tool}
        )
        library = (
            Library.from_dir(path.parent / spec.library, index=tmp_path / "index.sqlite") if spec.library else None
        )
        tools = resolve_tools(refs, library=library, search_path=path.parent)
        assert sorted(t.name for t in tools) == refs
        for tool in tools:
            await tool.aclose()


def test_web_and_pdf_examples_exist() -> None:
    """The web research and PDF library examples are among those checked."""
    assert {"web_research.yaml", "pdf_review.yaml"} <= {p.name for p in EXAMPLES}
