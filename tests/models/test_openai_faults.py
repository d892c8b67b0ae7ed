"""The OpenAI provider's retries and timeouts, end to end against `FaultServer` on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rolegraph.errors import ModelError
from rolegraph.models.messages import Message
from rolegraph.models.model import ModelSettings
from rolegraph.models.openai_compat import OpenAIModel
from rolegraph.retry import RetryPolicy
from rolegraph.testing import Chat, FaultRequest, FaultServer, Reset, Stall, Status, rate_limited
from rolegraph.traces.sinks import MemorySink
from rolegraph.traces.spans import SpanKind
from rolegraph.traces.tracer import Tracer

CANARY = "sk-canary-faults-0123456789abcdef"
FAST = RetryPolicy(attempts=4, initial_delay=0.01, jitter=0)
HELLO = [Message.user("hello")]


@pytest.fixture(autouse=True)
def _canary_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    yield


async def _complete(
    server: FaultServer, settings: ModelSettings | None = None, retry: RetryPolicy = FAST
) -> tuple[str, list[dict[str, object]]]:
    """Complete once inside a traced chat span; the text and the retries recorded on the span."""
    sink = MemorySink()
    tracer = Tracer("faults", sinks=[sink])
    model = OpenAIModel("m", base_url=server.url, require_key=False, retry=retry)
    try:
        with tracer.span(SpanKind.CHAT, "chat m"):
            completion = await model.complete(HELLO, settings=settings)
    finally:
        await model.aclose()
    (end,) = [r for r in sink.records if r["event"] == "span_end"]
    retries: list[dict[str, object]] = end["attributes"].get("rolegraph.retries", [])
    return completion.text, retries


class TestRetries:
    async def test_429_storm_waits_as_told_then_completes(self) -> None:
        """Three 429s with Retry-After 1, 0.5, 0: waits exactly those seconds (not backoff), then the answer."""
        script = [rate_limited(1), rate_limited(0.5), rate_limited(0), Chat("made it")]
        with FaultServer(script) as server:
            text, retries = await _complete(server)
        assert text == "made it"
        assert len(server.requests) == 4
        assert retries == [
            {"attempt": 1, "delay_s": 1.0, "reason": "HTTP 429"},
            {"attempt": 2, "delay_s": 0.5, "reason": "HTTP 429"},
            {"attempt": 3, "delay_s": 0.0, "reason": "HTTP 429"},
        ]
        # Retry-After is a lower bound on the gap between the requests.
        gaps = [b.at - a.at for a, b in zip(server.requests, server.requests[1:], strict=False)]
        assert gaps[0] >= 0.99 and gaps[1] >= 0.49

    async def test_reset_and_5xx_are_retried_with_backoff(self) -> None:
        """A reset connection and a 503 are transient: backoff 0.01 then 0.02, then the answer."""
        with FaultServer([Reset(), Status(503, body={"error": {"message": "busy"}}), Chat("fine")]) as server:
            text, retries = await _complete(server)
        assert text == "fine"
        assert [(r["delay_s"], r["reason"]) for r in retries] == [(0.01, "APIConnectionError"), (0.02, "HTTP 503")]

    async def test_sdk_makes_no_retries_of_its_own(self) -> None:
        """With the policy at one attempt, one 503 is one request and a ModelError: the SDK does not retry."""
        with FaultServer([Status(503), Chat()]) as server:
            with pytest.raises(ModelError, match="HTTP 503"):
                await _complete(server, retry=RetryPolicy(attempts=1))
        assert len(server.requests) == 1

    async def test_settings_retries_override_the_policy(self) -> None:
        """ModelSettings(retries=1) allows two tries, whatever the policy says."""
        with FaultServer([Status(502), Status(502), Chat()]) as server:
            with pytest.raises(ModelError, match="HTTP 502"):
                await _complete(server, ModelSettings(retries=1))
        assert len(server.requests) == 2

    async def test_stalled_attempt_times_out_and_is_retried(self) -> None:
        """A stalled answer is abandoned after attempt_timeout and the retry gets the completion."""
        with FaultServer([Stall(), Chat("after the stall")]) as server:
            text, retries = await _complete(server, ModelSettings(attempt_timeout=0.5, timeout=60))
        assert text == "after the stall"
        assert [r["reason"] for r in retries] == ["APITimeoutError"]

    async def test_hung_server_ends_in_a_model_error_within_the_call_timeout(self) -> None:
        """A server that never answers: every try times out, and the call ends in a ModelError."""
        with FaultServer([Stall(), Stall(), Stall()]) as server:
            with pytest.raises(ModelError, match=r"did not answer within 1s|timed out"):
                await _complete(server, ModelSettings(attempt_timeout=0.3, timeout=1, retries=10))
        assert 1 <= len(server.requests) <= 11


class TestPermanentFailures:
    async def test_401_is_not_retried_and_names_the_variable_not_the_key(self) -> None:
        """A 401 echoing the Authorization header: one request, a ModelError naming OPENAI_API_KEY, no key."""

        def refuse(request: FaultRequest) -> Status:
            header = request.headers.get("authorization", "")
            return Status(401, body={"error": {"message": f"Incorrect API key provided: {header}"}})

        with FaultServer([refuse, Chat()]) as server:
            with pytest.raises(ModelError) as caught:
                await _complete(server)
        assert len(server.requests) == 1
        assert server.requests[0].headers["authorization"] == f"Bearer {CANARY}"  # the key did go out
        message = str(caught.value)
        assert "OPENAI_API_KEY" in message and "401" in message
        assert CANARY not in message
        assert caught.value.__cause__ is None

    async def test_400_is_not_retried(self) -> None:
        """A bad request fails at once with the server's message."""
        with FaultServer([Status(400, body={"error": {"message": "context too long"}}), Chat()]) as server:
            with pytest.raises(ModelError, match="context too long"):
                await _complete(server)
        assert len(server.requests) == 1

    async def test_requests_carry_the_chat_body(self) -> None:
        """The server records the request body, so tests can check what was sent."""
        with FaultServer([Chat("x")]) as server:
            await _complete(server)
        (request,) = server.requests
        assert request.path == "/v1/chat/completions"
        assert request.body["messages"] == [{"role": "user", "content": "hello"}]
        assert json.dumps(request.body)


