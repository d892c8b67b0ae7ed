"""The HTTP side of the scholarly tools: polite headers, the URL policy, retries, rate limits, timeouts, a byte cap.

Every request goes through `PolicyTransport` (the URL policy of the web tools,
so a base URL on a private address is refused unless allow-listed with
``ROLEGRAPH_ALLOW_HOSTS``), waits its turn at a per-host rate limiter, and is
retried by the project's one `RetryPolicy` when it fails transiently (a
dropped connection, a timeout, 429 or 5xx, the server's ``Retry-After``
honoured). Every failure ends as a `ToolError` naming the API and what
happened, which the tool returns as an error observation.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx

from rolegraph.errors import ToolError
from rolegraph.retry import TRANSIENT_STATUS, RetryPolicy
from rolegraph.tools.fetch import USER_AGENT
from rolegraph.tools.ratelimit import HostRateLimiter
from rolegraph.tools.untrusted import neutralise
from rolegraph.tools.urlpolicy import PolicyTransport, UrlPolicy

__all__ = [
    "MAILTO_ENV",
    "ApiClient",
    "ErrorReader",
    "load_json",
    "mailto_from_env",
    "read_json_error",
    "user_agent",
]

MAILTO_ENV = "ROLEGRAPH_MAILTO"
"""Environment variable with the contact address sent to the APIs (their "polite pool" asks for one)."""

ErrorReader = Callable[[bytes], str | None]
"""Finds the API's own explanation in an error response body (None if it has none)."""

Sleep = Callable[[float], Awaitable[None]]


def mailto_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """The contact address in ``ROLEGRAPH_MAILTO``, or None."""
    value = (os.environ if environ is None else environ).get(MAILTO_ENV, "").strip()
    return value or None


def user_agent(mailto: str | None) -> str:
    """The User-Agent of scholarly requests: rolegraph's, with ``mailto:`` when a contact address is set."""
    return f"{USER_AGENT.removesuffix(')')}; mailto:{mailto})" if mailto else USER_AGENT


class ApiClient:
    """GET requests to one scholarly API, politely and safely.

    Args:
        api: The API's name, for messages (``arXiv``, ``OpenAlex``).
        policy: Which URLs may be reached (default: `UrlPolicy.from_env()`).
        transport: The httpx transport under the policy check (tests may pass `httpx.MockTransport`).
        retry: How transient failures are retried.
        timeout: Seconds for connecting and between bytes.
        min_interval: Least seconds between two requests to the API's host.
        headers: Sent with every request (User-Agent, API keys).
        max_bytes: Largest answer read; a longer one is an error.
        sleep: How retries and the rate limit wait (tests pass a recorder).
    """

    def __init__(
        self,
        api: str,
        *,
        policy: UrlPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 20.0,
        min_interval: float = 1.0,
        headers: Mapping[str, str] | None = None,
        max_bytes: int = 10_000_000,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.api = api
        self.policy = policy or UrlPolicy.from_env()
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.limiter = HostRateLimiter(min_interval, sleep=sleep)
        self._headers = dict(headers or {})
        self._transport = transport
        self._sleep = sleep
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        # Built on first use, inside the running loop: listing tools opens nothing.
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=PolicyTransport(self.policy, self._transport),
                trust_env=False,  # an environment proxy would resolve names behind the policy's back
                follow_redirects=False,  # each hop would need its own check; these APIs answer directly
                timeout=httpx.Timeout(self.timeout),
                headers=self._headers,
            )
        return self._client

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def get(self, url: str, params: Mapping[str, str | int], *, error_reader: ErrorReader | None = None) -> bytes:
        """The body of a successful GET of `url` with `params`, retried while it fails transiently.

        Raises:
            ToolError: The URL was refused, the API kept failing, answered an error, or sent too much.
        """
        tries = 0

        async def attempt() -> tuple[httpx.Response, bytes]:
            nonlocal tries
            tries += 1
            request = self._http().build_request("GET", url, params=params)
            await self.limiter.wait(f"{request.url.host}:{request.url.port}")
            response = await self._http().send(request, stream=True)
            try:
                body = await _read_capped(response, self.max_bytes, self.api)
            finally:
                await response.aclose()
            if response.status_code in TRANSIENT_STATUS:
                raise httpx.HTTPStatusError(f"HTTP {response.status_code}", request=request, response=response)
            return response, body

        try:
            response, body = await self.retry.call(attempt, sleep=self._sleep)
        except ToolError:
            raise  # a refused URL (never sent) or an answer over the byte cap
        except httpx.HTTPStatusError as exc:
            raise ToolError(
                f"{self.api} answered HTTP {exc.response.status_code} {exc.response.reason_phrase} "
                f"{_tries(tries)}; try again later"
            ) from None
        except httpx.TimeoutException:
            raise ToolError(f"{self.api} did not answer within {self.timeout:g}s {_tries(tries)}") from None
        except httpx.HTTPError as exc:
            raise ToolError(f"could not reach {self.api} ({type(exc).__name__}: {exc}) {_tries(tries)}") from None
        if response.status_code >= 400:
            detail = error_reader(body) if error_reader is not None else None
            # The API's own words are untrusted text shown outside any frame: one short line, no delimiters.
            reason = f": {' '.join(neutralise(detail).split())[:300]}" if detail else ""
            raise ToolError(f"{self.api} answered HTTP {response.status_code} {response.reason_phrase}{reason}")
        return body


def read_json_error(body: bytes) -> str | None:
    """The ``message`` or ``error`` a JSON error body carries, if any (OpenAlex, Crossref and Semantic Scholar)."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    for key in ("message", "error"):
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            return " ".join(value.split())[:300]
        if isinstance(value, list) and value and isinstance(value[0], dict):
            return " ".join(str(value[0].get("message", value[0])).split())[:300]
    return None


def load_json(body: bytes, api: str) -> Any:
    """`body` parsed as JSON.

    Raises:
        ToolError: It is not JSON.
    """
    try:
        return json.loads(body)
    except ValueError as exc:
        raise ToolError(f"{api} sent an answer that is not valid JSON ({exc})") from None


def _tries(count: int) -> str:
    return "after 1 try" if count == 1 else f"after {count} tries"


async def _read_capped(response: httpx.Response, limit: int, api: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise ToolError(f"{api} sent more than {limit:,} bytes; ask for fewer results")
        chunks.append(chunk)
    return b"".join(chunks)
