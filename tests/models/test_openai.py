"""The OpenAI-compatible provider against a real server: llama-cpp-python's, on loopback, serving SmolLM2."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

from rolegraph.errors import ModelError
from rolegraph.models.messages import Message, ToolCall, ToolSpec
from rolegraph.models.model import ModelSettings
from rolegraph.models.openai_compat import OpenAIModel
from rolegraph.retry import RetryPolicy

STARTUP_DEADLINE = 120.0
CANARY_KEY = "sk-canary-0123456789abcdefghijklmnop"
NO_RETRY = RetryPolicy(attempts=1)


class Verdict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    verdict: Literal["accept", "revise"]
    score: int
    note: str = Field(max_length=60)


SEARCH = ToolSpec(
    name="search",
    description="Search the library for papers.",
    parameters={
        "type": "object",
        "properties": {"query": {"type": "string", "maxLength": 40}},
        "required": ["query"],
    },
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Server:
    url: str
    log: Path

    def refusals(self) -> int:
        """How many requests the server has answered with a 500 so far (from its access log)."""
        return self.log.read_text(errors="replace").count('" 500 ')


def serve(gguf: Path, log: Path, *extra: str) -> Iterator[Server]:
    """Run `python -m llama_cpp.server` on a free loopback port until the generator is closed."""
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", *extra]
    base_url = f"http://127.0.0.1:{port}/v1"
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + STARTUP_DEADLINE
            while True:
                if process.poll() is not None:
                    pytest.fail(f"llama_cpp.server exited with {process.returncode}:\n{log.read_text()[-2000:]}")
                try:
                    with urllib.request.urlopen(f"{base_url}/models", timeout=2) as response:
                        if response.status == 200:
                            break
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"llama_cpp.server did not answer /v1/models:\n{log.read_text()[-2000:]}")
                time.sleep(0.2)
            yield Server(base_url, log)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def server(gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The server with its default chat format (the GGUF's own template)."""
    yield from serve(gguf, tmp_path_factory.mktemp("server") / "server.log")


@pytest.fixture(scope="module")
def tool_server(gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The server with a chat format that supports ``tool_choice="auto"``."""
    log = tmp_path_factory.mktemp("tool-server") / "server.log"
    yield from serve(gguf, log, "--chat_format", "chatml-function-calling")


@pytest.fixture
async def model(server: Server) -> AsyncIterator[OpenAIModel]:
    model = OpenAIModel("smollm2", base_url=server.url, name="openai-compatible:smollm2")
    yield model
    await model.aclose()


SETTINGS = ModelSettings(max_tokens=48, seed=1, temperature=0.2, timeout=120)


@pytest.mark.local_model
class TestOpenAIModel:
    async def test_plain_completion_reports_text_and_usage(self, model: OpenAIModel) -> None:
        """A plain call returns the assistant's text, its finish reason and token usage."""
        completion = await model.complete([Message.user("Say hello to the library.")], settings=SETTINGS)
        assert completion.text
        assert completion.tool_calls == []
        assert completion.finish_reason in ("stop", "length")
        assert completion.usage.input_tokens > 0
        assert 0 < completion.usage.output_tokens <= 48

    @pytest.mark.parametrize("seed", [1, 2])
    async def test_output_schema_gives_matching_json(self, model: OpenAIModel, seed: int) -> None:
        """An output schema comes back as JSON matching it (the server takes the json_object + schema form)."""
        completion = await model.complete(
            [Message.user("Judge the claim that LoRA matches full fine-tuning.")],
            output_schema=Verdict.model_json_schema(),
            settings=SETTINGS.merged(ModelSettings(seed=seed, max_tokens=200)),
        )
        assert completion.finish_reason == "stop"
        Verdict.model_validate_json(completion.text)

    async def test_default_chat_format_ignores_tools(self, model: OpenAIModel) -> None:
        """Offered tools with the server's default chat format, the model answers in text (a server limitation)."""
        completion = await model.complete([Message.user("Search for LoRA papers.")], tools=[SEARCH], settings=SETTINGS)
        assert completion.tool_calls == []
        assert completion.text

    async def test_tool_history_is_accepted(self, model: OpenAIModel) -> None:
        """A conversation with an assistant tool call and its tool result is sent and answered."""
        call = ToolCall(id="call_1", name="search", arguments=json.dumps({"query": "LoRA"}))
        messages = [
            Message.user("Search for LoRA papers."),
            Message.assistant("", [call]),
            Message.tool(call, "[S1] LoRA: Low-Rank Adaptation (Hu et al., 2021)"),
        ]
        completion = await model.complete(messages, tools=[SEARCH], settings=SETTINGS)
        assert completion.usage.input_tokens > 0

    async def test_function_calling_format_returns_native_tool_calls(self, tool_server: Server) -> None:
        """With a function-calling chat format, the server's tool calls come back as ToolCalls with JSON arguments."""
        model = OpenAIModel("smollm2", base_url=tool_server.url)
        try:
            completion = await model.complete(
                [Message.system("You are a research assistant with tools."), Message.user("Search for LoRA papers.")],
                tools=[SEARCH],
                settings=SETTINGS.merged(ModelSettings(max_tokens=80)),
            )
        finally:
            await model.aclose()
        assert completion.finish_reason == "tool_calls"
        (call,) = completion.tool_calls
        assert call.name == "search"
        assert call.id
        assert isinstance(call.parsed_arguments()["query"], str)

    async def test_required_tool_choice_falls_back_once_when_refused(self, tool_server: Server) -> None:
        """A server refusing tool_choice="required" is asked again with "auto", once: the model remembers."""
        model = OpenAIModel("smollm2", base_url=tool_server.url)
        settings = SETTINGS.merged(ModelSettings(max_tokens=80, tool_choice="required"))
        messages = [Message.system("You are a research assistant with tools."), Message.user("Search for LoRA papers.")]
        before = tool_server.refusals()
        try:
            first = await model.complete(messages, tools=[SEARCH], settings=settings)
            second = await model.complete(messages, tools=[SEARCH], settings=settings)
        finally:
            await model.aclose()
        assert [c.name for c in first.tool_calls] == [c.name for c in second.tool_calls] == ["search"]
        assert tool_server.refusals() - before == 1

    async def test_schema_form_is_learned_once(self, server: Server) -> None:
        """The server refuses the json_schema form once per model; later schema calls use the accepted form."""
        model = OpenAIModel("smollm2", base_url=server.url)
        before = server.refusals()
        try:
            for seed in (3, 4):
                completion = await model.complete(
                    [Message.user("Judge the claim that adapters are slow.")],
                    output_schema=Verdict.model_json_schema(),
                    settings=SETTINGS.merged(ModelSettings(seed=seed, max_tokens=200)),
                )
                Verdict.model_validate_json(completion.text)
        finally:
            await model.aclose()
        assert server.refusals() - before == 1


class TestOpenAIModelFailures:
    async def test_connection_error_is_a_model_error_without_the_key(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """An unreachable server raises ModelError whose message (and chain) never contains the API key."""
        monkeypatch.setenv("OPENAI_API_KEY", CANARY_KEY)
        model = OpenAIModel("gpt-test", base_url=f"http://127.0.0.1:{free_port()}/v1", retry=NO_RETRY)
        try:
            with pytest.raises(ModelError) as caught:
                await model.complete([Message.user(f"my key is {CANARY_KEY}")], settings=SETTINGS)
        finally:
            await model.aclose()
        assert "Connection" in str(caught.value)
        assert CANARY_KEY not in str(caught.value)
        assert caught.value.__cause__ is None
        assert caught.value.__suppress_context__
