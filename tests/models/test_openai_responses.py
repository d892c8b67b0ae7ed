"""The Responses API protocol against a loopback server answering with recorded real bodies (and documented shapes).

The recorded bodies and their origins are listed in ``fixtures/responses/README.md``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import TypeAdapter

from rolegraph.errors import ModelError
from rolegraph.models.messages import Message, ToolCall, ToolSpec
from rolegraph.models.model import Completion, ModelSettings, Usage
from rolegraph.models.openai_responses import OpenAIResponsesModel
from rolegraph.models.providers import OpenAIProvider
from rolegraph.retry import RetryPolicy
from rolegraph.testing import FaultRequest, FaultServer, Status, rate_limited
from rolegraph.traces.sinks import MemorySink
from rolegraph.traces.spans import SpanKind
from rolegraph.traces.tracer import Tracer

FIXTURES = Path(__file__).parent / "fixtures" / "responses"
CANARY = "sk-canary-responses-0123456789abcdef"
FAST = RetryPolicy(attempts=4, initial_delay=0.01, jitter=0)

ORIGIN_BLOBS = {
    "pydantic-ai_test_openai_responses_model_simple_response_with_tool_call.yaml": (
        "ee210dc3681369ba2261f45bad9119230a98e2b1"
    ),
    "pydantic-ai_test_openai_responses_history_with_combined_tool_call_id.yaml": (
        "338832d45e902f0b7d53d2b37e10a9afcd39380e"
    ),
    "pydantic-ai_test_native_output.yaml": "9fd1b698940e368f4a51c2c9b4622e957b43cfbc",
    "pydantic-ai_test_openai_responses_model_http_error.yaml": "6aee4c03214622126a4ff34fbceefc79fdcf7379",
}

GET_CAPITAL = ToolSpec(
    name="get_capital",
    description="The capital of a country.",
    parameters={"type": "object", "properties": {"country": {"type": "string"}}, "required": ["country"]},
)


@pytest.fixture(autouse=True)
def _canary_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)


def interactions(name: str) -> list[dict[str, Any]]:
    """The request/response pairs of a pydantic-ai cassette."""
    document = yaml.safe_load((FIXTURES / name).read_text(encoding="utf-8"))
    pairs: list[dict[str, Any]] = document["interactions"]
    return pairs


def recorded(name: str, index: int) -> Status:
    """The recorded answer of interaction `index` of a cassette, as the server sent it (status and JSON body)."""
    response = interactions(name)[index]["response"]
    return Status(response["status"]["code"], body=json.dumps(response["parsed_body"]))


def model_for(server: FaultServer, retry: RetryPolicy = FAST) -> OpenAIResponsesModel:
    provider = OpenAIProvider(name="openai", base_url=server.url, require_key=True)
    return OpenAIResponsesModel("gpt-4o", provider=provider, retry=retry, name="openai:gpt-4o")


async def complete(
    server: FaultServer, messages: list[Message], **kwargs: Any
) -> tuple[Completion, list[dict[str, object]]]:
    """One call inside a traced chat span: the completion and the retries recorded on the span."""
    sink = MemorySink()
    tracer = Tracer("responses", sinks=[sink])
    model = model_for(server)
    try:
        with tracer.span(SpanKind.CHAT, "chat gpt-4o"):
            completion = await model.complete(messages, **kwargs)
    finally:
        await model.aclose()
    (end,) = [r for r in sink.records if r["event"] == "span_end"]
    return completion, end["attributes"].get("rolegraph.retries", [])


def documented(output: list[dict[str, Any]], **fields: Any) -> Status:
    """A Responses body of the documented shape (`openai.types.responses.Response`), for what no suite recorded."""
    body = {
        "id": "resp_documented",
        "object": "response",
        "created_at": 0,
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "model": "gpt-4o-2024-08-06",
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": 12,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 7,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 19,
        },
        **fields,
    }
    return Status(200, body=body)


def message(*content: dict[str, Any]) -> dict[str, Any]:
    return {"id": "msg_documented", "type": "message", "status": "completed", "role": "assistant", "content": content}


class TestFixtures:
    @pytest.mark.parametrize("name", sorted(ORIGIN_BLOBS))
    def test_cassettes_are_byte_identical_to_their_origin(self, name: str) -> None:
        """Each recorded cassette hashes to its origin's git blob id (README lists the commits)."""
        data = (FIXTURES / name).read_bytes()
        blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        assert blob == ORIGIN_BLOBS[name]


