"""OpenAI's Responses API (``POST /responses``), the protocol ``openai:<model>`` speaks by default.

What goes out, from rolegraph's chat-shaped messages:

- system, user and plain assistant messages as input messages (``{"role": ..., "content": ...}``);
- an assistant turn that called tools as its reasoning items (if the model returned
  any), its text, then one ``function_call`` item per call; a tool result as a
  ``function_call_output`` item;
- tools as ``{"type": "function", "name", "description", "parameters", "strict": false}``
  (strict mode would reject the optional fields our argument schemas have);
- an output schema as ``text.format = {"type": "json_schema", "name": "final", "schema": ...}``;
- ``max_tokens`` as ``max_output_tokens``; ``seed`` is not sent (the Responses API has none).

What comes back: the text of the output messages; ``function_call`` items as tool
calls; ``reasoning`` items kept verbatim on the `Completion` (and so on the
assistant message the agent appends), to be sent back with the next turn as the
API asks; a refusal as the text, with ``finish_reason="refusal"``; an incomplete
response as what was written, with ``finish_reason="length"`` (``max_output_tokens``)
or the reason the server gave; a failed response as a `ModelError`.

Retries, timeouts and errors are those of every remote model (`rolegraph.models.remote`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rolegraph.errors import ModelError
from rolegraph.models._openai_base import OpenAIProtocolModel
from rolegraph.models.messages import Message, ToolCall, ToolSpec
from rolegraph.models.model import Completion, ModelSettings, Usage
from rolegraph.models.remote import strict_json, valid_text
from rolegraph.retry import is_transient, trace_retry

if TYPE_CHECKING:
    from openai.types.responses import Response

__all__ = ["OpenAIResponsesModel", "responses_input"]


class OpenAIResponsesModel(OpenAIProtocolModel):
    """A model behind OpenAI's Responses API (OpenAI itself, or a server that implements it).

    Args:
        model: The model id, e.g. ``gpt-4o-mini``.
        provider: The connection (default: OpenAI's API, key from ``OPENAI_API_KEY``).
        retry: How transient failures are retried (default `RetryPolicy()`: 3 retries).
        name: The model string this instance stands for (default ``openai:<model>``).

    Raises:
        ModelNotAvailableError: A required key is missing (the message names the variable, never a value).
    """

    @property
    def options(self) -> dict[str, Any]:
        """The API spoken: ``{"api": "responses"}``."""
        return {"api": "responses"}

    async def _complete(
        self,
        messages: Sequence[Message],
        tools: list[ToolSpec],
        output_schema: dict[str, Any] | None,
        settings: ModelSettings,
    ) -> Completion:
        request = self._request(messages, tools, output_schema, settings)
        request["timeout"] = settings.attempt_timeout or settings.timeout  # per try; `timeout` bounds them all

        async def create() -> Response:
            sent: Response = await self.provider.client.responses.create(**request)
            return sent

        response = await self._policy(settings).call(create, retry_if=is_transient, on_retry=trace_retry)
        return self._completion(response, structured=output_schema is not None)

    def _request(
        self,
        messages: Sequence[Message],
        tools: list[ToolSpec],
        output_schema: dict[str, Any] | None,
        settings: ModelSettings,
    ) -> dict[str, Any]:
        request: dict[str, Any] = {"model": self.model, "input": responses_input(messages)}
        if tools:
            request["tools"] = [
                {
                    "type": "function",
                    "name": spec.name,
                    "description": spec.description,
                    "parameters": spec.parameters,
                    "strict": False,
                }
                for spec in tools
            ]
            request["tool_choice"] = "required" if settings.tool_choice == "required" else "auto"
        if output_schema is not None:
            request["text"] = {"format": {"type": "json_schema", "name": "final", "schema": output_schema}}
        if settings.temperature is not None:
            request["temperature"] = settings.temperature
        if settings.top_p is not None:
            request["top_p"] = settings.top_p
        if settings.max_tokens is not None:
            request["max_output_tokens"] = settings.max_tokens
        return request

    def _completion(self, response: Response, *, structured: bool) -> Completion:
        if response.status == "failed":
            error = response.error
            detail = f"{error.code}: {error.message}" if error is not None else "no reason given"
            raise ModelError(self.provider.redactor.text(f"model {self.name} failed: the response failed ({detail})"))
        texts: list[str] = []
        refusals: list[str] = []
        calls: list[ToolCall] = []
        reasoning: list[dict[str, Any]] = []
        for item in response.output or []:
            if item.type == "message":
                for part in item.content or []:
                    if part.type == "output_text":
                        texts.append(valid_text(part.text or ""))
                    elif part.type == "refusal":
                        refusals.append(valid_text(part.refusal or ""))
            elif item.type == "function_call":
                calls.append(
                    ToolCall(id=item.call_id, name=valid_text(item.name), arguments=valid_text(item.arguments or ""))
                )
            elif item.type == "reasoning":
                reasoning.append(item.to_dict(exclude_none=True))
        text = "".join(texts)
        usage = Usage()
        if response.usage is not None:
            usage = Usage(input_tokens=response.usage.input_tokens, output_tokens=response.usage.output_tokens)
        return Completion(
            text="".join(refusals) if refusals and not text else (strict_json(text) if structured else text),
            tool_calls=calls,
            usage=usage,
            finish_reason=_finish_reason(response, refused=bool(refusals), called=bool(calls)),
            model=response.model or self.model,
            reasoning=reasoning,
            raw=response,
        )


def _finish_reason(response: Response, *, refused: bool, called: bool) -> str:
    if response.status == "incomplete":
        reason = response.incomplete_details.reason if response.incomplete_details is not None else None
        return "length" if reason in (None, "max_output_tokens") else str(reason)
    if refused:
        return "refusal"
    return "tool_calls" if called else "stop"


def responses_input(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Chat-shaped messages as Responses API input items (see the module docstring)."""
    items: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "tool":
            items.append({"type": "function_call_output", "call_id": message.tool_call_id, "output": message.content})
            continue
        if message.role == "assistant":
            items.extend(message.reasoning)
            if message.content or not message.tool_calls:
                items.append({"role": "assistant", "content": message.content})
            items.extend(
                {"type": "function_call", "call_id": call.id, "name": call.name, "arguments": call.arguments}
                for call in message.tool_calls
            )
            continue
        items.append({"role": message.role, "content": message.content})
    return items
