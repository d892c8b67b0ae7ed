"""Hugging Face Inference: ``hf:<repo>`` through `huggingface_hub`'s InferenceClient, as the course does it.

The course's notebooks write ``InferenceClient(token=getpass(...)).chat_completion(...)``.
This provider makes the same call with the client's async twin,
``AsyncInferenceClient.chat_completion`` (same arguments, same answer, no thread
blocked while it waits): the token from ``HF_TOKEN`` (asked for in a terminal when
missing, see `rolegraph.models.keys`), ``provider=`` from the model's settings
(``auto`` by default: Hugging Face routes to the first provider serving the model),
tools and ``response_format={"type": "json_schema", ...}`` for providers that take
them, and an optional ``base_url`` (a dedicated Inference Endpoint or a local TGI server).

Retries, timeouts and error messages are every remote model's (`rolegraph.models.remote`): transient
failures (connection trouble, 408/409/429/5xx) are retried by `RetryPolicy` with
``Retry-After`` honoured, a refused token (401, 403) names ``HF_TOKEN``, and no
secret leaves through an error.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rolegraph.errors import ModelError
from rolegraph.models.keys import api_key
from rolegraph.models.messages import Message, ToolCall, ToolSpec
from rolegraph.models.model import Completion, ModelSettings, Usage
from rolegraph.models.providers import Provider
from rolegraph.models.remote import Failure, RemoteModel, strict_json, valid_text
from rolegraph.retry import RetryPolicy, is_transient, trace_retry
from rolegraph.traces.redact import Redactor

if TYPE_CHECKING:
    from huggingface_hub import AsyncInferenceClient, ChatCompletionOutput

__all__ = ["HFInferenceModel", "HFProvider"]


class HFProvider(Provider["AsyncInferenceClient"]):
    """Hugging Face Inference Providers, reached through `huggingface_hub`.

    Args:
        provider: The inference provider (``auto``, ``hf-inference``, ``together``, ``novita``, ...).
        base_url: Send requests here instead (an Inference Endpoint, a TGI server); the provider is then unused.
        key_env: The variable holding the token (read once, here).
        purpose: What needs the token, for the prompt and the error.

    Raises:
        ModelNotAvailableError: ``HF_TOKEN`` is missing and nobody can be asked for it.
    """

    def __init__(
        self,
        *,
        provider: str = "auto",
        base_url: str | None = None,
        key_env: str = "HF_TOKEN",
        purpose: str | None = None,
    ) -> None:
        from huggingface_hub import AsyncInferenceClient

        self.name = "huggingface"
        self.provider = provider
        self.base_url = base_url
        self.key_env = key_env
        token = api_key(key_env, required=True, purpose=purpose or "Hugging Face Inference")
        self.redactor = Redactor.from_env(extra_names=[key_env])
        self._client = AsyncInferenceClient(
            provider=None if base_url is not None else provider,  # type: ignore[arg-type]  # any provider name
            base_url=base_url,
            token=token,
        )

    @property
    def client(self) -> AsyncInferenceClient:
        """The `huggingface_hub` client."""
        return self._client

    async def aclose(self) -> None:
        """Close the client's HTTP session."""
        await self._client.close()  # type: ignore[no-untyped-call]  # huggingface_hub leaves it unannotated


