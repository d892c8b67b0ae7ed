"""The agent with the model-call cache: a repeated call is answered without the model, and what is never cached."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rolegraph.agents.agent import Agent
from rolegraph.agents.roles import BUILTIN_ROLES
from rolegraph.errors import ModelError
from rolegraph.models.cache import CallCache, RunCache
from rolegraph.models.model import Completion, ModelSettings, Usage
from rolegraph.testing import ScriptedModel, final, tool_call
from rolegraph.tools.sources import Source
from rolegraph.tools.tool import ToolResult, tool
from rolegraph.traces.redact import Redactor
from rolegraph.traces.sinks import MemorySink
from rolegraph.traces.tracer import Tracer

RESEARCHER = BUILTIN_ROLES["researcher"]
EVIDENCE = "The lora method works well on every task."


@tool
async def lookup(query: str) -> ToolResult:
    """Find a paper."""
    return ToolResult(content=f"[lora] {query}", sources=[Source(id="lora", title="LoRA", text=f"Short. {EVIDENCE}")])


def script() -> list[Completion]:
    claims = {"claims": [{"source_id": "lora", "evidence": EVIDENCE, "claim": "It works on every task."}]}
    return [tool_call("lookup", thought="search", query="lora"), final(claims, "found it")]


def run_cache(tmp_path: Path) -> RunCache:
    return RunCache(CallCache(tmp_path / "cache.sqlite"), Redactor())


async def run(model: ScriptedModel, cache: RunCache, **settings: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One agent run; its output and its chat spans' attributes."""
    sink = MemorySink()
    agent = Agent(
        RESEARCHER,
        model,
        [lookup],
        tracer=Tracer("run", sinks=[sink], redactor=Redactor()),
        settings=ModelSettings(**settings),
        cache=cache,
    )
    result = await agent.run("What is LoRA?")
    chats = [r["attributes"] for r in sink.records if r["event"] == "span_end" and r["kind"] == "chat"]
    return result.output, chats


class TestAgentCache:
    async def test_a_second_run_makes_no_model_call(self, tmp_path: Path) -> None:
        """The same task again: every call answered by the cache (0 model calls), the same output, the chat
        spans marked cached with no tokens spent and the tokens they saved."""
        cache = run_cache(tmp_path)
        first_model = ScriptedModel(script())
        first, first_chats = await run(first_model, cache)
        first_model.assert_complete()
        assert [c["rolegraph.cache.kept"] for c in first_chats] == [True, True]
        again = ScriptedModel(script())
        second, chats = await run(again, cache)
        assert again.calls == [] and second == first
        assert [c["rolegraph.cached"] for c in chats] == [True, True]
        assert [c["gen_ai.usage.input_tokens"] + c["gen_ai.usage.output_tokens"] for c in chats] == [0, 0]
        saved = [(c["rolegraph.cached.input_tokens"], c["rolegraph.cached.output_tokens"]) for c in chats]
        spent = [(c["gen_ai.usage.input_tokens"], c["gen_ai.usage.output_tokens"]) for c in first_chats]
        assert saved == spent and all(s > (0, 0) for s in saved)
        assert cache.tally.hits == 2

    async def test_a_sampled_call_is_made_again(self, tmp_path: Path) -> None:
        """At temperature 0.7 without a seed the model is called every run; with a seed, only the first."""
        cache = run_cache(tmp_path)
        for _ in range(2):
            model = ScriptedModel(script())
            await run(model, cache, temperature=0.7)
            assert len(model.calls) == 2
        seeded = [ScriptedModel(script()), ScriptedModel(script())]
        for model in seeded:
            await run(model, cache, temperature=0.7, seed=1)
        assert [len(m.calls) for m in seeded] == [2, 0]

    async def test_an_error_is_not_cached(self, tmp_path: Path) -> None:
        """A call that failed leaves nothing in the cache: the next run's same call goes to the model."""
        cache = run_cache(tmp_path)
        with pytest.raises(ModelError):
            await run(ScriptedModel([tool_call("lookup", query="lora"), ModelError("HTTP 500")]), cache)
        model = ScriptedModel(script())
        await run(model, cache)
        assert [call.index for call in model.calls] == [2]  # the first call was kept; the failed one is made now
        assert cache.store.stats().entries == 2

    async def test_a_call_cut_short_is_not_cached(self, tmp_path: Path) -> None:
        """An answer that hit max_tokens (finish_reason length) is not kept: the same call is made again."""
        cut = Completion(text='{"thought": "cut', finish_reason="length", usage=Usage(input_tokens=9, output_tokens=9))
        cache = run_cache(tmp_path)
        _, chats = await run(ScriptedModel([cut, *script()]), cache)
        assert [c["rolegraph.cache.kept"] for c in chats] == [False, True, True]
        again = ScriptedModel([cut, *script()])
        _, chats = await run(again, cache)
        assert len(again.calls) == 1 and again.calls[0].index == 1  # the cut call, made again
        assert [c.get("rolegraph.cached", False) for c in chats] == [False, True, True]
