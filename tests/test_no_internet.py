"""The suite-wide guard: a test cannot reach a hosted model or any address off this machine."""

from __future__ import annotations

import socket

import openai
import pytest

from conftest import InternetRefused
from loopback import LoopbackServer
from rolegraph.errors import ModelError
from rolegraph.models.messages import Message
from rolegraph.models.model import ModelSettings
from rolegraph.models.registry import resolve_model


class TestNoInternet:
    def test_a_connection_off_the_machine_is_refused(self) -> None:
        """Connecting to a public address fails at once, before any packet is sent."""
        with socket.socket() as sock, pytest.raises(InternetRefused):
            sock.connect(("203.0.113.7", 443))

    def test_loopback_stays_open(self, web: LoopbackServer) -> None:
        """Loopback servers (the suite's web fixtures, llama_cpp.server) are reachable as before."""
        with socket.create_connection((web.host, web.port), timeout=5):
            pass

    async def test_a_hosted_model_cannot_be_called(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Even with a key in the environment, an `openai:` model's call fails without reaching OpenAI."""
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key-000000000000")
        model = resolve_model("openai:gpt-4o-mini")
        with pytest.raises((ModelError, openai.APIConnectionError)):
            await model.complete([Message(role="user", content="hi")], settings=ModelSettings(retries=0))
        await model.aclose()
