"""The scripted model, its YAML scripts, and the public test helpers in `rolegraph.testing`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rolegraph.errors import ModelError, ModelNotAvailableError
from rolegraph.models.envelope import parse_final
from rolegraph.models.messages import Message, ToolCall, ToolSpec
from rolegraph.models.model import Completion, ModelSettings, Usage
from rolegraph.models.registry import resolve_model
from rolegraph.models.scripted import ScriptedModel, load_script
from rolegraph.testing import ScriptedCall, final, text, tool_call, tool_calls

SEARCH = ToolSpec(name="search", description="Search.", parameters={"type": "object", "properties": {}})


class TestHelpers:
    def test_tool_call_builds_one_call_with_json_arguments(self) -> None:
        """tool_call() makes a tool-call completion whose arguments are the keyword arguments as JSON."""
        completion = tool_call("search", thought="look it up", query="LoRA", limit=3)
        assert completion.model_dump() == {
            "text": "look it up",
            "tool_calls": [{"id": "", "name": "search", "arguments": '{"query": "LoRA", "limit": 3}'}],
            "usage": {"input_tokens": 0, "output_tokens": 0},
            "finish_reason": "tool_calls",
            "model": "",
        }

    def test_tool_calls_builds_parallel_calls_in_order(self) -> None:
        """tool_calls() makes one completion with several calls, in the order given."""
        completion = tool_calls([("search", {"query": "a"}), ("fetch", {"url": "http://x"})], thought="both")
        assert [(c.name, c.parsed_arguments()) for c in completion.tool_calls] == [
            ("search", {"query": "a"}),
            ("fetch", {"url": "http://x"}),
        ]
        assert completion.text == "both"

    def test_final_wraps_the_answer_in_the_envelope(self) -> None:
        """final() makes the envelope text that parse_final reads back."""
        completion = final({"claims": []}, thought="nothing found")
        assert completion.tool_calls == []
        assert parse_final(completion.text) == ("nothing found", {"claims": []})

    def test_text_is_raw(self) -> None:
        """text() returns exactly the given text, e.g. garbage."""
        assert text("not json {").text == "not json {"


class TestScriptedModel:
    async def test_answers_in_order_and_records_calls(self) -> None:
        """Responses come back in order; every call is recorded with its messages, tools, schema and settings."""
        model = ScriptedModel([tool_call("search", query="LoRA"), final({"ok": True})])
        messages = [Message.user("find LoRA")]
        settings = ModelSettings(seed=3)
        first = await model.complete(messages, tools=[SEARCH], output_schema={"type": "object"}, settings=settings)
        second = await model.complete(messages)
        assert [c.name for c in first.tool_calls] == ["search"]
        assert parse_final(second.text) == ("", {"ok": True})
        assert model.calls == [
            ScriptedCall(
                index=1, messages=messages, tools=[SEARCH], output_schema={"type": "object"}, settings=settings
            ),
            ScriptedCall(index=2, messages=messages, tools=[], output_schema=None, settings=ModelSettings()),
        ]
        model.assert_complete()

    async def test_exhausted_script_raises_model_error(self) -> None:
        """A call past the end of the script raises ModelError naming the call number (not AssertionError)."""
        model = ScriptedModel([text("only one")])
        await model.complete([Message.user("a")])
        with pytest.raises(ModelError, match="no response left for call 2"):
            await model.complete([Message.user("b")])

    async def test_assert_complete_fails_on_unused_responses(self) -> None:
        """assert_complete() raises AssertionError while responses remain unused."""
        model = ScriptedModel([text("a"), text("b")])
        await model.complete([Message.user("x")])
        with pytest.raises(AssertionError, match="used 1 of 2 responses"):
            model.assert_complete()

    async def test_scripted_exception_is_raised(self) -> None:
        """An exception in the script is raised for its call, to simulate a provider failure."""
        model = ScriptedModel([ModelError("provider down"), text("recovered")])
        with pytest.raises(ModelError, match="provider down"):
            await model.complete([Message.user("x")])
        assert (await model.complete([Message.user("x")])).text == "recovered"

    async def test_function_responder_sync_and_async(self) -> None:
        """A function (sync or async) answers each call from what the call received."""

        def echo(call: ScriptedCall) -> Completion:
            return text(f"{call.index}: {call.messages[-1].content}")

        async def aecho(call: ScriptedCall) -> Completion:
            return text(f"async {call.index}")

        assert (await ScriptedModel(echo).complete([Message.user("hi")])).text == "1: hi"
        assert (await ScriptedModel(aecho).complete([Message.user("hi")])).text == "async 1"
        ScriptedModel(echo).assert_complete()

    async def test_call_ids_continue_after_the_conversation(self) -> None:
        """Empty call ids become call_<n>, numbered after the tool calls already in the conversation."""
        earlier = ToolCall(id="call_1", name="search", arguments="{}")
        messages = [Message.user("x"), Message.assistant("", [earlier]), Message.tool(earlier, "result")]
        model = ScriptedModel([tool_calls([("search", {}), ("search", {"q": 1})]), tool_call("search")])
        completion = await model.complete(messages)
        assert [c.id for c in completion.tool_calls] == ["call_2", "call_3"]
        assert [c.id for c in (await model.complete([Message.user("fresh")])).tool_calls] == ["call_1"]

    async def test_explicit_ids_and_usage_are_kept(self) -> None:
        """A completion's own call ids and usage are returned unchanged."""
        scripted = Completion(
            tool_calls=[ToolCall(id="mine", name="search", arguments="{}")],
            usage=Usage(input_tokens=7, output_tokens=2),
        )
        completion = await ScriptedModel([scripted]).complete([Message.user("x")])
        assert (completion.tool_calls[0].id, completion.usage) == ("mine", Usage(input_tokens=7, output_tokens=2))

    async def test_usage_counts_words_deterministically(self) -> None:
        """Without scripted usage, input and output tokens are whitespace-word counts, so roll-ups are non-zero."""
        model = ScriptedModel([text("three words here"), text("three words here")])
        messages = [Message.system("be brief"), Message.user("count these four")]
        first = await model.complete(messages)
        second = await model.complete(messages)
        assert first.usage == second.usage == Usage(input_tokens=5, output_tokens=3)
        assert first.model == "scripted"


