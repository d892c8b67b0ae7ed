"""The grammar core for models without tool calling (`models/_tool_emulation.py`), tested directly:
the step schema a turn must match, its bounds, and parsing a step back into a `Completion`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from rolegraph.models._tool_emulation import (
    ARRAY_MAX_ITEMS,
    STRING_MAX_CHARS,
    bounded_schema,
    parse_step,
    step_schema,
)
from rolegraph.models.envelope import THOUGHT_MAX_CHARS
from rolegraph.models.messages import ToolSpec

SEARCH = ToolSpec(
    name="library_search",
    description="Search the library.",
    parameters={
        "type": "object",
        "properties": {"query": {"type": "string"}, "max_results": {"type": "integer", "default": 4}},
        "required": ["query"],
    },
)
THOUGHT = {"type": "string", "maxLength": THOUGHT_MAX_CHARS}


class Claim(BaseModel):
    source_id: str
    evidence: str


class Answer(BaseModel):
    claims: list[Claim]


class TestStepSchema:
    def test_no_tools_no_schema_is_free_text(self) -> None:
        """Without tools or an answer schema there is nothing to constrain."""
        assert step_schema([], None) is None

    def test_one_tool_and_a_text_answer(self) -> None:
        """The whole schema: a tool call with bounded arguments, or a thought and a bounded text answer."""
        assert step_schema([SEARCH], None) == {
            "anyOf": [
                {
                    "type": "object",
                    "properties": {
                        "thought": THOUGHT,
                        "tool": {"const": "library_search"},
                        "arguments": {
                            "type": "object",
                            "properties": {
                                "query": {"type": "string", "maxLength": STRING_MAX_CHARS},
                                "max_results": {"type": "integer", "default": 4},
                            },
                            "required": ["query"],
                        },
                    },
                    "required": ["thought", "tool", "arguments"],
                    "additionalProperties": False,
                },
                {
                    "type": "object",
                    "properties": {"thought": THOUGHT, "answer": {"type": "string", "maxLength": STRING_MAX_CHARS}},
                    "required": ["thought", "answer"],
                    "additionalProperties": False,
                },
            ]
        }

    def test_require_tool_leaves_out_the_answer(self) -> None:
        """A turn that must call a tool admits only the tool calls."""
        schema = step_schema([SEARCH], Answer.model_json_schema(), require_tool=True)
        assert schema is not None
        assert [alt["properties"]["tool"] for alt in schema["anyOf"]] == [{"const": "library_search"}]

    def test_answer_definitions_are_hoisted_under_a_prefix(self) -> None:
        """A pydantic answer schema's $defs move to the root as ``final_<name>`` and its refs follow them."""
        schema = step_schema([SEARCH], Answer.model_json_schema())
        assert schema is not None
        assert set(schema["$defs"]) == {"final_Claim"}
        final = schema["anyOf"][1]
        assert final["properties"]["claims"] == {
            "type": "array",
            "items": {"$ref": "#/$defs/final_Claim"},
            "maxItems": ARRAY_MAX_ITEMS,
            "title": "Claims",
        }
        assert schema["$defs"]["final_Claim"]["properties"]["evidence"]["maxLength"] == STRING_MAX_CHARS

    def test_answer_schema_alone_without_tools(self) -> None:
        """With no tools the answer schema itself is the step, bounded, its definitions at the root."""
        schema = step_schema([], Answer.model_json_schema())
        assert schema is not None and "anyOf" not in schema
        assert schema["$defs"]["Claim"]["required"] == ["source_id", "evidence"]


