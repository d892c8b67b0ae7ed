"""Two runs' tool calls of one step, side by side: item by item, identical stretches collapsed.

```python
for line in compare_calls(step.tool_calls[0], step.tool_calls[1]):
    print(line.item, line.side, line.count, line.text)  # 0 = 2 ... / 0 A 1 library_search {...}
```
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["CallLine", "compare_calls"]


@dataclass(frozen=True)
class CallLine:
    """One line of the comparison.

    Attributes:
        item: The ``for_each`` item the calls belong to (None for a step without items).
        side: ``=`` both runs made these calls, ``A`` only the first, ``B`` only the second.
        text: The call, ``name {arguments}`` (for ``=``, the first of the stretch).
        count: How many calls the line stands for (an identical stretch is one line).
    """

    item: str | None
    side: Literal["=", "A", "B"]
    text: str
    count: int = 1


def _text(call: dict[str, Any]) -> str:
    return f"{call.get('name')} {json.dumps(call.get('arguments'), ensure_ascii=False, sort_keys=True)}"


def _by_item(calls: Sequence[dict[str, Any]]) -> dict[str | None, list[str]]:
    grouped: dict[str | None, list[str]] = {}
    for call in calls:
        item = call.get("item")
        grouped.setdefault(None if item is None else str(item), []).append(_text(call))
    return grouped


def compare_calls(a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]]) -> list[CallLine]:
    """The calls of run A and run B (each ``{name, arguments, item}``), compared item by item in order."""
    first, second = _by_item(a), _by_item(b)
    lines: list[CallLine] = []
    for item in dict.fromkeys([*first, *second]):
        left, right = first.get(item, []), second.get(item, [])
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, left, right, autojunk=False).get_opcodes():
            if tag == "equal":
                lines.append(CallLine(item, "=", left[i1], i2 - i1))
                continue
            lines += [CallLine(item, "A", text) for text in left[i1:i2]]
            lines += [CallLine(item, "B", text) for text in right[j1:j2]]
    return lines
