"""Scenario 6, the embedded model: the local provider's tokens/s against raw llama-cpp-python.

Both sides run the embedded SmolLM2 GGUF with the same context size, batch and
attention kernels (`LlamaCppModel`'s: flash attention over a bfloat16 KV cache),
on the same prompt (the provider's own chat rendering of the same messages),
with the same sampling settings, seed and max tokens:

- ``provider``: ``await LlamaCppModel.complete(messages, ...)``, the whole path
  an agent takes (message rendering, grammar lookup, the worker thread and its
  locks, the prefix-cache bookkeeping, parsing the step back into a `Completion`);
- ``raw``: ``Llama.create_completion(prompt, ...)`` on a second `Llama` of the
  same file, called directly. Before each call its prefix cache is cut back to
  what the provider reuses of a repeated prompt (whole 64-token chunks, never the
  last one), so both sides evaluate the same prompt tokens: the same work.

Two cases, compared like with like: ``unconstrained`` (free text, no grammar) and
``constrained`` (an output schema: the provider decodes under the grammar it builds
from the schema, and raw llama-cpp-python gets that same grammar). Repetitions
interleave the two sides, alternating which goes first. Figures: median wall
time per call, tokens generated, tokens/s, and the framework's share of the time
per generated token.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from benchmarks._common import Level, median_of
from rolegraph.models.batched_decoder import CHUNK, KV_TYPE  # the provider's batch and KV cache: raw gets the same
from rolegraph.models.local import (
    DEFAULT_REPEAT_PENALTY,
    DEFAULT_TOP_P,
    LlamaCppModel,
    _grammar,  # the provider's own grammar for a schema, so both sides decode under the same one
    local_model_path,
)
from rolegraph.models.messages import Message
from rolegraph.models.model import ModelSettings

MAX_TOKENS: dict[Level, int] = {"smoke": 8, "quick": 48, "full": 160}
REPEATS: dict[Level, int] = {"smoke": 1, "quick": 3, "full": 7}
N_CTX = 2048
SEED = 1234
TEMPERATURE = 0.2
MESSAGES = [
    Message.system("You are a careful research assistant. Answer in plain English."),
    Message.user("Explain what a transformer language model is and why attention matters, in a few sentences."),
]
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"summary": {"type": "string"}, "confidence": {"type": "number"}},
    "required": ["summary", "confidence"],
}


def _settings(max_tokens: int) -> ModelSettings:
    return ModelSettings(temperature=TEMPERATURE, top_p=DEFAULT_TOP_P, seed=SEED, max_tokens=max_tokens)


def _prompt(model: LlamaCppModel, constrained: bool) -> tuple[str, bool, Any, list[str]]:
    """The prompt text, whether to add BOS, grammar and stop strings the provider would use."""
    from rolegraph.models._tool_emulation import render_messages, step_schema

    chat = render_messages(MESSAGES, [], constrained)
    formatted = model._weights.formatter(messages=chat)  # the provider's chat template
    schema = step_schema([], SCHEMA) if constrained else None
    grammar = _grammar(json.dumps(schema)) if schema is not None else None
    stop = formatted.stop if isinstance(formatted.stop, list) else [formatted.stop] if formatted.stop else []
    return formatted.prompt, not formatted.added_special, grammar, stop


async def _run(level: Level) -> dict[str, Any]:
    path = local_model_path()
    model = LlamaCppModel(path, n_ctx=N_CTX)
    # Imported after the provider loaded llama.cpp (with its OpenMP wait policy), which both sides then share.
    from llama_cpp import Llama

    raw = Llama(
        model_path=str(path), n_ctx=N_CTX, n_batch=CHUNK, flash_attn=True, type_k=KV_TYPE, type_v=KV_TYPE, verbose=False
    )
    max_tokens = MAX_TOKENS[level]
    settings = _settings(max_tokens)
    cases: dict[str, Any] = {}
    for case in ("unconstrained", "constrained"):
        constrained = case == "constrained"
        prompt, add_bos, grammar, stop = _prompt(model, constrained)
        schema = SCHEMA if constrained else None

        async def provider_call(schema: dict[str, Any] | None = schema) -> tuple[float, int]:
            start = time.perf_counter()
            completion = await model.complete(MESSAGES, output_schema=schema, settings=settings)
            return time.perf_counter() - start, completion.usage.output_tokens

        def raw_call(
            prompt: str = prompt, add_bos: bool = add_bos, grammar: Any = grammar, stop: list[str] = stop
        ) -> tuple[float, int]:
            start = time.perf_counter()
            tokens = raw.tokenize(prompt.encode("utf-8"), add_bos=add_bos, special=True)
            # Reuse of the cached prompt as the provider's (see the module docstring).
            raw.n_tokens = min(raw.n_tokens, (len(tokens) - 1) // CHUNK * CHUNK)
            response: Any = raw.create_completion(
                prompt=tokens,
                grammar=grammar,
                stop=stop,
                temperature=TEMPERATURE,
                top_p=DEFAULT_TOP_P,
                seed=SEED,
                max_tokens=max_tokens,
                repeat_penalty=DEFAULT_REPEAT_PENALTY,
            )
            return time.perf_counter() - start, int(response["usage"]["completion_tokens"])

        await provider_call()  # warm-up: loads nothing new, but fills caches and the grammar's lru_cache
        raw_call()
        samples: dict[str, list[tuple[float, int]]] = {"provider": [], "raw": []}
        for repeat in range(REPEATS[level]):
            if repeat % 2:
                samples["raw"].append(raw_call())
                samples["provider"].append(await provider_call())
            else:
                samples["provider"].append(await provider_call())
                samples["raw"].append(raw_call())
        prompt_tokens = raw.tokenize(prompt.encode("utf-8"), add_bos=add_bos, special=True)
        row: dict[str, Any] = {"prompt_tokens": len(prompt_tokens)}
        for side, values in samples.items():
            seconds = median_of([s for s, _ in values])
            tokens = median_of([t for _, t in values])
            row[side] = {
                "seconds_per_call": seconds,
                "tokens": tokens,
                "tokens_per_s": median_of([t / s for s, t in values]),
            }
        provider_s_per_token = 1 / row["provider"]["tokens_per_s"]
        raw_s_per_token = 1 / row["raw"]["tokens_per_s"]
        row["ratio"] = row["provider"]["tokens_per_s"] / row["raw"]["tokens_per_s"]
        # Signed: negative means the provider came out faster (noise, or less work).
        row["framework_share_pct"] = 100 * (provider_s_per_token - raw_s_per_token) / provider_s_per_token
        cases[case] = row
    await model.aclose()
    raw.close()
    return {"max_tokens": max_tokens, "repeats": REPEATS[level], "model": path.name, "cases": cases}


def run(level: Level = "quick") -> dict[str, Any]:
    """Compare the provider's tokens/s with raw llama-cpp-python's, unconstrained and constrained."""
    return asyncio.run(_run(level))
