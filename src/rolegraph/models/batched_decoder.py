"""Concurrent calls to one embedded model, decoded together in shared ``llama_decode`` batches.

One llama.cpp context holds `PARALLEL_SEQUENCES` sequences, each with its own KV
stream (``kv_unified = false``, so a sequence's attention never sees another's
cells). A call takes a free sequence. The prompts of the calls admitted together
are evaluated first, in as few ubatches as llama.cpp allows (`_next_piece`),
logits computed only for each prompt's last token; then every step is one
``llama_decode`` holding the next token of each sequence still generating. Each
call has its own sampler chain (penalties, its grammar, top-k, typical, top-p,
min-p, temperature, a seeded draw: ``Llama.create_completion``'s chain), so its
tokens for a given seed do not depend on which calls ran beside it.

Why a call's output does not depend on its neighbours, on how its prompt was cut
or on the thread count, on llama.cpp's CPU backend: the context runs flash
attention over a KV cache stored in bfloat16 (`KV_TYPE`). ggml-cpu's
flash-attention kernel (``ggml_compute_forward_flash_attn_ext_f16``) has three
paths. Two serve only an F16 or F32 cache: a tiled one for 64 query rows or more
of one KV stream in a ubatch (a prompt piece of 64+ tokens), and a split-KV one
for a single token of a single sequence with 512 KV cells or more in view, which
sums each thread's share of the cells apart, then merges them. Both sum in
another order than the third, per-row path (measured with an F16 cache: a
150-token prompt cut 100 + 50 gives logits 0.77 apart from one piece; a lone
step at 301 cells on 2 threads differs from the same step beside another
sequence, or on 1 thread). With any other cache type every query row takes the
per-row path: one thread computes it whole, over its own stream's cells in
order, skipping the masked ones, so its result depends on nothing else in the
ubatch, nor on the cells in view, nor on the threads; the rest of the graph
(weight products, norms, cache writes) computes each token's column by itself.

Measured on SmolLM2 with a bfloat16 cache: a 150-token prompt in one piece, cut
100 + 50, 64 + 64 + 22, 149 + 1 or in pieces of 30, beside 1 or 3 other
sequences, on 1 or 2 threads, and a step at 301 or 701 cells alone or beside
another sequence all give bit-identical logits. The cache is as close to an F32
one as an F16 cache without flash attention (mean KL divergence of the
next-token distribution over 300 positions 1.9e-3 against 2.1e-3, the same
argmax at 98.7% of positions) and costs the same CPU as flash attention on an
F16 cache: decoding four sequences, 101 and 99 tokens per CPU-second against 89
without flash attention (median of 5 interleaved runs at load 6). The tests pin
outputs together against outputs alone, with and without grammars, for prompts
of many lengths (past 64 tokens and past a ubatch), a long call decoding alone
on two threads, and calls joining mid-prefill and mid-decode.

A call joins while others are decoding; a call that fails (its prompt does not
fit, it is cancelled) ends alone, its cells cleared, and the others go on.

Only aligned whole chunks of a finished call's prompt stay in its sequence's
cells: a later call with the same prefix (the next step of an agent loop) reuses
them (at least one prompt token is always evaluated again, for its logits), and a fresh
evaluation would have computed them identically.

One worker thread per context runs the loop while there is work, and exits
when there is none; llama.cpp is never entered from two threads at once.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rolegraph.errors import ModelError

if TYPE_CHECKING:
    from llama_cpp import Llama
    from llama_cpp.llama_grammar import LlamaGrammar

__all__ = ["CHUNK", "KV_TYPE", "PARALLEL_SEQUENCES", "BatchedDecoder", "Generation", "Request"]

CHUNK = 64
"""The granularity of prefix reuse (whole aligned chunks); a ubatch holds `CHUNK` tokens per sequence."""
PARALLEL_SEQUENCES = 4
"""Calls decoded together; a further call waits for a free sequence."""
KV_TYPE = 30
"""``GGML_TYPE_BF16`` (ggml.h; llama-cpp-python names no constant for it): the KV cache's type, which keeps
flash attention on its per-row path (see the module docstring)."""
_TOP_K = 40
_MIN_P = 0.05
_UTF8_LEADS = ((2, 192), (3, 224), (4, 240))


@dataclass(frozen=True)
class Request:
    """One call: its prompt tokens and how to sample its continuation."""

    tokens: list[int]
    temperature: float
    top_p: float
    seed: int
    max_tokens: int
    repeat_penalty: float
    grammar: LlamaGrammar | None = None
    stop: tuple[bytes, ...] = ()
    """Strings that end the generation (cut from the text), as ``create_completion``'s ``stop``."""
    cancel: threading.Event = field(default_factory=threading.Event)
    """Set it to stop the call at its next token (or drop it from the queue); its result is then a `ModelError`."""
    started: concurrent.futures.Future[None] = field(default_factory=concurrent.futures.Future)
    """Done when the call has a sequence (a caller's timeout counts from there, not from the queue)."""


