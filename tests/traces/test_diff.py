"""What differs first in a step of two runs (`StepDiff.difference`), in the order a run does things."""

from __future__ import annotations

from typing import Any

from rolegraph.traces.diff import Difference, StepDiff


def call(name: str, item: Any = None, **arguments: Any) -> dict[str, Any]:
    return {"name": name, "arguments": arguments, "item": item}


def step(**changes: Any) -> StepDiff:
    base: dict[str, Any] = {
        "step_id": "research",
        "status": ("completed", "completed"),
        "visits": (1, 1),
        "tool_calls": (
            [call("search", query="a"), call("read", id="x")],
            [call("search", query="a"), call("read", id="x")],
        ),
        "output_same": True,
        "tokens": (10, 12),
        "duration_s": (1.0, 2.0),
    }
    return StepDiff(**{**base, **changes})


class TestDifference:
    def test_same_but_tokens_and_time(self) -> None:
        """Tokens and time aside, the step agrees: no difference, not `differs`."""
        assert (step().difference(), step().differs) == (None, False)

    def test_status_comes_first(self) -> None:
        """A different status is named before anything else."""
        found = step(status=("completed", None), output_same=False).difference()
        assert found == Difference("research", "status", "completed vs not run")
        assert found is not None and found.describe() == "step research, status: completed vs not run"

    def test_first_differing_tool_call(self) -> None:
        """The first call that differs, both sides shown, with its index."""
        calls = (
            [call("search", query="a"), call("read", id="x")],
            [call("search", query="a"), call("read", 1, id="y")],
        )
        found = step(tool_calls=calls).difference()
        assert found == Difference("research", "tool_call", 'read {"id": "x"} vs read[1] {"id": "y"}', 1)
        assert found is not None and found.as_dict()["text"] == (
            'step research, tool call 2: read {"id": "x"} vs read[1] {"id": "y"}'
        )

    def test_a_call_only_one_run_made(self) -> None:
        """Runs that agree call by call until one stops: the extra call is named."""
        calls = ([call("search", query="a")], [call("search", query="a"), call("read", id="x")])
        assert step(tool_calls=calls).difference() == Difference(
            "research", "tool_call", '1 vs 2 tool calls; only B called read {"id": "x"}', 1
        )

    def test_then_the_output(self) -> None:
        """Same calls, another output: the output is what differs."""
        assert step(output_same=False).difference() == Difference(
            "research", "output", "same tool calls, different output"
        )
