"""CallPath's timer: a model call arms its own timeout only when it would end sooner than its step's, and only
once it has to wait; a conversation's digest from messages serialised once."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from rolegraph.agents.model_calls import STEP_DEADLINE, CallPath, Conversation, message_json, messages_digest
from rolegraph.errors import ModelError
from rolegraph.models.messages import Message, ToolCall
from rolegraph.models.model import Completion, ModelSettings
from rolegraph.models.scripted import ScriptedCall, ScriptedModel
from rolegraph.traces.tracer import Tracer


class CountingTimeouts:
    """Stands in for `asyncio.timeout` or `asyncio.timeout_at`, counting the timers armed."""

    def __init__(self, real: Any) -> None:
        self.armed = 0
        self._real = real

    def __call__(self, when: float | None) -> Any:
        self.armed += 1
        return self._real(when)


async def never_answers(call: ScriptedCall) -> Completion:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def answers(call: ScriptedCall) -> Completion:
    return Completion(text="ok")


async def waits_then_answers(call: ScriptedCall) -> Completion:
    await asyncio.sleep(0.001)
    return Completion(text="ok")


async def complete(model: ScriptedModel, limit: float) -> Completion:
    return await CallPath(Tracer("t")).complete(
        model, [Message.user("hi")], call_id="s#1", settings=ModelSettings(timeout=limit)
    )


async def within_step(seconds: float, model: ScriptedModel, limit: float) -> Completion:
    """A model call inside a step whose timer fires `seconds` from now (as the scheduler sets it)."""
    async with asyncio.timeout(seconds) as step_timer:
        STEP_DEADLINE.set(step_timer.when())
        return await complete(model, limit)


class TestOneTimerPerStep:
    async def test_a_call_that_would_outlast_its_step_arms_no_timer(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """With the step's timer firing first, the model call arms no timer of its own."""
        counting, counting_at = CountingTimeouts(asyncio.timeout), CountingTimeouts(asyncio.timeout_at)
        monkeypatch.setattr(asyncio, "timeout", counting)
        monkeypatch.setattr(asyncio, "timeout_at", counting_at)
        await within_step(600, ScriptedModel(waits_then_answers), limit=900)
        assert counting.armed == 1 and counting_at.armed == 0  # the step's own

    async def test_a_call_ending_sooner_than_its_step_has_its_own_timeout(self) -> None:
        """A model timeout shorter than what is left of the step still fires, as a ModelError naming it."""
        with pytest.raises(ModelError, match=r"did not answer within 0\.05s"):
            await within_step(600, ScriptedModel(never_answers), limit=0.05)

    async def test_the_step_timer_ends_a_call_that_would_outlast_it(self) -> None:
        """With no timer of its own, a call that never answers is still ended by its step's timer."""
        with pytest.raises(TimeoutError):
            await within_step(0.05, ScriptedModel(never_answers), limit=900)

    async def test_outside_a_step_the_call_has_its_own_timeout(self) -> None:
        """A call made outside any step (no step deadline) keeps its own timeout."""
        with pytest.raises(ModelError, match=r"did not answer within 0\.05s"):
            await complete(ScriptedModel(never_answers), limit=0.05)


class TestTimerOnlyWhenWaiting:
    async def test_a_call_answered_without_waiting_arms_no_timer(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A model that answers without waiting (a script) gets its answer with no timer armed."""
        counting, counting_at = CountingTimeouts(asyncio.timeout), CountingTimeouts(asyncio.timeout_at)
        monkeypatch.setattr(asyncio, "timeout", counting)
        monkeypatch.setattr(asyncio, "timeout_at", counting_at)
        assert (await complete(ScriptedModel(answers), limit=5)).text == "ok"
        assert counting.armed == 0 and counting_at.armed == 0

    async def test_a_call_that_waits_gets_its_timer_and_its_answer(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A model that waits before answering gets a timer for the rest of its call, and its answer comes through."""
        counting = CountingTimeouts(asyncio.timeout_at)
        monkeypatch.setattr(asyncio, "timeout_at", counting)
        assert (await complete(ScriptedModel(waits_then_answers), limit=5)).text == "ok"
        assert counting.armed == 1

    async def test_the_timeout_counts_from_the_start_of_the_call(self) -> None:
        """Time spent before the model's first wait counts against its timeout."""

        def slow_start(call: ScriptedCall) -> Any:
            async def respond() -> Completion:
                time.sleep(0.06)  # noqa: ASYNC251 -- work done before the first wait, with no timer armed yet
                await asyncio.sleep(0.02)
                return Completion(text="late")

            return respond()

        with pytest.raises(ModelError, match=r"did not answer within 0\.05s"):
            await complete(ScriptedModel(slow_start), limit=0.05)

    async def test_an_error_after_a_wait_reaches_the_caller(self) -> None:
        """A model error raised after the call waited is the caller's error, as it is."""

        async def fails(call: ScriptedCall) -> Completion:
            await asyncio.sleep(0)
            raise ModelError("provider down")

        with pytest.raises(ModelError, match="provider down"):
            await complete(ScriptedModel(fails), limit=5)

    async def test_cancelling_the_caller_cancels_the_waiting_call(self) -> None:
        """Cancelling the task that waits on a model call cancels the call itself (its cleanup runs), not a timeout."""
        cleaned = asyncio.Event()

        async def hangs(call: ScriptedCall) -> Completion:
            try:
                await asyncio.Event().wait()
            finally:
                cleaned.set()
            raise AssertionError("unreachable")

        task = asyncio.create_task(complete(ScriptedModel(hangs), limit=5))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert cleaned.is_set()


MESSAGES = (
    Message.system("You rate — carefully."),
    Message.user("Rate «this» 🚀"),
    Message.assistant("", [ToolCall(id="c1", name="search", arguments='{"q": "LoRA"}')]),
    Message.tool(ToolCall(id="c1", name="search", arguments="{}"), "ERROR: nothing\nfound"),
    Message.assistant("thinking", reasoning=[{"type": "reasoning", "id": "r1"}]),
    Message.user(""),
)


class TestConversation:
    def test_digest_is_the_messages_digest_as_it_grows(self) -> None:
        """After each message added (with or without its serialised form), the digest is `messages_digest`'s."""
        conversation = Conversation([(MESSAGES[0], message_json(MESSAGES[0]))])
        assert conversation.digest() == messages_digest(MESSAGES[:1])
        for count, message in enumerate(MESSAGES[1:], start=2):
            conversation.append(message, message_json(message) if count % 2 else None)
            assert conversation.digest() == messages_digest(MESSAGES[:count])
        assert conversation.messages == list(MESSAGES)

    def test_messages_added_between_digests_are_all_counted(self) -> None:
        """Messages added after the last digest, without their serialised form, all enter the next one."""
        conversation = Conversation([(m, None) for m in MESSAGES[:2]])
        for message in MESSAGES[2:]:
            conversation.append(message)
        assert conversation.digest() == messages_digest(MESSAGES)
