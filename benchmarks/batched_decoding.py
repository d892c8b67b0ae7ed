"""Scenario 9, parallel branches on the embedded model: the provider's batched decoding against raw batched decoding.

Issue 14 item 5: concurrent calls to the embedded model share ``llama_decode``
batches (`rolegraph.models.batched_decoder`). This scenario measures, for 1 to 4
concurrent calls (one distinct research question each), on the same work:

- ``engine``: ``asyncio.gather`` of k ``LlamaCppModel.complete`` calls, decoded
  together by the provider (their prompts evaluated first, in shared ubatches);
- ``engine serial``: the same k calls through the provider, awaited one after
  another (the single-call path);
- ``previous``: the same k calls with ``Llama.create_completion`` one after
  another, on weights of their own with the provider's settings: the provider's
  path before batching, which serialised calls;
- ``raw batched``: llama-cpp-python's low-level API, one context with
  ``n_seq_max = 4`` and a KV stream per sequence (``kv_unified = false``), the k
  prompts evaluated in shared batches, then one ``llama_decode`` per step holding
  the next token of every sequence still generating. Each sequence has its own
  sampler chain, seeded, built like ``Llama.create_completion``'s (repeat
  penalty, top-k 40, top-p, min-p 0.05, temperature, seeded draw), and stops at
  the number of tokens the engine's call generated, so all sides do the same work;
- ``raw serial``: the same low-level code with one sequence at a time.
- ``raw batched, provider's KV cache``: raw batched on the provider's attention
  kernels. llama.cpp's default context (the raw sides) runs flash attention over
  an F16 KV cache; the provider runs it over a bfloat16 cache (`KV_TYPE`),
  because with an F16 cache the CPU kernel sums a sequence's attention in another
  order once it holds 64 tokens of the sequence, or a single token of a single
  sequence with 512 KV cells in view, which would make a call's output depend on
  its neighbours (`rolegraph.models.batched_decoder`). This side shows how much
  of the gap to raw batching is that choice rather than the batching.

Also the issue's own curve: decoding throughput alone (prompts already
evaluated, a fixed number of steps, one token per sequence per step) for 1 to 4
sequences; whether each raw sequence's tokens in a batch are identical to its
tokens decoded alone; and whether each engine call's completion, decoded beside
the others, is identical to the same call made alone.

Every side uses the same thread count (`THREADS`, for single tokens and for
batches alike), so the curve shows batching, not extra threads. Repetitions
interleave the sides and report medians; the load average before and after is
part of the figures, since the machine is shared.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks._common import Level, median_of
from rolegraph.models.batched_decoder import CHUNK, KV_TYPE
from rolegraph.models.local import DEFAULT_REPEAT_PENALTY, DEFAULT_TOP_P, LlamaCppModel, local_model_path
from rolegraph.models.messages import Message
from rolegraph.models.model import Completion, ModelSettings

MAX_TOKENS: dict[Level, int] = {"smoke": 4, "quick": 16, "full": 96}
DECODE_STEPS: dict[Level, int] = {"smoke": 4, "quick": 16, "full": 96}
REPEATS: dict[Level, int] = {"smoke": 1, "quick": 2, "full": 5}
COUNTS: dict[Level, tuple[int, ...]] = {"smoke": (1, 2), "quick": (1, 2, 4), "full": (1, 2, 3, 4)}
"""Quick: five sides per repetition on a machine shared by several jobs (load 10 on 2 cores) must fit in
about a quarter of an hour; `full` has the whole 1-4 curve."""
N_SEQ_MAX = 4
N_CTX = 1024
"""Per sequence. Differs from the other model scenario's, so this one loads its own weights with `THREADS`."""
N_BATCH = 256
THREADS = 2
"""The issue measured with 2 threads; both sides use it for single tokens and batches alike."""
SEED = 1234
SIDES = ("engine", "engine_serial", "previous", "raw_batched", "raw_serial", "raw_batched_kv", "decode")
TEMPERATURE = 0.2
SYSTEM = Message.system("You are a careful research assistant. Answer in plain English.")
QUESTIONS = (
    "Explain what a transformer language model is and why attention matters.",
    "Summarise how low-rank adaptation fine-tunes a large model cheaply.",
    "Describe what retrieval-augmented generation adds to a language model.",
    "Outline the trade-offs of quantising a neural network to four bits.",
)


