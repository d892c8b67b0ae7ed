"""Retries: which failures are retried, how long each wait is, and when the policy gives up."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import httpx
import openai
import pytest

from rolegraph.retry import RetryPolicy, failure_kind, is_transient, retry_after, trace_retry
from rolegraph.traces.sinks import MemorySink
from rolegraph.traces.spans import SpanKind
from rolegraph.traces.tracer import Tracer


def _status_error(status: int, headers: dict[str, str] | None = None) -> httpx.HTTPStatusError:
    request = httpx.Request("GET", "http://127.0.0.1/")
    response = httpx.Response(status, headers=headers or {}, request=request)
    return httpx.HTTPStatusError(f"HTTP {status}", request=request, response=response)


class TestClassification:
    def test_transient_statuses_and_connection_errors(self) -> None:
        """429, 5xx and connection failures are transient; 400, 401, 403 and 404 are not."""
        assert all(is_transient(_status_error(s)) for s in (408, 429, 500, 502, 503, 504))
        assert not any(is_transient(_status_error(s)) for s in (400, 401, 403, 404))
        assert is_transient(httpx.ConnectError("reset"))
        assert is_transient(httpx.ReadTimeout("slow"))
        assert not is_transient(ValueError("bad"))

    def test_openai_sdk_errors_are_classified(self) -> None:
        """The OpenAI SDK's connection errors and its 429/5xx are transient, its 401 is not, and its status is named."""
        request = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")

        def status_error(status: int) -> openai.APIStatusError:
            response = httpx.Response(status, headers={"retry-after": "2"}, request=request)
            return openai.APIStatusError(f"HTTP {status}", response=response, body=None)

        assert is_transient(openai.APIConnectionError(request=request))
        assert is_transient(status_error(429)) and is_transient(status_error(503))
        assert not is_transient(status_error(401))
        assert failure_kind(status_error(503)) == "HTTP 503"
        assert retry_after(status_error(429)) == 2.0

    def test_loading_rolegraph_does_not_import_the_openai_sdk(self) -> None:
        """Loading and running workflows leaves the OpenAI SDK unimported: every full GC would walk its objects."""
        code = "import sys, rolegraph, rolegraph.workflow, rolegraph.retry; print('openai' in sys.modules)"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
        assert done.stdout.strip() == "False"

    def test_retry_after_seconds_and_http_date(self) -> None:
        """Retry-After is read as seconds or as an HTTP date relative to now."""
        assert retry_after(_status_error(429, {"Retry-After": "3"})) == 3.0
        now = dt.datetime(2026, 12, 1, 12, 0, 0, tzinfo=dt.UTC)
        dated = _status_error(503, {"Retry-After": "Tue, 01 Dec 2026 12:00:05 GMT"})
        assert retry_after(dated, now=now) == 5.0
        assert retry_after(_status_error(429)) is None
        assert retry_after(_status_error(429, {"Retry-After": "soon"})) is None


