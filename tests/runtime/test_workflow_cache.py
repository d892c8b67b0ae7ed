"""Workflows with the model-call cache on: a second run answered from the cache, and how the cache is switched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import rolegraph
from eval_projects import GOOD, NOTES, THIN, WORKFLOW
from projects import write_library, write_script
from rolegraph.runtime.result import RunResult


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    write_library(folder, NOTES)
    write_script(folder, "model", GOOD)
    (folder / "review.yaml").write_text(WORKFLOW)
    return folder


def chats(result: RunResult) -> list[dict[str, object]]:
    return [span.attributes for span in result.trace.walk() if span.kind == "chat"]


class TestCachedRuns:
    async def test_a_second_run_is_answered_from_the_cache(self, project: Path, tmp_path: Path) -> None:
        """Run twice with the cache on, the script changed in between: the second run makes no model call,
        writes the same report, spends no tokens, and its summary counts the calls and tokens saved."""
        wf, home = rolegraph.load(project / "review.yaml"), tmp_path / "home"
        first = await wf.run(model="scripted:model.yaml", cache=True, home=home)
        assert first.status == "completed" and first.cache is not None and first.cache.hits == 0
        write_script(project, "model", THIN)  # a model call now would answer differently
        second = await wf.run(model="scripted:model.yaml", cache=True, home=home)
        assert second.status == "completed"
        assert second.outputs["report"].read_text() == first.outputs["report"].read_text()
        assert second.step_outputs == first.step_outputs
        assert [c.get("rolegraph.cached") for c in chats(second)] == [True] * len(chats(first))
        assert second.usage.total_tokens == 0
        assert second.cache is not None
        assert (second.cache.hits, second.cache.input_tokens, second.cache.output_tokens) == (
            len(chats(first)),
            first.usage.input_tokens,
            first.usage.output_tokens,
        )
        summary = json.loads(second.folder.summary.read_text())
        assert summary["cache"] == {**second.cache.model_dump(), "cost_usd": 0.0}

    async def test_the_cache_is_off_unless_asked_for(self, project: Path, tmp_path: Path) -> None:
        """Without `cache` (and without settings.cache) no cache file is made and every call is made."""
        wf, home = rolegraph.load(project / "review.yaml"), tmp_path / "home"
        for _ in range(2):
            result = await wf.run(model="scripted:model.yaml", home=home)
            assert result.cache is None and not any(c.get("rolegraph.cached") for c in chats(result))
        assert not (home / "cache.sqlite").exists()

    async def test_settings_turn_it_on_and_a_model_entry_or_the_caller_off(self, project: Path, tmp_path: Path) -> None:
        """`settings.cache: true` answers the second run from the cache; `cache=False` overrides it; a model
        entry's `cache: false` keeps that model's calls out of it."""
        text = WORKFLOW + "models:\n  default: {model: 'scripted:model.yaml'}\nsettings: {cache: true}\n"
        (project / "cached.yaml").write_text(text)
        wf, home = rolegraph.load(project / "cached.yaml"), tmp_path / "home"
        await wf.run(home=home)
        refused = await wf.run(home=home, cache=False)
        assert refused.cache is None and not any(c.get("rolegraph.cached") for c in chats(refused))
        cached = await wf.run(home=home)
        assert cached.cache is not None and cached.cache.hits == len(chats(cached)) > 0
        own = text.replace("'scripted:model.yaml'}", "'scripted:model.yaml', cache: false}")
        (project / "cached.yaml").write_text(own)
        result = await rolegraph.load(project / "cached.yaml").run(home=home)
        assert result.cache is not None and result.cache.hits == 0
        assert not any(c.get("rolegraph.cached") for c in chats(result))


PLAN_LOCAL = """\
rolegraph: 1
name: plan_local
models:
  default: {model: local, max_tokens: 160}
steps:
  plan: {role: planner, task: "Write 2 short research questions about LoRA."}
settings: {cache: true}
"""


@pytest.mark.local_model
class TestOnTheEmbeddedModel:
    async def test_the_second_run_makes_no_call_to_the_embedded_model(self, tmp_path: Path) -> None:
        """On SmolLM2 (its default seed makes a call reproducible, so cacheable): the second run's every call is
        answered by the cache, with the same plan, and saves exactly the tokens the first run spent."""
        path = tmp_path / "plan.yaml"
        path.write_text(PLAN_LOCAL)
        wf, home = rolegraph.load(path), tmp_path / "home"
        first = await wf.run(home=home)
        second = await wf.run(home=home)
        assert first.status == second.status == "completed"
        assert second.step_outputs == first.step_outputs
        assert [c.get("rolegraph.cached") for c in chats(second)] == [True] * len(chats(first))
        assert second.cache is not None and second.usage.total_tokens == 0
        assert (second.cache.input_tokens, second.cache.output_tokens) == (
            first.usage.input_tokens,
            first.usage.output_tokens,
        )
