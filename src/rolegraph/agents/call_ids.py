"""Call ids: the one place their format is built and read.

A call id names a call's place in a run, so the same call gets the same id in
every process that works on the run (a resume, a replay)::

    research[1]#1/chat/2        step research, item 1, first visit, second model call
    research[1]#1/tool/2/0      the first tool call that model call asked for
    research[1]#1~2/chat/1      item 1's second try (``on_item_error: retry:N``), its first model call
    search[1]#1/tool/0/0        the one call of a tool or function step (no model call asked for it)
    research[1]#1/check/2/0     the model call of the first output check of model call 2's answer
                                (``check/0/...``: of a tool, function or composed step's output)

Step ids are identifiers, so nothing before the kind contains a ``/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "MODEL_CALL_KINDS",
    "CallId",
    "CallKind",
    "call_kind",
    "call_prefix",
    "chat_call_id",
    "check_call_id",
    "step_call_id",
    "tool_call_id",
]

CallKind = Literal["chat", "tool", "check"]

MODEL_CALL_KINDS = frozenset({"chat", "check"})
"""The kinds of call a model answers (their tokens and dollars count): an agent's, and an output check's."""


def call_prefix(step_id: str, item_index: int | None, visit: int, attempt: int = 1) -> str:
    """The prefix of one agent run's call ids: ``step``, ``step[item]``, then ``#visit``, then ``~attempt``
    past an item's first try (a retry makes new calls, never replays the failed try's)."""
    item = "" if item_index is None else f"[{item_index}]"
    again = "" if attempt == 1 else f"~{attempt}"
    return f"{step_id}{item}#{visit}{again}"


def chat_call_id(prefix: str, number: int) -> str:
    """The id of an agent's `number`-th model call (1-based)."""
    return f"{prefix}/chat/{number}"


def tool_call_id(prefix: str, number: int, index: int) -> str:
    """The id of the `index`-th tool call (0-based) requested by model call `number`."""
    return f"{prefix}/tool/{number}/{index}"


def check_call_id(prefix: str, number: int, index: int) -> str:
    """The id of the model call the `index`-th output check (0-based) makes on model call `number`'s answer
    (number 0: the output of a step no model wrote whole)."""
    return f"{prefix}/check/{number}/{index}"


def step_call_id(prefix: str) -> str:
    """The id of the one call a tool or function step makes (model call number 0: no model asked for it)."""
    return tool_call_id(prefix, 0, 0)


def call_kind(call_id: str) -> str:
    """The kind of call `call_id` names: `CallId.parse`'s ``kind``, without reading the rest (asked at every call)."""
    parts = call_id.split("/", 2)
    return parts[1] if len(parts) > 1 else ""


@dataclass(frozen=True)
class CallId:
    """A call id, read back into its parts."""

    prefix: str
    """The agent run's prefix (`call_prefix`)."""
    kind: str
    """``chat``, ``tool`` or ``check`` (anything else for an id this version did not write)."""
    number: int | None
    """The model call's number (for a tool call: the model call that asked for it); None if unreadable."""

    @classmethod
    def parse(cls, call_id: str) -> CallId:
        """Split `call_id` into its parts; an id of another shape gives empty/None parts, never an error."""
        prefix, kind, number = [*call_id.split("/"), "", ""][:3]
        return cls(prefix, kind, int(number) if number.isdigit() else None)

    def previous_chat(self) -> str | None:
        """The id of the model call before this one in the same agent run (None for the first)."""
        if self.number is None or self.number <= 1:
            return None
        return chat_call_id(self.prefix, self.number - 1)