class TestBadOutput:
    async def test_lone_surrogates_are_replaced(self) -> None:
        """A JSON \\ud800 escape in the reply (a lone surrogate) is replaced, so it can be written as UTF-8."""
        with FaultServer([Chat("a\ud800b")]) as server:
            text, _ = await _complete(server)
        assert "\ud800" not in text and text.startswith("a") and text.endswith("b") and "\ufffd" in text
        text.encode("utf-8")


def _choice(message: object) -> dict[str, object]:
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
    }


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("not JSON", "<html>proxy error</html>"),
        ("a list", [1, 2]),
        ("no choices", {"choices": []}),
        ("choices a string", {"choices": "x"}),
        ("message null", _choice(None)),
        ("content a number", _choice({"role": "assistant", "content": 5})),
        (
            "tool call without name",
            _choice(
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "c", "type": "function", "function": {"name": None, "arguments": None}}],
                }
            ),
        ),
    ],
)
async def test_malformed_200_is_a_model_error(name: str, body: object) -> None:
    """A 200 whose body is no chat completion raises ModelError (never JSONDecodeError or AttributeError)."""
    with FaultServer([Status(200, body=body)]) as server:
        with pytest.raises(ModelError, match=r"returned (a malformed response|no choices)"):
            await _complete(server)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
field = json_values | st.just("stop") | st.just("function")
tool_call_bodies = st.fixed_dictionaries(
    {"id": field, "type": field, "function": st.fixed_dictionaries({"name": field, "arguments": field})}
)
completion_bodies = st.fixed_dictionaries(
    {
        "id": field,
        "object": field,
        "created": field,
        "model": field,
        "choices": st.lists(
            st.fixed_dictionaries(
                {
                    "index": field,
                    "message": st.fixed_dictionaries(
                        {"role": field, "content": field, "tool_calls": st.lists(tool_call_bodies, max_size=2) | field}
                    )
                    | field,
                    "finish_reason": field,
                }
            ),
            max_size=2,
        )
        | field,
        "usage": st.fixed_dictionaries({"prompt_tokens": field, "completion_tokens": field}) | field,
    }
)


class TestFuzzedResponses:
    def test_any_200_body_gives_a_completion_or_a_model_error(self) -> None:
        """Random JSON, shaped like a chat completion or not: a Completion or a ModelError, nothing else."""
        current: list[object] = [None]
        with FaultServer([lambda _request: Status(200, body=current[0])] * 100_000) as server:

            @settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
            @given(body=completion_bodies | json_values)
            def check(body: object) -> None:
                current[0] = body
                try:
                    asyncio.run(_complete(server, retry=RetryPolicy(attempts=1)))
                except ModelError:
                    pass

            check()
        assert len(server.requests) >= 200
