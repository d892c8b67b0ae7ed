"""Scenario 8, the model-call cache: what a hit costs, beside the calls it replaces.

One agent turn (a planner answering at once, no tools, no tracing sinks) is timed
three ways on the same request:

- ``scripted``: the call goes to a `ScriptedModel` (an instant model: the agent's own
  work for one call, the floor of any real call);
- ``cached``: the same turn answered by the cache (a warmed `RunCache` on a file in a
  temporary home): the agent's work plus the key, the SQLite lookup, the hit count
  and parsing the stored answer back;
- ``embedded``: the same turn on the embedded SmolLM2 (`local`), at ``full`` and
  ``quick`` size only (not at ``smoke``).

Besides, the request digest an agent takes of the turn (which a durable run takes for
its journal whether or not the cache is on), and the cache's own operations: ``lookup``
(key + read + hit count) and ``keep`` (redaction + write + size check) per call.
Figures: median µs per turn or operation.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._common import Level, arepeat_ns, repeat_ns
from rolegraph.agents.agent import Agent
from rolegraph.agents.roles import BUILTIN_ROLES
from rolegraph.models.cache import CallCache, RunCache
from rolegraph.models.model import Model, ModelSettings
from rolegraph.testing import ScriptedModel, final
from rolegraph.traces.redact import Redactor

REPEATS: dict[Level, int] = {"smoke": 20, "quick": 300, "full": 2000}
EMBEDDED_REPEATS: dict[Level, int] = {"smoke": 0, "quick": 3, "full": 5}
TASK = "Plan a short review of parameter-efficient fine-tuning."
ANSWER = {"questions": ["What do adapters change?", "How do low-rank updates merge?"]}
SETTINGS = ModelSettings(temperature=0, max_tokens=96)


def _agent(model: Model, cache: RunCache | None) -> Agent:
    return Agent(BUILTIN_ROLES["planner"], model, settings=SETTINGS, cache=cache)


async def _turn(model: Model, cache: RunCache | None) -> dict[str, Any]:
    return (await _agent(model, cache).run(TASK)).output


def _scripted() -> ScriptedModel:
    return ScriptedModel([final(ANSWER, "plan")])


async def _operations(cache: RunCache, repeats: int) -> dict[str, float]:
    """Median µs of the cache's own lookup and keep, on a request digest taken as an agent takes it."""
    model = _scripted()
    agent = _agent(model, cache)
    # The digest the agent hands the cache (and its journal), of the turn's own messages.
    schema = agent._final_schema([])

    def first_digest() -> object:  # an agent's first call: its conversation started, no part's digest kept
        agent._kept_digests.clear()
        return agent._chat_request(agent._conversation(TASK), None, schema, SETTINGS)

    digest = repeat_ns(first_digest, repeats=repeats)
    request = agent._chat_request(agent._conversation(TASK), None, schema, SETTINGS)
    completion = final(ANSWER, "plan")
    cache.keep(model, request, SETTINGS, completion)
    lookup = repeat_ns(lambda: cache.lookup(model, request, SETTINGS), repeats=repeats)
    keep = repeat_ns(lambda: cache.keep(model, request, SETTINGS, completion), repeats=repeats)
    return {"digest_us": digest / 1000, "lookup_us": lookup / 1000, "keep_us": keep / 1000}


async def _embedded(repeats: int) -> dict[str, Any] | None:
    """Median ms of the same turn on the embedded model, and its tokens (None: not measured at this size)."""
    if repeats == 0:
        return None
    from rolegraph.models.local import LlamaCppModel, local_model_path

    model = LlamaCppModel(local_model_path(), name="local")
    try:
        result = await _agent(model, None).run(TASK)
        ns = await arepeat_ns(lambda: _turn(model, None), repeats=repeats, warmup=0)
    finally:
        await model.aclose()
    return {"ms_per_turn": ns / 1e6, "tokens": result.usage.total_tokens}


async def _run(level: Level) -> dict[str, Any]:
    repeats = REPEATS[level]
    with tempfile.TemporaryDirectory(prefix="rolegraph-bench-cache-") as tmp:
        cache = RunCache(CallCache(Path(tmp) / "cache.sqlite"), Redactor())
        scripted_ns = await arepeat_ns(lambda: _turn(_scripted(), None), repeats=repeats)
        await _turn(_scripted(), cache)  # kept: every later turn is a hit
        cached_ns = await arepeat_ns(lambda: _turn(_scripted(), cache), repeats=repeats)
        operations = await _operations(cache, repeats)
        hits = cache.tally.hits
        cache.close()
    embedded = await _embedded(EMBEDDED_REPEATS[level])
    figures: dict[str, Any] = {
        "repeats": repeats,
        "hits": hits,
        "scripted_us_per_turn": scripted_ns / 1000,
        "cached_us_per_turn": cached_ns / 1000,
        **operations,
        "embedded": embedded,
    }
    if embedded is not None:
        figures["embedded_over_cached"] = embedded["ms_per_turn"] * 1000 / figures["cached_us_per_turn"]
    return figures


def run(level: Level = "quick") -> dict[str, Any]:
    """Time one agent turn scripted, answered by the cache, and on the embedded model; and the cache's operations."""
    return asyncio.run(_run(level))
