"""The README is code: its commands and examples must stay true."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import rolegraph
from rolegraph.models.scripted import load_script
from rolegraph.workflows.loader import read_spec

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
        """Every complete workflow in the README loads without a problem or a warning (beside the README's
        Python modules)."""
        workflows = [b for b in _blocks("yaml") if b.startswith("rolegraph: 1")]
        assert workflows, "the README should show a complete workflow"
        _write_modules(tmp_path)
        for block in workflows:
            read = read_spec(block, tmp_path / "readme.yaml")
            assert read.spec.steps
            assert read.warnings == []

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


VALIDATE_FILES = {
    "my_tools.py": "def glossary(term: str) -> str:\n    return term\n",
    "bad.yaml": (
        "rolegraph: 1\nname: mistakes\nmodels: {default: 'opneai:gpt-4o-mini'}\n"
        "roles:\n  scout: {instructions: Look up., output: {notes: string}, tools: [my_tools.glossary]}\n"
        "steps:\n  plan: {role: planner, task: plan}\n"
        "  each:\n    role: scout\n    task: '{{ q }}'\n    depends_on: [plan]\n"
        "    for_each: {items: '{{ steps.plan.questions }}', as: q}\n"
        "    routes: [{when: 'output | length == 0', goto: each}]\n"
    ),
    "private.yaml": (
        "rolegraph: 1\nname: private\nsettings: {privacy: local_only}\n"
        "models: {default: local, careful: 'openai:gpt-4o-mini'}\n"
        "roles:\n  scout: {instructions: Look up., output: {notes: string}, tools: [web_search]}\n"
        "steps:\n  find: {role: scout, task: find}\n"
    ),
    "loop.yaml": (
        "rolegraph: 1\nname: wf\nsteps:\n  draft: {role: writer, task: Write it.}\n  review:\n    role: critic\n"
        '    task: "Review {{ steps.draft.title }}"\n    depends_on: [draft]\n'
        "    routes: [{when: \"output.verdict == 'revise'\", goto: draft, max_times: 2}]\n"
    ),
}


class TestValidateExamples:
    def test_validate_output_is_what_the_command_prints(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Each `rolegraph validate` session shown in the README is what the command prints for its file."""
        from typer.testing import CliRunner

        from rolegraph.cli import app

        for name, text in VALIDATE_FILES.items():
            (tmp_path / name).write_text(text)
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("COLUMNS", "1000")
        sessions = [b for b in _blocks("console") if b.startswith("$ rolegraph validate ")]
        assert len(sessions) == 3
        for session in sessions:
            command, *shown = session.strip().splitlines()
            result = CliRunner().invoke(app, command.removeprefix("$ rolegraph ").split())
            assert (result.stderr + result.stdout).splitlines() == shown


class TestCommandTable:
    def test_every_command_is_in_the_table(self) -> None:
        """The README's command table has a row for every command the CLI has (subcommands by their full name)."""
        from typer.main import get_command

        from rolegraph.cli import app

        def names(command: object, prefix: str) -> list[str]:
            found = []
            for name, sub in getattr(command, "commands", {}).items():
                subcommands = names(sub, f"{prefix} {name}")
                found += subcommands or [f"{prefix} {name}"]  # a group is listed by its commands
            return found

        text = README.read_text()
        table = text[text.index("## Command line") :]
        rows = [line.split("`")[1] for line in table.splitlines() if line.startswith("| `rolegraph")]
        listed = {" ".join(w for w in row.split() if re.fullmatch(r"[a-z][a-z-]*", w)) for row in rows}
        wanted = [*names(get_command(app), "rolegraph"), "rolegraph runs", "rolegraph trace"]
        missing = [n for n in wanted if n not in listed and n != "rolegraph trace show"]  # shown as `trace RUN`
        assert missing == []
        assert "rolegraph --version" in [r.split(" [")[0] for r in rows]


class TestDemoBlock:
    def test_demo_block_is_the_stored_demo_page(self) -> None:
        """The README's demo block is docs/demo.md, which `python -m benchmarks.demo` writes from a real run."""
        from benchmarks.demo import STORED, readme_block

        block = readme_block(README.read_text())
        assert block.startswith("The report, exactly as"), "run `uv run python -m benchmarks.demo` to fill the block"
        assert block == STORED.read_text()


class TestScreenshots:
    def test_every_image_is_a_viewer_test_screenshot(self) -> None:
        """Every image the README shows is in docs/images and written there by a viewer test (a `screenshot`
        call that keeps `docs`), so `ROLEGRAPH_VIEWER_SCREENSHOTS=1 uv run pytest tests/viewer` regenerates it;
        docs/images holds nothing the README does not show."""
        shown = set(re.findall(r"!\[[^\]]*\]\(docs/images/([\w.-]+)\)", README.read_text()))
        tests = "".join(path.read_text() for path in (README.parent / "tests" / "viewer").glob("test_*.py"))
        written = {f"viewer-{name}.png" for name in re.findall(r'screenshot\(page, tmp_path, "([\w-]+)"\)', tests)}
        assert shown and shown <= written
        assert {path.name for path in (README.parent / "docs" / "images").iterdir()} == shown
