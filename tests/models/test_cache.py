"""The model-call cache's store and its rules: what is kept, for how long, within what size, and what damage does."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from rolegraph.models.cache import CacheStats, CallCache, RunCache, cache_key, cacheable
from rolegraph.models.messages import Message, ToolSpec
from rolegraph.models.model import Completion, Model, ModelSettings, Usage
from rolegraph.testing import ScriptedModel
from rolegraph.traces.redact import Redactor

CANARY = "sk-canary-cache-5e6f7a8b9c0d1e2f3a4b"
REQUEST = {"messages": "m" * 32, "tools": "t" * 32, "schema": "s" * 32, "settings": "x" * 32, "version": "1"}


def answer(text: str = "an answer", *, tokens: tuple[int, int] = (120, 30), finish: str = "stop") -> Completion:
    return Completion(text=text, usage=Usage(input_tokens=tokens[0], output_tokens=tokens[1]), finish_reason=finish)


class Clock:
    """A clock a test moves by hand (no test waits for time to pass)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class SamplingModel(Model):
    """A hosted-like model: a call without a temperature samples."""

    name = "openai:gpt-4o-mini"

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] | None = None,
        output_schema: dict[str, Any] | None = None,
        settings: ModelSettings | None = None,
    ) -> Completion:
        raise AssertionError("not called in these tests")


class AdaptedModel(SamplingModel):
    """The same model string, built with a LoRA adapter."""

    @property
    def options(self) -> dict[str, Any]:
        return {"lora": "adapter.gguf", "lora_scale": 1.0}