class TestScriptFile:
    def write(self, tmp_path: Path, content: str) -> Path:
        path = tmp_path / "script.yaml"
        path.write_text(content, encoding="utf-8")
        return path

    async def test_every_entry_form_is_parsed(self, tmp_path: Path) -> None:
        """Tool, parallel calls, final and raw-text entries become the matching completions."""
        path = self.write(
            tmp_path,
            """
- {tool: search, args: {query: LoRA}, thought: look it up}
- thought: both at once
  calls:
    - {tool: search, args: {query: a}}
    - {tool: fetch, args: {url: "http://x"}}
- {text: "this is {not json"}
- final: {claims: [{claim: c, source_id: S1}]}
  thought: done
""",
        )
        model = ScriptedModel.from_yaml(path)
        results = [await model.complete([Message.user("x")]) for _ in range(4)]
        model.assert_complete()
        assert (results[0].text, [(c.name, c.parsed_arguments()) for c in results[0].tool_calls]) == (
            "look it up",
            [("search", {"query": "LoRA"})],
        )
        assert [c.name for c in results[1].tool_calls] == ["search", "fetch"]
        assert (results[2].text, results[2].tool_calls) == ("this is {not json", [])
        assert json.loads(results[3].text) == {
            "thought": "done",
            "answer": {"claims": [{"claim": "c", "source_id": "S1"}]},
        }

    def test_invalid_entry_names_file_and_entry(self, tmp_path: Path) -> None:
        """An entry that is none of the forms raises ModelError naming the file and the entry number."""
        path = self.write(tmp_path, "- {text: ok}\n- {say: hello}\n")
        with pytest.raises(ModelError, match=r"script\.yaml: entry 2: .*expected one of"):
            load_script(path)

    def test_entry_with_two_forms_is_rejected(self, tmp_path: Path) -> None:
        """An entry with both tool and final is ambiguous and rejected."""
        path = self.write(tmp_path, "- {tool: search, final: {}}\n")
        with pytest.raises(ModelError, match="entry 1: has tool, final"):
            load_script(path)

    def test_not_a_list_is_rejected(self, tmp_path: Path) -> None:
        """A script that is not a YAML list raises ModelError."""
        with pytest.raises(ModelError, match="YAML list"):
            load_script(self.write(tmp_path, "tool: search\n"))

    def test_invalid_yaml_is_one_line_naming_the_place(self, tmp_path: Path) -> None:
        """A file that is not YAML makes the model unusable (bad input): one line naming file, line and column."""
        with pytest.raises(ModelNotAvailableError) as raised:
            load_script(self.write(tmp_path, "- {text: ok}\n- tool: [ search\n  args: {}\n"))
        assert str(raised.value) == f"{tmp_path / 'script.yaml'}:3:7: not valid YAML (expected ',' or ']', but got ':')"

    def test_values_json_cannot_hold_are_refused(self, tmp_path: Path) -> None:
        """A date where JSON data is expected (YAML reads 2020-01-01 as a date) is a bad entry, not a TypeError."""
        with pytest.raises(ModelNotAvailableError, match=r"entry 1: args of search are not JSON data"):
            load_script(self.write(tmp_path, "- {tool: search, args: {since: 2020-01-01}}\n"))
        with pytest.raises(ModelNotAvailableError, match=r"entry 1: the final answer is not JSON data"):
            load_script(self.write(tmp_path, "- {final: {when: 2020-01-01}}\n"))

    def test_non_utf8_is_a_model_error(self, tmp_path: Path) -> None:
        """A Latin-1 script raises ModelError naming the file and the byte, not UnicodeDecodeError."""
        path = tmp_path / "latin1.yaml"
        path.write_bytes("- {text: caf\xe9}\n".encode("latin-1"))
        with pytest.raises(ModelError, match=r"latin1\.yaml: not UTF-8 \(byte 0xe9 at offset 12\)"):
            load_script(path)

    def test_missing_file_is_not_available(self, tmp_path: Path) -> None:
        """A script path that does not exist raises ModelNotAvailableError."""
        with pytest.raises(ModelNotAvailableError, match=r"nope\.yaml"):
            load_script(tmp_path / "nope.yaml")

    def test_a_script_is_parsed_once_and_read_again_when_changed(self, tmp_path: Path) -> None:
        """An unchanged script gives the completions parsed before; a rewritten one (same size) its new ones."""
        path = self.write(tmp_path, "- {text: one}\n")
        first = load_script(path)
        assert load_script(path)[0] is first[0]
        path.write_text("- {text: two}\n", encoding="utf-8")
        assert [c.text for c in load_script(path)] == ["two"]


