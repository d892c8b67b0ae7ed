"""OpenAI's moderation endpoint (``POST /v1/moderations``), as a classifier for the ``moderation`` output check.

```python
moderation = Moderation()                      # OPENAI_API_KEY (asked for in a terminal)
flagged = await moderation.classify(text)      # e.g. ["harassment", "violence"]; [] when not flagged
```

It is a `Model` (named ``moderation:<model>``) that answers the last message of a
conversation with ``{"flagged": [categories]}``, so the check's call takes the path
every model call of a run takes: journaled, answered from the journal on resume and
replay, counted (it spends no tokens), cached when the cache is on.

A compatible server (``base_url``) needs no key. The answer is OpenAI's documented
shape (`openai.types.ModerationCreateResponse`: ``results[0].flagged`` and its
``categories``), read through the OpenAI SDK.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rolegraph.models.messages import Message, ToolSpec
from rolegraph.models.model import Completion, Model, ModelSettings
from rolegraph.models.providers import OpenAIProvider
from rolegraph.retry import RetryPolicy, trace_retry

if TYPE_CHECKING:
    from openai.types import ModerationCreateResponse

__all__ = ["MODERATION_KEY_ENV", "MODERATION_PREFIX", "Moderation", "moderation_name"]

MODERATION_PREFIX = "moderation:"
"""How a moderation model's name starts: ``moderation:omni-moderation-latest`` (`resolve_model` builds it)."""

MODERATION_KEY_ENV = "OPENAI_API_KEY"
"""The variable the moderation endpoint's key comes from."""


def moderation_name(model: str, base_url: str | None) -> str:
    """The name a moderation model goes by in a run (journal, traces): ``moderation:<model>[@<base_url>]``."""
    return f"{MODERATION_PREFIX}{model}" + (f"@{base_url}" if base_url else "")


class Moderation(Model):
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
        self.name = moderation_name(model, base_url)
        self.base_url = base_url
        self.retry = retry or RetryPolicy()

    samples_by_default = False  # a classifier: the same text gets the same categories

    @property
    def model_id(self) -> str:
        """The moderation model (``omni-moderation-latest``)."""
        return self.model

    @property
    def revision(self) -> str:
        """The server it asks (a cache never answers one server's call with another's verdict)."""
        return self.base_url or ""

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] | None = None,
        output_schema: dict[str, Any] | None = None,
        settings: ModelSettings | None = None,
    ) -> Completion:
        """Classify the last message's text: ``{"flagged": [categories]}``, spending no tokens.

        Raises:
            openai.OpenAIError: As `classify`.
        """
        flagged = await self.classify(messages[-1].content if messages else "")
        return Completion(text=json.dumps({"flagged": flagged}), model=self.model)

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