@dataclass
class _Sequence:
    """One call being decoded: its prompt, its own sampler, where it is."""

    prompt: list[int]
    budget: int
    sampler: Any
    position: int = 0
    logits_at: int = -1
    generated: int = 0


class RawDecoder:
    """llama-cpp-python's low-level API: one context of `N_SEQ_MAX` sequences over already loaded weights."""

    def __init__(self, llama: Any, *, provider_kv: bool = False) -> None:
        import llama_cpp
        from llama_cpp import _internals

        self._llama_cpp: Any = llama_cpp  # llama-cpp-python's low-level API carries few annotations
        self._internals: Any = _internals
        self.llama = llama
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = N_CTX * N_SEQ_MAX
        params.n_batch = params.n_ubatch = N_BATCH
        params.n_seq_max = N_SEQ_MAX
        params.kv_unified = False  # a KV stream per sequence: its attention never sees the others' cells
        params.n_threads = params.n_threads_batch = THREADS
        params.no_perf = True
        if provider_kv:  # the provider's kernels: flash attention (the default resolves to it) over a bf16 cache
            params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
            params.type_k = params.type_v = KV_TYPE
        self.context: Any = self._internals.LlamaContext(model=llama._model, params=params, verbose=False)
        self.batch: Any = self._internals.LlamaBatch(n_tokens=N_BATCH, embd=0, n_seq_max=1, verbose=False)

    def sampler(self, seed: int) -> Any:
        """A sampler chain like `Llama.create_completion`'s for these settings, seeded."""
        chain = self._internals.LlamaSampler()
        chain.add_penalties(self.llama.n_vocab(), self.llama.last_n_tokens_size, DEFAULT_REPEAT_PENALTY, 0.0, 0.0)
        chain.add_top_k(40)
        chain.add_typical(1.0, 1)
        chain.add_top_p(DEFAULT_TOP_P, 1)
        chain.add_min_p(0.05, 1)
        chain.add_temp(TEMPERATURE)
        chain.add_dist(seed)
        return chain

    def _add(self, token: int, position: int, seq_id: int, logits: bool) -> int:
        batch = self.batch.batch
        index = int(batch.n_tokens)
        batch.token[index] = token
        batch.pos[index] = position
        batch.seq_id[index][0] = seq_id
        batch.n_seq_id[index] = 1
        batch.logits[index] = logits
        batch.n_tokens = index + 1
        return index

    def _evaluate_prompts(self, sequences: Sequence[_Sequence]) -> None:
        """Evaluate every prompt, packed into shared batches of `N_BATCH` tokens."""
        self.batch.reset()
        for seq_id, seq in enumerate(sequences):
            for position, token in enumerate(seq.prompt):
                if self.batch.n_tokens() == N_BATCH:
                    self.context.decode(self.batch)
                    self.batch.reset()
                last = position == len(seq.prompt) - 1
                index = self._add(token, position, seq_id, last)
                if last:
                    seq.logits_at, seq.position = index, len(seq.prompt)
        self.context.decode(self.batch)

    def decode(self, sequences: Sequence[_Sequence], *, ignore_eos: bool = False) -> list[list[int]]:
        """Decode `sequences` together: one `llama_decode` per step, one token of each sequence still going."""
        self._llama_cpp.llama_memory_clear(self.context.memory, True)
        self._evaluate_prompts(sequences)
        vocab = self.llama._model.vocab
        outputs: list[list[int]] = [[] for _ in sequences]
        going = [i for i, seq in enumerate(sequences) if seq.budget > 0]
        while going:
            self.batch.reset()
            still = []
            for seq_id in going:
                seq = sequences[seq_id]
                token = seq.sampler.sample(self.context, seq.logits_at)
                outputs[seq_id].append(token)
                seq.generated += 1
                ended = not ignore_eos and self._llama_cpp.llama_vocab_is_eog(vocab, token)
                if seq.generated < seq.budget and not ended:
                    seq.logits_at = self._add(token, seq.position, seq_id, True)
                    seq.position += 1
                    still.append(seq_id)
            going = still
            if going:
                self.context.decode(self.batch)
        return outputs

    def close(self) -> None:
        """Free the context and the batch (the weights stay with their `Llama`)."""
        self.batch.close()
        self.context.close()


