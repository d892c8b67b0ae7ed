"""Chat messages, tool calls and tool specs: the OpenAI-style lingua franca of providers."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Message", "ToolCall", "ToolSpec"]


class ToolCall(BaseModel):
    """A model's request to call one tool."""

    model_config = ConfigDict(frozen=True)

    id: str
    """Call id, unique within a conversation; tool results refer back to it."""
    name: str
    """Name of the tool to call (may be one the agent does not have: models make mistakes)."""
    arguments: str
    """The arguments as the model wrote them: JSON text, possibly malformed."""

    def parsed_arguments(self) -> dict[str, Any]:
        """Parse `arguments` as a JSON object.

        Raises:
            ValueError: The text is not JSON or not an object.
        """
        value = json.loads(self.arguments or "{}")
        if not isinstance(value, dict):
            raise ValueError(f"tool arguments must be a JSON object, got {type(value).__name__}")
        return value


class Message(BaseModel):
    """One chat message, shaped like OpenAI's chat format."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    """Tool calls made by an assistant message."""
    tool_call_id: str | None = None
    """For a `tool` message: the id of the call this is the result of."""
    name: str | None = None
    """For a `tool` message: the name of the tool that produced it."""
    reasoning: list[dict[str, Any]] = Field(default_factory=list, exclude_if=lambda items: not items)
    """For an assistant message: the reasoning items the provider returned with it (OpenAI's Responses
    API), opaque, sent back with the next turn. Left out of the serialised message when empty, so
    messages without it serialise (and digest) as they always did."""

    @classmethod
    def system(cls, content: str) -> Message:
        """A system message."""
        return cls(role="system", content=content)

    @classmethod
    def user(cls, content: str) -> Message:
        """A user message."""
        return cls(role="user", content=content)

    @classmethod
    def assistant(
        cls, content: str, tool_calls: list[ToolCall] | None = None, reasoning: list[dict[str, Any]] | None = None
    ) -> Message:
        """An assistant message, optionally with tool calls and the provider's reasoning items."""
        return cls(role="assistant", content=content, tool_calls=tool_calls or [], reasoning=reasoning or [])

    @classmethod
    def tool(cls, call: ToolCall, content: str) -> Message:
        """The result of `call`, as a `tool` message."""
        return cls(role="tool", content=content, tool_call_id=call.id, name=call.name)

    def to_openai(self) -> dict[str, Any]:
        """This message as an OpenAI chat-completions message dict."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in self.tool_calls
            ]
        if self.role == "tool":
            out["tool_call_id"] = self.tool_call_id
        return out


class ToolSpec(BaseModel):
    """What a model is told about a tool: its name, purpose and argument schema."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    parameters: dict[str, Any]
    """JSON Schema of the arguments object."""

    def to_openai(self) -> dict[str, Any]:
        """This spec as an OpenAI `tools` entry."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }
