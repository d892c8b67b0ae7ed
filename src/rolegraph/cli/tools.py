"""``rolegraph tools`` and ``rolegraph tool``: list the built-in tools, run one."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table

from rolegraph.cli._common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    app,
    err,
    out,
    report_spec_error,
)
from rolegraph.errors import SpecError
from rolegraph.tools.library import Library, LibrarySearchTool, ReadDocumentTool
from rolegraph.tools.registry import builtin_tools, call_tool, describe_tools, resolve_tool

LIBRARY_TOOLS = frozenset({LibrarySearchTool.name, ReadDocumentTool.name})
"""The built-in tools that need ``--library``."""


def _argument_summary(parameters: dict[str, Any]) -> str:
    """``name: type`` per argument; optional ones marked ``?``."""
    required = set(parameters.get("required", []))
    parts = []
    for field, prop in parameters.get("properties", {}).items():
        kind = prop.get("type") or "|".join(str(p.get("type", "?")) for p in prop.get("anyOf", [])) or "enum"
        if "enum" in prop:
            kind = "|".join(str(v) for v in prop["enum"])
        parts.append(f"{field}{'' if field in required else '?'}: {kind}")
    return "\n".join(parts)


@app.command("tools")
def tools_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print every tool's name, description and schema.")] = False,
) -> None:
    """List the built-in tools with their arguments."""

    described = describe_tools(builtin_tools())
    if as_json:
        print(json.dumps(described, indent=2))
        return
    table = Table("tool", "arguments", "description", show_lines=True)
    for entry in described:
        table.add_row(entry["name"], escape(_argument_summary(entry["parameters"])), escape(entry["description"]))
    out.print(table)


@app.command("tool")
def tool_run(
    name: Annotated[str, typer.Argument(help="A built-in tool, or an import path such as my_tools:word_count.")],
    args: Annotated[str, typer.Option("--args", help="The arguments, as a JSON object.")] = "{}",
    library: Annotated[Path | None, typer.Option(help="Folder of notes, for library_search and read_document.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole result as JSON (content, data, sources, is_error).")
    ] = False,
) -> None:
    """Run one tool.

    Exit 0 on success, 1 if the tool reported an error, 2 for bad arguments or an unknown tool.
    """
    try:
        values = json.loads(args)
    except ValueError as exc:
        err.print(f"[red]error[/] --args is not valid JSON: {escape(str(exc))}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    if not isinstance(values, dict):
        err.print('[red]error[/] --args must be a JSON object, e.g. \'{"query": "LoRA"}\'')
        raise typer.Exit(EXIT_BAD_INPUT)
    if library is None and name in LIBRARY_TOOLS:
        err.print(
            f"[red]error[/] tool {escape(repr(name))} needs a library: pass --library DIR (a folder of notes)",
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_BAD_INPUT)
    try:
        notes = Library.from_dir(library) if library is not None else None
        chosen = resolve_tool(name, library=notes, search_path=Path.cwd())
    except SpecError as exc:
        raise report_spec_error(exc) from None
    try:
        parsed = chosen.validate(values)
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "(arguments)"
            err.print(f"[red]error[/] {escape(name)}: {escape(where)}: {escape(error['msg'])}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    result = asyncio.run(call_tool(chosen, parsed, close=True))
    if as_json:
        print(result.model_dump_json(indent=2))
    else:
        print(result.content)
        if result.sources:
            err.print(f"{len(result.sources)} source(s): {escape(', '.join(s.id for s in result.sources))}")
    if result.is_error:
        raise typer.Exit(EXIT_FAILED)
