"""The README is code: its commands and examples must stay true."""

from __future__ import annotations

import re
from pathlib import Path

from rolegraph.models.scripted import load_script
from rolegraph.workflows.loader import parse_spec

README = Path(__file__).resolve().parent.parent / "README.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.DOTALL)


class TestReadme:
    def test_first_commands(self) -> None:
        """The README opens with the two commands: the main job, then the tests."""
        first = _blocks("bash")[0].strip().splitlines()
        assert first == ["uv run rolegraph run examples/literature_review.yaml", "uv run pytest"]

    def test_ci_runs_the_readme_test_command(self) -> None:
        """.ci/run runs exactly the README's test command."""
        ci = (README.parent / ".ci" / "run").read_text().splitlines()
        assert "uv run pytest" in ci

    def test_workflow_examples_are_valid(self, tmp_path: Path) -> None:
        """Every complete workflow in the README loads without a problem."""
        workflows = [b for b in _blocks("yaml") if b.startswith("rolegraph: 1")]
        assert workflows, "the README should show a complete workflow"
        for block in workflows:
            spec = parse_spec(block, tmp_path / "readme.yaml")
            assert spec.steps

    def test_scripted_model_example_loads(self, tmp_path: Path) -> None:
        """The scripted-model file shown in the README is a valid script."""
        [block] = [b for b in _blocks("yaml") if b.startswith("- {tool:")]
        path = tmp_path / "script.yaml"
        path.write_text(block)
        script = load_script(path)
        assert [bool(c.tool_calls) for c in script] == [True, False, False]
