"""The `Tool` interface, tool results, and the `@tool` decorator for plain functions."""

from __future__ import annotations

import asyncio
import inspect
import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, Generic, TypeVar, get_type_hints, overload

from pydantic import BaseModel, ConfigDict, Field, create_model

from rolegraph.models.messages import ToolSpec
from rolegraph.tools.sources import Source

__all__ = ["ArgsT", "FunctionTool", "Tool", "ToolResult", "tool"]

ArgsT = TypeVar("ArgsT", bound=BaseModel)
"""A tool's argument model."""


class ToolResult(BaseModel):
    """What a tool call produced: an observation for the model plus the sources it found."""

    content: str
    """The observation shown to the model."""
    data: Any = None
    """Structured form of the result, for programs (not shown to the model)."""
    sources: list[Source] = Field(default_factory=list)
    """Documents retrieved by this call; the run registers each one."""
    is_error: bool = False
    """True when the call failed; `content` then says why, for the model to adapt."""

    @classmethod
    def error(cls, message: str) -> ToolResult:
        """A failed call's observation."""
        return cls(content=message, is_error=True)


class Tool(ABC, Generic[ArgsT]):
    """Something an agent can do: a name, a description, typed arguments, one async call.

    Subclasses name their argument model as the type parameter and in `args_model`,
    set `name` and `description`, and implement `__call__`, which receives its own
    validated type (the agent, the CLI and tool steps validate before calling):

    ```python
    class WordCount(Tool[WordCountArgs]):
        name, description, args_model = "word_count", "Count words.", WordCountArgs

        async def __call__(self, args: WordCountArgs) -> ToolResult:
            return ToolResult(content=str(len(args.text.split())))
    ```

    Raise `ToolError` (or anything) to report a failure; the agent turns it into
    an error observation rather than failing the run.
    """

    name: str
    description: str
    args_model: type[ArgsT]
    timeout: float = 60.0
    """Seconds before a call is abandoned and reported to the agent as an error."""

    @abstractmethod
    async def __call__(self, args: ArgsT) -> ToolResult:
        """Run the tool with validated arguments."""

    def validate(self, arguments: Any) -> ArgsT:
        """`arguments` (JSON data) as this tool's argument model.

        Raises:
            pydantic.ValidationError: They do not fit the model.
        """
        return self.args_model.model_validate(arguments)

    def spec(self) -> ToolSpec:
        """The tool as a model sees it."""
        schema = self.args_model.model_json_schema()
        schema.pop("title", None)
        return ToolSpec(name=self.name, description=self.description, parameters=schema)

    async def aclose(self) -> None:
        """Release what the tool holds (browsers, connections). Default: nothing."""


def _to_result(value: object) -> ToolResult:
    if isinstance(value, ToolResult):
        return value
    if isinstance(value, str):
        return ToolResult(content=value)
    if isinstance(value, BaseModel):
        return ToolResult(content=value.model_dump_json(), data=value.model_dump(mode="json"))
    return ToolResult(content=json.dumps(value, default=str), data=value)


class FunctionTool(Tool[BaseModel]):
    """A tool made from a Python function by `@tool`.

    The function's parameters (with type hints and defaults) become the argument
    model; its docstring's first paragraph becomes the description. Sync functions
    run in a worker thread so they never block the event loop.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        doc = inspect.getdoc(fn) or ""
        self.description = description or doc.split("\n\n")[0].strip() or self.name
        self.timeout = timeout
        self.args_model = _args_model(fn, self.name)

    async def __call__(self, args: BaseModel) -> ToolResult:
        kwargs = {field: getattr(args, field) for field in type(args).model_fields}
        if inspect.iscoroutinefunction(self.fn):
            value = await self.fn(**kwargs)
        else:
            value = await asyncio.to_thread(self.fn, **kwargs)
        return _to_result(value)


def _parameter_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    # The return annotation is left out: it plays no part in the arguments, and it may name
    # a class defined in a local scope or imported only under TYPE_CHECKING (a NameError here).
    annotations = {k: v for k, v in getattr(fn, "__annotations__", {}).items() if k != "return"}
    globalns = getattr(inspect.unwrap(fn), "__globals__", {})
    return get_type_hints(SimpleNamespace(__annotations__=annotations), globalns=globalns, include_extras=True)


def _args_model(fn: Callable[..., Any], name: str) -> type[BaseModel]:
    hints = _parameter_hints(fn)
    fields: dict[str, Any] = {}
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"@tool {name}: *args and **kwargs cannot be described to a model")
        annotation = hints.get(param.name, str)
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (annotation, default)
    model_name = "".join(part.capitalize() for part in name.split("_")) + "Args"
    return create_model(model_name, __config__=ConfigDict(extra="forbid"), **fields)


@overload
def tool(fn: Callable[..., Any], /) -> FunctionTool: ...
@overload
def tool(
    *, name: str | None = None, description: str | None = None, timeout: float = 60.0
) -> Callable[[Callable[..., Any]], FunctionTool]: ...
def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float = 60.0,
) -> FunctionTool | Callable[[Callable[..., Any]], FunctionTool]:
    """Turn a function into a `Tool`.

    ```python
    @tool
    async def word_count(text: str) -> int:
        "Count the words in a text."
        return len(text.split())
    ```

    The function may return a string (the observation), a `ToolResult` (to
    report sources or errors), or anything JSON-serialisable.
    """

    def wrap(f: Callable[..., Any]) -> FunctionTool:
        return FunctionTool(f, name=name, description=description, timeout=timeout)

    return wrap(fn) if fn is not None else wrap
