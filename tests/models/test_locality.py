"""Locality: which model strings keep requests on this machine (for settings.privacy: local_only)."""

from __future__ import annotations

import pytest

from rolegraph.models.locality import hosted_destination, is_loopback_url


class TestLoopback:
    @pytest.mark.parametrize(
        "url",
        ["http://127.0.0.1:8080/v1", "http://127.3.4.5/v1", "http://localhost:11434/v1", "http://[::1]:80/v1"],
    )
    def test_loopback_addresses(self, url: str) -> None:
        """localhost, 127.0.0.0/8 and ::1 are this machine."""
        assert is_loopback_url(url)

    @pytest.mark.parametrize(
        "url",
        ["http://192.168.1.5:8080/v1", "https://api.example.com/v1", "http://my-gpu-box:8000/v1", "not a url", ""],
    )
    def test_elsewhere(self, url: str) -> None:
        """A LAN address, a public host, an unresolved name and garbage are not this machine."""
        assert not is_loopback_url(url)


class TestHostedDestination:
    @pytest.mark.parametrize("string", ["local", "llamacpp:/m/model.gguf", "scripted:model.yaml", "nonsense:x"])
    def test_in_process_models_are_local(self, string: str) -> None:
        """Embedded and scripted models send nothing anywhere (an unknown form is reported elsewhere)."""
        assert hosted_destination(string) is None

    def test_openai_is_always_hosted(self) -> None:
        """openai: goes to OpenAI's API."""
        assert hosted_destination("openai:gpt-4o-mini") == "OpenAI's API (api.openai.com)"

    def test_compatible_server_by_its_host(self) -> None:
        """openai-compatible is local on loopback only; elsewhere its URL is named."""
        assert hosted_destination("openai-compatible:m@http://127.0.0.1:8080/v1") is None
        assert hosted_destination("openai-compatible:m@https://gw.example.com/v1") == "https://gw.example.com/v1"

    def test_ollama_follows_ollama_host(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """ollama: is local at its default address, hosted when OLLAMA_HOST points off the machine."""
        monkeypatch.delenv("OLLAMA_HOST", raising=False)
        assert hosted_destination("ollama:qwen2.5:7b") is None
        monkeypatch.setenv("OLLAMA_HOST", "10.0.0.7")
        assert hosted_destination("ollama:qwen2.5:7b") == "http://10.0.0.7:11434/v1 (from OLLAMA_HOST)"

    def test_hf_is_hosted_unless_its_base_url_is_loopback(self) -> None:
        """hf: goes to the providers; a base_url on loopback (a TGI server here) is local."""
        assert hosted_destination("hf:org/model") == "Hugging Face's inference providers"
        assert hosted_destination("hf:org/model", "http://127.0.0.1:8080") is None
        assert hosted_destination("hf:org/model", "https://x.endpoints.huggingface.cloud") == (
            "https://x.endpoints.huggingface.cloud"
        )
