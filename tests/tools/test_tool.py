"""The Tool contract: @tool on sync and async functions, and what their results become."""

from __future__ import annotations

import threading
from typing import Annotated

import pytest
from pydantic import BaseModel, Field, ValidationError

from rolegraph.tools.sources import Source
from rolegraph.tools.tool import FunctionTool, ToolResult, tool


class TestToolDecorator:
    """@tool turns functions into tools."""

    def test_sync_function_schema(self) -> None:
        """Hints and defaults become a strict JSON schema; the first docstring paragraph the description."""

        @tool
        def add(a: int, b: int = 2) -> int:
            """Add two numbers.

            Not part of the description.
            """
            return a + b

        assert isinstance(add, FunctionTool)
        assert add.spec().model_dump() == {
            "name": "add",
            "description": "Add two numbers.",
            "parameters": {
                "additionalProperties": False,
                "properties": {
                    "a": {"title": "A", "type": "integer"},
                    "b": {"default": 2, "title": "B", "type": "integer"},
                },
                "required": ["a"],
                "type": "object",
            },
        }

    def test_async_function_schema_and_options(self) -> None:
        """An async function gets the same schema; name, description and timeout can be overridden."""

        @tool(name="find", description="Find papers.", timeout=3.0)
        async def search_papers(query: str, tags: list[str] | None = None) -> str:
            return query

        assert (search_papers.name, search_papers.timeout) == ("find", 3.0)
        assert search_papers.spec().model_dump() == {
            "name": "find",
            "description": "Find papers.",
            "parameters": {
                "additionalProperties": False,
                "properties": {
                    "query": {"title": "Query", "type": "string"},
                    "tags": {
                        "anyOf": [{"items": {"type": "string"}, "type": "array"}, {"type": "null"}],
                        "default": None,
                        "title": "Tags",
                    },
                },
                "required": ["query"],
                "type": "object",
            },
        }

    async def test_sync_function_runs_off_the_event_loop(self) -> None:
        """A sync function runs in a worker thread, so it cannot block the loop."""
        seen: list[int] = []

        @tool
        def where() -> str:
            """Report the thread."""
            seen.append(threading.get_ident())
            return "ok"

        result = await where(where.args_model())
        assert result == ToolResult(content="ok")
        assert seen != [threading.get_ident()]
        assert len(seen) == 1

    async def test_async_function_runs_on_the_loop(self) -> None:
        """An async function is awaited directly and its arguments arrive validated."""
        seen: list[int] = []

        @tool
        async def double(n: int) -> int:
            """Double a number."""
            seen.append(threading.get_ident())
            return n * 2

        args = double.args_model.model_validate({"n": "21"})
        assert await double(args) == ToolResult(content="42", data=42)
        assert seen == [threading.get_ident()]

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("plain text", ToolResult(content="plain text")),
            ({"a": [1, 2]}, ToolResult(content='{"a": [1, 2]}', data={"a": [1, 2]})),
            (
                ToolResult(content="x", sources=[Source(id="s", title="S")]),
                ToolResult(content="x", sources=[Source(id="s", title="S")]),
            ),
        ],
    )
    async def test_return_values_become_results(self, value: object, expected: ToolResult) -> None:
        """Strings are observations, JSON values are content plus data, ToolResults pass through."""

        @tool
        def give() -> object:
            """Return the value."""
            return value

        assert await give(give.args_model()) == expected

    async def test_pydantic_return_value(self) -> None:
        """A returned pydantic model is dumped to JSON content and data."""

        class Point(BaseModel):
            x: int
            y: int

        @tool
        async def origin() -> Point:
            """The origin."""
            return Point(x=0, y=0)

        assert await origin(origin.args_model()) == ToolResult(content='{"x":0,"y":0}', data={"x": 0, "y": 0})

    def test_annotated_fields_keep_their_constraints(self) -> None:
        """Annotated[..., Field(...)] parameters carry descriptions and bounds into the schema."""

        @tool
        def pick(n: Annotated[int, Field(ge=1, le=5, description="How many.")] = 1) -> str:
            """Pick n."""
            return "x" * n

        assert pick.spec().parameters["properties"] == {
            "n": {"default": 1, "description": "How many.", "maximum": 5, "minimum": 1, "title": "N", "type": "integer"}
        }
        with pytest.raises(ValidationError):
            pick.args_model.model_validate({"n": 6})

    def test_arguments_are_strict(self) -> None:
        """Unknown or missing arguments are refused by the argument model."""

        @tool
        def one(a: int) -> int:
            """Identity."""
            return a

        with pytest.raises(ValidationError):
            one.args_model.model_validate({"a": 1, "b": 2})
        with pytest.raises(ValidationError):
            one.args_model.model_validate({})

    def test_star_args_are_refused(self) -> None:
        """*args cannot be described to a model."""

        def spread(*parts: str) -> str:
            return "".join(parts)

        with pytest.raises(TypeError, match=r"\*args and \*\*kwargs"):
            tool(spread)


class TestToolResult:
    """ToolResult."""

    def test_error(self) -> None:
        """error() builds a failed observation with no data or sources."""
        assert ToolResult.error("boom").model_dump() == {
            "content": "boom",
            "data": None,
            "sources": [],
            "is_error": True,
        }


class TestGenericTool:
    async def test_a_tool_receives_its_own_argument_type(self) -> None:
        """`Tool[ArgsT]`: `validate` turns JSON data into the tool's own model, which `__call__` receives as is."""
        from pydantic import BaseModel

        from rolegraph.tools.tool import Tool, ToolResult

        class CountArgs(BaseModel):
            text: str

        seen: list[object] = []

        class WordCount(Tool[CountArgs]):
            name, description, args_model = "word_count", "Count words.", CountArgs

            async def __call__(self, args: CountArgs) -> ToolResult:
                seen.append(args)
                return ToolResult(content=str(len(args.text.split())))

        counter = WordCount()
        result = await counter(counter.validate({"text": "low rank adaptation"}))
        assert (result.content, type(seen[0])) == ("3", CountArgs)