def _prompt_tokens(model: LlamaCppModel, question: str) -> list[int]:
    """The provider's own chat rendering of (system, question), tokenized as it does."""
    from rolegraph.models._tool_emulation import render_messages

    weights: Any = model._weights  # the provider's formatter and tokenizer, so both sides see the same prompt
    prompt = weights.formatter(messages=render_messages([SYSTEM, Message.user(question)], [], False))
    tokens: list[int] = weights.llama.tokenize(
        prompt.prompt.encode("utf-8"), add_bos=not prompt.added_special, special=True
    )
    return tokens


def _settings(max_tokens: int) -> ModelSettings:
    return ModelSettings(temperature=TEMPERATURE, top_p=DEFAULT_TOP_P, seed=SEED, max_tokens=max_tokens, timeout=3600)


async def _engine(model: LlamaCppModel, k: int, max_tokens: int, *, together: bool) -> tuple[float, list[Completion]]:
    """Wall time of k calls through the provider, concurrent or one after another, and their completions."""
    calls = [([SYSTEM, Message.user(q)], _settings(max_tokens)) for q in QUESTIONS[:k]]
    start = time.perf_counter()
    if together:
        completions = list(await asyncio.gather(*(model.complete(m, settings=s) for m, s in calls)))
    else:
        completions = [await model.complete(m, settings=s) for m, s in calls]
    return time.perf_counter() - start, completions


def _previous(llama: Any, prompts: list[list[int]], max_tokens: int) -> float:
    """Wall time of the calls made as the provider made them before batching: `create_completion`, in turn."""
    start = time.perf_counter()
    for tokens in prompts:
        llama.n_tokens = 0  # a fresh evaluation, like the provider's for a new prompt
        llama.create_completion(
            prompt=tokens,
            temperature=TEMPERATURE,
            top_p=DEFAULT_TOP_P,
            seed=SEED,
            max_tokens=max_tokens,
            repeat_penalty=DEFAULT_REPEAT_PENALTY,
        )
    return time.perf_counter() - start


def _raw(raw: RawDecoder, prompts: list[list[int]], budgets: list[int], batched: bool) -> float:
    """Wall time of the same calls on the low-level API: all in shared batches, or one after another."""
    start = time.perf_counter()
    groups = [list(range(len(prompts)))] if batched else [[i] for i in range(len(prompts))]
    for group in groups:
        raw.decode([_Sequence(prompts[i], budgets[i], raw.sampler(SEED + i)) for i in group], ignore_eos=True)
    return time.perf_counter() - start


def _decode_curve(raw: RawDecoder, prompts: list[list[int]], k: int, steps: int) -> float:
    """Tokens/s of decoding alone: k sequences, prompts already evaluated, `steps` tokens each."""
    sequences = [_Sequence(prompts[i], steps, raw.sampler(SEED + i)) for i in range(k)]
    raw._llama_cpp.llama_memory_clear(raw.context.memory, True)
    raw._evaluate_prompts(sequences)
    start = time.perf_counter()
    for _ in range(steps):
        raw.batch.reset()
        for seq_id, seq in enumerate(sequences):
            token = seq.sampler.sample(raw.context, seq.logits_at)
            seq.logits_at = raw._add(token, seq.position, seq_id, True)
            seq.position += 1
        raw.context.decode(raw.batch)
    return k * steps / (time.perf_counter() - start)


def _row(k: int, budgets: list[int], medians: dict[str, float], same_raw: bool, same_engine: bool) -> dict[str, Any]:
    tokens = sum(budgets)
    return {
        "calls": k,
        "tokens": tokens,
        "engine_s": medians["engine"],
        "engine_serial_s": medians["engine_serial"],
        "previous_s": medians["previous"],
        "raw_batched_s": medians["raw_batched"],
        "raw_serial_s": medians["raw_serial"],
        "raw_batched_kv_s": medians["raw_batched_kv"],
        "decode_tokens_per_s": medians["decode"],
        "engine_tokens_per_s": tokens / medians["engine"],
        "raw_batched_tokens_per_s": tokens / medians["raw_batched"],
        # The engine's share of raw batched throughput (the target: at least 0.9).
        "engine_share_of_batched": medians["raw_batched"] / medians["engine"],
        # The same share against raw batching on the provider's attention kernels (its bf16 KV cache).
        "engine_share_of_batched_kv": medians["raw_batched_kv"] / medians["engine"],
        # Below 1: the concurrent calls take that share of the time the same calls take one after another.
        "engine_over_previous": medians["engine"] / medians["previous"],
        "engine_over_engine_serial": medians["engine"] / medians["engine_serial"],
        "batched_over_serial": medians["raw_batched"] / medians["raw_serial"],
        "identical_to_alone": same_raw,
        "engine_identical_to_alone": same_engine,
    }


