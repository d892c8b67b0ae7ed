"""Concurrent calls decoded together: real SmolLM2-135M, each call's output as if it ran alone."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rolegraph.errors import ModelError
from rolegraph.models.batched_decoder import BatchedDecoder, Generation, Request
from rolegraph.models.local import _grammar

pytestmark = pytest.mark.local_model

QUESTIONS = (
    "Explain what a transformer language model is.",
    "Summarise how low-rank adaptation works.",
    "Describe retrieval-augmented generation.",
    "Name three colours and say why you like them.",
)
VERDICT = {"type": "object", "properties": {"verdict": {"enum": ["accept", "revise"]}}, "required": ["verdict"]}
COUNT = {"type": "object", "properties": {"count": {"type": "integer"}, "unit": {"const": "papers"}}}


@pytest.fixture(scope="module")
def llama(gguf: Path) -> Iterator[Any]:
    """The SmolLM2 weights, loaded apart from the provider's (its context only tokenizes)."""
    from llama_cpp import Llama

    weights = Llama(model_path=str(gguf), n_ctx=256, n_batch=64, verbose=False)
    yield weights
    weights.close()


@pytest.fixture(scope="module")
def decoder(llama: Any) -> Iterator[BatchedDecoder]:
    """A decoder of four sequences of 512 tokens over those weights."""
    batched = BatchedDecoder(llama, n_ctx=512)
    yield batched
    assert batched.close()


@pytest.fixture(scope="module")
def two_threads(gguf: Path) -> Iterator[BatchedDecoder]:
    """A decoder over weights that run single tokens on two threads too (the default gives them one), as
    the benchmarks and a user's ``n_threads=2`` do: a lone step is then split between two threads."""
    from llama_cpp import Llama

    weights = Llama(model_path=str(gguf), n_ctx=256, n_batch=64, n_threads=2, n_threads_batch=2, verbose=False)
    batched = BatchedDecoder(weights, n_ctx=512)
    yield batched
    assert batched.close()
    weights.close()


def request(llama: Any, question: str, seed: int, **overrides: Any) -> Request:
    """A chat prompt for `question` in SmolLM2's template, sampled at the provider's defaults."""
    prompt = f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"
    tokens = llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
    settings: dict[str, Any] = {"temperature": 0.7, "top_p": 0.95, "seed": seed, "max_tokens": 12}
    return Request(tokens=tokens, repeat_penalty=1.1, **(settings | overrides))


def alone(decoder: BatchedDecoder, requests: list[Request]) -> list[Generation]:
    """Each request decoded by itself, one after another."""
    return [decoder.submit(r).result(timeout=300) for r in requests]


def together(decoder: BatchedDecoder, requests: list[Request]) -> list[Generation]:
    """The requests submitted at once, so they share batches."""
    futures = [decoder.submit(r) for r in requests]
    return [f.result(timeout=300) for f in futures]


def wait_running(decoder: BatchedDecoder, count: int) -> None:
    """Until `count` calls hold a sequence (observable state, not elapsed time)."""
    deadline = time.monotonic() + 120
    while decoder.running < count:
        assert time.monotonic() < deadline, "the decoder never started the call"
        time.sleep(0.001)