class _HTTPFailure(Exception):
    """An HTTP error of the hub client, with what `RetryPolicy` reads (status and headers)."""

    def __init__(self, status_code: int, headers: Mapping[str, str], message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.headers = headers


class HFInferenceModel(RemoteModel[HFProvider]):
    """A model served by Hugging Face Inference Providers, called through ``chat_completion``.

    Args:
        repo: The model's repository id, e.g. ``HuggingFaceTB/SmolLM3-3B``.
        provider: The connection (default: `HFProvider()`, provider ``auto``).
        retry: How transient failures are retried (default `RetryPolicy()`: 3 retries).
        name: The model string this instance stands for (default ``hf:<repo>``).
    """

    credential = "token"

    def __init__(
        self,
        repo: str,
        *,
        provider: HFProvider | None = None,
        retry: RetryPolicy | None = None,
        name: str | None = None,
    ) -> None:
        name = name or f"hf:{repo}"
        super().__init__(repo, provider=provider or HFProvider(purpose=f"model {name}"), retry=retry, name=name)

    @property
    def options(self) -> dict[str, Any]:
        """The inference provider (and base URL, if any) calls go to."""
        return {
            "provider": self.provider.provider,
            **({"base_url": self.provider.base_url} if self.provider.base_url else {}),
        }

    async def _complete(
        self,
        messages: Sequence[Message],
        tools: list[ToolSpec],
        output_schema: dict[str, Any] | None,
        settings: ModelSettings,
    ) -> Completion:
        """Send one ``chat_completion`` request and read the assistant turn."""
        request = self._request(messages, tools, output_schema, settings)

        async def send() -> ChatCompletionOutput:
            return await self._send(request, settings)

        output = await self._policy(settings).call(send, retry_if=is_transient, on_retry=trace_retry)
        return self._completion(output, structured=output_schema is not None)

    def _failure(self, exc: Exception) -> Failure | None:
        """An HTTP error (`_send` raises it as `_HTTPFailure`), or connection trouble after the last retry."""
        if isinstance(exc, _HTTPFailure):
            return Failure(exc.status_code, f"HTTP {exc.status_code}: {exc}")
        if isinstance(exc, ConnectionError | OSError):
            return Failure(None, str(exc))
        return None

    async def _send(self, request: dict[str, Any], settings: ModelSettings) -> ChatCompletionOutput:
        """One try, bounded by `attempt_timeout`, its failures in the terms `RetryPolicy` reads:
        an HTTP error as `_HTTPFailure` (status, headers), a transport failure as `ConnectionError`."""
        from huggingface_hub.errors import HfHubHTTPError, InferenceTimeoutError

        try:
            async with asyncio.timeout(settings.attempt_timeout or settings.timeout):
                output: ChatCompletionOutput = await self.provider.client.chat_completion(**request)
                return output
        except HfHubHTTPError as exc:
            response = exc.response
            raise _HTTPFailure(response.status_code, response.headers, _server_message(exc)) from None
        except InferenceTimeoutError:
            raise TimeoutError("the inference call timed out") from None
        except Exception as exc:
            if _is_transport_error(exc):  # the hub's HTTP client (httpx or its fork) lost the connection
                raise ConnectionError(f"{type(exc).__name__}: {exc}") from None
            raise

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
            request["tool_choice"] = "required" if settings.tool_choice == "required" else "auto"
        if output_schema is not None:
            request["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "final", "schema": output_schema},
            }
        for field in ("temperature", "top_p", "seed", "max_tokens"):
            value = getattr(settings, field)
            if value is not None:
                request[field] = value
        return request

    def _completion(self, output: ChatCompletionOutput, *, structured: bool) -> Completion:
        if not output.choices:
            raise ModelError(f"model {self.name} returned no choices")
        choice = output.choices[0]
        message = choice.message
        calls = [
            ToolCall(id=call.id, name=valid_text(call.function.name), arguments=_arguments(call.function.arguments))
            for call in message.tool_calls or []
        ]
        usage = Usage()
        if output.usage is not None:
            usage = Usage(input_tokens=output.usage.prompt_tokens, output_tokens=output.usage.completion_tokens)
        text = valid_text(message.content or "")
        return Completion(
            text=strict_json(text) if structured else text,
            tool_calls=calls,
            usage=usage,
            finish_reason=choice.finish_reason or ("tool_calls" if calls else "stop"),
            model=output.model or self.model,
            raw=output,
        )


def _is_transport_error(exc: Exception) -> bool:
    """Whether `exc` is a connection failure of an httpx-like client (``httpx`` or ``httpx2``)."""
    return any(
        cls.__name__ == "TransportError" and cls.__module__.split(".")[0].startswith("httpx")
        for cls in type(exc).__mro__
    )


def _arguments(arguments: Any) -> str:
    """Tool arguments as JSON text: TGI-style servers send an object where OpenAI sends a string."""
    if isinstance(arguments, str):
        return valid_text(arguments)
    return json.dumps(arguments, ensure_ascii=False)


def _server_message(exc: Exception) -> str:
    """The server's own error message when the body has one, else the exception's first line."""
    try:
        body = exc.response.json()  # type: ignore[attr-defined]
    except (ValueError, AttributeError):
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