async def _run(level: Level) -> dict[str, Any]:
    load_before = os.getloadavg()
    model = LlamaCppModel(local_model_path(), n_ctx=N_CTX, n_threads=THREADS)
    # Imported after the provider loaded llama.cpp (with its OpenMP wait policy), which every side then shares.
    from llama_cpp import Llama

    llama = model._weights.llama  # the provider's own weights: the raw context shares them
    previous = Llama(model_path=str(local_model_path()), n_ctx=N_CTX, n_batch=CHUNK, n_threads=THREADS, verbose=False)
    raw = RawDecoder(llama)
    raw_kv = RawDecoder(llama, provider_kv=True)
    prompts = [_prompt_tokens(model, q) for q in QUESTIONS]
    max_tokens, steps = MAX_TOKENS[level], DECODE_STEPS[level]
    alone = [raw.decode([_Sequence(prompts[i], steps, raw.sampler(SEED + i))], ignore_eos=True)[0] for i in range(4)]
    await _engine(model, 1, max_tokens, together=True)  # warm-up
    rows = []
    for k in COUNTS[level]:
        samples: dict[str, list[float]] = {side: [] for side in SIDES}
        budgets: list[int] = []
        same_engine = True
        for repeat in range(REPEATS[level]):
            seconds, together = await _engine(model, k, max_tokens, together=True)
            samples["engine"].append(seconds)
            seconds, one_by_one = await _engine(model, k, max_tokens, together=False)
            samples["engine_serial"].append(seconds)
            same_engine &= [(c.text, c.usage) for c in together] == [(c.text, c.usage) for c in one_by_one]
            budgets = [c.usage.output_tokens for c in together]
            samples["previous"].append(_previous(previous, prompts[:k], max_tokens))
            order = (True, False) if repeat % 2 else (False, True)
            for batched in order:
                samples["raw_batched" if batched else "raw_serial"].append(_raw(raw, prompts[:k], budgets, batched))
            samples["raw_batched_kv"].append(_raw(raw_kv, prompts[:k], budgets, True))
            samples["decode"].append(_decode_curve(raw, prompts, k, steps))
        together_raw = raw.decode(
            [_Sequence(prompts[i], steps, raw.sampler(SEED + i)) for i in range(k)], ignore_eos=True
        )
        medians = {side: median_of(values) for side, values in samples.items()}
        rows.append(_row(k, budgets, medians, together_raw == alone[:k], same_engine))
        print(f"[batched_decoding] {k} concurrent calls measured", file=sys.stderr, flush=True)
    raw.close()
    raw_kv.close()
    previous.close()
    await model.aclose()
    single = rows[0]["decode_tokens_per_s"]
    for row in rows:
        row["decode_speedup"] = row["decode_tokens_per_s"] / single
    return {
        "model": local_model_path().name,
        "threads": THREADS,
        "max_tokens": max_tokens,
        "decode_steps": steps,
        "repeats": REPEATS[level],
        "load_average_before": round(load_before[0], 2),
        "load_average_after": round(os.getloadavg()[0], 2),
        "rows": rows,
    }


def run(level: Level = "quick") -> dict[str, Any]:
    """Measure batched decoding (raw) against the engine's serial path for 1 to 4 concurrent calls."""
    return asyncio.run(_run(level))


# --- report ----------------------------------------------------------------------------------------------------

TARGET = "embedded model, 4 concurrent calls: engine's share of raw batched throughput"
SERIAL_LIMIT = 0.75
"""Issue 14: 4 concurrent calls take at most this share of the time the same calls take one after another."""


