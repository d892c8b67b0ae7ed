"""``hf:<repo>`` through huggingface_hub's InferenceClient (async twin), pointed at a loopback server (``base_url``)."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from rolegraph.errors import ModelError
from rolegraph.models.huggingface import HFInferenceModel, HFProvider
from rolegraph.models.keys import MissingKeyError
from rolegraph.models.messages import Message, ToolCall, ToolSpec
from rolegraph.models.model import Completion, ModelSettings, Usage
from rolegraph.models.registry import ModelOptions, resolve_model
from rolegraph.retry import RetryPolicy
from rolegraph.testing import Chat, FaultRequest, FaultServer, Status, rate_limited
from rolegraph.traces.sinks import MemorySink
from rolegraph.traces.spans import SpanKind
from rolegraph.traces.tracer import Tracer

TOKEN = "hf_canaryHuggingFace0123456789abcdef"
REPO = "HuggingFaceTB/SmolLM3-3B"
FAST = RetryPolicy(attempts=3, initial_delay=0.01, jitter=0)
LOOKUP = ToolSpec(
    name="lookup",
    description="Look a word up.",
    parameters={"type": "object", "properties": {"word": {"type": "string"}}, "required": ["word"]},
)


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)


async def complete(url: str, messages: list[Message], **kwargs: Any) -> tuple[Completion, list[dict[str, object]]]:
    """One call through the InferenceClient at `url`, inside a traced chat span: completion and recorded retries."""
    sink = MemorySink()
    tracer = Tracer("hf", sinks=[sink])
    model = HFInferenceModel(REPO, provider=HFProvider(base_url=url), retry=FAST)
    try:
        with tracer.span(SpanKind.CHAT, "chat hf"):
            completion = await model.complete(messages, **kwargs)
    finally:
        await model.aclose()
    (end,) = [r for r in sink.records if r["event"] == "span_end"]
    return completion, end["attributes"].get("rolegraph.retries", [])


class TestResolve:
    async def test_hf_is_the_inference_client_with_provider_auto(self) -> None:
        """``hf:<repo>`` is an HFInferenceModel whose InferenceClient routes with provider ``auto``."""
        model = resolve_model(f"hf:{REPO}")
        assert isinstance(model, HFInferenceModel)
        assert (model.name, model.model, model.options) == (f"hf:{REPO}", REPO, {"provider": "auto"})
        assert model.provider.client.provider == "auto"
        await model.aclose()

    async def test_provider_is_selectable_from_the_settings(self) -> None:
        """``provider: together`` in the model's settings reaches the InferenceClient."""
        model = resolve_model(f"hf:{REPO}", options=ModelOptions(provider="together"))
        assert isinstance(model, HFInferenceModel)
        assert model.provider.client.provider == "together" and model.options == {"provider": "together"}
        await model.aclose()

    def test_without_hf_token_the_error_names_it(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """No HF_TOKEN and nobody to ask: MissingKeyError naming HF_TOKEN."""
        monkeypatch.delenv("HF_TOKEN")
        with pytest.raises(MissingKeyError, match="set the HF_TOKEN environment variable"):
            resolve_model(f"hf:{REPO}")


class TestChatCompletion:
    async def test_text_answer_with_usage_and_the_token(self) -> None:
        """A plain answer: text, usage, model; the request is a chat completion carrying the token."""
        with FaultServer([Chat("Bonjour.", model=REPO, usage=(11, 3))]) as server:
            completion, _ = await complete(
                server.url, [Message.user("Say hello in French.")], settings=ModelSettings(temperature=0, seed=7)
            )
        assert (completion.text, completion.usage, completion.model) == (
            "Bonjour.",
            Usage(input_tokens=11, output_tokens=3),
            REPO,
        )
        (request,) = server.requests
        assert request.path == "/v1/chat/completions"
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert request.body["model"] == REPO
        assert request.body["messages"] == [{"role": "user", "content": "Say hello in French."}]
        assert (request.body["temperature"], request.body["seed"]) == (0, 7)

    async def test_tool_call_round_trip(self) -> None:
        """Tools go out in OpenAI's shape; a tool call comes back; its result goes back as a tool message."""
        script = [Chat(None, tool_calls=[("lookup", '{"word": "LoRA"}')]), Chat("Low-rank adaptation.")]
        question = Message.user("What is LoRA?")
        with FaultServer(script) as server:
            first, _ = await complete(
                server.url, [question], tools=[LOOKUP], settings=ModelSettings(tool_choice="required")
            )
            (call,) = first.tool_calls
            assert (call.name, call.parsed_arguments(), first.finish_reason) == (
                "lookup",
                {"word": "LoRA"},
                "tool_calls",
            )
            history = [question, Message.assistant("", [call]), Message.tool(call, "low-rank adaptation")]
            second, _ = await complete(server.url, history, tools=[LOOKUP])
        assert second.text == "Low-rank adaptation."
        asked, answered = server.requests
        assert asked.body["tools"] == [LOOKUP.to_openai()] and asked.body["tool_choice"] == "required"
        assert answered.body["messages"][-1] == {
            "role": "tool",
            "content": "low-rank adaptation",
            "tool_call_id": call.id,
        }

    async def test_output_schema_goes_out_as_a_json_grammar(self) -> None:
        """An output schema reaches an endpoint as TGI's JSON grammar (huggingface_hub rewrites the
        json_schema response_format for hf-inference and endpoints); the JSON answer comes back as text."""
        schema = {"type": "object", "properties": {"word": {"type": "string"}}, "required": ["word"]}
        with FaultServer([Chat('{"word": "LoRA"}')]) as server:
            completion, _ = await complete(server.url, [Message.user("One word.")], output_schema=schema)
        assert json.loads(completion.text) == {"word": "LoRA"}
        assert server.requests[0].body["response_format"] == {"type": "json_object", "value": schema}

    async def test_tgi_style_object_arguments_become_json_text(self) -> None:
        """A server sending tool arguments as an object (TGI does) gives the same ToolCall as a JSON string would."""
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "0", "type": "function", "function": {"name": "lookup", "arguments": {"word": "x"}}}],
        }
        body = {
            "id": "t",
            "object": "chat.completion",
            "created": 0,
            "model": REPO,
            "system_fingerprint": "",
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
        with FaultServer([Status(200, body=body)]) as server:
            completion, _ = await complete(server.url, [Message.user("x")], tools=[LOOKUP])
        assert completion.tool_calls == [ToolCall(id="0", name="lookup", arguments='{"word": "x"}')]


class TestFailures:
    async def test_429_and_503_are_retried_and_traced(self) -> None:
        """A 429 (Retry-After 0) and a 503 are retried by the policy, each recorded on the chat span."""
        busy = Status(503, body={"error": "Model is overloaded"})
        with FaultServer([rate_limited(0), busy, Chat("fine")]) as server:
            completion, retries = await complete(server.url, [Message.user("hi")])
        assert completion.text == "fine"
        assert [r["reason"] for r in retries] == ["HTTP 429", "HTTP 503"]

    async def test_refused_token_names_hf_token_never_the_token(self) -> None:
        """A 401 echoing the header: one request, a ModelError naming HF_TOKEN, without the token."""

        def refuse(request: FaultRequest) -> Status:
            return Status(401, body={"error": f"Invalid credentials in {request.headers.get('authorization')}"})

        with FaultServer([refuse, Chat()]) as server, pytest.raises(ModelError) as caught:
            await complete(server.url, [Message.user("hi")])
        assert len(server.requests) == 1
        assert "HF_TOKEN" in str(caught.value) and TOKEN not in str(caught.value)

    async def test_a_bad_request_fails_at_once_with_the_servers_message(self) -> None:
        """A 400 is not retried and its message is quoted."""
        with FaultServer([Status(400, body={"error": {"message": "context too long"}}), Chat()]) as server:
            with pytest.raises(ModelError, match="HTTP 400: context too long"):
                await complete(server.url, [Message.user("hi")])
        assert len(server.requests) == 1

    async def test_no_server_is_retried_then_a_model_error(self) -> None:
        """Nothing listening: the refused connections are retried (transient), then a ModelError."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        with pytest.raises(ModelError, match=f"model hf:{REPO} failed"):
            await complete(f"http://127.0.0.1:{port}/v1", [Message.user("hi")])
