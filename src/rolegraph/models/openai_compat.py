"""OpenAI, and every server that speaks its chat-completions API (Ollama, vLLM, llama.cpp, the HF router).

Tools go out natively (``tools=[...]``); an output schema goes out as
``response_format={"type": "json_schema", ...}``. Some servers do not know that
form: llama-cpp-python's server rejects it and wants ``{"type": "json_object",
"schema": ...}`` instead. In ``structured_output="auto"`` mode a model tries the
standard form first and, if the server refuses it, switches to the other for the
rest of its life. ``tool_choice="required"`` is learned the same way (falling back
to ``auto``, which the agent checks anyway).

Transient failures (a dropped connection, a timeout, HTTP 429 and 5xx) are
retried by `rolegraph.retry.RetryPolicy` — backoff with jitter, ``Retry-After``
honoured, each retry recorded on the ``chat`` span — not by the SDK, whose own
retries are switched off. A refused key (401, 403) is not retried: the error
names the variable to check.

No secret leaves through an error: every failure becomes a `ModelError` whose
message went through `Redactor.from_env()`.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse

from rolegraph.errors import ModelError, ModelNotAvailableError
from rolegraph.models.messages import Message, ToolCall, ToolSpec
from rolegraph.models.model import Completion, Model, ModelSettings, Usage
from rolegraph.retry import RetryPolicy, is_transient, trace_retry
from rolegraph.traces.redact import Redactor

if TYPE_CHECKING:
    import openai
    from openai.types.chat import ChatCompletion

__all__ = ["PLACEHOLDER_API_KEY", "OpenAIModel", "StructuredOutput"]

PLACEHOLDER_API_KEY = "not-needed"
"""Sent to servers that need no key (local servers); the SDK insists on one."""

StructuredOutput = Literal["auto", "json_schema", "json_object"]
"""How an output schema is sent: OpenAI's ``json_schema`` form, llama-cpp-python's ``json_object`` + ``schema``,
or ``auto`` (the first, falling back to the second when the server refuses it)."""

_KEYED_HOSTS = ("api.openai.com",)


class OpenAIModel(Model):
    """A model behind an OpenAI-compatible chat-completions endpoint.

    Args:
        model: The model id the server knows, e.g. ``gpt-4o-mini`` or ``qwen2.5:7b``.
        base_url: The API root, e.g. ``http://localhost:11434/v1`` (default: OpenAI's).
        api_key_env: The environment variable holding the key, read once, here.
        require_key: Fail when the variable is unset (default: only for OpenAI's own API).
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
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        require_key: bool | None = None,
        structured_output: StructuredOutput = "auto",
        retry: RetryPolicy | None = None,
        client: openai.AsyncOpenAI | None = None,
        name: str | None = None,
    ) -> None:
        self.model = model
        self.name = name or f"openai:{model}"
        self.base_url = base_url
        self.api_key_env = api_key_env
        self.retry = retry or RetryPolicy()
        self._structured: StructuredOutput = structured_output
        self._tool_choice_required: bool | None = None
        """Whether the server takes ``tool_choice="required"`` (None: not tried yet)."""
        self._official = base_url is None or urlparse(base_url).hostname in _KEYED_HOSTS
        self._redactor = Redactor.from_env(extra_names=[api_key_env])
        if client is not None:
            self._client = client.with_options(max_retries=0)  # retries are the policy's, never the SDK's too
            return
        key = os.environ.get(api_key_env, "")
        if not key:
            if require_key if require_key is not None else self._official:
                raise ModelNotAvailableError(
                    f"model {self.name} needs an API key: set the {api_key_env} environment variable"
                )
            key = PLACEHOLDER_API_KEY
        import openai

        self._client = openai.AsyncOpenAI(api_key=key, base_url=base_url, max_retries=0)

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] | None = None,
        output_schema: dict[str, Any] | None = None,
        settings: ModelSettings | None = None,
    ) -> Completion:
        """Send one chat-completions request and return the assistant turn."""
        import openai

        settings = settings or ModelSettings()
        tools = list(tools or ())
        try:
            async with asyncio.timeout(settings.timeout):
                response = await self._send(messages, tools, output_schema, settings)
            return self._completion(response, structured=output_schema is not None)
        except TimeoutError:
            raise ModelError(f"model {self.name} did not answer within {settings.timeout:g}s") from None
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            message = (
                f"model {self.name} refused the API key (HTTP {exc.status_code}): "
                f"check the {self.api_key_env} environment variable"
            )
            raise ModelError(self._redactor.text(message)) from None
        except openai.OpenAIError as exc:
            # `from None`: the SDK's exception carries the request, headers included.
            raise ModelError(self._redactor.text(f"model {self.name} failed: {_describe(exc)}")) from None
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            # A 200 whose body is not a chat completion (a proxy's HTML page, a server's bug): the SDK
            # builds its objects without validation, so the damage shows up as these when they are read.
            problem = f"model {self.name} returned a malformed response: {type(exc).__name__}: {exc}"
            raise ModelError(self._redactor.text(problem)) from None

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
        policy = (
            self.retry if settings.retries is None else self.retry.model_copy(update={"attempts": settings.retries + 1})
        )
        for _ in range(3):  # at most one fallback per feature, then one plain attempt
            unknown = self._unknown(output_schema is not None, required)
            request = self._request(messages, tools, output_schema, settings)
            request["timeout"] = settings.attempt_timeout or settings.timeout  # per try; `timeout` bounds them all

            async def create(request: dict[str, Any] = request) -> ChatCompletion:
                sent: ChatCompletion = await self._client.chat.completions.create(**request)
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
            request["max_completion_tokens" if self._official else "max_tokens"] = settings.max_tokens
        return request

    def _completion(self, response: ChatCompletion, *, structured: bool) -> Completion:
        if not response.choices:
            raise ModelError(f"model {self.name} returned no choices")
        choice = response.choices[0]
        message = choice.message
        calls = [
            ToolCall(id=c.id, name=_valid_text(c.function.name), arguments=_valid_text(c.function.arguments or ""))
            for c in message.tool_calls or []
            if c.type == "function"
        ]
        usage = Usage()
        if response.usage is not None:
            usage = Usage(input_tokens=response.usage.prompt_tokens, output_tokens=response.usage.completion_tokens)
        text = _valid_text(message.content or "")
        return Completion(
            text=_strict_json(text) if structured else text,
            tool_calls=calls,
            usage=usage,
            finish_reason=choice.finish_reason or ("tool_calls" if calls else "stop"),
            model=response.model or self.model,
            raw=response,
        )

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.close()