def target(fig: dict[str, Any] | None) -> dict[str, Any]:
    """The issue's target for batched decoding, measured on the largest number of concurrent calls."""
    row = {"target": TARGET, "limit": "≥ 90%", "unit": "%", "measured": None, "met": None}
    if fig is None or "engine_share_of_batched" not in fig["rows"][-1]:
        return {**row, "note": "not measured since the provider decodes calls together"}
    last = fig["rows"][-1]
    share = 100 * last["engine_share_of_batched"]
    curve = ", ".join(f"{r['decode_tokens_per_s']:.0f}" for r in fig["rows"])
    ratio = last["engine_over_previous"]
    same = all(r["engine_identical_to_alone"] for r in fig["rows"])
    same_kv = last.get("engine_share_of_batched_kv")
    kernels = (
        f"; against raw batching on the provider's attention kernels (flash attention over a bfloat16 KV cache, "
        f"which keeps each call's output independent of its neighbours and of how its prompt is cut) "
        f"{100 * same_kv:.0f}%"
        if same_kv is not None
        else ""
    )
    note = (
        f"at {last['calls']} calls the provider decodes them together in {ratio:.2f}x the time the previous "
        f"provider took one after another (limit {SERIAL_LIMIT:g}: {'met' if ratio <= SERIAL_LIMIT else 'not met'}), "
        f"{last['engine_over_engine_serial']:.2f}x its own calls one after another; each call's completion "
        f"{'identical' if same else 'NOT identical'} to the same call alone. Decoding alone, 1 to {last['calls']} "
        f"sequences: {curve} tokens/s in total. Load average {fig['load_average_before']:g} → "
        f"{fig['load_average_after']:g}{kernels}"
    )
    return {**row, "measured": share, "met": share >= 90 and ratio <= SERIAL_LIMIT, "note": note}


def markdown(fig: dict[str, Any]) -> list[str]:
    """The section of RESULTS.md: per number of concurrent calls, the provider against raw serial and batched."""

    def num(value: float, digits: int = 2) -> str:
        return f"{value:.{digits}f}"

    def yes(flag: bool) -> str:
        return "yes" if flag else "no"

    header = [
        "calls", "tokens", "engine s", "engine serial s", "previous s", "raw serial s", "raw batched s",
        "engine share of raw batched", "raw batched, provider's KV cache s", "engine share of it",
        "engine / previous", "batched / serial", "decoding alone tokens/s",
        "speed-up", "raw: same tokens as alone", "engine: same completions as alone",
    ]  # fmt: skip
    rows = [
        [str(r["calls"]), str(r["tokens"]), num(r["engine_s"]), num(r["engine_serial_s"]), num(r["previous_s"]),
         num(r["raw_serial_s"]), num(r["raw_batched_s"]), f"{100 * r['engine_share_of_batched']:.0f}%",
         num(r["raw_batched_kv_s"]) if "raw_batched_kv_s" in r else "—",
         f"{100 * r['engine_share_of_batched_kv']:.0f}%" if "engine_share_of_batched_kv" in r else "—",
         num(r["engine_over_previous"]), num(r["batched_over_serial"]), num(r["decode_tokens_per_s"], 1),
         num(r["decode_speedup"]), yes(r["identical_to_alone"]), yes(r["engine_identical_to_alone"])]
        for r in fig["rows"]
    ]  # fmt: skip
    return [
        f"## 9. Parallel branches on the embedded model ({fig['model']}, {fig['threads']} threads, at most "
        f"{fig['max_tokens']} tokens per call, median of {fig['repeats']} interleaved repetitions)",
        "",
        "k distinct questions at once: *engine* is `asyncio.gather` of k `LlamaCppModel.complete` calls, which the",
        "provider decodes together (`models/batched_decoder.py`: prompts in shared ubatches, then one `llama_decode`",
        "per step); *engine serial* the same calls awaited one after",
        "another; *previous* the same calls with `Llama.create_completion` one after another (the provider before",
        "batching). *Raw serial* and *raw batched* decode the same prompts and the same number of tokens per call",
        "with llama-cpp-python's low-level API, one sequence at a time or all in one `llama_decode` per step",
        "(`n_seq_max` 4, a KV stream and a seeded sampler chain per sequence, prompts packed into shared batches),",
        "on llama.cpp's default context (flash attention over an F16 KV cache); *raw batched, provider's KV cache*",
        "is raw batched on the provider's attention kernels (flash attention over a bfloat16 KV cache: with an F16",
        "cache the CPU kernel sums in another order for 64 tokens of a sequence or more, or for one token of one",
        "sequence with 512 KV cells in view, which would make a call's output depend on its neighbours and on how",
        "its prompt was cut).",
        f"*Decoding alone*: {fig['decode_steps']} steps of one token per sequence, prompts already evaluated.",
        "*Same as alone*: each sequence (raw) or call (engine) decoded beside the others gives exactly what it",
        f"gives by itself. Load average (1 min) {fig['load_average_before']:g} before, "
        f"{fig['load_average_after']:g} after.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
    ]
