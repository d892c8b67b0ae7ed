"""settings.privacy: local_only — hosted models and web tools are load errors at their line; so is a hosted --model."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import rolegraph
from projects import isolated_home, write_script
from rolegraph.errors import SpecError

HOSTED = """
rolegraph: 1
name: wf
models:
  default: openai:gpt-4o-mini
  judge: {model: 'hf:org/judge', provider: together}
  near: 'openai-compatible:m@http://127.0.0.1:8080/v1'
  far: 'openai-compatible:m@https://gateway.example.com/v1'
roles:
  scout:
    instructions: Look things up.
    output: {notes: string}
    tools: [library_search, web_search]
steps:
  a: {role: scout, task: t}
  b: {tool: fetch_url, args: {url: 'https://example.com'}}
library: library
settings: {privacy: local_only}
"""

LOCAL = """
rolegraph: 1
name: wf
models:
  default: 'scripted:model.yaml'
  ollama: 'ollama:qwen2.5:7b'
  server: 'openai-compatible:m@http://localhost:8080/v1'
  tgi: {model: 'hf:org/m', base_url: 'http://127.0.0.1:9000'}
roles:
  scout:
    instructions: Answer.
    output: {notes: string}
steps:
  a: {role: scout, task: t}
settings: {privacy: local_only}
"""


def write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "library").mkdir(exist_ok=True)
    path = folder / "wf.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def problems_of(path: Path, **kwargs: str) -> list[tuple[str, str, str]]:
    with pytest.raises(SpecError) as info:
        rolegraph.load(path, **kwargs)  # type: ignore[arg-type]
    return [(p.location().removeprefix(f"{path}:"), p.path, p.message) for p in info.value.problems]


class TestLoad:
    def test_every_hosted_model_and_web_tool_at_its_line(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """openai:, hf:, a compatible server off the machine and web tools are refused each at its place;
        a loopback server and the library tool are not."""
        monkeypatch.delenv("OLLAMA_HOST", raising=False)
        path = write(tmp_path, HOSTED)
        found = problems_of(path)
        assert [(where, field) for where, field, _ in found] == [
            ("4:12", "models.default"),
            ("5:18", "models.judge.model"),
            ("7:8", "models.far"),
            ("12:29", "roles.scout.tools[1]"),
            ("15:13", "steps.b.tool"),
        ]
        assert found[0][2] == (
            "settings.privacy is local_only, so model 'openai:gpt-4o-mini' cannot be used: it sends the "
            "workflow's content to OpenAI's API (api.openai.com); use 'local', 'llamacpp:<file.gguf>', or a "
            "server on this machine ('ollama:<model>' with Ollama on 127.0.0.1, "
            "'openai-compatible:<model>@http://127.0.0.1:<port>/v1')"
        )
        assert "to Hugging Face's inference providers" in found[1][2]
        assert "to https://gateway.example.com/v1;" in found[2][2]
        assert found[3][2] == (
            "settings.privacy is local_only, so tool 'web_search' cannot be used: it sends requests off this "
            "machine; remove it (library_search and read_document stay on this machine)"
        )
        assert "tool 'fetch_url' cannot be used" in found[4][2]

    def test_the_switch_off_loads_the_same_file(self, tmp_path: Path) -> None:
        """Without local_only the same models and tools load: the refusals come from the switch alone."""
        path = write(tmp_path, HOSTED.replace("settings: {privacy: local_only}", "settings: {privacy: any}"))
        assert rolegraph.load(path).spec.settings.privacy == "any"

    def test_forced_from_python(self, tmp_path: Path) -> None:
        """load(privacy='local_only') applies the rule to a file that does not ask for it, saying where it came from."""
        path = write(tmp_path, HOSTED.replace("settings: {privacy: local_only}", ""))
        found = problems_of(path, privacy="local_only")
        assert len(found) == 5
        assert found[0][2].startswith("privacy is local_only (--privacy), so model 'openai:gpt-4o-mini'")

    def test_local_models_load(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Scripted, Ollama on its default address, and servers on localhost/127.0.0.1 are local."""
        monkeypatch.delenv("OLLAMA_HOST", raising=False)
        workflow = rolegraph.load(write(tmp_path, LOCAL))
        assert workflow.spec.settings.privacy == "local_only"

    def test_ollama_elsewhere_is_hosted(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """OLLAMA_HOST on another machine makes ollama: hosted."""
        monkeypatch.setenv("OLLAMA_HOST", "http://10.1.2.3:11434")
        assert [f for _, f, _ in problems_of(write(tmp_path, LOCAL))] == ["models.ollama"]


class TestRun:
    async def test_local_workflow_runs(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A local_only workflow on a scripted model runs to completion."""
        isolated_home(tmp_path, monkeypatch)
        path = write(tmp_path / "p", LOCAL)
        write_script(path.parent, "model", [{"final": {"notes": "done"}}])
        result = await rolegraph.load(path).run()
        assert (result.status, result.steps["a"].output) == ("completed", {"notes": "done"})

    async def test_hosted_model_override_is_refused_before_anything_is_written(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """run(model='openai:...') on a local_only workflow is a SpecError naming the model; no run folder."""
        home = isolated_home(tmp_path, monkeypatch)
        path = write(tmp_path / "p", LOCAL)
        with pytest.raises(SpecError) as info:
            await rolegraph.load(path).run(model="openai:gpt-4o-mini")
        (problem,) = info.value.problems
        assert (problem.file, problem.path) == (path, "settings.privacy")
        assert problem.message.startswith(
            "--model / model=: settings.privacy is local_only, so model 'openai:gpt-4o-mini' cannot be used"
        )
        assert not (home / "runs").exists() or not any((home / "runs").iterdir())

    async def test_local_model_override_runs(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A local model override is allowed under local_only."""
        isolated_home(tmp_path, monkeypatch)
        path = write(tmp_path / "p", LOCAL)
        write_script(path.parent, "other", [{"final": {"notes": "other"}}])
        result = await rolegraph.load(path).run(model="scripted:other.yaml")
        assert result.steps["a"].output == {"notes": "other"}
