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
import importlib
import inspect
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel

from rolegraph.errors import Problem, SpecError
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

_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_IMPORT_PATH = re.compile(rf"^{_IDENTIFIER}(\.{_IDENTIFIER})*:{_IDENTIFIER}(\.{_IDENTIFIER})*$")


class _Unresolved(Exception):
    """One reference could not be resolved; the message says why and what to do."""


def is_import_path(ref: str) -> bool:
    """Whether `ref` has the form ``package.module:attribute`` (the attribute may be dotted)."""
    return _IMPORT_PATH.match(ref) is not None


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
    with _on_sys_path(search_path):
        for ref in dict.fromkeys(refs):
            if search_path is not None and ":" in ref:
                _forget_shadowed(ref.partition(":")[0], search_path)
            try:
                built = _resolve(ref, library)
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


def _resolve(ref: str, library: Library | None) -> Tool[Any]:
    if ref in BUILTIN_TOOLS:
        try:
            return BUILTIN_TOOLS[ref](ToolContext(library=library))
        except SpecError as exc:
            raise _Unresolved("; ".join(p.message for p in exc.problems)) from None
    if is_import_path(ref):
        return _as_tool(ref, _import(ref))
    hints = difflib.get_close_matches(ref, BUILTIN_TOOLS, n=1, cutoff=0.6)
    if not hints and "." in ref and ":" not in ref:
        module, _, attr = ref.rpartition(".")
        hints = [f"{module}:{attr}"]
    hint = f"; did you mean {hints[0]!r}?" if hints else "."
    raise _Unresolved(
        f"unknown tool {ref!r}{hint} A tool is a built-in ({', '.join(BUILTIN_TOOLS)}) "
        "or an import path such as 'my_tools:word_count'"
    )


def _import(ref: str) -> object:
    module_name, _, attr_path = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name == exc.name or module_name.startswith(f"{exc.name}.")):
            raise _Unresolved(
                f"tool {ref!r}: no module named {exc.name!r}; put it next to the workflow file "
                "or install it in this environment"
            ) from None
        raise _Unresolved(f"tool {ref!r}: importing {module_name!r} failed: {exc}") from None
    except Exception as exc:  # a user module can fail in any way; report it instead of crashing the load
        raise _Unresolved(f"tool {ref!r}: importing {module_name!r} failed: {type(exc).__name__}: {exc}") from None
    value: object = module
    for part in attr_path.split("."):
        if not hasattr(value, part):
            names = [n for n in dir(value) if not n.startswith("_")]
            hints = difflib.get_close_matches(part, names, n=1)
            hint = f"; did you mean {hints[0]!r}?" if hints else ""
            raise _Unresolved(f"tool {ref!r}: {module_name!r} has no attribute {attr_path!r}{hint}")
        value = getattr(value, part)
    return value


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


def _forget_shadowed(module_name: str, folder: Path) -> None:
    """Drop an imported module that a file in `folder` should provide instead.

    Two workflows in different folders may each keep a ``my_tools.py`` beside them; without
    this, the second workflow loaded in a process would get the first one's module from
    ``sys.modules``.
    """
    top = module_name.split(".")[0]
    loaded = sys.modules.get(top)
    if loaded is None:
        return
    for candidate in (folder / f"{top}.py", folder / top / "__init__.py"):
        if candidate.is_file():
            current = getattr(loaded, "__file__", None)
            if current is None or Path(current).resolve() != candidate.resolve():
                for name in [n for n in sys.modules if n == top or n.startswith(f"{top}.")]:
                    del sys.modules[name]
            return


@contextmanager
def _on_sys_path(folder: Path | None) -> Iterator[None]:
    """Put `folder` first on ``sys.path`` for the duration (if it is not there already)."""
    entry = str(folder.resolve()) if folder is not None else None
    if entry is None or entry in sys.path:
        yield
        return
    sys.path.insert(0, entry)
    importlib.invalidate_caches()  # the folder's files may be newer than the import system's caches
    try:
        yield
    finally:
        sys.path.remove(entry)
