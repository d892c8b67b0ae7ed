"""Price table: built-in prices, free local models, unknown models, user overrides and bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from rolegraph.traces.pricing import Price, PricesError, PriceTable


class TestPriceTable:
    def test_known_model(self) -> None:
        """A listed model costs its input and output tokens at its per-million prices."""
        assert PriceTable().cost("openai:gpt-4o-mini", 1_000_000, 2_000_000) == pytest.approx(0.15 + 1.20)

    @pytest.mark.parametrize("model", ["local", "llamacpp:/m/x.gguf", "scripted:writer.yaml", "ollama:llama3"])
    def test_local_models_are_free(self, model: str) -> None:
        """Embedded, scripted and Ollama models cost 0."""
        assert PriceTable().cost(model, 5000, 500) == 0.0

    @pytest.mark.parametrize("model", ["hf:some/model", "openai-compatible:m@http://x", None])
    def test_unknown_model_has_no_cost(self, model: str | None) -> None:
        """An unknown model's cost is None ("?"), never 0."""
        assert PriceTable().cost(model, 5000, 500) is None

    def test_prices_asked_again_are_the_same(self) -> None:
        """A model priced by a pattern, or unknown, is priced the same when asked again, past any remembered count."""
        table = PriceTable()
        models = [f"scripted:step{i}.yaml" for i in range(1500)] + [f"hf:org/m{i}" for i in range(1500)]
        for _ in range(2):
            assert all(table.price(m) == Price(0.0, 0.0) for m in models[:1500])
            assert all(table.price(m) is None for m in models[1500:])
        assert table.price("openai:gpt-4o") == Price(2.5, 10)

    def test_user_file_overrides_and_adds(self, tmp_path: Path) -> None:
        """A user file replaces built-in prices and adds patterns; later files win; a missing file is skipped."""
        first = tmp_path / "prices.yaml"
        first.write_text('openai:gpt-4o-mini: {input: 1, output: 2}\n"hf:*": {input: 0.5, output: 0.5}\n')
        second = tmp_path / "more.yaml"
        second.write_text("openai:gpt-4o-mini: {input: 3}\n")
        table = PriceTable.load(first, tmp_path / "missing.yaml", None)
        assert table.price("openai:gpt-4o-mini") == Price(1, 2)
        assert table.cost("hf:org/model", 2_000_000, 0) == pytest.approx(1.0)
        assert PriceTable.load(first, second).price("openai:gpt-4o-mini") == Price(3, 0)
        assert table.price("openai:gpt-4o") == Price(2.5, 10)

    @pytest.mark.parametrize("text", ["- a\n- b\n", "m: 3\n", "m: {input: x}\n", "m: {inputs: 1}\n", "m: [\n"])
    def test_bad_file(self, tmp_path: Path, text: str) -> None:
        """A malformed price file raises PricesError naming the file."""
        path = tmp_path / "prices.yaml"
        path.write_text(text)
        with pytest.raises(PricesError, match=r"prices\.yaml"):
            PriceTable.load(path)
