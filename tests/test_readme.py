"""The README is code: its commands and examples must stay true."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

import rolegraph
from rolegraph.models.scripted import load_script
from rolegraph.workflows.loader import parse_spec

README = Path(__file__).resolve().parent.parent / "README.md"
LIBRARY = README.parent / "examples" / "library"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.DOTALL)


def _write_modules(folder: Path) -> None:
    """Write each Python block of the README that starts with ``# <module>.py`` as that module into `folder`."""
    for block in _blocks("python"):
        if match := re.match(r"# (\w+\.py)\b", block):
            (folder / match.group(1)).write_text(block)


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
        """Every complete workflow in the README loads without a problem (beside the README's Python modules)."""
        workflows = [b for b in _blocks("yaml") if b.startswith("rolegraph: 1")]
        assert workflows, "the README should show a complete workflow"
        _write_modules(tmp_path)
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

    async def test_tool_and_function_step_example_runs(self, tmp_path: Path) -> None:
        """The tool and function step example runs (a scripted writer): searches, its function's checked output."""
        [block] = [b for b in _blocks("yaml") if b.startswith("rolegraph: 1\nname: title_check")]
        _write_modules(tmp_path)
        (tmp_path / "library").symlink_to(LIBRARY)
        (tmp_path / "wf.yaml").write_text(block)
        writer = [{"final": {"title": "LoRA", "paragraphs": [{"citations": ["hu2021lora"], "text": "LoRA."}] * 2}}]
        (tmp_path / "writer.yaml").write_text(yaml.safe_dump(writer))
        result = await rolegraph.load(tmp_path / "wf.yaml").run(model="scripted:writer.yaml", home=tmp_path / "home")
        assert result.status == "completed", result.error
        stats = result.step_outputs["stats"]
        assert stats["best"] == "hu2021lora" and stats["titles"][0].startswith("LoRA")
        assert len(result.step_outputs["more"]) == 2
        assert {s.id for s in result.sources} >= {"hu2021lora", "dettmers2023qlora", "houlsby2019adapters"}
