"""Resolving the tool references a workflow names into `Tool` objects.

A role's ``tools`` list holds built-in names (``library_search``,
``read_document``, ``fetch_url``, ``web_search``, ``browser``, ``arxiv_search``,
``openalex_search``, ``crossref_search``, ``semantic_scholar_search``,
``paper_search``) or import paths,
``package.module:attribute``, where the attribute is a `Tool` instance, a
`Tool` subclass (built with no arguments) or a plain function (wrapped with
`@tool`)::

    roles:
      researcher:
        tools: [library_search, read_document, my_tools:word_count]
"""

from __future__ import annotations

import asyncio
import difflib
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel

from rolegraph.errors import Problem, SpecError
from rolegraph.imports import ImportPathError, import_object, is_import_path, on_search_path
from rolegraph.tools.browser import BrowserTool
from rolegraph.tools.fetch import FetchUrlTool
from rolegraph.tools.library import Library, LibrarySearchTool, ReadDocumentTool
from rolegraph.tools.scholarly import (
    ArxivSearchTool,
    CrossrefSearchTool,
    OpenAlexSearchTool,
    PaperSearchTool,
    SemanticScholarSearchTool,
)
from rolegraph.tools.tool import Tool, ToolResult, tool
from rolegraph.tools.web_search import WebSearchTool

__all__ = [
    "BUILTIN_TOOLS",
    "WEB_TOOLS",
    "ToolContext",
    "builtin_tools",
    "call_tool",
    "describe_tools",
    "is_import_path",
    "resolve_tool",
    "resolve_tools",
]


@dataclass(frozen=True)
class ToolContext:
    """What a built-in tool may be built from.

    Attributes:
        library: The workflow's library (needed by ``library_search`` and ``read_document``).
    """

    library: Library | None = None


def _needs_library(cls: Callable[[Library], Tool[Any]], name: str) -> Callable[[ToolContext], Tool[Any]]:
    def build(context: ToolContext) -> Tool[Any]:
        if context.library is None:
            raise SpecError(
                [
                    Problem(
                        f"tool {name!r} needs a library: set 'library:' in the workflow to a folder of notes "
                        "(for example 'library: library', next to the workflow file)",
                        "tools",
                    )
                ]
            )
        return cls(context.library)

    return build


BUILTIN_TOOLS: Mapping[str, Callable[[ToolContext], Tool[Any]]] = MappingProxyType(
    {
        LibrarySearchTool.name: _needs_library(LibrarySearchTool, LibrarySearchTool.name),
        ReadDocumentTool.name: _needs_library(ReadDocumentTool, ReadDocumentTool.name),
        FetchUrlTool.name: lambda context: FetchUrlTool(),
        WebSearchTool.name: lambda context: WebSearchTool(),
        BrowserTool.name: lambda context: BrowserTool(),
        ArxivSearchTool.name: lambda context: ArxivSearchTool(),
        OpenAlexSearchTool.name: lambda context: OpenAlexSearchTool(),
        CrossrefSearchTool.name: lambda context: CrossrefSearchTool(),
        SemanticScholarSearchTool.name: lambda context: SemanticScholarSearchTool(),
        PaperSearchTool.name: lambda context: PaperSearchTool(),
    }
)
"""Built-in tool names and how to build each from a `ToolContext`.

A builder raises `SpecError` when the context lacks what the tool needs. The web
and scholarly tools read their URL policy from ``ROLEGRAPH_ALLOW_HOSTS`` when
built; the scholarly tools also read ``ROLEGRAPH_MAILTO``, ``S2_API_KEY`` and
their base-URL variables (``ROLEGRAPH_ARXIV_URL`` and the like).
"""

WEB_TOOLS = frozenset(BUILTIN_TOOLS) - {LibrarySearchTool.name, ReadDocumentTool.name}
"""Built-in tools that send requests off this machine (the web, the browser, the scholarly APIs):
refused under ``settings.privacy: local_only``. Only the library tools stay on the machine."""


class _Unresolved(Exception):
    """One reference could not be resolved; the message says why and what to do."""


def resolve_tools(refs: Sequence[str], *, library: Library | None, search_path: Path | None = None) -> list[Tool[Any]]:
    """Build the tools `refs` name, in order (a repeated reference yields one tool).

    Args:
        refs: Built-in tool names or ``package.module:attribute`` import paths.
        library: The workflow's library, needed by the built-in tools.
        search_path: A folder put first on ``sys.path`` while importing (the
            workflow file's folder, so tools can live next to it).

    Raises:
        SpecError: Every reference that cannot be resolved, and tools sharing a name,
            each with what to do about it.
    """
    tools: list[Tool[Any]] = []
    problems: list[Problem] = []
    owners: dict[str, str] = {}
    with on_search_path(search_path):  # also while a tool class is built: it may import beside itself
        for ref in dict.fromkeys(refs):
            try:
                built = _resolve(ref, library, search_path)
            except _Unresolved as exc:
                problems.append(Problem(str(exc), "tools"))
                continue
            if built.name in owners:
                problems.append(
                    Problem(
                        f"tools {owners[built.name]!r} and {ref!r} are both named {built.name!r}; "
                        "tool names must be unique; rename one (for a function, with @tool(name=...))",
                        "tools",
                    )
                )
                continue
            owners[built.name] = ref
            tools.append(built)
    if problems:
        raise SpecError(problems)
    return tools