def _valid_text(text: str) -> str:
    """`text` with lone surrogates (a JSON ``\\ud800`` escape decodes to one) replaced by U+FFFD.

    Such a string cannot be written as UTF-8: left in, it would fail every file it reaches.
    """
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def _strict_json(text: str) -> str:
    """`text`, re-serialised if it is JSON only but for raw control characters in strings.

    llama-cpp-python's grammars let a model put a raw newline inside a JSON string;
    the meaning is clear, but strict parsers (pydantic's too) reject it.
    """
    try:
        json.loads(text)
    except ValueError:
        try:
            return json.dumps(json.loads(text, strict=False), ensure_ascii=False)
        except ValueError:
            return text
    return text


def _transient_while_probing(exc: BaseException) -> bool:
    """Transient, but for a 5xx: while a feature is being probed, a 5xx may be the server refusing it."""
    status = getattr(exc, "status_code", None)
    return is_transient(exc) and not (isinstance(status, int) and status >= 500)


def _describe(exc: openai.OpenAIError) -> str:
    import openai

    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code} ({type(exc).__name__}): {exc.message}"
    if isinstance(exc, openai.APIConnectionError) and exc.__cause__ is not None:
        return f"{type(exc).__name__}: {exc} ({type(exc.__cause__).__name__}: {exc.__cause__})"
    return f"{type(exc).__name__}: {exc}"
