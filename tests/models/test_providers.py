"""Providers own the connection (base URL, key, client, health check); models only speak the protocol."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from rolegraph.errors import ModelNotAvailableError
from rolegraph.models.messages import Message
from rolegraph.models.openai_compat import OpenAIModel
from rolegraph.models.providers import PLACEHOLDER_API_KEY, OpenAIProvider
from rolegraph.models.registry import resolve_model
from rolegraph.retry import RetryPolicy
from rolegraph.testing import Chat, FaultServer, Status
from rolegraph.workflow import Workflow

OLLAMA_WORKFLOW = """
rolegraph: 1
name: local_llm
models: {default: "ollama:qwen2.5:7b"}
steps:
  write: {role: writer, task: "Write one line."}
"""


@pytest.fixture(autouse=True)
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start every test without the developer's keys."""
    for name in ("OPENAI_API_KEY", "HF_TOKEN", "OLLAMA_API_KEY", "OLLAMA_HOST"):
        monkeypatch.delenv(name, raising=False)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class TestOpenAIProvider:
    async def test_a_keyless_server_gets_the_placeholder_key(self) -> None:
        """A compatible server with no OPENAI_API_KEY set is sent the placeholder key, through the model."""
        with FaultServer([Chat("hi")]) as server:
            model = OpenAIModel("m", provider=OpenAIProvider.compatible(server.url), retry=RetryPolicy(attempts=1))
            try:
                assert (await model.complete([Message.user("x")])).text == "hi"
            finally:
                await model.aclose()
        assert server.requests[0].headers["authorization"] == f"Bearer {PLACEHOLDER_API_KEY}"
        assert (model.base_url, model.provider.name) == (server.url, "openai-compatible")

    def test_a_provider_and_connection_arguments_do_not_mix(self) -> None:
        """OpenAIModel takes a provider or the shorthand arguments, never both."""
        provider = OpenAIProvider.compatible("http://127.0.0.1:9/v1")
        with pytest.raises(ValueError, match="either a provider"):
            OpenAIModel("m", provider=provider, base_url="http://127.0.0.1:9/v1")

    def test_openai_needs_its_key_and_says_which_model(self) -> None:
        """OpenAI's own API without OPENAI_API_KEY: ModelNotAvailableError naming the variable and the model."""
        with pytest.raises(ModelNotAvailableError, match=r"model openai:gpt-4o .*OPENAI_API_KEY"):
            OpenAIProvider.openai(purpose="model openai:gpt-4o")


class TestOllamaCheck:
    async def test_no_server_says_is_ollama_running(self) -> None:
        """With nothing listening, check() fails at once asking whether Ollama runs at that address."""
        port = closed_port()
        model = OpenAIModel("qwen2.5:7b", provider=OpenAIProvider.ollama(f"http://127.0.0.1:{port}/v1"))
        with pytest.raises(ModelNotAvailableError) as caught:
            await model.check()
        await model.aclose()
        assert f"is Ollama running at http://127.0.0.1:{port}?" in str(caught.value)
        assert "ollama serve" in str(caught.value)

    async def test_a_running_server_passes_the_check(self) -> None:
        """A server answering its model list passes check(), which asked for /v1/models."""
        with FaultServer([Status(200, body={"object": "list", "data": []})]) as server:
            provider = OpenAIProvider.ollama(server.url)
            await OpenAIModel("qwen2.5:7b", provider=provider).check()
            await provider.aclose()
        assert [(r.method, r.path) for r in server.requests] == [("GET", "/v1/models")]

    async def test_other_providers_check_nothing(self) -> None:
        """An OpenAI-compatible server is not probed: check() sends no request."""
        with FaultServer([]) as server:
            model = resolve_model(f"openai-compatible:m@{server.url}")
            await model.check()
            await model.aclose()
        assert server.requests == []


class TestOllamaNotRunning:
    def test_ollama_host_moves_the_daemon(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """OLLAMA_HOST (host:port, as Ollama reads it) moves where ollama: models are served and probed."""
        monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:9999")
        provider = OpenAIProvider.ollama()
        assert (provider.base_url, provider.probe) == ("http://127.0.0.1:9999/v1", "http://127.0.0.1:9999/v1/models")

    async def test_a_run_fails_before_its_folder_exists(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """With no Ollama listening, Workflow.run raises at setup, asking whether it runs, and leaves no run folder."""
        port = closed_port()
        monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{port}")
        (tmp_path / "wf.yaml").write_text(OLLAMA_WORKFLOW, encoding="utf-8")
        with pytest.raises(ModelNotAvailableError, match=rf"is Ollama running at http://127\.0\.0\.1:{port}\?"):
            await Workflow.load(tmp_path / "wf.yaml").run(home=tmp_path / "home")
        assert not (tmp_path / "home" / "runs").exists() or not any((tmp_path / "home" / "runs").iterdir())

    def test_the_cli_says_so_and_exits_2(self, tmp_path: Path) -> None:
        """`rolegraph run` on an ollama: workflow with no daemon: the question on stderr, exit 2, no run folder."""
        port = closed_port()
        (tmp_path / "wf.yaml").write_text(OLLAMA_WORKFLOW, encoding="utf-8")
        env = {**os.environ, "OLLAMA_HOST": f"127.0.0.1:{port}", "ROLEGRAPH_HOME": str(tmp_path / "home")}
        done = subprocess.run(
            [sys.executable, "-m", "rolegraph", "run", "wf.yaml"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 2, done.stderr
        assert f"is Ollama running at http://127.0.0.1:{port}?" in " ".join(done.stderr.split())
        assert "APIConnectionError" not in done.stderr
        assert not (tmp_path / "home" / "runs").exists() or not any((tmp_path / "home" / "runs").iterdir())
