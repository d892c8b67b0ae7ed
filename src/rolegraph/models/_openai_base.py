"""What the two OpenAI protocols (chat completions, Responses) share: the provider, and what the SDK's errors mean.

Timeouts, retries and the messages of failures are every remote model's
(`rolegraph.models.remote.RemoteModel`): transient failures (a dropped
connection, a timeout, HTTP 429 and 5xx) are retried by `rolegraph.retry.RetryPolicy`
— backoff with jitter, ``Retry-After`` honoured, each retry recorded on the ``chat``
span — not by the SDK, whose own retries are switched off. A refused key (401, 403)
is not retried: the error names the variable to check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rolegraph.models.providers import OpenAIProvider
from rolegraph.models.remote import Failure, RemoteModel
from rolegraph.retry import RetryPolicy

if TYPE_CHECKING:
    import openai

__all__ = ["OpenAIProtocolModel", "describe_error"]


class OpenAIProtocolModel(RemoteModel[OpenAIProvider]):
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
        name = name or f"openai:{model}"
        provider = provider or OpenAIProvider.openai(purpose=f"model {name}")
        super().__init__(model, provider=provider, retry=retry, name=name)

    @property
    def base_url(self) -> str | None:
        """The provider's API root (None: OpenAI's)."""
        return self.provider.base_url

    def _failure(self, exc: Exception) -> Failure | None:
        """An SDK error: its status (a refused key is a 401 or 403) and its account (`describe_error`)."""
        import openai

        if not isinstance(exc, openai.OpenAIError):
            return None
        status = exc.status_code if isinstance(exc, openai.APIStatusError) else None
        return Failure(status, describe_error(exc))


def describe_error(exc: openai.OpenAIError) -> str:
    """A one-line account of an SDK error: status and server message, or the connection failure and its cause."""
    import openai

    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code} ({type(exc).__name__}): {exc.message}"
    if isinstance(exc, openai.APIConnectionError) and exc.__cause__ is not None:
        return f"{type(exc).__name__}: {exc} ({type(exc.__cause__).__name__}: {exc.__cause__})"
    return f"{type(exc).__name__}: {exc}"
