"""Prices of model calls: USD per million input and output tokens, by model string.

```python
prices = PriceTable.load(home / "prices.yaml")     # built-in table, overridden by the user's file
prices.cost("openai:gpt-4o-mini", 12_000, 800)    # 0.00228
prices.cost("local", 12_000, 800)                 # 0.0: embedded models are free
prices.cost("hf:some/model", 12_000, 800)         # None: unknown, shown as "?" rather than 0
```

A user file maps model strings (or ``fnmatch`` patterns) to prices::

    openai:gpt-4o-mini: {input: 0.15, output: 0.60}
    "openai-compatible:*@http://localhost*": {input: 0, output: 0}
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["DEFAULT_PRICES", "Price", "PriceTable", "PricesError"]


class PricesError(ValueError):
    """A price file cannot be read or has an entry that is not ``{input: <number>, output: <number>}``."""


@dataclass(frozen=True)
class Price:
    """What a model's tokens cost."""

    input_per_mtok: float
    """USD per million input (prompt) tokens."""
    output_per_mtok: float
    """USD per million output (completion) tokens."""

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """USD for a number of input and output tokens."""
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1_000_000


FREE = Price(0.0, 0.0)

#: List prices (USD per 1M tokens, standard tier) of a few well-known models; local models are free.
DEFAULT_PRICES: Mapping[str, Price] = {
    "openai:gpt-4o": Price(2.50, 10.00),
    "openai:gpt-4o-mini": Price(0.15, 0.60),
    "openai:gpt-4.1": Price(2.00, 8.00),
    "openai:gpt-4.1-mini": Price(0.40, 1.60),
    "openai:gpt-4.1-nano": Price(0.10, 0.40),
    "openai:o3-mini": Price(1.10, 4.40),
    "openai:o4-mini": Price(1.10, 4.40),
    "local": FREE,
    "llamacpp:*": FREE,
    "scripted:*": FREE,
    "ollama:*": FREE,
}


_MATCHES_KEPT = 1024
"""Model strings whose pattern match a table remembers (a run names a handful)."""


class PriceTable:
    """Prices by model string: exact names first, then patterns (user entries before built-in ones)."""

    def __init__(self, prices: Mapping[str, Price] = DEFAULT_PRICES, overrides: Mapping[str, Price] | None = None):
        merged = {**(overrides or {}), **{k: v for k, v in prices.items() if k not in (overrides or {})}}
        self.prices: dict[str, Price] = merged
        self._patterns = [(k, v) for k, v in merged.items() if any(c in k for c in "*?[")]
        self._matched: dict[str, Price | None] = {}
        """Each model string's pattern match, found once: every recorded model call asks for its price."""

    @classmethod
    def load(cls, *paths: Path | None) -> PriceTable:
        """The built-in table overridden by each existing file in `paths` (later files win).

        Raises:
            PricesError: A file exists but is not a valid price table.
        """
        overrides: dict[str, Price] = {}
        for path in paths:
            if path is not None and path.is_file():
                overrides = {**overrides, **read_prices(path)}
        return cls(DEFAULT_PRICES, overrides)

    def price(self, model: str) -> Price | None:
        """The price of `model`, or None if the table does not know it."""
        exact = self.prices.get(model)
        if exact is not None:
            return exact
        if model in self._matched:
            return self._matched[model]
        matched = next((price for pattern, price in self._patterns if fnmatch.fnmatchcase(model, pattern)), None)
        if len(self._matched) < _MATCHES_KEPT:
            self._matched[model] = matched
        return matched

    def cost(self, model: str | None, input_tokens: int, output_tokens: int) -> float | None:
        """USD for the tokens of one model, or None if its price is unknown."""
        price = self.price(model) if model else None
        return None if price is None else price.cost(input_tokens, output_tokens)

    def totals(self, usage: Mapping[str | None, tuple[int, int]]) -> tuple[int, int, float | None]:
        """Input tokens, output tokens and USD (None if a model's price is unknown) of tokens by model."""
        cost: float | None = 0.0
        for model, (input_tokens, output_tokens) in usage.items():
            one = self.cost(model, input_tokens, output_tokens)
            cost = None if one is None or cost is None else cost + one
        return sum(u[0] for u in usage.values()), sum(u[1] for u in usage.values()), cost


def read_prices(path: Path) -> dict[str, Price]:
    """Read a user price file (``model: {input: usd_per_mtok, output: usd_per_mtok}``).

    Raises:
        PricesError: The file is unreadable, not a mapping, or an entry is malformed.
    """
    try:
        document: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PricesError(f"{path}: cannot read the price file: {exc}") from exc
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise PricesError(f"{path}: expected a mapping of model strings to {{input: ..., output: ...}}")
    prices: dict[str, Price] = {}
    for model, entry in document.items():
        try:
            if not isinstance(entry, dict) or set(entry) - {"input", "output"}:
                raise TypeError
            value_in, value_out = entry.get("input", 0), entry.get("output", 0)
            if isinstance(value_in, bool) or isinstance(value_out, bool):
                raise TypeError
            prices[str(model)] = Price(float(value_in), float(value_out))
        except (TypeError, ValueError):
            raise PricesError(
                f"{path}: price of {model!r} must be {{input: <USD per 1M tokens>, output: <USD per 1M tokens>}}"
            ) from None
    return prices
