"""What the two OpenAI protocols (chat completions, Responses) share: the provider, timeouts, retries, errors.

Transient failures (a dropped connection, a timeout, HTTP 429 and 5xx) are
retried by `rolegraph.retry.RetryPolicy` — backoff with jitter, ``Retry-After``
honoured, each retry recorded on the ``chat`` span — not by the SDK, whose own
retries are switched off. A refused key (401, 403) is not retried: the error
names the variable to check.

No secret leaves through an error: every failure becomes a `ModelError` whose
message went through the provider's redactor.
"""

from __future__ import annotations

import asyncio
import json
from abc import abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rolegraph.errors import ModelError
from rolegraph.models.messages import Message, ToolSpec
from rolegraph.models.model import Completion, Model, ModelSettings
from rolegraph.models.providers import OpenAIProvider
from rolegraph.retry import RetryPolicy

if TYPE_CHECKING:
    import openai

__all__ = ["OpenAIProtocolModel", "describe_error", "strict_json", "valid_text"]


class OpenAIProtocolModel(Model):
    """A model reached through an `OpenAIProvider`; subclasses speak one protocol in `_complete`.

    Args:
        model: The model id the server knows, e.g. ``gpt-4o-mini`` or ``qwen2.5:7b``.
        provider: The connection (default: OpenAI's API, key from ``OPENAI_API_KEY``).
        retry: How transient failures are retried (default `RetryPolicy()`: 3 retries);
            a call's `ModelSettings.retries` overrides its number of retries.
        name: The model string this instance stands for (default ``openai:<model>``).
    """

    def __init__(
        self,
        model: str,
        *,
        provider: OpenAIProvider | None = None,
        retry: RetryPolicy | None = None,
        name: str | None = None,
    ) -> None:
        self.model = model
        self.name = name or f"openai:{model}"
        self.provider = provider or OpenAIProvider.openai(purpose=f"model {self.name}")
        self.retry = retry or RetryPolicy()

    @property
    def model_id(self) -> str:
        """The model id the server knows (``gpt-4o-mini``, ``qwen2.5:7b``)."""
        return self.model

    @property
    def base_url(self) -> str | None:
        """The provider's API root (None: OpenAI's)."""
        return self.provider.base_url

    def _policy(self, settings: ModelSettings) -> RetryPolicy:
        if settings.retries is None:
            return self.retry
        return self.retry.model_copy(update={"attempts": settings.retries + 1})

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] | None = None,
        output_schema: dict[str, Any] | None = None,
        settings: ModelSettings | None = None,
    ) -> Completion:
        """Send one request and return the assistant turn; every failure is a `ModelError`."""
        import openai

        settings = settings or ModelSettings()
        redact = self.provider.redactor.text
        try:
            async with asyncio.timeout(settings.timeout):
                return await self._complete(messages, list(tools or ()), output_schema, settings)
        except TimeoutError:
            raise ModelError(f"model {self.name} did not answer within {settings.timeout:g}s") from None
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            message = (
                f"model {self.name} refused the API key (HTTP {exc.status_code}): "
                f"check the {self.provider.key_env} environment variable"
            )
            raise ModelError(redact(message)) from None
        except openai.OpenAIError as exc:
            # `from None`: the SDK's exception carries the request, headers included.
            raise ModelError(redact(f"model {self.name} failed: {describe_error(exc)}")) from None
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            # A 200 whose body is not what the protocol says (a proxy's HTML page, a server's bug): the SDK
            # builds its objects without validation, so the damage shows up as these when they are read.
            problem = f"model {self.name} returned a malformed response: {type(exc).__name__}: {exc}"
            raise ModelError(redact(problem)) from None

    @abstractmethod
    async def _complete(
        self,
        messages: Sequence[Message],
        tools: list[ToolSpec],
        output_schema: dict[str, Any] | None,
        settings: ModelSettings,
    ) -> Completion:
        """Send the request (retrying transient failures) and read the answer."""

    async def check(self) -> None:
        """Ask the provider whether its service is reachable (Ollama's is probed; others are not)."""
        await self.provider.check()

    async def aclose(self) -> None:
        """Close the provider's HTTP client."""
        await self.provider.aclose()


def valid_text(text: str) -> str:
    """`text` with lone surrogates (a JSON ``\\ud800`` escape decodes to one) replaced by U+FFFD.

    Such a string cannot be written as UTF-8: left in, it would fail every file it reaches.
    """
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def strict_json(text: str) -> str:
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


def describe_error(exc: openai.OpenAIError) -> str:
    """A one-line account of an SDK error: status and server message, or the connection failure and its cause."""
    import openai

    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code} ({type(exc).__name__}): {exc.message}"
    if isinstance(exc, openai.APIConnectionError) and exc.__cause__ is not None:
        return f"{type(exc).__name__}: {exc} ({type(exc.__cause__).__name__}: {exc.__cause__})"
    return f"{type(exc).__name__}: {exc}"
