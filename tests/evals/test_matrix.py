"""Settings grids: `--set` pairs parsed and validated, crossed with the models into labelled columns."""

from __future__ import annotations

import pytest

from rolegraph.evals.matrix import Column, columns, parse_grid
from rolegraph.models.model import ModelSettings


class TestParseGrid:
    def test_values_typed_in_order(self) -> None:
        """Temperatures are numbers, seeds integers; order is kept and a repeated value dropped."""
        assert parse_grid(["temperature=0, 0.7,0", "seed=1,2"]) == {"temperature": [0.0, 0.7], "seed": [1, 2]}

    def test_every_problem_at_once(self) -> None:
        """A malformed pair, an unknown name, a wrong type, an out-of-range value and a repeat are all named."""
        with pytest.raises(ValueError) as info:
            parse_grid(["temperature", "temprature=0.5", "seed=1.5", "temperature=3", "top_p=0.9", "top_p=1"])
        assert str(info.value).splitlines() == [
            "--set temperature: expected name=value[,value...], e.g. temperature=0,0.7",
            "--set temprature=0.5: unknown setting 'temprature'; a grid may set temperature, top_p, seed, max_tokens",
            "--set seed=1.5: seed '1.5' is not an integer",
            "--set temperature=3: temperature 3: input should be less than or equal to 2",
            "--set top_p=1: 'top_p' is set twice; give all its values in one --set",
        ]

    def test_empty(self) -> None:
        """No --set: an empty grid."""
        assert parse_grid([]) == {}


class TestColumns:
    def test_cartesian_product_with_the_models(self) -> None:
        """Each model crossed with every combination, model-major; labels name the settings."""
        cols = columns([None, "ollama:qwen2.5:7b"], {"temperature": [0.0, 0.7], "seed": [1, 2]})
        assert [c.label for c in cols] == [
            "default t=0 seed=1",
            "default t=0 seed=2",
            "default t=0.7 seed=1",
            "default t=0.7 seed=2",
            "ollama:qwen2.5:7b t=0 seed=1",
            "ollama:qwen2.5:7b t=0 seed=2",
            "ollama:qwen2.5:7b t=0.7 seed=1",
            "ollama:qwen2.5:7b t=0.7 seed=2",
        ]
        assert cols[2] == Column(model=None, settings={"temperature": 0.7, "seed": 1})

    def test_without_a_grid_one_column_per_model(self) -> None:
        """No grid: one column per distinct model, labelled as before, with no settings."""
        cols = columns([None, "x", "x"])
        assert [(c.label, c.model_settings()) for c in cols] == [("default", None), ("x", None)]

    def test_model_settings_set_only_the_grid_fields(self) -> None:
        """A column's settings set only its own fields, so the workflow's other settings survive a merge."""
        base = ModelSettings(temperature=0.2, seed=42, max_tokens=768)
        merged = base.merged(Column(settings={"temperature": 0.7}).model_settings())
        assert (merged.temperature, merged.seed, merged.max_tokens) == (0.7, 42, 768)

    def test_label_of_any_settings(self) -> None:
        """A re-scored run's settings may be any ModelSettings fields: the label still names them."""
        assert (
            Column(model="m", settings={"timeout": 30.0, "tool_choice": "auto"}).label
            == "m timeout=30 tool_choice=auto"
        )

    def test_label_order_is_fixed(self) -> None:
        """Settings are labelled in one order whatever the --set order, as a re-scored run's are."""
        cols = columns([None], {"seed": [1], "temperature": [0.7]})
        assert [c.label for c in cols] == ["default t=0.7 seed=1"]
