"""Resolving workflow tool references: built-ins, import paths, and the errors for bad ones."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from rolegraph.errors import SpecError
from rolegraph.tools.fetch import FetchUrlTool
from rolegraph.tools.library import Document, Library, LibrarySearchTool, ReadDocumentTool
from rolegraph.tools.registry import (
    BUILTIN_TOOLS,
    ToolContext,
    builtin_tools,
    describe_tools,
    is_import_path,
    resolve_tool,
    resolve_tools,
)
from rolegraph.tools.tool import FunctionTool, Tool, tool
from rolegraph.tools.web_search import WebSearchTool

USER_TOOLS = '''
from pydantic import BaseModel

from rolegraph.tools.tool import Tool, ToolResult, tool


def word_count(text: str) -> int:
    """Count the words in a text."""
    return len(text.split())


class EchoArgs(BaseModel):
    text: str


class Echo(Tool):
    name = "echo"
    description = "Repeat the text."
    args_model = EchoArgs

    async def __call__(self, args: BaseModel) -> ToolResult:
        return ToolResult(content=args.text)


class NeedsConfig(Echo):
    name = "shout"

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix


echo = Echo()
shouty = NeedsConfig(">> ")
number = 42


class Plain:
    pass


@tool(name="word_count")
def other_word_count(text: str) -> int:
    """Count words differently."""
    return 0
'''


@pytest.fixture
def library() -> Library:
    return Library([(Document(key="k", title="T", authors=("A",), year=2020, venue="V", topic="t"), "Text.")])


@pytest.fixture
def user_module(tmp_path: Path) -> Iterator[str]:
    """A module of user tools in a folder that is not on sys.path; yields its (unique) name."""
    name = f"rg_user_tools_{abs(hash(tmp_path))}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(USER_TOOLS), encoding="utf-8")
    yield name
    sys.modules.pop(name, None)


def problems(exc: pytest.ExceptionInfo[SpecError]) -> list[str]:
    return [p.message for p in exc.value.problems]


class TestIsImportPath:
    """Recognising ``package.module:attribute`` references."""

    @pytest.mark.parametrize("ref", ["m:f", "pkg.mod:f", "pkg.sub.mod:Class.attr", "_m1:_f2"])
    def test_import_paths(self, ref: str) -> None:
        """Dotted modules with a colon and a (possibly dotted) attribute are import paths."""
        assert is_import_path(ref)

    @pytest.mark.parametrize("ref", ["library_search", "pkg.mod.f", "m:", ":f", "m::f", "1m:f", "m:f-g", "m :f", ""])
    def test_not_import_paths(self, ref: str) -> None:
        """Bare names, dotted paths without a colon and malformed paths are not."""
        assert not is_import_path(ref)


class TestResolveTools:
    """resolve_tools and resolve_tool."""

    def test_builtins_share_the_library(self, library: Library) -> None:
        """Built-in names build the library tools over the given library, in the order asked."""
        tools = resolve_tools(["read_document", "library_search"], library=library)
        assert [type(t) for t in tools] == [ReadDocumentTool, LibrarySearchTool]
        assert [t.name for t in tools] == ["read_document", "library_search"]
        assert all(t.library is library for t in tools)  # type: ignore[attr-defined]
        assert sorted(BUILTIN_TOOLS) == [
            "arxiv_search",
            "browser",
            "crossref_search",
            "fetch_url",
            "library_search",
            "openalex_search",
            "paper_search",
            "read_document",
            "semantic_scholar_search",
            "web_search",
        ]

    def test_builtin_without_library(self) -> None:
        """A built-in tool with no library is a SpecError saying how to add one."""
        with pytest.raises(SpecError) as caught:
            resolve_tools(["library_search"], library=None)
        assert problems(caught) == [
            "tool 'library_search' needs a library: set 'library:' in the workflow to a folder of notes "
            "(for example 'library: library', next to the workflow file)"
        ]
        assert caught.value.problems[0].path == "tools"

    async def test_function_from_search_path(self, tmp_path: Path, user_module: str) -> None:
        """A function in a module next to the workflow becomes a working FunctionTool; sys.path is restored."""
        before = list(sys.path)
        [word_count] = resolve_tools([f"{user_module}:word_count"], library=None, search_path=tmp_path)
        assert sys.path == before
        assert isinstance(word_count, FunctionTool)
        assert (word_count.name, word_count.description) == ("word_count", "Count the words in a text.")
        result = await word_count(word_count.args_model(text="one two three"))
        assert (result.content, result.data) == ("3", 3)

    async def test_tool_subclass_and_instance(self, tmp_path: Path, user_module: str) -> None:
        """A Tool subclass is instantiated with no arguments; a Tool instance is used as is."""
        echo_cls, echo_obj = resolve_tools(
            [f"{user_module}:Echo", f"{user_module}:shouty"], library=None, search_path=tmp_path
        )
        module = sys.modules[user_module]
        assert type(echo_cls) is module.Echo
        assert echo_obj is module.shouty
        result = await echo_cls(echo_cls.args_model(text="hi"))
        assert result.content == "hi"

    def test_same_module_name_in_two_workflow_folders(self, tmp_path: Path) -> None:
        """Two folders each with their own `rg_twin_tools.py`: each workflow gets its own module's tool."""
        for folder, word in (("a", "first"), ("b", "second")):
            (tmp_path / folder).mkdir()
            (tmp_path / folder / "rg_twin_tools.py").write_text(
                f'from rolegraph import tool\n\n\n@tool\ndef which() -> str:\n    """Say which."""\n'
                f"    return {word!r}\n",
                encoding="utf-8",
            )
        try:
            first = resolve_tool("rg_twin_tools:which", search_path=tmp_path / "a")
            second = resolve_tool("rg_twin_tools:which", search_path=tmp_path / "b")
            assert (first.fn(), second.fn()) == ("first", "second")  # type: ignore[attr-defined]
        finally:
            sys.modules.pop("rg_twin_tools", None)

    def test_repeated_reference_gives_one_tool(self, library: Library) -> None:
        """Naming a tool twice yields it once."""
        tools = resolve_tools(["library_search", "library_search"], library=library)
        assert [t.name for t in tools] == ["library_search"]

    def test_unknown_name_suggests_a_builtin(self, library: Library) -> None:
        """A misspelt built-in gets a did-you-mean and the forms a tool may take."""
        with pytest.raises(SpecError) as caught:
            resolve_tool("libary_search", library=library)
        assert problems(caught) == [
            "unknown tool 'libary_search'; did you mean 'library_search'? "
            "A tool is a built-in (library_search, read_document, fetch_url, web_search, browser, "
            "arxiv_search, openalex_search, crossref_search, semantic_scholar_search, paper_search) "
            "or an import path such as 'my_tools:word_count'"
        ]

    def test_dotted_path_suggests_the_colon_form(self) -> None:
        """``module.function`` is answered with ``module:function``."""
        with pytest.raises(SpecError) as caught:
            resolve_tool("my_tools.word_count")
        assert problems(caught)[0].startswith("unknown tool 'my_tools.word_count'; did you mean 'my_tools:word_count'?")

    def test_every_bad_reference_is_reported(self, tmp_path: Path, user_module: str) -> None:
        """All unresolvable references come back together, each saying what is wrong."""
        m = user_module
        refs = [
            "nope",
            "no_such_module_xyz:f",
            f"{m}:word_cuont",
            f"{m}:NeedsConfig",
            f"{m}:number",
            f"{m}:Plain",
            f"{m}:word_count",
            f"{m}:other_word_count",
        ]
        with pytest.raises(SpecError) as caught:
            resolve_tools(refs, library=None, search_path=tmp_path)
        assert problems(caught) == [
            "unknown tool 'nope'. A tool is a built-in (library_search, read_document, fetch_url, web_search, browser, "
            "arxiv_search, openalex_search, crossref_search, semantic_scholar_search, paper_search) "
            "or an import path such as 'my_tools:word_count'",
            "tool 'no_such_module_xyz:f': no module named 'no_such_module_xyz'; put no_such_module_xyz.py next to "
            "the workflow file "
            "or install it in this environment",
            f"tool '{m}:word_cuont': '{m}' has no attribute 'word_cuont'; did you mean 'word_count'?",
            f"tool '{m}:NeedsConfig' cannot be built without arguments "
            "(NeedsConfig.__init__() missing 1 required positional argument: 'prefix'); "
            "point at an instance instead, e.g. 'module:my_tool' with my_tool = MyTool(...)",
            f"tool '{m}:number' is a int, not a Tool, a Tool subclass or a function",
            f"tool '{m}:Plain' is a class but not a subclass of rolegraph.tools.tool.Tool",
            f"tools '{m}:word_count' and '{m}:other_word_count' are both named 'word_count'; "
            "tool names must be unique; rename one (for a function, with @tool(name=...))",
        ]

    def test_module_that_fails_to_import(self, tmp_path: Path) -> None:
        """An exception while importing a user module is reported, not raised."""
        (tmp_path / "rg_broken_tools.py").write_text("raise RuntimeError('bad config')\n", encoding="utf-8")
        try:
            with pytest.raises(SpecError) as caught:
                resolve_tool("rg_broken_tools:f", search_path=tmp_path)
        finally:
            sys.modules.pop("rg_broken_tools", None)
        assert problems(caught) == [
            "tool 'rg_broken_tools:f': importing 'rg_broken_tools' failed: RuntimeError: bad config"
        ]

    def test_without_search_path_user_modules_are_not_found(self, user_module: str) -> None:
        """The workflow's folder is only importable when passed as search_path."""
        with pytest.raises(SpecError, match=r"no module named"):
            resolve_tool(f"{user_module}:word_count")