class TestBounds:
    def test_every_string_and_array_is_bounded(self) -> None:
        """Unbounded strings and arrays get the default caps; given caps and patterns stay."""
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {
                "a": {"type": "string"},
                "b": {"type": "string", "maxLength": 20},
                "c": {"type": "string", "pattern": "^x+$"},
                "d": {"type": "array", "items": {"type": "string"}},
                "e": {"type": "array", "items": {"type": "integer"}, "maxItems": 2},
            },
        }
        props = bounded_schema(schema)["properties"]
        assert props["a"]["maxLength"] == STRING_MAX_CHARS
        assert props["b"]["maxLength"] == 20
        assert "maxLength" not in props["c"]
        assert (props["d"]["maxItems"], props["d"]["items"]["maxLength"]) == (ARRAY_MAX_ITEMS, STRING_MAX_CHARS)
        assert props["e"]["maxItems"] == 2

    def test_a_list_type_becomes_any_of(self) -> None:
        """``type: [string, null]`` is split into alternatives (the converter would drop the other keywords)."""
        assert bounded_schema({"type": ["string", "null"]}) == {
            "anyOf": [{"type": "string", "maxLength": STRING_MAX_CHARS}, {"type": "null"}]
        }

    def test_a_short_integer_range_is_spelt_out(self) -> None:
        """``integer`` from 0 to 10 becomes an enum of its eleven values (the converter ignores integer bounds);
        a range too long to spell, or a bound alone, stays as it is."""
        props = bounded_schema(
            {
                "type": "object",
                "properties": {
                    "score": {"type": "integer", "minimum": 0.0, "maximum": 10.0, "description": "0 to 10"},
                    "year": {"type": "integer", "minimum": 1900, "maximum": 2100},
                    "count": {"type": "integer", "minimum": 1},
                },
            }
        )["properties"]
        assert props["score"] == {"description": "0 to 10", "enum": list(range(11))}
        assert props["year"] == {"type": "integer", "minimum": 1900, "maximum": 2100}
        assert props["count"] == {"type": "integer", "minimum": 1}

    def test_an_untyped_value_is_a_bounded_any_value(self) -> None:
        """``{}`` (anything) becomes a scalar or a short list of scalars, never unbounded."""
        anything = bounded_schema({"type": "object", "properties": {"x": {}}})["properties"]["x"]
        kinds = [alt.get("type") for alt in anything["anyOf"]]
        assert kinds == ["string", "number", "boolean", "null", "array"]
        assert anything["anyOf"][-1]["maxItems"] == ARRAY_MAX_ITEMS


class TestParseStep:
    def test_a_tool_step_becomes_a_numbered_tool_call(self) -> None:
        """A tool step is a tool call with id ``call_<n>`` and its thought as the text."""
        text = '{"thought": "look it up", "tool": "library_search", "arguments": {"query": "LoRA"}}'
        completion = parse_step(text, [SEARCH], False, first_call_number=3)
        assert completion is not None
        assert (completion.text, completion.finish_reason) == ("look it up", "tool_calls")
        assert [(c.id, c.name, c.arguments) for c in completion.tool_calls] == [
            ("call_3", "library_search", '{"query": "LoRA"}')
        ]

    def test_a_text_answer_is_its_answer_string(self) -> None:
        """Without an output schema, ``{"thought", "answer"}`` is the answer's text."""
        completion = parse_step(
            '{"thought": "done", "answer": "LoRA is low-rank."}', [SEARCH], False, first_call_number=1
        )
        assert completion is not None and completion.text == "LoRA is low-rank." and not completion.tool_calls

    def test_an_unknown_tool_is_not_a_call(self) -> None:
        """A step naming a tool that was not offered is kept as text, not executed."""
        text = '{"thought": "t", "tool": "rm_rf", "arguments": {}}'
        completion = parse_step(text, [SEARCH], True, first_call_number=1)
        assert completion is not None and not completion.tool_calls

    def test_incomplete_json_is_no_step(self) -> None:
        """Truncated output (the model ran out of tokens) is None, for the caller to retry."""
        assert parse_step('{"thought": "cut', [SEARCH], False, first_call_number=1) is None

    def test_raw_control_characters_are_tolerated(self) -> None:
        """A newline inside a string (invalid strict JSON, clear meaning) still parses, and is re-serialised."""
        completion = parse_step('{"claims": ["a\nb"]}', [], True, first_call_number=1)
        assert completion is not None and completion.text == '{"claims": ["a\\nb"]}'
