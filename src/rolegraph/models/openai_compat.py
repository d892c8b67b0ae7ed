"""OpenAI's chat-completions protocol, spoken to any `OpenAIProvider` (Ollama, vLLM, llama.cpp's server, ...).

Tools go out natively (``tools=[...]``); an output schema goes out as
``response_format={"type": "json_schema", ...}``. Some servers do not know that
form: llama-cpp-python's server rejects it and wants ``{"type": "json_object",
"schema": ...}`` instead. In ``structured_output="auto"`` mode a model tries the
standard form first and, if the server refuses it, switches to the other for the
rest of its life. ``tool_choice="required"`` is learned the same way (falling back
to ``auto``, which the agent checks anyway).

Retries, timeouts and error handling are every remote model's
(`rolegraph.models.remote`): transient failures are retried by
`rolegraph.retry.RetryPolicy`, a refused key names its variable, and no secret
leaves through an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from rolegraph.errors import ModelError
from rolegraph.models._openai_base import OpenAIProtocolModel
from rolegraph.models.messages import Message, ToolCall, ToolSpec
from rolegraph.models.model import Completion, ModelSettings, Usage
from rolegraph.models.providers import PLACEHOLDER_API_KEY, OpenAIProvider
from rolegraph.models.remote import strict_json, valid_text
from rolegraph.retry import RetryPolicy, is_transient, trace_retry

if TYPE_CHECKING:
    import openai
    from openai.types.chat import ChatCompletion

__all__ = ["PLACEHOLDER_API_KEY", "OpenAIModel", "StructuredOutput"]

StructuredOutput = Literal["auto", "json_schema", "json_object"]
"""How an output schema is sent: OpenAI's ``json_schema`` form, llama-cpp-python's ``json_object`` + ``schema``,
or ``auto`` (the first, falling back to the second when the server refuses it)."""


class OpenAIModel(OpenAIProtocolModel):
    """A model behind an OpenAI-compatible chat-completions endpoint.

    Args:
        model: The model id the server knows, e.g. ``gpt-4o-mini`` or ``qwen2.5:7b``.
        provider: The connection (default: built from `base_url`, `api_key_env`, `require_key`
            and `client`, which are shorthand for ``OpenAIProvider(...)`` and may not be given with it).
        base_url: The API root, e.g. ``http://localhost:11434/v1`` (default: OpenAI's).
        api_key_env: The environment variable holding the key, read once, here.
        require_key: Fail when the key is missing (default: only for OpenAI's own API).
            Otherwise a placeholder key is sent.
        structured_output: How output schemas are sent (see `StructuredOutput`).
        retry: How transient failures are retried (default `RetryPolicy()`: 3 retries);
            a call's `ModelSettings.retries` overrides its number of retries.
        client: A ready client to use instead of building one (its key is not read from the environment).
        name: The model string this instance stands for (default ``openai:<model>``).

    Raises:
        ModelNotAvailableError: A required key is missing (the message names the variable, never a value).
    """

    def __init__(
        self,
        model: str,
        *,
        provider: OpenAIProvider | None = None,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        require_key: bool | None = None,
        structured_output: StructuredOutput = "auto",
        retry: RetryPolicy | None = None,
        client: openai.AsyncOpenAI | None = None,
        name: str | None = None,
    ) -> None:
        name = name or f"openai:{model}"
        if provider is None:
            provider = OpenAIProvider(
                name="openai" if base_url is None else "openai-compatible",
                base_url=base_url,
                key_env=api_key_env,
                require_key=require_key,
                client=client,
                purpose=f"model {name}",
            )
        elif base_url is not None or client is not None or require_key is not None:
            raise ValueError("give either a provider or base_url/require_key/client, not both")
        super().__init__(model, provider=provider, retry=retry, name=name)
        self.api_key_env = self.provider.key_env
        self._structured: StructuredOutput = structured_output
        self._tool_choice_required: bool | None = None
        """Whether the server takes ``tool_choice="required"`` (None: not tried yet)."""

    @property
    def options(self) -> dict[str, Any]:
        """``{"api": "chat"}`` for ``openai:`` models, whose default is Responses; nothing for the others."""
        return {"api": "chat"} if self.provider.official else {}

    async def _complete(
        self,
        messages: Sequence[Message],
        tools: list[ToolSpec],
        output_schema: dict[str, Any] | None,
        settings: ModelSettings,
    ) -> Completion:
        """Send one chat-completions request and return the assistant turn."""
        response = await self._send(messages, tools, output_schema, settings)
        return self._completion(response, structured=output_schema is not None)

    async def _send(
        self,
        messages: Sequence[Message],
        tools: list[ToolSpec],
        output_schema: dict[str, Any] | None,
        settings: ModelSettings,
    ) -> ChatCompletion:
        """Send the request, learning on first use which forms of it the server accepts.

        Two features are optional on OpenAI-compatible servers: the ``json_schema``
        response format and ``tool_choice="required"``. While one this request needs is
        still unknown, a 5xx is not retried (llama-cpp-python's server refuses both
        with a 500); if the server refuses it, the model falls back (``json_object`` +
        schema; ``auto``) for good. Every other transient failure is retried by the policy.
        """
        import openai

        required = bool(tools) and settings.tool_choice == "required"
        policy = self._policy(settings)
        for _ in range(3):  # at most one fallback per feature, then one plain attempt
            unknown = self._unknown(output_schema is not None, required)
            request = self._request(messages, tools, output_schema, settings)
            request["timeout"] = settings.attempt_timeout or settings.timeout  # per try; `timeout` bounds them all

            async def create(request: dict[str, Any] = request) -> ChatCompletion:
                sent: ChatCompletion = await self.provider.client.chat.completions.create(**request)
                return sent

            try:
                response: ChatCompletion = await policy.call(
                    create, retry_if=_transient_while_probing if unknown else is_transient, on_retry=trace_retry
                )
            except openai.APIStatusError as exc:
                if not unknown or exc.status_code in (401, 403, 404, 429):
                    raise
                if not self._fall_back(exc, output_schema is not None, required) and exc.status_code < 500:
                    raise
                continue
            if output_schema is not None and self._structured == "auto":
                self._structured = "json_schema"
            if required and self._tool_choice_required is None:
                self._tool_choice_required = True
            return response
        raise ModelError(f"model {self.name}: the server refused the request in every supported form")

    def _unknown(self, structured: bool, required: bool) -> bool:
        return (structured and self._structured == "auto") or (required and self._tool_choice_required is None)

    def _fall_back(self, exc: openai.APIStatusError, structured: bool, required: bool) -> bool:
        """Switch off the feature the server refused; whether there was one to switch off."""
        if structured and self._structured == "auto" and "response_format" in f"{exc.message} {exc.body}":
            self._structured = "json_object"
            return True
        if required and self._tool_choice_required is None:
            self._tool_choice_required = False
            return True
        if structured and self._structured == "auto" and exc.status_code >= 500:
            self._structured = "json_schema"  # the format was not the problem: stop probing, retry normally
            return True
        return False

    def _request(
        self,
        messages: Sequence[Message],
        tools: list[ToolSpec],
        output_schema: dict[str, Any] | None,
        settings: ModelSettings,
    ) -> dict[str, Any]:
        request: dict[str, Any] = {"model": self.model, "messages": [m.to_openai() for m in messages]}
        if tools:
            request["tools"] = [spec.to_openai() for spec in tools]
            # Always explicit: llama-cpp-python's function-calling formats treat "unset" as "none".
            required = settings.tool_choice == "required" and self._tool_choice_required is not False
            request["tool_choice"] = "required" if required else "auto"
        if output_schema is not None:
            if self._structured == "json_object":
                request["response_format"] = {"type": "json_object", "schema": output_schema}
            else:
                request["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "final", "schema": output_schema},
                }
        if settings.temperature is not None:
            request["temperature"] = settings.temperature
        if settings.top_p is not None:
            request["top_p"] = settings.top_p
        if settings.seed is not None:
            request["seed"] = settings.seed
        if settings.max_tokens is not None:
            # OpenAI's reasoning models reject `max_tokens`; other servers often only know it.
            request["max_completion_tokens" if self.provider.official else "max_tokens"] = settings.max_tokens
        return request

    def _completion(self, response: ChatCompletion, *, structured: bool) -> Completion:
        if not response.choices:
            raise ModelError(f"model {self.name} returned no choices")
        choice = response.choices[0]
        message = choice.message
        calls = [
            ToolCall(id=c.id, name=valid_text(c.function.name), arguments=valid_text(c.function.arguments or ""))
            for c in message.tool_calls or []
            if c.type == "function"
        ]
        usage = Usage()
        if response.usage is not None:
            usage = Usage(input_tokens=response.usage.prompt_tokens, output_tokens=response.usage.completion_tokens)
        text = valid_text(message.content or "")
        return Completion(
            text=strict_json(text) if structured else text,
            tool_calls=calls,
            usage=usage,
            finish_reason=choice.finish_reason or ("tool_calls" if calls else "stop"),
            model=response.model or self.model,
            raw=response,
        )


def _transient_while_probing(exc: BaseException) -> bool:
    """Transient, but for a 5xx: while a feature is being probed, a 5xx may be the server refusing it."""
    status = getattr(exc, "status_code", None)
    return is_transient(exc) and not (isinstance(status, int) and status >= 500)
