"""Retries for transient failures of model and HTTP calls.

One policy for every network client in rolegraph (model providers, fetch,
scholarly APIs): exponential backoff with jitter, a server's ``Retry-After``
honoured (capped), and only transient failures retried — a dropped or reset
connection, a timeout, HTTP 408, 409, 429 and 5xx. Anything else (401, 403,
404, a bad request) fails at once: retrying it would only cost time.

```python
policy = RetryPolicy(attempts=4)
response = await policy.call(lambda: client.get(url), on_retry=trace_retry)
```

`trace_retry` records each retry (attempt, delay, reason) as a ``retry`` event
in the trace, at the moment it happens, and on the span that is open (the
``chat`` span of a model call, the ``execute_tool`` span of a fetch), under
``rolegraph.retries``. The reason is the failure's
kind (``HTTP 429``, ``ConnectError``), never its message: messages of HTTP
errors carry URLs and bodies, which may hold what must not be recorded.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import random
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import httpx
import tenacity
from pydantic import BaseModel, ConfigDict, Field

from rolegraph.traces.spans import current_span
from rolegraph.traces.tracer import current_tracer

__all__ = ["RetryPolicy", "failure_kind", "is_transient", "retry_after", "trace_retry"]

T = TypeVar("T")

TRANSIENT_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
"""HTTP statuses worth another try."""

Sleep = Callable[[float], Awaitable[None]]
RetryListener = Callable[[int, float, BaseException], None]
"""Called before each retry with the attempt that failed (1-based), the delay, and the error."""


def _openai() -> Any:
    """The OpenAI SDK if something imported it, else None.

    Only an OpenAI provider raises the SDK's errors, and it imports the SDK first, so the checks
    below never import it: the SDK holds about 65,000 objects (half of a workflow run's heap),
    which every full garbage collection of a process that never calls OpenAI would walk.
    """
    return sys.modules.get("openai")


def _status_and_headers(exc: BaseException) -> tuple[int | None, Mapping[str, str]]:
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code, exc.response.headers
    openai = _openai()
    if openai is not None and isinstance(exc, openai.APIStatusError):
        return exc.status_code, exc.response.headers
    status = getattr(exc, "status_code", None)
    headers = getattr(exc, "headers", None)
    return (status if isinstance(status, int) else None), (headers if isinstance(headers, Mapping) else {})


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` is a failure that may well not happen again: connection trouble or a transient status."""
    if isinstance(exc, httpx.TransportError | TimeoutError | ConnectionError):
        return True
    openai = _openai()
    if openai is not None and isinstance(exc, openai.APIConnectionError):
        return True
    status, _ = _status_and_headers(exc)
    return status in TRANSIENT_STATUS


def failure_kind(exc: BaseException) -> str:
    """A short, secret-free name for what failed: ``HTTP 503`` for a status, else the exception's type."""
    status, _ = _status_and_headers(exc)
    return f"HTTP {status}" if status is not None else type(exc).__name__


def trace_retry(attempt: int, delay: float, exc: BaseException) -> None:
    """A `RetryListener` recording the retry as a ``retry`` event and on the current span's ``rolegraph.retries``."""
    span = current_span()
    if span is None:
        return
    record = {"attempt": attempt, "delay_s": round(delay, 3), "reason": failure_kind(exc)}
    span.attributes.setdefault("rolegraph.retries", []).append(record)
    tracer = current_tracer()
    if tracer is not None:
        tracer.event("retry", **{f"rolegraph__retry__{key}": value for key, value in record.items()})


def retry_after(exc: BaseException, *, now: dt.datetime | None = None) -> float | None:
    """Seconds the server asked to wait (``Retry-After`` as seconds or an HTTP date), if it said."""
    _, headers = _status_and_headers(exc)
    value = headers.get("retry-after") or headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - (now or dt.datetime.now(dt.UTC))).total_seconds())


class RetryPolicy(BaseModel):
    """How often and how patiently to retry a transient failure."""

    model_config = ConfigDict(frozen=True)

    attempts: int = Field(default=4, ge=1)
    """Tries in all, the first included (1: no retry)."""
    initial_delay: float = Field(default=0.5, ge=0)
    """Delay before the first retry, in seconds; doubled for each further one."""
    max_delay: float = Field(default=30.0, ge=0)
    """No backoff delay is longer than this."""
    jitter: float = Field(default=0.5, ge=0)
    """Up to this many random seconds added to each backoff delay, so clients do not retry in lockstep."""
    max_retry_after: float = Field(default=120.0, ge=0)
    """A server's ``Retry-After`` is honoured up to this many seconds; longer waits give up instead."""

    def delay(self, attempt: int, exc: BaseException) -> float:
        """Seconds to wait after failed try number `attempt` (1-based) ended with `exc`.

        Raises:
            BaseException: `exc` itself, when the server asks for a wait beyond `max_retry_after`.
        """
        asked = retry_after(exc)
        if asked is not None:
            if asked > self.max_retry_after:
                raise exc
            return asked
        backoff: float = min(self.max_delay, self.initial_delay * 2 ** (attempt - 1))
        jitter: float = random.uniform(0, self.jitter)
        return backoff + jitter

    async def call(
        self,
        fn: Callable[[], Awaitable[T]],
        *,
        retry_if: Callable[[BaseException], bool] = is_transient,
        on_retry: RetryListener | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> T:
        """Await ``fn()``, retrying while it fails transiently and tries remain; re-raise the last error.

        Args:
            fn: Makes the call afresh on each try.
            retry_if: Which errors are worth a retry (default `is_transient`).
            on_retry: Told about each retry before its delay (for traces and logs).
            sleep: How to wait (tests pass a recorder).
        """

        def wait(state: tenacity.RetryCallState) -> float:
            assert state.outcome is not None
            exc = state.outcome.exception()
            assert exc is not None
            if state.attempt_number >= self.attempts:
                return 0.0  # tenacity asks for the wait before checking `stop`: no retry follows this one
            seconds = self.delay(state.attempt_number, exc)
            if on_retry is not None:
                on_retry(state.attempt_number, seconds, exc)
            return seconds

        retrying: tenacity.AsyncRetrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(self.attempts),
            wait=wait,
            retry=tenacity.retry_if_exception(retry_if),
            sleep=sleep,
            reraise=True,
        )
        result: Any = await retrying(fn)
        return result  # type: ignore[no-any-return]