@dataclass(frozen=True)
class Generation:
    """What a call generated."""

    text: str
    finish_reason: str
    """``stop`` (end of generation, a stop string) or ``length`` (``max_tokens`` reached)."""
    prompt_tokens: int
    completion_tokens: int
    tokens: tuple[int, ...]


@dataclass
class _Sequence:
    """A call being decoded in one sequence of the context."""

    request: Request
    future: concurrent.futures.Future[Generation]
    sampler: Any
    max_tokens: int
    position: int = 0
    evaluated: int = 0
    """Prompt tokens in the sequence's cells (reused or evaluated)."""
    logits_at: int = -1
    generated: list[int] = field(default_factory=list)
    text: bytes = b""
    multibyte_fix: int = 0
    pending: int | None = None
    """The token sampled last, to be evaluated in the next step."""


@dataclass
class _Slot:
    """One sequence id of the context and the aligned prompt prefix its cells still hold."""

    seq_id: int
    cached: list[int] = field(default_factory=list)
    running: _Sequence | None = None


class BatchedDecoder:
    """Decodes concurrent calls on one set of loaded weights together (see the module docstring).

    Args:
        llama: The loaded weights (the context is built with its model, thread counts and LoRA adapter).
        n_ctx: Context window per call, in tokens (prompt plus generation).
        sequences: How many calls decode together.
    """

    def __init__(self, llama: Llama, n_ctx: int, sequences: int = PARALLEL_SEQUENCES) -> None:
        import llama_cpp
        from llama_cpp import _internals

        self._api: Any = llama_cpp  # the low-level API carries few annotations
        self._internals: Any = _internals
        self.llama = llama
        self.n_ctx = n_ctx
        params = llama_cpp.llama_context_params.from_buffer_copy(llama.context_params)
        params.n_ctx = n_ctx * sequences
        params.n_batch = params.n_ubatch = CHUNK * sequences  # one llama_decode is one ubatch
        params.n_seq_max = sequences
        params.kv_unified = False  # a KV stream per sequence: batching never changes a call's attention
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
        params.type_k = params.type_v = KV_TYPE  # flash attention's per-row path only (see the module docstring)
        params.no_perf = True
        self._context: Any = _internals.LlamaContext(model=llama._model, params=params, verbose=False)
        adapter = getattr(llama, "_lora_adapter", None)
        if adapter is not None:
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(adapter)
            scales = (ctypes.c_float * 1)(llama.lora_scale)
            if llama_cpp.llama_set_adapters_lora(self._context.ctx, adapters, 1, scales):
                self._context.close()  # type: ignore[no-untyped-call]  # llama-cpp-python is unannotated
                raise ModelError(f"llama.cpp could not apply the LoRA adapter {llama.lora_path}")
        self._batch: Any = _internals.LlamaBatch(n_tokens=params.n_batch, embd=0, n_seq_max=1, verbose=False)
        self._batch_capacity = int(params.n_batch)
        # llama.cpp runs a batch of more than one token on `n_threads_batch`: a step of a few sequences would
        # then take the prompt's threads, which measured 2.2x the CPU for the same tokens on 2 shared cores.
        self._step_threads = (params.n_threads, params.n_threads)
        self._prompt_threads = (params.n_threads, params.n_threads_batch)
        self._slots = [_Slot(seq_id) for seq_id in range(sequences)]
        self._waiting: deque[_Sequence] = deque()
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._closed = False

    def submit(self, request: Request) -> concurrent.futures.Future[Generation]:
        """Queue `request`; its future gives the `Generation` or raises `ModelError`."""
        return self.submit_all([request])[0]

    def submit_all(self, requests: list[Request]) -> list[concurrent.futures.Future[Generation]]:
        """Queue `requests` at once, so they are admitted together and their prompts share rounds."""
        futures: list[concurrent.futures.Future[Generation]] = [concurrent.futures.Future() for _ in requests]
        with self._lock:
            if self._closed:
                raise ModelError("the embedded model was closed")
            self._waiting.extend(_Sequence(r, f, None, r.max_tokens) for r, f in zip(requests, futures, strict=True))
            if self._worker is None and requests:
                self._worker = threading.Thread(target=self._run, name="rolegraph-llama-decoder", daemon=True)
                self._worker.start()
        return futures

    @property
    def running(self) -> int:
        """How many calls hold a sequence now (being evaluated or decoded)."""
        return sum(slot.running is not None for slot in self._slots)

    def close(self, timeout: float = 5.0) -> bool:
        """Stop taking calls, wait for the running ones, free the context; False if they did not end in time."""
        with self._lock:
            self._closed = True
            worker = self._worker
        if worker is not None:
            worker.join(timeout)
            if worker.is_alive():
                return False
        self._batch.close()
        self._context.close()
        return True

    # --- the worker ---------------------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._lock:
                admitted = self._admit()
                if not admitted and not any(slot.running for slot in self._slots):
                    self._worker = None
                    return
            self._sample_running()
            for slot, seq in admitted:
                self._start(slot, seq)
            self._prefill()
            self._step()

    def _admit(self) -> list[tuple[_Slot, _Sequence]]:
        """Give waiting calls the free sequences, each the one whose cached prefix it can reuse most."""
        for seq in [seq for seq in self._waiting if seq.request.cancel.is_set()]:
            self._waiting.remove(seq)
            seq.future.set_exception(ModelError("cancelled before it started"))
        admitted = []
        while self._waiting:
            free = [slot for slot in self._slots if slot.running is None]
            if not free:
                break
            seq = self._waiting.popleft()
            slot = max(free, key=lambda s: (self._reusable(s, seq.request.tokens), -s.seq_id))
            slot.running = seq
            seq.request.started.set_result(None)
            admitted.append((slot, seq))
        return admitted

    @staticmethod
    def _reusable(slot: _Slot, tokens: list[int]) -> int:
        common = 0
        for cached, token in zip(slot.cached, tokens, strict=False):
            if cached != token:
                break
            common += 1
        # At least the last prompt token is evaluated again: its logits start the generation.
        return min(common // CHUNK * CHUNK, max(len(tokens) - 1, 0) // CHUNK * CHUNK)

    def _start(self, slot: _Slot, seq: _Sequence) -> None:
        """Give a new call its sequence: the reusable prefix kept, the rest cleared, its sampler built."""
        request = seq.request
        try:
            if request.cancel.is_set():
                raise ModelError("cancelled before it started")
            tokens = request.tokens
            if len(tokens) >= self.n_ctx:
                raise ModelError(f"Requested tokens ({len(tokens)}) exceed context window of {self.n_ctx}")
            if not tokens:
                raise ModelError("the prompt has no tokens")
            seq.max_tokens = min(request.max_tokens, self.n_ctx - len(tokens))
            reuse = self._reusable(slot, tokens)
            self._api.llama_memory_seq_rm(self._context.memory, slot.seq_id, reuse, -1)
            slot.cached = tokens[:reuse]
            seq.evaluated = reuse
            seq.sampler = self._sampler(request)
        except Exception as exc:  # this call fails alone; the others go on
            self._finish(slot, exc)

    def _prefill(self) -> None:
        """Evaluate the prompts of every admitted call, one ubatch per ``llama_decode`` (see `_next_piece`)."""
        while True:
            evaluating = {}
            for slot in self._slots:
                seq = slot.running
                if seq is None or seq.sampler is None or seq.evaluated == len(seq.request.tokens):
                    continue
                if seq.request.cancel.is_set():
                    self._finish(slot, ModelError("cancelled"))
                else:
                    evaluating[slot.seq_id] = (slot, seq)
            if not evaluating:
                return
            left = [(seq_id, len(seq.request.tokens) - seq.evaluated) for seq_id, (_, seq) in evaluating.items()]
            members, count = _next_piece(left, self._batch_capacity)
            self._evaluate([evaluating[seq_id] for seq_id in members], count)

    def _evaluate(self, members: list[tuple[_Slot, _Sequence]], count: int) -> None:
        """One ubatch: the next `count` prompt tokens of each member; a prompt that ends gets its first token."""
        self._batch.reset()
        ending = []
        for slot, seq in members:
            tokens = seq.request.tokens
            for position in range(seq.evaluated, seq.evaluated + count):
                last = self._add(tokens[position], position, slot.seq_id, position == len(tokens) - 1)
            seq.evaluated += count
            if seq.evaluated == len(tokens):
                ending.append((slot, seq, last))
        try:
            self._api.llama_set_n_threads(self._context.ctx, *self._prompt_threads)
            self._context.decode(self._batch)
        except RuntimeError as exc:
            for slot, _seq in members:
                self._finish(slot, ModelError(f"llama.cpp could not evaluate the prompt: {exc}"))
            return
        for slot, seq, index in ending:
            tokens = seq.request.tokens
            seq.position, seq.logits_at = len(tokens), index
            slot.cached = tokens[: len(tokens) // CHUNK * CHUNK]
            try:
                self._sample(slot, seq)
            except Exception as exc:  # e.g. a grammar llama.cpp cannot start with: this call only
                self._finish(slot, exc)

    def _sample_running(self) -> None:
        for slot in self._slots:
            seq = slot.running
            if seq is not None and seq.pending is None and seq.position > seq.evaluated:  # stepped, not sampled
                try:
                    self._sample(slot, seq)
                except Exception as exc:  # e.g. a grammar llama.cpp cannot go on with: this call only
                    self._finish(slot, exc)

    def _sample(self, slot: _Slot, seq: _Sequence) -> None:
        """Sample `seq`'s next token and decide, as ``create_completion`` does, whether it goes on."""
        token: int = seq.sampler.sample(self._context, seq.logits_at)
        request = seq.request
        if request.cancel.is_set():
            raise ModelError("cancelled")
        if self._api.llama_vocab_is_eog(self.llama._model.vocab, token):
            self._finish(slot, self._generation(seq, "stop"))
            return
        seq.generated.append(token)
        seq.text += self.llama._model.detokenize([token])
        for k, char in enumerate(seq.text[-3:]):  # a multi-byte character not yet complete: no check yet
            for num, lead in _UTF8_LEADS:
                if num > 3 - k and lead & char == lead:
                    seq.multibyte_fix = num - (3 - k)
        if seq.multibyte_fix > 0:
            seq.multibyte_fix -= 1
        elif any(stop in seq.text for stop in request.stop):
            self._finish(slot, self._generation(seq, "stop"))
            return
        elif len(seq.generated) >= seq.max_tokens:
            self._finish(slot, self._generation(seq, "length"))
            return
        seq.pending = token

    def _step(self) -> None:
        """One ``llama_decode`` with the pending token of every running sequence."""
        self._batch.reset()
        stepping = []
        for slot in self._slots:
            seq = slot.running
            if seq is not None and seq.pending is not None:
                seq.logits_at = self._add(seq.pending, seq.position, slot.seq_id, True)
                seq.position += 1
                seq.pending = None
                stepping.append(slot)
        if not stepping:
            return
        try:
            self._api.llama_set_n_threads(self._context.ctx, *self._step_threads)
            self._context.decode(self._batch)
        except RuntimeError as exc:
            for slot in stepping:
                self._finish(slot, ModelError(f"llama.cpp could not decode: {exc}"))

    def _finish(self, slot: _Slot, outcome: Generation | BaseException) -> None:
        """End the call in `slot`: clear its cells past the reusable prefix and hand over its outcome."""
        seq = slot.running
        slot.running = None
        self._api.llama_memory_seq_rm(self._context.memory, slot.seq_id, len(slot.cached), -1)
        if seq is None:
            return
        if seq.sampler is not None:
            seq.sampler.close()
        if isinstance(outcome, BaseException):
            if not isinstance(outcome, ModelError):
                outcome = ModelError(f"llama.cpp failed: {outcome}")
            seq.future.set_exception(outcome)
        else:
            seq.future.set_result(outcome)

    # --- pieces -------------------------------------------------------------------------------------------------

    def _generation(self, seq: _Sequence, finish_reason: str) -> Generation:
        text = self.llama.detokenize(seq.generated, prev_tokens=seq.request.tokens)
        if finish_reason == "stop":
            stops = [stop for stop in seq.request.stop if stop in text]
            if stops:
                text = text[: text.index(stops[0])]
        return Generation(
            text=text.decode("utf-8", errors="ignore"),
            finish_reason=finish_reason,
            prompt_tokens=len(seq.request.tokens),
            completion_tokens=len(seq.generated),
            tokens=tuple(seq.generated),
        )

    def _sampler(self, request: Request) -> Any:
        """The sampler chain ``Llama.create_completion`` builds for these settings, seeded, with the grammar."""
        chain = self._internals.LlamaSampler()
        llama = self.llama
        chain.add_penalties(llama.n_vocab(), llama.last_n_tokens_size, request.repeat_penalty, 0.0, 0.0)
        if request.grammar is not None:
            chain.add_grammar(llama._model, request.grammar)
        if request.temperature < 0:
            chain.add_dist(request.seed)
        elif request.temperature == 0:
            chain.add_greedy()
        else:
            chain.add_top_k(_TOP_K)
            chain.add_typical(1.0, 1)
            chain.add_top_p(request.top_p, 1)
            chain.add_min_p(_MIN_P, 1)
            chain.add_temp(request.temperature)
            chain.add_dist(request.seed)
        return chain

    def _add(self, token: int, position: int, seq_id: int, logits: bool) -> int:
        batch = self._batch.batch
        index = int(batch.n_tokens)
        batch.token[index] = token
        batch.pos[index] = position
        batch.seq_id[index][0] = seq_id
        batch.n_seq_id[index] = 1
        batch.logits[index] = logits
        batch.n_tokens = index + 1
        return index


def _next_piece(left: list[tuple[int, int]], capacity: int) -> tuple[list[int], int]:
    """The next ubatch of prompt evaluation: which sequences (by id) and how many tokens of each.

    `left` pairs each sequence still evaluating its prompt, by increasing id, with its prompt tokens
    not yet evaluated. The ubatch is what llama.cpp would run as one: consecutive ids, the same count
    of each, at most `capacity` tokens in all. Of those, the piece with the most tokens, then the most
    sequences, then the lowest ids: a greedy plan that evaluates four prompts of 38-43 tokens in four
    ubatches. How a prompt is cut does not change its results (see the module docstring).
    """
    remaining = dict(left)
    ids = [seq_id for seq_id, _ in left]
    best: tuple[list[int], int] = ([ids[0]], 0)
    for start in range(len(ids)):
        for end in range(start, len(ids)):
            if ids[end] - ids[start] != end - start:
                break  # llama.cpp puts only consecutive ids in one ubatch
            members = ids[start : end + 1]
            sizes = [remaining[seq_id] for seq_id in members]
            count = min(*sizes, capacity // len(members))
            if (count * len(members), len(members)) > (best[1] * len(best[0]), len(best[0])):
                best = (members, count)
    return best