class TestRecordedAnswers:
    async def test_text_answer_with_usage(self) -> None:
        """openai-python's recorded live answer: its text, usage, model and a plain request body, without seed."""
        body = (FIXTURES / "openai-python_test_output_text.json").read_text(encoding="utf-8")
        question = "What's the weather like in SF?"
        with FaultServer([Status(200, body=body)]) as server:
            completion, _ = await complete(
                server, [Message.system("Be brief."), Message.user(question)], settings=ModelSettings(seed=3)
            )
        assert completion.text.startswith("I can't provide real-time updates, but you can easily check")
        assert (completion.usage, completion.model, completion.finish_reason) == (
            Usage(input_tokens=14, output_tokens=50),
            "gpt-4o-mini-2024-07-18",
            "stop",
        )
        assert completion.tool_calls == [] and completion.reasoning == []
        (request,) = server.requests
        assert request.path == "/v1/responses"
        assert request.headers["authorization"] == f"Bearer {CANARY}"
        assert request.body == {
            "model": "gpt-4o",
            "input": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": question}],
        }

    async def test_tool_call_round_trip(self) -> None:
        """gpt-4o's recorded function_call becomes a ToolCall; its result goes back as function_call_output."""
        cassette = "pydantic-ai_test_openai_responses_model_simple_response_with_tool_call.yaml"
        question = Message.user("What is the capital of PotatoLand?")
        with FaultServer([recorded(cassette, 0), recorded(cassette, 1)]) as server:
            first, _ = await complete(server, [question], tools=[GET_CAPITAL])
            (call,) = first.tool_calls
            assert call == ToolCall(
                id="call_YfwRsW8sUxDKipwyhWTzOXCA", name="get_capital", arguments='{"country":"PotatoLand"}'
            )
            assert (first.finish_reason, first.usage) == ("tool_calls", Usage(input_tokens=40, output_tokens=18))
            history = [question, Message.assistant(first.text, first.tool_calls), Message.tool(call, "Potato City")]
            second, _ = await complete(server, history, tools=[GET_CAPITAL])
        assert (second.text, second.finish_reason) == ("The capital of PotatoLand is Potato City.", "stop")
        asked, answered = server.requests
        assert asked.body["tools"] == [
            {
                "type": "function",
                "name": "get_capital",
                "description": "The capital of a country.",
                "parameters": GET_CAPITAL.parameters,
                "strict": False,
            }
        ]
        assert asked.body["tool_choice"] == "auto"
        # What went back is what the live API accepted in the recording (pydantic-ai also sent `status: null`).
        sent_then = interactions(cassette)[1]["request"]["parsed_body"]["input"]
        assert answered.body["input"] == [
            {"role": "user", "content": "What is the capital of PotatoLand?"},
            {k: v for k, v in sent_then[1].items() if k != "status"},
            sent_then[2],
        ]

    async def test_reasoning_items_go_back_with_the_next_turn(self) -> None:
        """gpt-5's recorded reasoning item is kept on the completion and sent back, verbatim, before its call."""
        cassette = "pydantic-ai_test_openai_responses_history_with_combined_tool_call_id.yaml"
        recorded_item = interactions(cassette)[0]["response"]["parsed_body"]["output"][0]
        question = Message.user("What is the largest city in the user country?")
        with FaultServer([recorded(cassette, 0), documented([message(_text("Mexico City."))])]) as server:
            first, _ = await complete(
                server, [question], tools=[GET_CAPITAL], settings=ModelSettings(tool_choice="required")
            )
            assert first.reasoning == [recorded_item]
            assert first.usage == Usage(input_tokens=103, output_tokens=409)
            (call,) = first.tool_calls
            turn = Message.assistant(first.text, first.tool_calls, first.reasoning)
            second, _ = await complete(server, [question, turn, Message.tool(call, "Mexico City")])
        assert second.text == "Mexico City."
        assert server.requests[0].body["tool_choice"] == "required"
        assert server.requests[1].body["input"][1:] == [
            recorded_item,
            {"type": "function_call", "call_id": call.id, "name": "final_result", "arguments": call.arguments},
            {"type": "function_call_output", "call_id": call.id, "output": "Mexico City"},
        ]

    async def test_structured_output_goes_out_as_text_format(self) -> None:
        """An output schema is sent as text.format json_schema; the recorded JSON answer comes back as text."""
        cassette = "pydantic-ai_test_native_output.yaml"
        schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        with FaultServer([recorded(cassette, 1)]) as server:
            completion, _ = await complete(server, [Message.user("Where?")], output_schema=schema)
        assert json.loads(completion.text) == {"city": "Mexico City", "country": "Mexico"}
        assert server.requests[0].body["text"] == {"format": {"type": "json_schema", "name": "final", "schema": schema}}

    async def test_recorded_400_fails_at_once_with_the_servers_message(self) -> None:
        """The API's recorded invalid_request_error is one request and a ModelError quoting its message."""
        cassette = "pydantic-ai_test_openai_responses_model_http_error.yaml"
        with FaultServer([recorded(cassette, 0), documented([])]) as server:
            with pytest.raises(ModelError, match=r"HTTP 400.*Invalid 'temperature'"):
                await complete(server, [Message.user("What is the capital of France?")])
        assert len(server.requests) == 1