class TestBatchedDecoder:
    def test_calls_decoded_together_give_what_they_give_alone(self, decoder: BatchedDecoder, llama: Any) -> None:
        """Four free-text calls in shared batches produce, token for token, what each produces alone."""
        requests = [request(llama, q, seed=i) for i, q in enumerate(QUESTIONS)]
        expected = alone(decoder, requests)
        got = together(decoder, [request(llama, q, seed=i) for i, q in enumerate(QUESTIONS)])
        assert got == expected
        assert len({g.text for g in got}) == 4

    def test_each_sequence_keeps_its_own_grammar(self, decoder: BatchedDecoder, llama: Any) -> None:
        """Calls under different grammars, decoded together, each match their own schema and equal their
        outputs alone."""
        schemas = [VERDICT, COUNT, VERDICT, None]

        def make() -> list[Request]:
            return [
                request(llama, q, seed=7, grammar=_grammar(json.dumps(s)) if s else None, max_tokens=40)
                for q, s in zip(QUESTIONS, schemas, strict=True)
            ]

        expected = alone(decoder, make())
        got = together(decoder, make())
        assert got == expected
        assert json.loads(got[0].text)["verdict"] in {"accept", "revise"}
        assert json.loads(got[2].text)["verdict"] in {"accept", "revise"}
        assert set(json.loads(got[1].text)) <= {"count", "unit"}

    def test_usage_counts_are_exact_per_call(self, decoder: BatchedDecoder, llama: Any) -> None:
        """Each call reports its own prompt length and the number of tokens it generated, and stops at max_tokens."""
        requests = [request(llama, q, seed=3, max_tokens=n) for q, n in zip(QUESTIONS, (5, 9, 13, 17), strict=True)]
        got = together(decoder, requests)
        assert [g.prompt_tokens for g in got] == [len(r.tokens) for r in requests]
        assert [g.completion_tokens for g in got] == [len(g.tokens) for g in got]
        assert all(g.completion_tokens <= n for g, n in zip(got, (5, 9, 13, 17), strict=True))
        assert [g.finish_reason for g in got if g.completion_tokens == 17] in ([], ["length"])

    def test_a_call_joining_mid_decode_changes_nobody(self, decoder: BatchedDecoder, llama: Any) -> None:
        """A call submitted while another is decoding joins its batches; both give what they give alone."""
        first, second = request(llama, QUESTIONS[0], seed=1, max_tokens=40), request(llama, QUESTIONS[1], seed=2)
        expected = alone(decoder, [first, second])
        running = decoder.submit(request(llama, QUESTIONS[0], seed=1, max_tokens=40))
        wait_running(decoder, 1)
        joined = decoder.submit(request(llama, QUESTIONS[1], seed=2))
        assert [running.result(timeout=300), joined.result(timeout=300)] == expected

    def test_failing_and_cancelled_calls_leave_the_others_intact(self, decoder: BatchedDecoder, llama: Any) -> None:
        """A prompt too long for the context and a call cancelled mid-decode fail alone; the calls beside them
        give what they give alone."""
        expected = alone(decoder, [request(llama, QUESTIONS[0], seed=4), request(llama, QUESTIONS[2], seed=5)])
        too_long = Request(tokens=[1] * 600, temperature=0.2, top_p=0.95, seed=1, max_tokens=8, repeat_penalty=1.1)
        essay = request(llama, "Write a very long essay on the history of libraries.", seed=6, max_tokens=400)
        cancelled = decoder.submit(essay)
        futures = [decoder.submit(r) for r in (request(llama, QUESTIONS[0], seed=4), too_long)]
        futures.append(decoder.submit(request(llama, QUESTIONS[2], seed=5)))
        first = futures[0].result(timeout=300)  # decoded beside the essay, which is now mid-decode
        essay.cancel.set()
        with pytest.raises(ModelError, match=r"^cancelled$"):
            cancelled.result(timeout=300)
        with pytest.raises(ModelError, match=r"exceed context window of 512"):
            futures[1].result(timeout=300)
        assert [first, futures[2].result(timeout=300)] == expected

    def test_prompts_evaluated_in_shared_rounds_give_what_they_give_alone(
        self, decoder: BatchedDecoder, llama: Any
    ) -> None:
        """Prompts of 40, 41, 65 and 130 tokens submitted at once (rounds of unequal pieces, a prompt one
        token past a chunk) each give, token for token, what they give alone, with and without a grammar."""
        text = " ".join(f"{q} Then {q.lower()}" for q in QUESTIONS * 3).encode("utf-8")
        words = llama.tokenize(text, add_bos=False, special=False)

        def make() -> list[Request]:
            return [
                Request(
                    tokens=words[:n], temperature=0.7, top_p=0.95, seed=n, max_tokens=10, repeat_penalty=1.1,
                    grammar=_grammar(json.dumps(VERDICT)) if n == 41 else None,
                )
                for n in (40, 41, 65, 130)
            ]  # fmt: skip

        expected = alone(decoder, make())
        got = [f.result(timeout=300) for f in decoder.submit_all(make())]
        assert got == expected
        assert [g.prompt_tokens for g in got] == [40, 41, 65, 130]

    @pytest.mark.parametrize(
        ("lengths", "grammar_at"),
        [((38, 43, 39, 42), 1), ((1, 7, 2, 3), 3), ((300, 5), 1), ((3, 1, 64, 2), 0)],
        ids=["benchmark-like", "one-token-prompt", "past-a-ubatch", "mixed"],
    )
    def test_prompts_of_different_lengths_give_what_they_give_alone(
        self, decoder: BatchedDecoder, llama: Any, lengths: tuple[int, ...], grammar_at: int
    ) -> None:
        """Prompts of different lengths submitted at once, cut into the fewest ubatches (pieces of 2 to 256
        tokens, a one-token prompt beside longer ones, a prompt longer than a ubatch), each give, token for
        token, what they give alone, with and without a grammar."""
        text = " ".join(f"{q} Then {q.lower()}" for q in QUESTIONS * 8).encode("utf-8")
        words = llama.tokenize(text, add_bos=False, special=False)

        def make() -> list[Request]:
            return [
                Request(
                    tokens=words[7 * i + 3 : 7 * i + 3 + n], temperature=0.8, top_p=0.95, seed=100 + i,
                    max_tokens=24, repeat_penalty=1.1,
                    grammar=_grammar(json.dumps(VERDICT)) if i == grammar_at else None,
                )
                for i, n in enumerate(lengths)
            ]  # fmt: skip

        expected = alone(decoder, make())
        got = [f.result(timeout=300) for f in decoder.submit_all(make())]
        assert got == expected
        assert [g.prompt_tokens for g in got] == list(lengths)
        assert json.loads(got[grammar_at].text)["verdict"] in {"accept", "revise"}

    def test_a_call_joining_mid_decode_with_a_prompt_of_another_length_changes_nobody(
        self, decoder: BatchedDecoder, llama: Any
    ) -> None:
        """Three calls decoding when a fourth with a longer prompt joins: its prompt is evaluated by itself
        between their steps, and all four give what they give alone."""

        def make() -> list[Request]:
            firsts = [request(llama, q, seed=40 + i, max_tokens=30) for i, q in enumerate(QUESTIONS[:3])]
            return [*firsts, request(llama, "Compare the three previous answers. " * 6, seed=44)]

        expected = alone(decoder, make())
        requests = make()
        running = decoder.submit_all(requests[:3])
        wait_running(decoder, 3)
        joined = decoder.submit(requests[3])
        assert [f.result(timeout=300) for f in [*running, joined]] == expected

    def test_a_long_prompt_on_two_threads_gives_what_it_gives_alone(
        self, two_threads: BatchedDecoder, llama: Any
    ) -> None:
        """On two threads, a prompt of about 300 tokens cut into other pieces beside three short calls (one
        under a grammar), then decoding alone past 300 cells once they end, gives token for token what it
        gives alone, and so do they."""
        essay = "Write a very long essay on the history of libraries, " * 25

        def make() -> list[Request]:
            shorts = [request(llama, q, seed=60 + i, max_tokens=8) for i, q in enumerate(QUESTIONS[:3])]
            verdict = _grammar(json.dumps(VERDICT))
            shorts[1] = request(llama, QUESTIONS[1], seed=61, max_tokens=20, grammar=verdict)
            return [request(llama, essay, seed=59, max_tokens=30), *shorts]

        requests = make()
        assert 256 < len(requests[0].tokens) < 400  # past a ubatch; its lone steps see 512 cells
        expected = alone(two_threads, requests)
        got = [f.result(timeout=300) for f in two_threads.submit_all(make())]
        assert got == expected
        assert got[0].completion_tokens > max(g.completion_tokens for g in got[1:])  # it went on alone
        assert json.loads(got[2].text)["verdict"] in {"accept", "revise"}

    def test_a_call_joining_a_long_call_mid_decode_on_two_threads_changes_nobody(
        self, two_threads: BatchedDecoder, llama: Any
    ) -> None:
        """On two threads, a short call under a grammar joins a call of about 300 prompt tokens once it has
        started: the long call's steps past 256 cells are lone, then shared, then lone again once the short one
        ends, and both give token for token what they give alone."""
        essay = "Tell me about the history of libraries and their catalogues, " * 22

        def make() -> list[Request]:
            verdict = _grammar(json.dumps(VERDICT))
            return [
                request(llama, essay, seed=71, max_tokens=40),
                request(llama, QUESTIONS[2], seed=72, grammar=verdict),
            ]

        first, second = make()
        assert 256 < len(first.tokens) < 400
        expected = alone(two_threads, [first, second])
        first, second = make()
        running = two_threads.submit(first)
        wait_running(two_threads, 1)
        joined = two_threads.submit(second)
        assert [running.result(timeout=300), joined.result(timeout=300)] == expected

    def test_a_call_joining_mid_prefill_changes_nobody(self, decoder: BatchedDecoder, llama: Any) -> None:
        """A call submitted while a long prompt is being evaluated joins its rounds; both give what they give
        alone."""
        essay = "Write a very long essay on the history of libraries, " * 40
        first, second = request(llama, essay, seed=21, max_tokens=6), request(llama, QUESTIONS[1], seed=22)
        assert len(first.tokens) > 6 * 64  # several rounds of evaluation
        expected = alone(decoder, [first, second])
        running = decoder.submit(request(llama, essay, seed=21, max_tokens=6))
        wait_running(decoder, 1)
        joined = decoder.submit(request(llama, QUESTIONS[1], seed=22))
        assert [running.result(timeout=300), joined.result(timeout=300)] == expected

    def test_a_failing_call_in_a_prefill_round_leaves_the_others_intact(
        self, decoder: BatchedDecoder, llama: Any
    ) -> None:
        """Submitted together, a prompt too long for the context and a long prompt cancelled during its
        evaluation fail alone; the calls evaluated in the same rounds give what they give alone."""
        good = [(QUESTIONS[0], 31), (QUESTIONS[3], 32)]
        expected = alone(decoder, [request(llama, q, seed=s) for q, s in good])
        too_long = Request(tokens=[1] * 600, temperature=0.2, top_p=0.95, seed=1, max_tokens=8, repeat_penalty=1.1)
        long_prompt = request(llama, "Tell me about the history of libraries, " * 45, seed=33)
        futures = decoder.submit_all([request(llama, good[0][0], seed=31), too_long, long_prompt])
        futures.append(decoder.submit(request(llama, good[1][0], seed=32)))
        wait_running(decoder, 1)
        long_prompt.cancel.set()
        with pytest.raises(ModelError, match="exceed context window of 512"):
            futures[1].result(timeout=300)
        with pytest.raises(ModelError, match="cancelled"):
            futures[2].result(timeout=300)
        assert [futures[0].result(timeout=300), futures[3].result(timeout=300)] == expected

    def test_more_calls_than_sequences_wait_their_turn(self, decoder: BatchedDecoder, llama: Any) -> None:
        """Six calls on four sequences all finish, each as it does alone."""
        make = [(q, seed) for seed in (11, 12) for q in QUESTIONS[:3]]
        expected = alone(decoder, [request(llama, q, seed=s, max_tokens=8) for q, s in make])
        assert together(decoder, [request(llama, q, seed=s, max_tokens=8) for q, s in make]) == expected

    def test_a_call_cancelled_in_the_queue_leaves_it_at_once(self, decoder: BatchedDecoder, llama: Any) -> None:
        """With every sequence busy, a queued call that is cancelled fails without waiting for a free one."""
        essays = [request(llama, "Write a very long essay on libraries.", seed=s, max_tokens=400) for s in range(4)]
        busy = [decoder.submit(r) for r in essays]
        wait_running(decoder, 4)
        queued = request(llama, QUESTIONS[0], seed=1)
        waiting = decoder.submit(queued)
        queued.cancel.set()
        with pytest.raises(ModelError, match="cancelled before it started"):
            waiting.result(timeout=300)
        assert not queued.started.done() and not any(f.done() for f in busy)
        for r in essays:
            r.cancel.set()
        for f in busy:
            with pytest.raises(ModelError, match="cancelled"):
                f.result(timeout=300)

    def test_a_closed_decoder_refuses_calls(self, llama: Any) -> None:
        """After close, submitting raises ModelError instead of touching freed memory."""
        batched = BatchedDecoder(llama, n_ctx=256, sequences=2)
        assert batched.close()
        with pytest.raises(ModelError, match="closed"):
            batched.submit(request(llama, QUESTIONS[0], seed=1))
