"""OpenAI's moderation endpoint (``POST /v1/moderations``), as a classifier for the ``moderation`` output check.

```python
moderation = Moderation()                      # OPENAI_API_KEY (asked for in a terminal)
flagged = await moderation.classify(text)      # e.g. ["harassment", "violence"]; [] when not flagged
```

A compatible server (``base_url``) needs no key. The answer is OpenAI's documented
shape (`openai.types.ModerationCreateResponse`: ``results[0].flagged`` and its
``categories``), read through the OpenAI SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rolegraph.models.providers import OpenAIProvider
from rolegraph.retry import RetryPolicy, trace_retry

if TYPE_CHECKING:
    from openai.types import ModerationCreateResponse

__all__ = ["MODERATION_KEY_ENV", "Moderation"]

MODERATION_KEY_ENV = "OPENAI_API_KEY"
"""The variable the moderation endpoint's key comes from."""


class Moderation:
    """A moderation endpoint: OpenAI's, or a compatible server's at `base_url`.

    Args:
        base_url: A compatible server's API root (None: OpenAI's, with its key required).
        model: The moderation model.
        provider: A ready provider to use instead (tests).
        retry: How transient failures (a reset connection, 429, 5xx) are retried (default `RetryPolicy()`).

    Raises:
        ModelNotAvailableError: OpenAI's endpoint is meant and its key is missing (the variable is named).
    """

    def __init__(
        self,
        *,
        base_url: str | None = None,
        model: str = "omni-moderation-latest",
        provider: OpenAIProvider | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        purpose = "the moderation check"
        if provider is None:
            provider = (
                OpenAIProvider.openai(purpose=purpose)
                if base_url is None
                else OpenAIProvider.compatible(base_url, purpose=purpose)
            )
        self.provider = provider
        self.model = model
        self.retry = retry or RetryPolicy()

    async def classify(self, text: str) -> list[str]:
        """The categories `text` is flagged for, sorted (empty: not flagged).

        Raises:
            openai.OpenAIError: The endpoint failed (after its retries) or answered something else (the check
                then fails with it).
        """

        async def create() -> ModerationCreateResponse:
            sent: ModerationCreateResponse = await self.provider.client.moderations.create(model=self.model, input=text)
            return sent

        response = await self.retry.call(create, on_retry=trace_retry)
        result = response.results[0]
        if not result.flagged:
            return []
        categories = result.categories.model_dump(by_alias=True)
        return sorted(name for name, on in categories.items() if on) or ["unspecified"]

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.provider.aclose()
