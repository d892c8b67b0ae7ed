"""CallPath's timer: a model call arms its own timeout only when it would end sooner than its step's."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from rolegraph.agents.model_calls import STEP_DEADLINE, CallPath
from rolegraph.errors import ModelError
from rolegraph.models.messages import Message
from rolegraph.models.model import Completion, ModelSettings
from rolegraph.models.scripted import ScriptedCall, ScriptedModel
from rolegraph.traces.tracer import Tracer


class CountingTimeouts:
    """Stands in for `asyncio.timeout`, counting the timers armed."""

    def __init__(self) -> None:
        self.armed = 0
        self._real = asyncio.timeout

    def __call__(self, delay: float | None) -> Any:
        self.armed += 1
        return self._real(delay)


async def never_answers(call: ScriptedCall) -> Completion:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def answers(call: ScriptedCall) -> Completion:
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
        counting = CountingTimeouts()
        monkeypatch.setattr(asyncio, "timeout", counting)
        await within_step(600, ScriptedModel(answers), limit=900)
        assert counting.armed == 1  # the step's own

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
