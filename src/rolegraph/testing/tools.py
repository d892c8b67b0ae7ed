"""Tools that misbehave on purpose: they raise, hang, or return garbage, for testing how workflows cope.

```python
from rolegraph.testing import garbage_tool, hanging_tool, raising_tool

agent = Agent(role, model, [raising_tool("search"), hanging_tool("fetch", timeout=0.1)])
```

Each takes an optional ``query`` argument, so a model may call it with ``{}`` or
``{"query": "..."}``. The agent must turn every misbehaviour into an error
observation (or, for garbage, an odd one) and go on.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Sequence
from typing import Any

from rolegraph.tools.tool import FunctionTool, tool

__all__ = ["GARBAGE", "Unprintable", "garbage_tool", "hanging_tool", "raising_tool"]


class Unprintable:
    """A value that cannot be turned into text: its ``str`` and ``repr`` raise."""

    def __str__(self) -> str:
        raise RuntimeError("this value refuses to be printed")

    __repr__ = __str__


GARBAGE: tuple[Any, ...] = (
    "",
    "\x00\x01\x02\x1b[31m\u202e\ufeff control characters",
    "\ud800 a lone surrogate",
    "x" * 200_000,
    b"\xff\xfe\x00 raw bytes",
    math.nan,
    {"deep": [[[[[[[[[[[[[[[[[[[[{"x": None}]]]]]]]]]]]]]]]]]]]]},
    '{"truncated": "json',
    Unprintable(),
)
"""What `garbage_tool` returns, in turn: empty, control characters, a lone surrogate, a huge string,
bytes, NaN, deep nesting, truncated JSON, and a value that cannot be printed at all."""


def raising_tool(name: str = "failing_tool", error: BaseException | str = "the tool broke") -> FunctionTool:
    """A tool whose every call raises `error` (a string becomes a `RuntimeError`)."""

    async def fail(query: str = "") -> str:
        raise error if isinstance(error, BaseException) else RuntimeError(error)

    return FunctionTool(fail, name=name, description=f"{name}: look something up (it always fails).")


def hanging_tool(name: str = "hanging_tool", timeout: float = 0.05) -> FunctionTool:
    """A tool whose calls never return; the agent abandons each after `timeout` seconds."""

    @tool(name=name, description=f"{name}: look something up (it never answers).", timeout=timeout)
    async def hang(query: str = "") -> str:
        await asyncio.Event().wait()  # never set: only cancellation ends the call
        raise AssertionError("unreachable")

    return hang


def garbage_tool(name: str = "garbage_tool", outputs: Sequence[Any] = GARBAGE) -> FunctionTool:
    """A tool returning each of `outputs` in turn (cycling), by default the `GARBAGE` values."""
    values = itertools.cycle(list(outputs))

    async def garbage(query: str = "") -> Any:
        return next(values)

    return FunctionTool(garbage, name=name, description=f"{name}: look something up (it answers nonsense).")
