"""What every model reached over the network shares: its provider and retries, the call's time limit, its errors.

`rolegraph.models._openai_base` (OpenAI's two protocols) and `rolegraph.models.huggingface`
speak through different clients, which raise different exceptions. A subclass says what one of
its client's exceptions means (`RemoteModel._failure`: the HTTP status, if any, and a one-line
account); this class turns every failure of a call into the `ModelError` a user reads:

- the call's ``timeout`` passed (its retries included): ``model X did not answer within 30s``;
- HTTP 401 or 403: ``model X refused the API key (HTTP 401): check the OPENAI_API_KEY environment
  variable`` (the token, for Hugging Face);
- any other failure the client reports: ``model X failed: <account>``;
- an answer that is not what the protocol says (a proxy's HTML page, a server's bug), which shows up
  as a ``ValueError``, ``KeyError``... when it is read: ``model X returned a malformed response: ...``.

Transient failures (a dropped connection, a timeout, HTTP 429 and 5xx) are retried before that, by
`rolegraph.retry.RetryPolicy` (`RemoteModel._policy`: a call's ``retries`` setting overrides how
many). Every message goes through the provider's redactor, and the client's exception is never
chained (it carries the request, headers included): no secret leaves through an error.
"""

from __future__ import annotations

import asyncio
import json
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, Generic, NamedTuple, TypeVar

from rolegraph.errors import ModelError
from rolegraph.models.messages import Message, ToolSpec
from rolegraph.models.model import Completion, Model, ModelSettings
from rolegraph.models.providers import Provider
from rolegraph.retry import RetryPolicy

__all__ = ["Failure", "RemoteModel", "strict_json", "valid_text"]

ProviderT = TypeVar("ProviderT", bound=Provider[Any])

MALFORMED = (ValueError, TypeError, AttributeError, KeyError, IndexError)
"""What reading an answer that is not what the protocol says raises (the SDKs build their objects unvalidated)."""


class Failure(NamedTuple):
    """What a client's exception means: the HTTP status (None: no answer came) and a one-line account."""

    status: int | None
    account: str


class RemoteModel(Model, Generic[ProviderT]):
    """A model reached through a provider; subclasses speak one protocol in `_complete`.

    Args:
        model: The model id the service knows (``gpt-4o-mini``, ``HuggingFaceTB/SmolLM3-3B``).
        provider: The connection (its client, key variable and redactor).
        retry: How transient failures are retried (default `RetryPolicy()`: 3 retries);
            a call's `ModelSettings.retries` overrides its number of retries.
        name: The model string this instance stands for.
    """

    credential = "API key"
    """What the provider's key is called in the message for a refused one."""

    def __init__(self, model: str, *, provider: ProviderT, retry: RetryPolicy | None, name: str) -> None:
        self.model = model
        self.name = name
        self.provider = provider
        self.retry = retry or RetryPolicy()

    @property
    def model_id(self) -> str:
        """The model id the service knows (``gpt-4o-mini``, ``qwen2.5:7b``, a Hugging Face repo)."""
        return self.model

    def _policy(self, settings: ModelSettings) -> RetryPolicy:
        """The retry policy of one call: this model's, with the call's ``retries`` if it sets them."""
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
        """Send one request (retrying transient failures) and return the assistant turn.

        Raises:
            ModelError: The call failed, timed out, or its answer could not be read (see the module docstring).
        """
        settings = settings or ModelSettings()
        try:
            async with asyncio.timeout(settings.timeout):
                return await self._complete(messages, list(tools or ()), output_schema, settings)
        except TimeoutError:
            raise ModelError(f"model {self.name} did not answer within {settings.timeout:g}s") from None
        except Exception as exc:
            error = self._model_error(exc)
            if error is None:
                raise
            raise error from None

    def _model_error(self, exc: Exception) -> ModelError | None:
        """The `ModelError` a failure of a call becomes (None: `exc` is not a failure of the call)."""
        failure = self._failure(exc)
        if failure is not None and failure.status in (401, 403):
            message = (
                f"model {self.name} refused the {self.credential} (HTTP {failure.status}): "
                f"check the {self.provider.key_env} environment variable"
            )
        elif failure is not None:
            message = f"model {self.name} failed: {failure.account}"
        elif isinstance(exc, MALFORMED):
            message = f"model {self.name} returned a malformed response: {type(exc).__name__}: {exc}"
        else:
            return None
        return ModelError(self.provider.redactor.text(message))

    @abstractmethod
    async def _complete(
        self,
        messages: Sequence[Message],
        tools: list[ToolSpec],
        output_schema: dict[str, Any] | None,
        settings: ModelSettings,
    ) -> Completion:
        """Send the request (retrying transient failures with `_policy`) and read the answer."""

    @abstractmethod
    def _failure(self, exc: Exception) -> Failure | None:
        """What `exc` means if the client raised it for a failed call (None: it did not)."""

    async def check(self) -> None:
        """Ask the provider whether its service is reachable (Ollama's is probed; others are not)."""
        await self.provider.check()

    async def aclose(self) -> None:
        """Close the provider's client."""
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