class TestRetryPolicy:
    async def test_retries_transient_failures_with_growing_delays(self) -> None:
        """Two 503s then success: three tries, waits doubling from initial_delay (no jitter)."""
        slept: list[float] = []
        tries = 0

        async def flaky() -> str:
            nonlocal tries
            tries += 1
            if tries < 3:
                raise _status_error(503)
            return "ok"

        async def sleep(seconds: float) -> None:
            slept.append(seconds)

        policy = RetryPolicy(attempts=5, initial_delay=0.25, jitter=0)
        assert await policy.call(flaky, sleep=sleep) == "ok"
        assert tries == 3
        assert slept == [0.25, 0.5]

    async def test_honours_retry_after(self) -> None:
        """A 429 with Retry-After: 2 waits exactly 2 seconds, whatever the backoff would be."""
        slept: list[float] = []
        seen: list[tuple[int, float]] = []
        calls = iter([_status_error(429, {"Retry-After": "2"}), None])

        async def limited() -> int:
            error = next(calls)
            if error is not None:
                raise error
            return 7

        async def sleep(seconds: float) -> None:
            slept.append(seconds)

        policy = RetryPolicy(initial_delay=10, jitter=0)
        result = await policy.call(limited, sleep=sleep, on_retry=lambda n, d, _e: seen.append((n, d)))
        assert result == 7
        assert slept == [2.0]
        assert seen == [(1, 2.0)]

    async def test_permanent_error_is_not_retried(self) -> None:
        """A 401 raises on the first try."""
        tries = 0

        async def denied() -> None:
            nonlocal tries
            tries += 1
            raise _status_error(401)

        with pytest.raises(httpx.HTTPStatusError):
            await RetryPolicy().call(denied)
        assert tries == 1

    async def test_gives_up_after_attempts(self) -> None:
        """A failure that never clears raises the last error after `attempts` tries, announcing attempts-1 retries."""
        tries = 0

        async def down() -> None:
            nonlocal tries
            tries += 1
            raise httpx.ConnectError("refused")

        async def sleep(_seconds: float) -> None:
            return None

        retries: list[int] = []
        with pytest.raises(httpx.ConnectError):
            await RetryPolicy(attempts=3).call(down, sleep=sleep, on_retry=lambda n, _d, _e: retries.append(n))
        assert tries == 3
        assert retries == [1, 2]  # the last failure is not announced as a retry

    async def test_retry_after_beyond_the_cap_gives_up(self) -> None:
        """A server asking for an hour's wait is not waited for: the error is raised at once."""
        tries = 0

        async def busy() -> None:
            nonlocal tries
            tries += 1
            raise _status_error(503, {"Retry-After": "3600"})

        with pytest.raises(httpx.HTTPStatusError):
            await RetryPolicy(max_retry_after=60).call(busy)
        assert tries == 1


class TestTraceRetry:
    def test_failure_kind_names_status_or_type_never_the_message(self) -> None:
        """A status error is named by its status, anything else by its type; the message is left out."""
        assert failure_kind(_status_error(429)) == "HTTP 429"
        assert failure_kind(httpx.ConnectError("to http://127.0.0.1/?key=sk-secret")) == "ConnectError"

    async def test_retries_are_recorded_on_the_current_span(self) -> None:
        """Each retry is a `retry` event under the open span, at once, and on the span as {attempt, delay_s, reason}."""
        calls = iter([_status_error(503), httpx.ReadTimeout("slow"), None])
        sink = MemorySink()
        tracer = Tracer("retry-test", sinks=[sink])

        async def flaky() -> str:
            error = next(calls)
            if error is not None:
                raise error
            return "ok"

        async def sleep(_seconds: float) -> None:
            return None

        policy = RetryPolicy(initial_delay=0.1, jitter=0)
        with tracer.span(SpanKind.CHAT, "chat x"):
            assert await policy.call(flaky, on_retry=trace_retry, sleep=sleep) == "ok"
        (start,) = [r for r in sink.records if r["event"] == "span_start"]
        (end,) = [r for r in sink.records if r["event"] == "span_end"]
        assert end["attributes"]["rolegraph.retries"] == [
            {"attempt": 1, "delay_s": 0.1, "reason": "HTTP 503"},
            {"attempt": 2, "delay_s": 0.2, "reason": "ReadTimeout"},
        ]
        events = [r for r in sink.records if r["event"] == "event"]
        assert [(e["name"], e["parent_id"], e["attributes"]) for e in events] == [
            (
                "retry",
                start["span_id"],
                {"rolegraph.retry.attempt": 1, "rolegraph.retry.delay_s": 0.1, "rolegraph.retry.reason": "HTTP 503"},
            ),
            (
                "retry",
                start["span_id"],
                {"rolegraph.retry.attempt": 2, "rolegraph.retry.delay_s": 0.2, "rolegraph.retry.reason": "ReadTimeout"},
            ),
        ]
        # each event is in the stream before the span ends: visible while the call is still waiting
        assert sink.records.index(events[1]) < sink.records.index(end)

    def test_outside_a_span_nothing_is_recorded(self) -> None:
        """With no span open, trace_retry is a no-op (it must never fail the call it reports on)."""
        trace_retry(1, 0.5, _status_error(503))
