"""The run's concurrency limit: free slots are taken at once, the others wait in order, cancellation loses none."""

from __future__ import annotations

import asyncio

import pytest

from rolegraph.runtime.slots import Slots


async def _hold(slots: Slots, name: str, order: list[str], gate: asyncio.Event) -> None:
    if not slots.take():
        await slots.wait()
    order.append(name)
    try:
        await gate.wait()
    finally:
        slots.release()


class TestSlots:
    def test_free_slots_are_taken_without_waiting_up_to_the_limit(self) -> None:
        """`take` succeeds `limit` times, then fails until a slot is released."""
        slots = Slots(2)
        assert slots.take() and slots.take()
        assert not slots.take()
        slots.release()
        assert slots.take()

    async def test_waiters_get_slots_in_arrival_order_and_never_more_than_the_limit(self) -> None:
        """With one slot, three holders run one at a time, first come first served."""
        slots = Slots(1)
        order: list[str] = []
        gates = {name: asyncio.Event() for name in "abc"}
        tasks = [asyncio.create_task(_hold(slots, name, order, gates[name])) for name in "abc"]
        await asyncio.sleep(0)
        assert order == ["a"]
        gates["a"].set()
        await asyncio.sleep(0.01)
        assert order == ["a", "b"]
        gates["b"].set()
        gates["c"].set()
        await asyncio.gather(*tasks)
        assert order == ["a", "b", "c"]
        assert slots.take() and not slots.take()

    async def test_a_waiter_cancelled_while_waiting_is_skipped(self) -> None:
        """A cancelled waiter is skipped: the slot goes to the next one, and is free again afterwards."""
        slots = Slots(1)
        assert slots.take()
        first = asyncio.create_task(slots.wait())
        second = asyncio.create_task(slots.wait())
        await asyncio.sleep(0)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        slots.release()
        await asyncio.wait_for(second, 1)
        slots.release()
        assert slots.take() and not slots.take()

    async def test_a_waiter_cancelled_after_being_handed_a_slot_passes_it_on(self) -> None:
        """A slot handed to a waiter that is cancelled before it runs goes to the next waiter, not lost."""
        slots = Slots(1)
        assert slots.take()
        first = asyncio.create_task(slots.wait())
        second = asyncio.create_task(slots.wait())
        await asyncio.sleep(0)
        slots.release()  # hands the slot to `first`...
        first.cancel()  # ...which is cancelled before it resumes
        with pytest.raises(asyncio.CancelledError):
            await first
        await asyncio.wait_for(second, 1)
        assert not slots.take()
        slots.release()
        assert slots.take()
