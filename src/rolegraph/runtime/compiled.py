"""A workflow compiled for running: its spec, step graph and resolved roles, and its inputs' rules.

`CompiledWorkflow` is what the engine (`rolegraph.runtime.invoke`) runs; the
user's handle, `rolegraph.Workflow`, adds ``run``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import networkx as nx

from rolegraph.agents.roles import Role
from rolegraph.errors import Problem, SpecError
from rolegraph.runtime.executor import resolve_roles
from rolegraph.runtime.preflight import run_checks
from rolegraph.runtime.run_info import file_hash as hash_file
from rolegraph.tools.library import Library
from rolegraph.tools.registry import resolve_tools
from rolegraph.tools.tool import Tool
from rolegraph.workflows.graph import compile_graph
from rolegraph.workflows.loader import read_spec_file
from rolegraph.workflows.spec import InputSpec, Privacy, WorkflowSpec

__all__ = ["CompiledWorkflow", "workflow_tools"]


class CompiledWorkflow:
    """A loaded, validated workflow: spec, graph and roles, computed once for any number of runs.

    Args:
        spec: The validated workflow.
        path: The file it was loaded from (None for a workflow built in Python).
        warnings: The loader's warnings about it.
        graph_checked: The loader has already validated its graph (`validate_graph`), so compiling it
            does not check it again.
        file_hash: The SHA-256 of the file's bytes that `spec` was read from (`load` gives it); None: the
            file's bytes now.
    """

    def __init__(
        self,
        spec: WorkflowSpec,
        path: Path | None = None,
        warnings: list[Problem] | None = None,
        *,
        graph_checked: bool = False,
        file_hash: str | None = None,
    ) -> None:
        self.spec = spec
        self.path = path
        self.file = str(path.resolve()) if path else None
        """The file's absolute path, as each run records it (resolved now: a later change of the working
        directory does not move it)."""
        self.file_hash = file_hash or (hash_file(path) if path else None)
        """The SHA-256 of the content that runs (a resume refuses a file that changed since): of the bytes
        loaded, not of the file as it is when a run starts, which may have been edited since."""
        self.warnings: list[Problem] = list(warnings or [])
        """What is valid but probably not meant (`rolegraph.workflows.lint`), at file:line."""
        self.base_dir = path.absolute().parent if path else Path.cwd()  # not moved by a change of directory
        self.graph: nx.DiGraph[str] = compile_graph(spec, checked=graph_checked)
        self.roles: dict[str, Role] = resolve_roles(spec)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, machine: bool = False, privacy: Privacy | None = None) -> Self:
        """Load and validate a workflow file, with what a run of it needs (`rolegraph.runtime.preflight`):
        the tools its roles and steps name, the functions, the library folder.

        Args:
            path: The workflow file.
            machine: Also check what depends on this machine and ``--model`` could change: model
                files and packages, the library's notes (what `rolegraph validate` checks).
            privacy: ``local_only`` applies ``settings.privacy: local_only`` whatever the file says
                (`rolegraph.runtime.privacy`); None: as the file says.

        Raises:
            SpecError: The file is invalid (every problem, with file:line:col).
        """
        file = Path(path)
        read = read_spec_file(file, run_checks(file.parent, machine=machine, privacy=privacy))
        spec = read.spec
        if privacy is not None and privacy != spec.settings.privacy:
            spec = spec.model_copy(update={"settings": spec.settings.model_copy(update={"privacy": privacy})})
        # The loader's checks validated the graph; the hash is of the bytes it parsed.
        return cls(spec, file, read.warnings, graph_checked=True, file_hash=read.sha256)

    def resolve_inputs(self, inputs: Mapping[str, Any] | None) -> dict[str, Any]:
        """Inputs with defaults filled in and values converted to their declared types.

        Raises:
            SpecError: An input is unknown, missing or of the wrong type (every problem at once).
        """
        given = dict(inputs or {})
        problems = [
            Problem(f"unknown input {name!r}; the workflow's inputs are: {', '.join(self.spec.inputs) or 'none'}")
            for name in given
            if name not in self.spec.inputs
        ]
        values: dict[str, Any] = {}
        for name, spec in self.spec.inputs.items():
            if name in given:
                try:
                    values[name] = _coerce(name, spec, given[name])
                except SpecError as exc:
                    problems += exc.problems
                    continue
                problems += _not_text(name, values[name])
            elif spec.default is not None:
                values[name] = spec.default
            else:
                problems.append(Problem(f"input {name!r} is required (pass --input {name}=...)"))
        if problems:
            raise SpecError(problems)
        return values

    def library(self) -> Library | None:
        """The workflow's library of papers, if it names one."""
        return _library(self.spec, self.base_dir)

    def tool_refs(self) -> list[str]:
        """Every tool reference any of the workflow's roles or tool steps uses, sorted."""
        return _tool_refs(self.spec, self.roles)

    def tools(self) -> dict[str, Tool[Any]]:
        """A new instance of every tool the workflow uses, by reference (see `workflow_tools`)."""
        return workflow_tools(self.spec, self.roles, self.base_dir)


