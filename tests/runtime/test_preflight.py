"""Preflight: what a run would trip on (tools, library, model files) is a load error at file:line:col."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from projects import write_library
from rolegraph.errors import SpecError
from rolegraph.runtime.compiled import CompiledWorkflow

HEAD = "rolegraph: 1\nname: wf\nmodels: {default: 'scripted:model.yaml'}\n"
NOTES = {"alpha2020": "Alpha inserts small adapter layers into a frozen network."}
TOOLS = '''
from rolegraph.tools.tool import tool


@tool
def glossary(term: str) -> str:
    """Look a term up."""
    return term


@tool(name="glossary")
def other(term: str) -> str:
    """Another tool of the same name."""
    return term
'''


def write(folder: Path, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "my_tools.py").write_text(TOOLS)
    path = folder / "wf.yaml"
    path.write_text(HEAD + textwrap.dedent(body).lstrip("\n"))
    return path


def problems_of(path: Path, *, machine: bool = False) -> list[tuple[str, str, str]]:
    with pytest.raises(SpecError) as info:
        CompiledWorkflow.load(path, machine=machine)
    return [(p.location().removeprefix(f"{path}:"), p.path, p.message) for p in info.value.problems]


SCOUT = """
roles:
  scout:
    instructions: Look terms up.
    output: {notes: string}
    tools: [TOOLS]
steps:
  a: {role: scout, task: t}
"""


class TestRoleTools:
    def test_module_dot_attribute_gets_the_colon_hint(self, tmp_path: Path) -> None:
        """`my_tools.glossary` (a dot where the colon goes) is refused at its place, with the fix."""
        path = write(tmp_path, SCOUT.replace("TOOLS", "my_tools.glossary"))
        assert problems_of(path) == [
            (
                "8:13",
                "roles.scout.tools[0]",
                "unknown tool 'my_tools.glossary'; did you mean 'my_tools:glossary'? A tool is a built-in "
                "(library_search, read_document, fetch_url, web_search, browser, arxiv_search, openalex_search, "
                "crossref_search, semantic_scholar_search, paper_search) or an import path such as "
                "'my_tools:word_count'",
            )
        ]

    def test_import_path_that_resolves_loads(self, tmp_path: Path) -> None:
        """`my_tools:glossary` beside the workflow file resolves: the workflow loads."""
        workflow = CompiledWorkflow.load(write(tmp_path, SCOUT.replace("TOOLS", "my_tools:glossary")))
        assert workflow.tool_refs() == ["my_tools:glossary"]

    def test_missing_module_and_attribute(self, tmp_path: Path) -> None:
        """A module that does not exist and an attribute the module lacks are each refused at their place."""
        path = write(tmp_path, SCOUT.replace("TOOLS", "nowhere:thing, my_tools:glosary"))
        found = problems_of(path)
        assert [(where, field) for where, field, _ in found] == [
            ("8:13", "roles.scout.tools[0]"),
            ("8:28", "roles.scout.tools[1]"),
        ]
        assert "no module named 'nowhere'" in found[0][2]
        assert "has no attribute 'glosary'; did you mean 'glossary'?" in found[1][2]

    def test_two_tools_of_one_name(self, tmp_path: Path) -> None:
        """Two references that build tools of the same name are refused at the second."""
        path = write(tmp_path, SCOUT.replace("TOOLS", "my_tools:glossary, my_tools:other"))
        ((where, field, message),) = problems_of(path)
        assert (where, field) == ("8:32", "roles.scout.tools[1]")
        assert "are both named 'glossary'" in message

    def test_builtin_role_needs_a_library(self, tmp_path: Path) -> None:
        """The researcher's own library tools need `library:`: said at the step that uses the role."""
        path = write(tmp_path, "steps:\n  r: {role: researcher, task: t}\n")
        found = problems_of(path)
        assert [(where, field) for where, field, _ in found] == [("5:13", "steps.r.role"), ("5:13", "steps.r.role")]
        assert "role 'researcher' uses tool 'library_search', which needs a library: set 'library:'" in found[0][2]


class TestLibrary:
    def test_missing_folder(self, tmp_path: Path) -> None:
        """A `library:` folder that does not exist is refused at its line, naming where it was looked for."""
        path = write(tmp_path, "library: papers\nsteps:\n  r: {role: researcher, task: t}\n")
        ((where, field, message),) = problems_of(path)
        assert (where, field) == ("4:10", "library")
        assert f"library folder 'papers' does not exist (looked for {(tmp_path / 'papers').resolve()})" in message

    def test_malformed_note_is_checked_by_validate_only(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A note whose front matter never closes: loading for a run passes, the machine check names the note."""
        monkeypatch.setenv("ROLEGRAPH_HOME", str(tmp_path / "home"))  # where the library's index is kept
        write_library(tmp_path, NOTES)
        (tmp_path / "library" / "broken.md").write_text("---\nkey: broken\ntitle: Broken\n\nno closing line\n")
        path = write(tmp_path, "library: library\nsteps:\n  r: {role: researcher, task: t}\n")
        (tmp_path / "model.yaml").write_text("[]\n")
        assert CompiledWorkflow.load(path).spec.library == "library"
        found = problems_of(path, machine=True)
        assert [(where, field) for where, field, _ in found] == [("4:10", "library")]
        assert f"library {tmp_path / 'library' / 'broken.md'}" in found[0][2]


class TestModels:
    def test_missing_model_file(self, tmp_path: Path) -> None:
        """A `scripted:` model whose file is missing: a machine-check error at the model string."""
        path = write(tmp_path, "steps:\n  a: {role: writer, task: t}\n")
        assert CompiledWorkflow.load(path).spec.models["default"] == "scripted:model.yaml"
        ((where, field, message),) = problems_of(path, machine=True)
        assert (where, field) == ("3:19", "models.default")
        assert message.startswith("model file 'model.yaml' does not exist")

    def test_missing_lora_adapter(self, tmp_path: Path) -> None:
        """A model entry whose `lora:` file is missing: a machine-check error at that field, naming the place."""
        path = tmp_path / "wf.yaml"
        path.write_text(
            "rolegraph: 1\nname: wf\nmodels:\n  default: {model: local, lora: style.gguf}\n"
            "steps:\n  a: {role: writer, task: t}\n"
        )
        found = problems_of(path, machine=True)
        assert [(where, field) for where, field, _ in found] == [("4:33", "models.default.lora")]
        assert found[0][2] == (
            f"LoRA adapter 'style.gguf' does not exist (looked for {(tmp_path / 'style.gguf').resolve()}); "
            "give its path relative to the workflow file"
        )

    def test_present_model_file(self, tmp_path: Path) -> None:
        """With the model file beside the workflow, the machine check passes."""
        path = write(tmp_path, "steps:\n  a: {role: writer, task: t}\n")
        (tmp_path / "model.yaml").write_text("[]\n")
        assert CompiledWorkflow.load(path, machine=True).warnings == []