class TestSkip:
    async def test_skip_moves_past_responses_a_resume_replays(self) -> None:
        """After skip(n) the next call gets response n+1, numbered as such; skipped ones count as used."""
        model = ScriptedModel([text("one"), text("two"), text("three")])
        model.skip_replayed(2)
        completion = await model.complete([Message.user("hi")])
        assert (completion.text, model.calls[0].index, model.skipped) == ("three", 3, 2)
        model.assert_complete()


class TestKeptCalls:
    async def test_a_workflows_scripted_model_counts_its_calls_but_keeps_none(self, tmp_path: Path) -> None:
        """`scripted:<file>` (what a workflow runs) keeps no call records; its calls are still numbered and
        counted, so the script advances and `assert_complete` holds once every response was used."""
        path = tmp_path / "script.yaml"
        path.write_text("- {text: one}\n- {text: two}\n", encoding="utf-8")
        model = resolve_model("scripted:script.yaml", base_dir=tmp_path)
        assert isinstance(model, ScriptedModel)
        answers = [await model.complete([Message.user("hi")]) for _ in range(2)]
        assert ([a.text for a in answers], model.calls, model.answered) == (["one", "two"], [], 2)
        model.assert_complete()
        kept = ScriptedModel.from_yaml(path)
        await kept.complete([Message.user("hi")])
        assert [call.index for call in kept.calls] == [1]
        with pytest.raises(AssertionError, match="used 1 of 2 responses"):
            kept.assert_complete()