def _text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


class TestDocumentedShapes:
    async def test_refusal_is_the_text_with_finish_reason_refusal(self) -> None:
        """A refusal content part becomes the completion's text, finish_reason ``refusal``."""
        refusal = {"type": "refusal", "refusal": "I'm sorry, I can't help with that."}
        with FaultServer([documented([message(refusal)])]) as server:
            completion, _ = await complete(server, [Message.user("Something harmful")])
        assert (completion.text, completion.finish_reason) == ("I'm sorry, I can't help with that.", "refusal")

    async def test_incomplete_at_max_output_tokens_is_length(self) -> None:
        """status incomplete (max_output_tokens): the partial text, finish_reason ``length``; max_tokens went out."""
        body = documented(
            [message(_text("The capital of France is"))],
            status="incomplete",
            incomplete_details={"reason": "max_output_tokens"},
        )
        with FaultServer([body]) as server:
            completion, _ = await complete(server, [Message.user("Capital?")], settings=ModelSettings(max_tokens=5))
        assert (completion.text, completion.finish_reason) == ("The capital of France is", "length")
        assert server.requests[0].body["max_output_tokens"] == 5

    async def test_429_and_500_are_retried_and_traced(self) -> None:
        """A 429 (Retry-After 0) and a 500 are retried, each recorded on the chat span, then the answer."""
        error = Status(500, body={"error": {"message": "The server had an error", "type": "server_error"}})
        with FaultServer([rate_limited(0), error, documented([message(_text("fine"))])]) as server:
            completion, retries = await complete(server, [Message.user("hi")])
        assert completion.text == "fine"
        assert [r["reason"] for r in retries] == ["HTTP 429", "HTTP 500"]
        assert len(server.requests) == 3

    async def test_failed_response_is_a_model_error(self) -> None:
        """status failed with an error object is a ModelError naming the code."""
        failed = documented([], status="failed", error={"code": "server_error", "message": "Something went wrong"})
        with FaultServer([failed]) as server, pytest.raises(ModelError, match="server_error: Something went wrong"):
            await complete(server, [Message.user("hi")])

    async def test_refused_key_names_the_variable_never_the_key(self) -> None:
        """A 401 echoing the Authorization header: one request, an error naming OPENAI_API_KEY, no key in it."""

        def refuse(request: FaultRequest) -> Status:
            header = request.headers.get("authorization", "")
            return Status(401, body={"error": {"message": f"Incorrect API key provided: {header}"}})

        with FaultServer([refuse]) as server, pytest.raises(ModelError) as caught:
            await complete(server, [Message.user("hi")])
        assert "OPENAI_API_KEY" in str(caught.value) and CANARY not in str(caught.value)

    async def test_malformed_body_is_a_model_error(self) -> None:
        """A 200 whose output is not a list of items raises ModelError, not AttributeError."""
        with FaultServer([Status(200, body={"status": "completed", "output": "nonsense"})]) as server:
            with pytest.raises(ModelError, match="malformed"):
                await complete(server, [Message.user("hi")])


class TestMessages:
    def test_chat_messages_serialise_as_before_reasoning_existed(self) -> None:
        """The bytes a request digest hashes for a chat conversation are those of the five fields Message had."""
        call = ToolCall(id="c1", name="search", arguments='{"q": "x"}')
        messages = [Message.system("s"), Message.user("u"), Message.assistant("t", [call]), Message.tool(call, "r")]
        before = [
            {
                "role": m.role,
                "content": m.content,
                "tool_calls": [c.model_dump() for c in m.tool_calls],
                "tool_call_id": m.tool_call_id,
                "name": m.name,
            }
            for m in messages
        ]
        dumped = TypeAdapter(list[Message]).dump_json(messages)
        assert dumped == json.dumps(before, separators=(",", ":")).encode()

    def test_reasoning_is_left_out_of_messages_that_have_none(self) -> None:
        """A message without reasoning items serialises as before (request digests of chat runs stay the same)."""
        plain = Message.assistant("x", [ToolCall(id="c", name="t", arguments="{}")])
        assert "reasoning" not in plain.model_dump() and "reasoning" not in Completion(text="x").model_dump()
        assert Message.assistant("x", reasoning=[{"type": "reasoning", "id": "rs"}]).model_dump()["reasoning"]
