"""The embedded model: real SmolLM2-135M through llama.cpp, decoding under grammars."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

from rolegraph.agents.roles import ReportOutput
from rolegraph.errors import ModelError, ModelNotAvailableError
from rolegraph.models.envelope import final_schema, parse_final
from rolegraph.models.local import LlamaCppModel
from rolegraph.models.messages import Message, ToolCall, ToolSpec
from rolegraph.models.model import ModelSettings

pytestmark = pytest.mark.local_model


class SearchArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(max_length=60)
    limit: int = 5


class FetchArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=80)


class Issue(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Annotated[str, Field(max_length=80)]
    severity: Literal["minor", "major"]


class Verdict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    verdict: Literal["accept", "revise"]
    issues: list[Issue] = Field(max_length=2)


class Paper(BaseModel):
    title: str | None
    year: int
    venue: Literal["arxiv", "acl", "neurips"]
    extra: Any
    counts: dict[str, int]
    span: tuple[int, int]
    slug: str = Field(pattern=r"^[a-z]{1,12}$")
    authors: list[Issue | None] = Field(max_length=2)


TOOLS = [
    ToolSpec(
        name="library_search",
        description="Search the offline library of papers.",
        parameters=SearchArgs.model_json_schema(),
    ),
    ToolSpec(name="fetch", description="Fetch a web page by URL.", parameters=FetchArgs.model_json_schema()),
]
ARGS_MODELS: dict[str, type[BaseModel]] = {"library_search": SearchArgs, "fetch": FetchArgs}
# The answer schema has $defs (Issue): the envelope embeds it, so its refs must be hoisted to compile.
FINAL = final_schema(Verdict.model_json_schema())
SYSTEM = Message.system(
    "You are a research critic. Use the tools to look things up, then give your verdict as JSON: "
    '{"thought": "<why>", "answer": {"verdict": "accept" or "revise", "issues": [...]}}'
)
PROMPTS = [
    "Find papers about LoRA fine-tuning.",
    "Is the claim 'adapters beat full fine-tuning' supported? Check the library.",
    "The report says prompt tuning needs no labelled data. Judge it.",
]
SETTINGS = ModelSettings(max_tokens=512, timeout=120)


@pytest.fixture(scope="module")
def model(gguf: Path) -> LlamaCppModel:
    return LlamaCppModel(gguf, n_ctx=4096, name="local")


def check_step(completion: Any) -> None:
    """Assert that `completion` is a valid tool call or a valid final verdict."""
    if completion.tool_calls:
        assert completion.finish_reason == "tool_calls"
        (call,) = completion.tool_calls
        ARGS_MODELS[call.name].model_validate_json(call.arguments)
    else:
        assert completion.finish_reason == "stop"
        _thought, answer = parse_final(completion.text)
        Verdict.model_validate(answer)


class TestLlamaCppModel:
    @pytest.mark.parametrize("seed", [1, 2])
    @pytest.mark.parametrize("prompt", PROMPTS)
    async def test_step_is_a_valid_tool_call_or_final_answer(
        self, model: LlamaCppModel, prompt: str, seed: int
    ) -> None:
        """With tools and an output schema, every step parses into a schema-valid tool call or final answer."""
        completion = await model.complete(
            [SYSTEM, Message.user(prompt)],
            tools=TOOLS,
            output_schema=FINAL,
            settings=SETTINGS.merged(ModelSettings(seed=seed)),
        )
        check_step(completion)

    @pytest.mark.parametrize("seed", [1, 2, 3])
    async def test_required_tool_choice_always_calls_a_tool(self, model: LlamaCppModel, seed: int) -> None:
        """With tool_choice="required", the step is always a valid tool call, never the final answer."""
        completion = await model.complete(
            [SYSTEM, Message.user(PROMPTS[2])],
            tools=TOOLS,
            output_schema=FINAL,
            settings=SETTINGS.merged(ModelSettings(seed=seed, tool_choice="required")),
        )
        assert completion.finish_reason == "tool_calls"
        check_step(completion)

    async def test_step_after_an_observation_continues_the_conversation(self, model: LlamaCppModel) -> None:
        """A conversation with a tool call and its observation renders, and new call ids follow the old ones."""
        call = ToolCall(id="call_1", name="library_search", arguments=json.dumps({"query": "LoRA"}))
        messages = [
            SYSTEM,
            Message.user(PROMPTS[0]),
            Message.assistant("Search the library first.", [call]),
            Message.tool(call, "[S1] LoRA: Low-Rank Adaptation of Large Language Models (Hu et al., 2021)"),
        ]
        completion = await model.complete(messages, tools=TOOLS, output_schema=FINAL, settings=SETTINGS)
        check_step(completion)
        assert [c.id for c in completion.tool_calls] in ([], ["call_2"])

    @pytest.mark.parametrize("seed", [3, 4, 5])
    async def test_output_schema_alone_gives_matching_json(self, model: LlamaCppModel, seed: int) -> None:
        """With only an output schema, the text is JSON that validates against it."""
        completion = await model.complete(
            [SYSTEM, Message.user(PROMPTS[2])], output_schema=FINAL, settings=SETTINGS.merged(ModelSettings(seed=seed))
        )
        assert (completion.tool_calls, completion.finish_reason) == ([], "stop")
        _thought, answer = parse_final(completion.text)
        Verdict.model_validate(answer)

    async def test_a_long_string_field_decodes_without_crashing(self, model: LlamaCppModel) -> None:
        """A report's 1600-character paragraphs once made a grammar llama.cpp refused (and crashed on): it decodes."""
        schema = final_schema(ReportOutput.model_json_schema())
        completion = await model.complete(
            [SYSTEM, Message.user("Write a one-paragraph review of LoRA, citing hu2021lora.")],
            output_schema=schema,
            settings=ModelSettings(max_tokens=24, timeout=120, seed=1),
        )
        assert completion.usage.output_tokens > 0 and completion.text.startswith("{")

    async def test_tools_without_output_schema_end_in_text(self, model: LlamaCppModel) -> None:
        """With tools but no output schema, a step is a valid tool call or a plain-text answer, not JSON."""
        for seed in (1, 2):
            completion = await model.complete(
                [Message.user(PROMPTS[0])], tools=TOOLS, settings=SETTINGS.merged(ModelSettings(seed=seed))
            )
            if completion.tool_calls:
                (call,) = completion.tool_calls
                ARGS_MODELS[call.name].model_validate_json(call.arguments)
            else:
                assert not completion.text.lstrip().startswith('{"thought"')

    async def test_usage_counts_tokens(self, model: LlamaCppModel) -> None:
        """Usage reports the prompt and generated tokens, and the model names its weights."""
        completion = await model.complete(
            [Message.user("Say hello.")], settings=ModelSettings(max_tokens=8, seed=1, timeout=120)
        )
        assert completion.usage.input_tokens > 0
        assert 0 < completion.usage.output_tokens <= 8
        assert completion.model == "SmolLM2-135M-Instruct.Q4_1"

    async def test_same_seed_and_temperature_reproduce(self, model: LlamaCppModel) -> None:
        """Calls with the same seed and temperature return the same text, whatever the calls before them."""
        settings = ModelSettings(seed=11, temperature=0.9, max_tokens=40, timeout=120)
        messages = [Message.user("Write one sentence about libraries.")]
        first = await model.complete(messages, settings=settings)
        again = await model.complete(messages, settings=settings)
        await model.complete([Message.user("Something else: the sea.")], settings=settings)
        later = await model.complete(messages, settings=settings)
        assert first.text == again.text == later.text

    async def test_concurrent_calls_answer_as_they_do_alone(self, model: LlamaCppModel) -> None:
        """Parallel calls (a tool step under a grammar, a schema-only answer, free text) decoded together give
        each the completion and usage it gives alone; one timing out beside them disturbs none."""
        settings = ModelSettings(seed=3, max_tokens=48, timeout=300)
        calls: list[dict[str, Any]] = [
            {"messages": [SYSTEM, Message.user(PROMPTS[0])], "tools": TOOLS, "output_schema": FINAL},
            {"messages": [SYSTEM, Message.user(PROMPTS[1])], "output_schema": FINAL},
            {"messages": [Message.user("Write one sentence about libraries.")]},
        ]

        def key(c: Any) -> Any:
            return (c.text, c.tool_calls, c.finish_reason, c.usage)

        alone = [key(await model.complete(**call, settings=settings)) for call in calls]
        late = model.complete(
            [Message.user("Write a very long essay on the history of libraries.")],
            settings=ModelSettings(max_tokens=4000, timeout=2, temperature=1.0),
        )
        *together, timed_out = await asyncio.gather(
            *(model.complete(**call, settings=settings) for call in calls), late, return_exceptions=True
        )
        assert [key(c) for c in together] == alone
        assert isinstance(timed_out, ModelError) and "did not answer within" in str(timed_out)

    async def test_enum_constraint_is_respected(self, model: LlamaCppModel) -> None:
        """A field with enum [a, b] only ever yields a or b, even at a high temperature."""
        schema = {
            "type": "object",
            "properties": {"choice": {"enum": ["a", "b"]}},
            "required": ["choice"],
            "additionalProperties": False,
        }
        seen = set()
        for seed in range(6):
            completion = await model.complete(
                [Message.user("Pick c.")],
                output_schema=schema,
                settings=ModelSettings(seed=seed, temperature=1.5, max_tokens=20, timeout=120),
            )
            seen.add(json.loads(completion.text)["choice"])
        assert seen <= {"a", "b"}

    @pytest.mark.parametrize("seed", [1, 2])
    async def test_enum_values_with_quotes_and_backslashes(self, model: LlamaCppModel, seed: int) -> None:
        """Enum strings holding a double quote and a backslash compile to a grammar; the output is one of them."""
        values = ['He said "hi" \\ ok.', 'C:\\dir\\"x"']
        schema = {
            "type": "object",
            "properties": {"quote": {"type": "string", "enum": values}},
            "required": ["quote"],
            "additionalProperties": False,
        }
        completion = await model.complete(
            [Message.user("Quote what he said.")],
            output_schema=schema,
            settings=ModelSettings(seed=seed, temperature=1.0, max_tokens=40, timeout=120),
        )
        assert completion.finish_reason == "stop"
        assert json.loads(completion.text)["quote"] in values

    async def test_unbounded_strings_and_arrays_are_bounded(self, model: LlamaCppModel) -> None:
        """Strings and arrays the schema leaves open are bounded (400 chars, 8 items), so a step always ends."""
        schema = {
            "type": "object",
            "properties": {"notes": {"type": "array", "items": {"type": "string"}}, "extra": {}},
            "required": ["notes", "extra"],
        }
        completion = await model.complete(
            [Message.user("List every paper you have ever read.")],
            output_schema=schema,
            settings=ModelSettings(seed=2, temperature=1.0, max_tokens=4000, timeout=300),
        )
        value = json.loads(completion.text)
        assert len(value["notes"]) <= 8
        assert all(len(note) <= 400 for note in value["notes"])

    @pytest.mark.parametrize("seed", [1, 2])
    async def test_pydantic_schema_features_decode_to_valid_instances(self, model: LlamaCppModel, seed: int) -> None:
        """Optional and Any fields, dicts, tuples, enums, patterns and nested models all decode into valid data."""
        completion = await model.complete(
            [Message.user("Describe a paper as JSON.")],
            output_schema=Paper.model_json_schema(),
            settings=SETTINGS.merged(ModelSettings(seed=seed)),
        )
        assert completion.finish_reason == "stop"
        Paper.model_validate_json(completion.text)

    async def test_output_cut_at_max_tokens_is_returned_as_text(self, model: LlamaCppModel) -> None:
        """A step cut off by max_tokens comes back as its partial text with finish_reason "length", not an error."""
        completion = await model.complete(
            [SYSTEM, Message.user(PROMPTS[0])],
            tools=TOOLS,
            output_schema=FINAL,
            settings=ModelSettings(max_tokens=4, timeout=120),
        )
        assert (completion.finish_reason, completion.tool_calls) == ("length", [])
        assert completion.text.startswith("{")

    async def test_timeout_raises_model_error_and_frees_the_model(self, model: LlamaCppModel) -> None:
        """A call past its timeout raises ModelError; its generation is stopped and the next call runs."""
        with pytest.raises(ModelError, match="did not answer within"):
            await model.complete(
                [Message.user("Write a very long essay on the history of libraries.")],
                settings=ModelSettings(max_tokens=4000, timeout=0.05, temperature=1.0),
            )
        completion = await model.complete([Message.user("Say hi.")], settings=ModelSettings(max_tokens=4, timeout=120))
        assert completion.usage.output_tokens > 0

    async def test_instances_of_the_same_weights_share_them(self, model: LlamaCppModel, gguf: Path) -> None:
        """A second instance for the same file answers like the first (the weights are loaded once per process)."""
        other = LlamaCppModel(gguf, n_ctx=4096, name="other")
        settings = ModelSettings(seed=5, max_tokens=12, timeout=120)
        messages = [Message.user("Name a colour.")]
        assert (await other.complete(messages, settings=settings)).text == (
            await model.complete(messages, settings=settings)
        ).text

    def test_the_revision_follows_the_weights_file(self, tmp_path: Path, gguf: Path) -> None:
        """The model's revision (part of the call cache's key) changes when its GGUF file is replaced."""
        import os
        import shutil

        copy = tmp_path / gguf.name
        shutil.copyfile(gguf, copy)
        before = LlamaCppModel(copy, n_ctx=512, name="local").revision
        os.utime(copy, ns=(0, copy.stat().st_mtime_ns + 1_000_000_000))
        after = LlamaCppModel(copy, n_ctx=512, name="local").revision
        assert before and after and before != after

    def test_missing_file_is_not_available(self, tmp_path: Path) -> None:
        """A GGUF path that does not exist raises ModelNotAvailableError naming it."""
        with pytest.raises(ModelNotAvailableError, match=r"missing\.gguf"):
            LlamaCppModel(tmp_path / "missing.gguf")

    def test_unreadable_file_is_a_model_error(self, tmp_path: Path) -> None:
        """A file that is not a GGUF raises ModelError, not a llama.cpp crash."""
        bogus = tmp_path / "bogus.gguf"
        bogus.write_bytes(b"not a gguf")
        with pytest.raises(ModelError, match="could not load"):
            LlamaCppModel(bogus)

    @pytest.mark.parametrize(("chosen", "expected"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
    def test_openmp_threads_wait_passively_unless_the_user_chose(
        self, gguf: Path, chosen: str | None, expected: str
    ) -> None:
        """Loading the embedded model in a fresh process makes llama.cpp's OpenMP threads sleep between decodes
        (OMP_WAIT_POLICY=PASSIVE, set before llama.cpp's library loads); a policy the user set is kept."""
        script = textwrap.dedent(
            f"""
            import os
            from pathlib import Path
            from rolegraph.models import local
            local.LlamaCppModel(Path({str(gguf)!r}), n_ctx=512)
            print(os.environ["OMP_WAIT_POLICY"])
            """
        )
        env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | (
            {"OMP_WAIT_POLICY": chosen} if chosen else {}
        )
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False, env=env
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.split()[-1] == expected

    def test_the_model_is_freed_at_exit_before_the_interpreter_tears_down(self, gguf: Path) -> None:
        """At interpreter exit the loaded weights are closed by rolegraph (an atexit hook), not left to
        `Llama.__del__` during module teardown, which printed "'NoneType' object is not callable"."""
        script = textwrap.dedent(
            f"""
            import atexit
            from pathlib import Path

            def check():  # registered first, so it runs after rolegraph's exit hook
                print("freed" if weights.llama._model.model is None else "still loaded")

            atexit.register(check)
            from rolegraph.models import local
            local.LlamaCppModel(Path({str(gguf)!r}), n_ctx=512)
            (weights,) = local._LOADED.values()
            """
        )
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)
        assert (done.returncode, done.stdout) == (0, "freed\n"), done.stderr
        assert "Exception ignored" not in done.stderr and "NoneType" not in done.stderr