class TestDescribeTools:
    """describe_tools for listing tools."""

    def test_name_description_schema_timeout(self) -> None:
        """Each tool is described by its name, description, argument schema and timeout."""

        @tool(timeout=5)
        def shout(text: str, times: int = 1) -> str:
            """Upper-case a text."""
            return text.upper() * times

        tools: list[Tool] = [shout]
        assert describe_tools(tools) == [
            {
                "name": "shout",
                "description": "Upper-case a text.",
                "parameters": {
                    "additionalProperties": False,
                    "properties": {
                        "text": {"title": "Text", "type": "string"},
                        "times": {"default": 1, "title": "Times", "type": "integer"},
                    },
                    "required": ["text"],
                    "type": "object",
                },
                "timeout": 5,
            }
        ]


class TestWebBuiltins:
    """The web tools among the built-ins: no library needed, listed and described like the others."""

    def test_web_tools_need_no_library(self) -> None:
        """fetch_url and web_search resolve without a library."""
        fetch, search = resolve_tools(["fetch_url", "web_search"], library=None)
        assert (type(fetch), type(search)) == (FetchUrlTool, WebSearchTool)

    def test_library_tools_say_what_they_need(self) -> None:
        """A library tool's builder given no library raises a SpecError on the tools field."""
        with pytest.raises(SpecError) as caught:
            BUILTIN_TOOLS["read_document"](ToolContext())
        assert caught.value.problems[0].path == "tools"

    def test_builtin_tools_are_described(self) -> None:
        """builtin_tools lists every built-in in order; describe_tools gives each argument schema."""
        described = {d["name"]: d for d in describe_tools(builtin_tools())}
        assert list(described) == [
            "library_search",
            "read_document",
            "fetch_url",
            "web_search",
            "browser",
            "arxiv_search",
            "openalex_search",
            "crossref_search",
            "semantic_scholar_search",
            "paper_search",
        ]
        assert described["paper_search"]["parameters"]["properties"]["backends"]["default"] == [
            "arxiv",
            "openalex",
            "crossref",
            "semantic_scholar",
        ]
        assert described["arxiv_search"]["parameters"]["required"] == ["query"]
        assert described["fetch_url"]["parameters"]["required"] == ["url"]
        assert described["fetch_url"]["parameters"]["properties"]["max_chars"]["maximum"] == 12000
        assert described["web_search"]["parameters"]["properties"]["max_results"]["default"] == 5
        assert described["web_search"]["timeout"] == 30.0