def resolve_tool(ref: str, *, library: Library | None = None, search_path: Path | None = None) -> Tool[Any]:
    """Build the one tool `ref` names; see `resolve_tools`.

    Raises:
        SpecError: The reference cannot be resolved.
    """
    return resolve_tools([ref], library=library, search_path=search_path)[0]


def describe_tools(tools: Sequence[Tool[Any]]) -> list[dict[str, Any]]:
    """Each tool's name, description, argument JSON schema and timeout, as plain data."""
    return [{**t.spec().model_dump(mode="json"), "timeout": t.timeout} for t in tools]


def builtin_tools(context: ToolContext | None = None) -> list[Tool[Any]]:
    """Every built-in tool, in `BUILTIN_TOOLS` order, for listing and describing.

    Library tools are built over `context`'s library, or an empty one. Building a
    tool opens nothing (web tools connect on first use), so the list needs no closing.
    """
    context = context or ToolContext()
    if context.library is None:
        context = ToolContext(library=Library())
    return [build(context) for build in BUILTIN_TOOLS.values()]


async def call_tool(tool: Tool[Any], args: BaseModel, *, close: bool = False) -> ToolResult:
    """Run one tool outside an agent, as an agent would: a timeout or an exception becomes an error result.

    Args:
        tool: The tool.
        args: Validated arguments (an instance of ``tool.args_model``).
        close: Close the tool afterwards (for a one-off call, as ``rolegraph tool`` makes).
    """
    try:
        async with asyncio.timeout(tool.timeout):
            return await tool(args)
    except TimeoutError:
        return ToolResult.error(f"{tool.name} did not finish within {tool.timeout:g}s")
    except Exception as exc:  # as in the agent loop: a failing tool is a result, never a crash
        return ToolResult.error(f"{tool.name} failed: {type(exc).__name__}: {exc}")
    finally:
        if close:
            await tool.aclose()


def _resolve(ref: str, library: Library | None, search_path: Path | None) -> Tool[Any]:
    if ref in BUILTIN_TOOLS:
        try:
            return BUILTIN_TOOLS[ref](ToolContext(library=library))
        except SpecError as exc:
            raise _Unresolved("; ".join(p.message for p in exc.problems)) from None
    if is_import_path(ref):
        try:
            return _as_tool(ref, import_object(ref, search_path))
        except ImportPathError as exc:
            raise _Unresolved(f"tool {exc}") from None
    hints = difflib.get_close_matches(ref, BUILTIN_TOOLS, n=1, cutoff=0.6)
    if not hints and "." in ref and ":" not in ref:
        module, _, attr = ref.rpartition(".")
        hints = [f"{module}:{attr}"]
    hint = f"; did you mean {hints[0]!r}?" if hints else "."
    raise _Unresolved(
        f"unknown tool {ref!r}{hint} A tool is a built-in ({', '.join(BUILTIN_TOOLS)}) "
        "or an import path such as 'my_tools:word_count'"
    )


def _as_tool(ref: str, value: object) -> Tool[Any]:
    if isinstance(value, type):
        if not issubclass(value, Tool):
            raise _Unresolved(f"tool {ref!r} is a class but not a subclass of rolegraph.tools.tool.Tool")
        if inspect.isabstract(value):
            raise _Unresolved(f"tool {ref!r} is abstract; implement __call__")
        try:
            value = value()
        except TypeError as exc:
            raise _Unresolved(
                f"tool {ref!r} cannot be built without arguments ({exc}); "
                "point at an instance instead, e.g. 'module:my_tool' with my_tool = MyTool(...)"
            ) from None
    if isinstance(value, Tool):
        missing = [a for a in ("name", "description", "args_model") if not hasattr(value, a)]
        if missing:
            raise _Unresolved(f"tool {ref!r} does not set {', '.join(missing)}")
        return value
    if callable(value):
        try:
            return tool(value)
        except Exception as exc:  # bad signatures or unresolvable hints surface as TypeError, NameError, ...
            raise _Unresolved(f"tool {ref!r} cannot be described to a model: {exc}") from None
    raise _Unresolved(f"tool {ref!r} is a {type(value).__name__}, not a Tool, a Tool subclass or a function")
