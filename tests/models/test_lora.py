"""LoRA adapters on the embedded model: a real adapter GGUF for SmolLM2-135M, written here with the `gguf` package.

The adapter follows llama.cpp's ``convert_lora_to_gguf.py``: ``general.type = adapter``,
``general.architecture`` of the base model, ``adapter.type = lora``, ``adapter.lora.alpha``,
and for each adapted weight ``<name>.lora_a`` (ne ``[n_in, rank]``) and ``<name>.lora_b``
(ne ``[rank, n_out]``), where the base weight's ne is ``[n_in, n_out]``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rolegraph.errors import ModelError, ModelNotAvailableError
from rolegraph.models.local import LlamaCppModel, LoRA
from rolegraph.models.messages import Message
from rolegraph.models.model import ModelSettings
from rolegraph.models.registry import ModelOptions, resolve_model

pytestmark = pytest.mark.local_model

GREEDY = ModelSettings(temperature=0.0, seed=0, max_tokens=12)
PROMPT = [Message.user("Name three colours.")]
RANK = 8
ADAPTED = ("attn_q", "attn_v", "ffn_down")


def write_adapter(path: Path, base: Path, *, shapes_for: int | None = None, seed: int = 0) -> Path:
    """A LoRA adapter for the base GGUF's `ADAPTED` weights; `shapes_for` gives every tensor a wrong input size."""
    import gguf

    reader = gguf.GGUFReader(base)
    field = reader.fields["general.architecture"]
    arch = bytes(field.parts[field.data[0]]).decode()
    writer = gguf.GGUFWriter(path, arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(RANK))
    rng = np.random.default_rng(seed)
    for tensor in reader.tensors:
        if not tensor.name.endswith(tuple(f"{kind}.weight" for kind in ADAPTED)):
            continue
        n_in, n_out = (int(n) for n in tensor.shape)
        n_in = shapes_for or n_in
        writer.add_tensor(f"{tensor.name}.lora_a", rng.normal(0, 0.2, (RANK, n_in)).astype(np.float32))
        writer.add_tensor(f"{tensor.name}.lora_b", rng.normal(0, 0.2, (n_out, RANK)).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="module")
def adapter(gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_adapter(tmp_path_factory.mktemp("lora") / "style.gguf", gguf)


async def answer(model: LlamaCppModel) -> str:
    return (await model.complete(PROMPT, settings=GREEDY)).text


class TestLoRA:
    async def test_scale_zero_is_the_base_model_and_scale_one_is_not(self, gguf: Path, adapter: Path) -> None:
        """The same greedy call: scale 0 answers exactly as the base model, scale 1 answers otherwise."""
        base = await answer(LlamaCppModel(gguf))
        off = await answer(LlamaCppModel(gguf, lora=LoRA(adapter, 0.0)))
        on = await answer(LlamaCppModel(gguf, lora=LoRA(adapter, 1.0)))
        print(json.dumps({"base": base, "scale 0": off, "scale 1": on}))  # the report quotes these
        assert base and off == base
        assert on != base

    def test_a_mismatched_adapter_is_a_clear_error(self, gguf: Path, tmp_path: Path) -> None:
        """An adapter shaped for another model: a ModelError naming the adapter and llama.cpp's reason."""
        wrong = write_adapter(tmp_path / "wrong.gguf", gguf, shapes_for=64)
        with pytest.raises(ModelError) as caught:
            LlamaCppModel(gguf, lora=LoRA(wrong, 1.0))
        message = str(caught.value)
        assert f"the LoRA adapter {wrong} does not fit the model" in message
        assert "has incorrect shape" in message and "convert_lora_to_gguf.py" in message

    def test_a_file_that_is_no_adapter_is_a_clear_error(self, gguf: Path) -> None:
        """The base model given as its own adapter (general.type is not adapter): a ModelError, not a crash."""
        with pytest.raises(ModelError, match=r"does not fit the model .*general\.type"):
            LlamaCppModel(gguf, lora=LoRA(gguf, 1.0))

    def test_a_missing_adapter_file_is_not_available(self, gguf: Path, tmp_path: Path) -> None:
        """A lora path that does not exist is named before anything loads."""
        with pytest.raises(ModelNotAvailableError, match=r"no LoRA adapter file at .*absent\.gguf"):
            LlamaCppModel(gguf, lora=LoRA(tmp_path / "absent.gguf"))

    def test_the_registry_builds_it_from_the_settings(self, adapter: Path) -> None:
        """``local`` with ``lora``/``lora_scale`` options (relative to the workflow's folder) is that adapter."""
        model = resolve_model("local", base_dir=adapter.parent, options=ModelOptions(lora=adapter.name, lora_scale=0.5))
        assert isinstance(model, LlamaCppModel)
        assert model.options == {"lora": str(adapter), "lora_scale": 0.5}


WORKFLOW = """
rolegraph: 1
name: adapted
models:
  default: {model: local, lora: style.gguf, lora_scale: 0.0, max_tokens: 24, temperature: 0}
roles:
  noter:
    instructions: Take a short note.
    output: {note: string}
    max_steps: 1
steps:
  note: {role: noter, task: "Note one colour."}
"""


class TestRecorded:
    async def test_the_adapter_is_in_run_json_and_on_every_chat_span(self, adapter: Path, tmp_path: Path) -> None:
        """A workflow's lora settings are recorded in run.json's models and on each chat span of the trace."""
        from rolegraph.workflow import Workflow

        (tmp_path / "style.gguf").symlink_to(adapter)
        (tmp_path / "wf.yaml").write_text(WORKFLOW, encoding="utf-8")
        result = await Workflow.load(tmp_path / "wf.yaml").run(home=tmp_path / "home")
        recorded = {"lora": str(tmp_path / "style.gguf"), "lora_scale": 0.0}
        summary = json.loads((result.run_dir / "run.json").read_text(encoding="utf-8"))
        assert summary["models"] == {"local": recorded}
        records = [json.loads(line) for line in (result.run_dir / "trace.jsonl").read_text().splitlines()]
        chats = [r for r in records if r["event"] == "span_end" and r["name"].startswith("chat ")]
        assert chats and all(r["attributes"]["rolegraph.model.options"] == recorded for r in chats)
