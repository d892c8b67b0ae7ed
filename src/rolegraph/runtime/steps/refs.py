"""Checks of what tool and function steps name: the tool exists, the function imports, its output types are known.

`CompiledWorkflow.load` hands `step_reference_check` to the loader, which runs it
with the document's other checks, so `rolegraph validate` reports a misspelt tool
or a function that cannot be imported at its line, before any step runs. (The
format, `rolegraph.workflows`, knows no tools: the engine brings this check.) A
function's module is imported (the workflow file's folder searched first), as
running the workflow would.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from rolegraph.agents.roles import BUILTIN_ROLES, field_definition
from rolegraph.errors import SpecError
from rolegraph.imports import ImportPathError, import_object, is_import_path
from rolegraph.tools.registry import BUILTIN_TOOLS, resolve_tool
from rolegraph.workflows.spec import WorkflowSpec

__all__ = ["LIBRARY_TOOLS", "role_tool_refs", "step_reference_check", "step_reference_problems"]

LIBRARY_TOOLS = frozenset({"library_search", "read_document"})
"""Built-in tools that need the workflow's `library`."""


def role_tool_refs(spec: WorkflowSpec) -> Iterator[tuple[str, str]]:
    """``(field path, tool reference)`` for every tool of every role a step uses (a built-in role's own
    tools are placed at the first step using the role: they are not written in the file)."""
    seen: set[str] = set()
    for step_id, step in spec.steps.items():
        name = step.role
        if name is None or name in seen:
            continue
        seen.add(name)
        override = spec.roles.get(name)
        if override is not None and override.tools is not None:
            yield from ((f"roles.{name}.tools[{i}]", ref) for i, ref in enumerate(override.tools))
        elif name in BUILTIN_ROLES:
            yield from ((f"steps.{step_id}.role", ref) for ref in BUILTIN_ROLES[name].tools)


def _tool_problem(ref: str, spec: WorkflowSpec, search_path: Path | None) -> str | None:
    if ref in BUILTIN_TOOLS:
        if ref in LIBRARY_TOOLS and spec.library is None:
            return f"tool {ref!r} needs a library: set 'library:' to a folder of papers (e.g. 'library: library')"
        return None
    if not is_import_path(ref):
        close = difflib.get_close_matches(ref, BUILTIN_TOOLS, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return (
            f"unknown tool {ref!r}{hint} A tool is a built-in ({', '.join(BUILTIN_TOOLS)}) "
            "or an import path such as 'my_tools:word_count'"
        )
    try:
        resolve_tool(ref, library=None, search_path=search_path)
    except SpecError as exc:
        return "; ".join(problem.message for problem in exc.problems)
    return None


def step_reference_problems(spec: WorkflowSpec, search_path: Path | None) -> list[tuple[str, str]]:
    """``(field path, message)`` for each tool a step names that does not exist, each function that
    cannot be imported or is not callable, and each unknown type in a function step's `output`.

    Args:
        spec: The workflow.
        search_path: The workflow file's folder (searched first for import paths); None: not searched.
    """
    problems: list[tuple[str, str]] = []
    for step_id, step in spec.steps.items():
        prefix = f"steps.{step_id}"
        if step.tool is not None and (message := _tool_problem(step.tool, spec, search_path)) is not None:
            problems.append((f"{prefix}.tool", message))
        if step.function is not None:
            try:
                value = import_object(step.function, search_path)
            except ImportPathError as exc:
                problems.append((f"{prefix}.function", str(exc)))
            else:
                if not callable(value):
                    kind = type(value).__name__
                    problems.append((f"{prefix}.function", f"{step.function!r} is a {kind}, not a function"))
        for name, field in (step.output or {}).items():
            try:
                field_definition(field)
            except ValueError as exc:
                problems.append((f"{prefix}.output.{name}", str(exc)))
    return problems


def step_reference_check(search_path: Path | None) -> Callable[[WorkflowSpec], Iterable[tuple[str, str]]]:
    """`step_reference_problems` as a loader check (`workflows.loader.Check`) for a workflow in `search_path`."""
    return lambda spec: step_reference_problems(spec, search_path)
