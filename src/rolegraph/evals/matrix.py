"""The columns of an eval: each model crossed with every combination of the settings grid.

```python
grid = parse_grid(["temperature=0,0.7", "seed=1,2"])
columns(["default"], grid)   # default t=0 seed=1, default t=0 seed=2, default t=0.7 seed=1, ...
```

Settings are laid over the workflow's ``default`` model settings for the run
(`Workflow.run(settings=...)`): a grid of temperatures and seeds makes the
reproducibility of a workflow measurable, as the spread of each metric per column.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from rolegraph.models.model import ModelSettings

__all__ = ["DEFAULT_MODEL", "GRID_SETTINGS", "Column", "columns", "parse_grid"]

DEFAULT_MODEL = "default"
"""How the workflow's own default model is labelled in reports."""

GRID_SETTINGS: dict[str, tuple[type[int] | type[float], str]] = {
    "temperature": (float, "t"),
    "top_p": (float, "top_p"),
    "seed": (int, "seed"),
    "max_tokens": (int, "max_tokens"),
}
"""The settings a grid may vary: their type and their short name in column labels."""


@dataclass(frozen=True)
class Column:
    """One column of an eval report: a model (None: the workflow's own) and the settings laid over it."""

    model: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    """`ModelSettings` fields and values (a grid's are numbers)."""

    @property
    def label(self) -> str:
        """``default``, ``ollama:qwen2.5:7b``, or with settings ``default t=0.7 seed=2`` (in `ModelSettings` order)."""
        parts = [self.model or DEFAULT_MODEL]
        # One order whatever the --set order, so a re-scored run (settings read back from run.json)
        # lands in the column it ran in.
        order = [*ModelSettings.model_fields]
        for name in sorted(self.settings, key=lambda n: order.index(n) if n in order else len(order)):
            value = self.settings[name]
            # A re-scored run may carry any ModelSettings field (the Python API takes them all).
            short = GRID_SETTINGS[name][1] if name in GRID_SETTINGS else name
            shown = f"{value:g}" if isinstance(value, int | float) and not isinstance(value, bool) else str(value)
            parts.append(f"{short}={shown}")
        return " ".join(parts)

    def model_settings(self) -> ModelSettings | None:
        """The settings as a `ModelSettings` with only these fields set (None when there are none).

        Raises:
            ValueError: A name is no `ModelSettings` field, or a value does not fit it.
        """
        if not self.settings:
            return None
        try:
            return ModelSettings(**self.settings)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"column {self.label!r}: {problems}") from None


def _value(name: str, text: str) -> int | float:
    kind, _ = GRID_SETTINGS[name]
    try:
        number = kind(text.strip())
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not {'an integer' if kind is int else 'a number'}") from None
    try:
        ModelSettings(**{name: number})
    except ValidationError as exc:
        raise ValueError(f"{number:g}: {exc.errors()[0]['msg'].lower()}") from None
    return number


def parse_grid(pairs: Sequence[str]) -> dict[str, list[int | float]]:
    """``name=v1,v2`` pairs (``--set``) as a grid of values per setting, in the order given.

    Raises:
        ValueError: A pair is malformed, a name is not one of `GRID_SETTINGS`, a value is of the
            wrong type or out of range, or a name is given twice; every problem, one a line.
    """
    grid: dict[str, list[int | float]] = {}
    problems: list[str] = []
    known = ", ".join(GRID_SETTINGS)
    for pair in pairs:
        name, sep, values = (part.strip() for part in pair.partition("="))
        where = f"--set {pair}"
        if not sep or not name or not values:
            problems.append(f"{where}: expected name=value[,value...], e.g. temperature=0,0.7")
        elif name not in GRID_SETTINGS:
            problems.append(f"{where}: unknown setting {name!r}; a grid may set {known}")
        elif name in grid:
            problems.append(f"{where}: {name!r} is set twice; give all its values in one --set")
        else:
            parsed: list[int | float] = []
            for text in values.split(","):
                try:
                    parsed.append(_value(name, text))
                except ValueError as exc:
                    problems.append(f"{where}: {name} {exc}")
            grid[name] = list(dict.fromkeys(parsed))
    if problems:
        raise ValueError("\n".join(problems))
    return grid


def columns(models: Sequence[str | None], grid: Mapping[str, Sequence[Any]] | None = None) -> list[Column]:
    """Every model crossed with every combination of `grid` (model-major, settings in grid order)."""
    names = list(grid or {})
    combos = list(itertools.product(*(grid or {}).values()))
    return [
        Column(model=model, settings=dict(zip(names, combo, strict=True)))
        for model in dict.fromkeys(models)
        for combo in combos
    ]
