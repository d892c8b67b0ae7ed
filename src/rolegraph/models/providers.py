"""Providers: who serves a model — the base URL, the key and the client — apart from the protocol spoken.

pydantic-ai's split: a model class speaks one protocol (OpenAI's chat completions,
OpenAI's Responses API); a provider owns the connection to one service that
speaks it. One `OpenAIProvider` shape serves OpenAI itself, Ollama, any
OpenAI-compatible server and Hugging Face's router; they differ only in base URL,
key variable, whether a key is required, and what a health check looks like.

```python
provider = OpenAIProvider.ollama()                         # http://localhost:11434/v1, no key needed
model = OpenAIModel("qwen2.5:7b", provider=provider)       # chat completions over it
await model.check()                                        # "is Ollama running at http://localhost:11434?"
```

A provider reads its key once, when it is made, from the environment (see
`rolegraph.models.keys` for the rules), and never puts it in an error.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Generic, TypeVar
from urllib.parse import urlparse

from rolegraph.errors import ModelNotAvailableError
from rolegraph.models.keys import api_key
from rolegraph.traces.redact import Redactor

if TYPE_CHECKING:
    from openai import AsyncOpenAI

__all__ = [
    "HF_ROUTER_URL",
    "OLLAMA_URL",
    "OPENAI_KEYED_HOSTS",
    "PLACEHOLDER_API_KEY",
    "OpenAIProvider",
    "Provider",
]

ClientT = TypeVar("ClientT")

OLLAMA_URL = "http://localhost:11434/v1"
"""Where ``ollama:`` models are served (``OLLAMA_HOST`` moves it, as it moves Ollama)."""
HF_ROUTER_URL = "https://router.huggingface.co/v1"
"""Hugging Face's OpenAI-compatible router."""
PLACEHOLDER_API_KEY = "not-needed"
"""Sent to servers that need no key (local servers); the OpenAI SDK insists on one."""
OPENAI_KEYED_HOSTS = ("api.openai.com",)
"""Hosts that always need a key (OpenAI's own API)."""


def _ollama_url(host: str) -> str:
    """Ollama's OpenAI-compatible root from ``OLLAMA_HOST`` (``host``, ``host:port`` or a URL), else the default."""
    host = host.strip().rstrip("/")
    if not host:
        return OLLAMA_URL
    if "://" not in host:
        host = f"http://{host}"
    if urlparse(host).port is None:
        host = f"{host}:11434"
    return f"{host}/v1"


class Provider(ABC, Generic[ClientT]):
    """The connection to one service: its name, base URL, key variable and client.

    Subclasses build the client; models hold a provider and only speak the protocol.
    """

    name: str
    """What the service is called in messages, e.g. ``openai`` or ``ollama``."""
    base_url: str | None
    """The API root (None: the client's default)."""
    key_env: str | None
    """The environment variable the key comes from (named in errors, never its value)."""
    redactor: Redactor
    """Removes this provider's key, and every other known secret, from messages."""

    @property
    @abstractmethod
    def client(self) -> ClientT:
        """The authenticated client."""

    async def check(self) -> None:
        """Fail early, with a message saying what to do, when the service cannot be reached.

        Raises:
            ModelNotAvailableError: The service is not there (default: never).
        """

    async def aclose(self) -> None:
        """Release the client's connections. Default: nothing."""