def workflow_tools(spec: WorkflowSpec, roles: Mapping[str, Role], base_dir: Path) -> dict[str, Tool[Any]]:
    """A new instance of every tool a workflow's roles and tool steps use, by reference, sorted: how a run
    builds its tools, in this process or on a worker of a cluster.

    Raises:
        SpecError: A tool reference cannot be resolved.
    """
    refs = _tool_refs(spec, roles)
    if not refs:  # nothing to import (resolving puts the folder on the search path and clears import caches)
        return {}
    tools = resolve_tools(refs, library=_library(spec, base_dir), search_path=base_dir)
    return dict(zip(refs, tools, strict=True))


def _library(spec: WorkflowSpec, base_dir: Path) -> Library | None:
    return Library.from_dir(base_dir / spec.library) if spec.library is not None else None


def _tool_refs(spec: WorkflowSpec, roles: Mapping[str, Role]) -> list[str]:
    steps = {step.tool for step in spec.steps.values() if step.tool is not None}
    return sorted({ref for role in roles.values() for ref in role.tools} | steps)


def _coerce(name: str, spec: InputSpec, value: Any) -> Any:
    """Convert a (command-line string) input value to its declared type."""
    try:
        if spec.type == "integer":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)  # int() would silently truncate 2.5 to 2, or read True as 1
            return int(value)
        if spec.type == "number":
            return float(value)
        if spec.type == "boolean":
            if isinstance(value, bool):
                return value
            lowered = str(value).lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return lowered in ("true", "1", "yes")
        if spec.type == "list":
            if isinstance(value, list):
                return value
            parsed = json.loads(value) if str(value).startswith("[") else [v.strip() for v in str(value).split(",")]
            return list(parsed)
        return str(value)
    except (ValueError, TypeError) as exc:
        article = "an" if spec.type == "integer" else "a"
        problem = Problem(f"input {name!r} must be {article} {spec.type}, got {value!r}", path=f"inputs.{name}")
        raise SpecError([problem]) from exc


def _not_text(name: str, value: Any) -> list[Problem]:
    """A problem for an input holding text that cannot be written as UTF-8 (a lone surrogate: on the command
    line, bytes that are not UTF-8 arrive as one): a mistake in what was passed, refused before the run starts
    (a step's output holding one is kept as it is); none if it is all text."""
    for text in _strings(value):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            bad = text[exc.start]
            message = (
                f"input {name!r} is not valid text: {bad!r} at position {exc.start} is a lone surrogate "
                "(bytes that are not UTF-8); pass UTF-8 text"
            )
            return [Problem(message, path=f"inputs.{name}")]
    return []


def _strings(value: Any) -> list[str]:
    """Every string in a list or mapping, keys included, at any depth."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in (*_strings(key), *_strings(item))]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []
