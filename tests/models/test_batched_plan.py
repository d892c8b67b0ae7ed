"""The prompt-evaluation plan of the batched decoder: ubatches llama.cpp runs as one, as few as it can."""

from __future__ import annotations

import itertools

import pytest

from rolegraph.models.batched_decoder import _next_piece


def plan(lengths: dict[int, int], capacity: int = 256) -> list[tuple[list[int], int]]:
    """Every ubatch `_next_piece` chooses until the prompts of `lengths` (by sequence id) are evaluated."""
    left = dict(lengths)
    pieces = []
    while left:
        members, count = _next_piece(sorted(left.items()), capacity)
        pieces.append((members, count))
        for seq_id in members:
            assert left[seq_id] >= count
            left[seq_id] -= count
            if left[seq_id] == 0:
                del left[seq_id]
    return pieces


class TestPlan:
    @pytest.mark.parametrize(
        "lengths",
        [dict(enumerate(sizes)) for sizes in itertools.product((1, 2, 3, 7, 39, 65), repeat=3)]
        + [{0: 38, 1: 43, 2: 39, 3: 42}, {0: 300, 1: 5}, {0: 257}, {0: 513, 2: 2, 3: 64}, {1: 2, 3: 3}],
    )
    def test_each_piece_is_one_llama_cpp_ubatch(self, lengths: dict[int, int]) -> None:
        """Each ubatch holds consecutive sequence ids, the same count of each (at least one), at most the
        batch's capacity; together the pieces cover every prompt exactly."""
        evaluated = dict.fromkeys(lengths, 0)
        for members, count in plan(lengths):
            assert members == list(range(members[0], members[0] + len(members)))
            assert count * len(members) <= 256
            assert count >= 1
            for seq_id in members:
                evaluated[seq_id] += count
        assert evaluated == lengths

    def test_the_benchmark_prompts_take_four_ubatches(self) -> None:
        """Four prompts of 38, 43, 39 and 42 tokens: one ubatch of 38 tokens each, then the rest of each longer
        prompt by itself, the longest first."""
        assert plan({0: 38, 1: 43, 2: 39, 3: 42}) == [([0, 1, 2, 3], 38), ([1], 5), ([3], 4), ([2], 1)]

    def test_a_long_prompt_alone_fills_whole_ubatches(self) -> None:
        """A prompt of 500 tokens by itself is two ubatches (256 + 244), not eight pieces of 64."""
        assert plan({0: 500}) == [([0], 256), ([0], 244)]