class OpenAIProvider(Provider["AsyncOpenAI"]):
    """A service that speaks OpenAI's API: OpenAI, Ollama, vLLM, llama.cpp's server, Hugging Face's router.

    Args:
        name: What the service is called in messages.
        base_url: The API root, e.g. ``http://localhost:11434/v1`` (default: OpenAI's).
        key_env: The environment variable holding the key, read once, here.
        require_key: Fail when the key is missing (default: only for OpenAI's own API).
            Otherwise a placeholder key is sent.
        client: A ready client to use instead of building one (no key is read then).
        probe: A URL whose answer shows the service is up, checked by `check`
            (None: no check). Ollama's is its model list.
        hint: What `check` tells the user when the probe fails, e.g. ``is Ollama running at ...?``.
        purpose: What needs the key, for the prompt and the error (default ``the <name> provider``),
            e.g. ``model openai:gpt-4o-mini``.

    Raises:
        ModelNotAvailableError: A required key is missing (the message names the variable, never a value).
    """

    def __init__(
        self,
        *,
        name: str = "openai",
        base_url: str | None = None,
        key_env: str = "OPENAI_API_KEY",
        require_key: bool | None = None,
        client: AsyncOpenAI | None = None,
        probe: str | None = None,
        hint: str | None = None,
        purpose: str | None = None,
    ) -> None:
        import openai

        self.name = name
        self.base_url = base_url
        self.key_env = key_env
        self.probe = probe
        self.hint = hint
        self.official = base_url is None or urlparse(base_url).hostname in OPENAI_KEYED_HOSTS
        """Whether this is OpenAI's own API (which takes ``max_completion_tokens``, and needs a key)."""
        if client is not None:
            self.redactor = Redactor.from_env(extra_names=[key_env])
            self._client = client.with_options(max_retries=0)  # retries are the policy's, never the SDK's too
            return
        required = require_key if require_key is not None else self.official
        key = api_key(key_env, required=required, purpose=purpose or f"the {name} provider")
        self.redactor = Redactor.from_env(extra_names=[key_env])
        self._client = openai.AsyncOpenAI(api_key=key or PLACEHOLDER_API_KEY, base_url=base_url, max_retries=0)

    @classmethod
    def openai(cls, *, purpose: str | None = None) -> OpenAIProvider:
        """OpenAI's own API; the key from ``OPENAI_API_KEY`` is required."""
        return cls(name="openai", purpose=purpose)

    @classmethod
    def ollama(cls, base_url: str | None = None, *, purpose: str | None = None) -> OpenAIProvider:
        """A local Ollama daemon: no key needed (``OLLAMA_API_KEY`` is sent if set), checked before use.

        Args:
            base_url: Its OpenAI-compatible root (default: from ``OLLAMA_HOST`` as Ollama reads it,
                else `OLLAMA_URL`).
            purpose: What needs the key, for messages.
        """
        base_url = base_url or _ollama_url(os.environ.get("OLLAMA_HOST", ""))
        root = base_url.removesuffix("/").removesuffix("/v1")
        return cls(
            name="ollama",
            base_url=base_url,
            key_env="OLLAMA_API_KEY",
            require_key=False,
            probe=f"{base_url.removesuffix('/')}/models",
            hint=f"is Ollama running at {root}? Start it with `ollama serve`",
            purpose=purpose,
        )

    @classmethod
    def compatible(cls, base_url: str, *, purpose: str | None = None) -> OpenAIProvider:
        """Any OpenAI-compatible server: a local one needs no key; one behind a gateway may want ``OPENAI_API_KEY``."""
        return cls(name="openai-compatible", base_url=base_url, require_key=False, purpose=purpose)

    @classmethod
    def hf_router(cls, *, purpose: str | None = None) -> OpenAIProvider:
        """Hugging Face's OpenAI-compatible router; the token from ``HF_TOKEN`` is required."""
        return cls(name="huggingface", base_url=HF_ROUTER_URL, key_env="HF_TOKEN", require_key=True, purpose=purpose)

    @property
    def client(self) -> AsyncOpenAI:
        """The OpenAI SDK client (its own retries off: `rolegraph.retry.RetryPolicy` retries)."""
        return self._client

    async def check(self) -> None:
        """GET the probe URL (if there is one); a refused or timed-out connection is a `ModelNotAvailableError`."""
        if self.probe is None:
            return
        import httpx

        try:
            async with httpx.AsyncClient(timeout=5.0) as http:
                await http.get(self.probe)
        except httpx.TransportError as exc:
            raise ModelNotAvailableError(
                f"cannot reach {self.name} at {self.base_url} ({type(exc).__name__}): {self.hint}"
            ) from None

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.close()
