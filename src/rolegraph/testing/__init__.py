"""Helpers for testing workflows and agents without a real model.

```python
from rolegraph.testing import ScriptedModel, final, tool_call

model = ScriptedModel([tool_call("library_search", query="LoRA"), final({"claims": []}, thought="nothing found")])
result = await Agent(role, model, [library]).run("What is LoRA?")
model.assert_complete()
```

Beside the scripted model: tools that raise, hang or return garbage
(`rolegraph.testing.tools`), and `FaultServer`, a loopback HTTP server answering
429 with ``Retry-After``, resetting connections, stalling, or with a valid chat
completion, in the order a test scripts (`rolegraph.testing.faults`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from rolegraph.models.envelope import final_text
from rolegraph.models.messages import ToolCall
from rolegraph.models.model import Completion
from rolegraph.models.scripted import Responder, ScriptedCall, ScriptedModel
from rolegraph.testing.faults import Chat, Fault, FaultRequest, FaultServer, Reset, Stall, Status, rate_limited
from rolegraph.testing.tools import GARBAGE, garbage_tool, hanging_tool, raising_tool

__all__ = [
    "GARBAGE",
    "Chat",
    "Fault",
    "FaultRequest",
    "FaultServer",
    "Reset",
    "Responder",
    "ScriptedCall",
    "ScriptedModel",
    "Stall",
    "Status",
    "final",
    "garbage_tool",
    "hanging_tool",
    "raising_tool",
    "rate_limited",
    "text",
    "tool_call",
    "tool_calls",
]


def tool_call(name: str, thought: str = "", **args: Any) -> Completion:
    """A completion that calls one tool.

    Args:
        name: The tool to call.
        thought: The model's reasoning for the call.
        **args: The tool's arguments.

    Returns:
        A completion whose call id is filled in by `ScriptedModel` (``call_<n>``).
    """
    return tool_calls([(name, args)], thought=thought)


def tool_calls(calls: Iterable[tuple[str, Mapping[str, Any]]], thought: str = "") -> Completion:
    """A completion that calls several tools at once.

    Args:
        calls: ``(tool name, arguments)`` pairs, in order.
        thought: The model's reasoning for the calls.

    Returns:
        A completion whose call ids are filled in by `ScriptedModel` (``call_<n>``).
    """
    made = [ToolCall(id="", name=name, arguments=json.dumps(dict(args), ensure_ascii=False)) for name, args in calls]
    return Completion(text=thought, tool_calls=made, finish_reason="tool_calls")


def final(answer: Any, thought: str = "") -> Completion:
    """A completion giving the final answer, as the ``{"thought", "answer"}`` envelope agents expect.

    Args:
        answer: The answer (JSON-ready data matching the role's output schema).
        thought: The model's reasoning for the answer.
    """
    return Completion(text=final_text(answer, thought))


def text(content: str) -> Completion:
    """A completion of raw text, e.g. the malformed output of a weak model.

    Args:
        content: The text the model returns.
    """
    return Completion(text=content)