class TestCallCache:
    def test_an_answer_put_is_got_back_and_counted(self, tmp_path: Path) -> None:
        """A stored answer comes back equal, and stats count the entry, its hit and the tokens the hit saved."""
        cache = CallCache(tmp_path / "cache.sqlite")
        assert cache.get("k") is None
        assert cache.put("k", "scripted", answer())
        assert cache.get("k") == answer()
        stats = cache.stats()
        assert (stats.entries, stats.hits, stats.saved_input_tokens, stats.saved_output_tokens) == (1, 1, 120, 30)
        assert stats.size_bytes == len(answer().model_dump_json().encode())

    def test_an_entry_older_than_the_ttl_is_a_miss_and_goes(self, tmp_path: Path) -> None:
        """Past the TTL an entry is a miss and is removed; just inside it, a hit."""
        clock = Clock()
        cache = CallCache(tmp_path / "cache.sqlite", ttl_s=60, clock=clock)
        cache.put("k", "scripted", answer())
        clock.now += 60
        assert cache.get("k") == answer()
        clock.now += 1
        assert cache.get("k") is None
        assert cache.stats().entries == 0

    def test_the_size_cap_evicts_the_oldest_entries(self, tmp_path: Path) -> None:
        """Past the size cap, the oldest entries go until the rest fit; the newest stays."""
        clock = Clock()
        size = len(answer("0" * 100).model_dump_json().encode())
        cache = CallCache(tmp_path / "cache.sqlite", max_mb=3.5 * size / 1_000_000, clock=clock)
        for number in range(5):
            clock.now += 1
            assert cache.put(f"k{number}", "scripted", answer(str(number) * 100))
        assert [cache.get(f"k{n}") is not None for n in range(5)] == [False, False, True, True, True]
        assert cache.stats().size_bytes <= 3.5 * size

    def test_an_answer_larger_than_the_cap_is_not_kept(self, tmp_path: Path) -> None:
        """An answer that alone exceeds the cap is refused, and evicts nothing."""
        cache = CallCache(tmp_path / "cache.sqlite", max_mb=0.001)
        assert cache.put("small", "scripted", answer())
        assert not cache.put("big", "scripted", answer("x" * 2000))
        assert cache.get("small") is not None and cache.get("big") is None

    def test_a_damaged_entry_is_a_miss_and_a_warning(self, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
        """An answer altered on disk (still valid JSON) fails its checksum: a miss, a warning, and it is removed."""
        problems: list[str] = []
        cache = CallCache(tmp_path / "cache.sqlite", on_problem=problems.append)
        cache.put("k", "scripted", answer("alpha2020"))
        with sqlite3.connect(tmp_path / "cache.sqlite") as db:
            db.execute("UPDATE entries SET completion = replace(completion, 'alpha2020', 'alpha2030')")
        db.close()
        with caplog.at_level(logging.WARNING, logger="rolegraph.cache"):
            assert cache.get("k") is None
        assert len(problems) == 1 and "damaged entry" in problems[0]
        assert "damaged entry" in caplog.text
        assert cache.stats().entries == 0

    def test_a_schema_that_is_not_utf8_is_a_miss_not_a_crash(self, tmp_path: Path) -> None:
        """A flipped bit in the table's own definition (a column name no longer UTF-8): a miss and a warning,
        not an exception, and clear still works (the fuzz suite found a damaged schema failing a run)."""
        path = tmp_path / "cache.sqlite"
        first = CallCache(path)
        assert first.put("k", "scripted", answer())
        first.close()  # the last connection closed: the WAL is checkpointed into the file
        data = bytearray(path.read_bytes())
        data[data.index(b"completion")] ^= 0xC0  # 'c' becomes a byte that starts no UTF-8 character
        path.write_bytes(bytes(data))
        problems: list[str] = []
        cache = CallCache(path, on_problem=problems.append)
        assert cache.get("k") is None
        assert problems and "cache" in problems[0]
        cache.close()
        assert CallCache(path).clear() >= 0
        assert not path.exists() or CallCache(path).get("k") is None

    def test_stats_of_damaged_numbers_are_figures_not_a_crash(self, tmp_path: Path) -> None:
        """Token counts and times altered on disk to 1e308 (their sums overflow to infinity) or text: stats still
        answers (the fuzz suite's slow lane found an OverflowError)."""
        cache = CallCache(tmp_path / "cache.sqlite")
        for key in ("a", "b"):
            cache.put(key, "scripted", answer())
            assert cache.get(key) is not None
        with sqlite3.connect(tmp_path / "cache.sqlite") as db:
            db.execute("UPDATE entries SET input_tokens = 1e308, created = 1e308, output_tokens = 'many'")
        db.close()
        stats = cache.stats()
        assert stats.entries == 2 and stats.hits == 2
        assert stats.saved_input_tokens == 0 and stats.saved_output_tokens == 0
        assert stats.newest == 1e308

    def test_a_file_that_is_no_database_is_a_miss_and_clear_removes_it(self, tmp_path: Path) -> None:
        """A cache file of garbage: get and put are misses with one warning, stats says so, clear deletes it."""
        path = tmp_path / "cache.sqlite"
        path.write_bytes(b"this is not an SQLite database, it is garbage" * 100)
        problems: list[str] = []
        cache = CallCache(path, on_problem=problems.append)
        assert cache.get("k") is None
        assert not cache.put("k", "scripted", answer())
        assert len(problems) == 1 and "rolegraph cache clear" in problems[0]
        assert cache.stats().problem is not None
        assert cache.clear() == 0
        assert not path.exists()
        assert cache.put("k", "scripted", answer()) and cache.get("k") == answer()  # afresh

    def test_clear_removes_every_entry(self, tmp_path: Path) -> None:
        """`clear` empties the cache and says how many answers it removed."""
        cache = CallCache(tmp_path / "cache.sqlite")
        for number in range(3):
            cache.put(f"k{number}", "scripted", answer())
        assert cache.clear() == 3
        assert cache.stats() == CacheStats(tmp_path / "cache.sqlite")

    def test_concurrent_writers_leave_a_sound_cache(self, tmp_path: Path) -> None:
        """Four processes writing and reading one cache at once: every answer readable, the file sound."""
        program = textwrap.dedent(
            """
            import sys
            from pathlib import Path
            from rolegraph.models.cache import CallCache
            from rolegraph.models.model import Completion
            cache = CallCache(Path(sys.argv[1]))
            for n in range(150):
                key = f"{sys.argv[2]}-{n}"
                assert cache.put(key, "scripted", Completion(text=key * 20))
                assert cache.get(key).text == key * 20
                cache.get(f"{int(sys.argv[2]) - 1}-{n}")
            """
        )
        path = tmp_path / "cache.sqlite"
        writers = [subprocess.Popen([sys.executable, "-c", program, str(path), str(w)]) for w in range(4)]
        assert [w.wait(timeout=120) for w in writers] == [0, 0, 0, 0]
        cache = CallCache(path)
        assert cache.stats().entries == 600
        assert all(cache.get(f"{w}-{n}") is not None for w in range(4) for n in range(150))
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        db.close()


class TestRules:
    @pytest.mark.parametrize(
        ("settings", "model", "expected"),
        [
            (ModelSettings(temperature=0), SamplingModel(), True),
            (ModelSettings(temperature=0.7, seed=7), SamplingModel(), True),
            (ModelSettings(temperature=0.7), SamplingModel(), False),
            (ModelSettings(), SamplingModel(), False),
            (ModelSettings(), ScriptedModel([]), True),
            (ModelSettings(temperature=0.7), ScriptedModel([]), False),
        ],
        ids=["greedy", "seeded", "sampled", "hosted-default", "reproducible-default", "sampled-script"],
    )
    def test_only_reproducible_calls_are_cacheable(self, settings: ModelSettings, model: Model, expected: bool) -> None:
        """Temperature 0 or a seed: cacheable; temperature above 0 without a seed, or a sampling default: not."""
        assert cacheable(settings, model) is expected

    def test_the_key_names_the_model_and_how_it_was_built(self) -> None:
        """The same request to another model string, or the same model built otherwise, is another key."""
        one, other = ScriptedModel([], name="scripted:a.yaml"), ScriptedModel([], name="scripted:b.yaml")
        assert cache_key(one, REQUEST) == cache_key(ScriptedModel([], name="scripted:a.yaml"), REQUEST)
        assert cache_key(one, REQUEST) != cache_key(other, REQUEST)
        assert cache_key(one, REQUEST) != cache_key(one, {**REQUEST, "messages": "n" * 32})
        assert cache_key(AdaptedModel(), REQUEST) != cache_key(SamplingModel(), REQUEST)

    def test_new_weights_under_the_same_name_are_another_key(self) -> None:
        """A model whose weights changed (its revision) is another key, though its string and id are the same."""

        class Retrained(SamplingModel):
            @property
            def revision(self) -> str:
                return "1234:5678"

        assert Retrained().name == SamplingModel().name
        assert cache_key(Retrained(), REQUEST) != cache_key(SamplingModel(), REQUEST)


class TestRunCache:
    def run_cache(self, tmp_path: Path) -> RunCache:
        return RunCache(CallCache(tmp_path / "cache.sqlite"), Redactor([CANARY]))

    @pytest.mark.parametrize("finish", ["length", "refusal", "content_filter"])
    def test_a_call_cut_short_or_refused_is_not_kept(self, tmp_path: Path, finish: str) -> None:
        """Only answers that ended (`stop`) or asked for tools are kept."""
        cache, model = self.run_cache(tmp_path), ScriptedModel([])
        assert not cache.keep(model, REQUEST, ModelSettings(), answer(finish=finish))
        assert cache.lookup(model, REQUEST, ModelSettings()) is None

    def test_a_sampled_call_is_neither_kept_nor_looked_up(self, tmp_path: Path) -> None:
        """Temperature above 0 without a seed: nothing kept; the same call with a seed is kept and answered."""
        cache, model = self.run_cache(tmp_path), ScriptedModel([])
        sampled, seeded = ModelSettings(temperature=0.8), ModelSettings(temperature=0.8, seed=3)
        assert not cache.keep(model, REQUEST, sampled, answer())
        assert cache.keep(model, REQUEST, seeded, answer())
        assert cache.lookup(model, REQUEST, sampled) is None
        assert cache.lookup(model, REQUEST, seeded) == answer()
        assert (cache.tally.hits, cache.tally.usage) == (1, Usage(input_tokens=120, output_tokens=30))

    def test_a_kept_answer_holds_no_secret(self, tmp_path: Path) -> None:
        """The answer passes the run's redactor before it is stored: the canary is in no byte of the cache."""
        cache, model = self.run_cache(tmp_path), ScriptedModel([])
        assert cache.keep(model, REQUEST, ModelSettings(), answer(f"the key is {CANARY}"))
        hit = cache.lookup(model, REQUEST, ModelSettings())
        assert hit is not None and CANARY not in hit.text and "[REDACTED]" in hit.text
        cache.close()
        files = [p for p in tmp_path.iterdir() if p.name.startswith("cache.sqlite")]
        assert files and not any(CANARY.encode() in p.read_bytes() for p in files)
