"""Comparing two runs' tool calls of a step: per item, identical stretches collapsed, the rest as A and B."""

from __future__ import annotations

from typing import Any

from rolegraph.traces.call_diff import CallLine, compare_calls


def call(query: str, item: int | None = None) -> dict[str, Any]:
    return {"name": "library_search", "arguments": {"query": query}, "item": item}


class TestCompareCalls:
    def test_identical_stretch_is_one_line(self) -> None:
        """Calls both runs made in the same order collapse into one '=' line with their count."""
        calls = [call("a"), call("b"), call("c")]
        assert compare_calls(calls, calls) == [CallLine(None, "=", 'library_search {"query": "a"}', 3)]

    def test_changes_within_an_item_are_paired_and_labelled(self) -> None:
        """Each item is compared on its own: the same first call, then the differing ones as A and B."""
        a = [call("x", 0), call("lora", 0), call("y", 1)]
        b = [call("y", 1), call("x", 0), call("qlora", 0)]
        assert compare_calls(a, b) == [
            CallLine("0", "=", 'library_search {"query": "x"}', 1),
            CallLine("0", "A", 'library_search {"query": "lora"}'),
            CallLine("0", "B", 'library_search {"query": "qlora"}'),
            CallLine("1", "=", 'library_search {"query": "y"}', 1),
        ]

    def test_an_item_only_one_run_has(self) -> None:
        """An item only run B reached lists its calls as B."""
        assert compare_calls([], [call("z", 2)]) == [CallLine("2", "B", 'library_search {"query": "z"}')]
