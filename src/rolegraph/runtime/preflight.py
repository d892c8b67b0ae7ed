"""What a run would trip on before its first step, checked when a workflow is loaded.

The format (`rolegraph.workflows`) knows no tools, libraries or model files; the
engine brings these checks to the loader, which reports each at its file:line:col
(so `rolegraph validate` shows them, not a failed run):

- every tool of every role a step uses resolves: a built-in (a library tool needs a
  ``library:``), or an import path that imports and is a tool (``my_tools.glossary``
  is refused with ``did you mean 'my_tools:glossary'?``); no two share a name;
- the ``library:`` folder exists;
- tool and function steps name tools and functions that exist (`rolegraph.runtime.steps.refs`);
- every output check can be built: its function imports, its judge's model is known, ``moderation``
  has a key (`rolegraph.runtime.output_checks`);
- under ``settings.privacy: local_only``, no hosted model and no web tool (`rolegraph.runtime.privacy`).

With ``machine=True`` (`rolegraph validate`), also what depends on this machine and
could be changed at run time by ``--model``: the files of ``llamacpp:`` and
``scripted:`` models, the embedded model's package, and the library's notes.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from rolegraph.errors import LibraryError, ModelNotAvailableError, SpecError
from rolegraph.runtime.output_checks import check_problems
from rolegraph.runtime.privacy import privacy_problems
from rolegraph.runtime.steps.refs import LIBRARY_TOOLS, role_tool_refs, step_reference_check
from rolegraph.tools.library import Library
from rolegraph.tools.registry import BUILTIN_TOOLS, resolve_tool
from rolegraph.workflows.spec import ModelSpec, Privacy, WorkflowSpec

__all__ = ["run_checks"]

Check = Callable[[WorkflowSpec], Iterable[tuple[str, str]]]


def run_checks(base_dir: Path, *, machine: bool = False, privacy: Privacy | None = None) -> list[Check]:
    """The loader checks (`rolegraph.workflows.loader.Check`) of what a run of a workflow in `base_dir` needs.

    Args:
        base_dir: The workflow file's folder (tools, functions, libraries and model files are found from it).
        machine: Also check model files and packages and the library's notes (see the module docstring).
        privacy: ``local_only`` refuses hosted models and web tools whatever the file's ``settings.privacy``
            (`rolegraph.runtime.privacy`); None: as the file says.
    """
    checks: list[Check] = [
        step_reference_check(base_dir),
        lambda spec: _role_tool_problems(spec, base_dir),
        lambda spec: _library_problems(spec, base_dir, notes=machine),
        lambda spec: privacy_problems(spec, privacy),
        lambda spec: check_problems(spec, base_dir),
    ]
    if machine:
        checks.append(lambda spec: _model_problems(spec, base_dir))
    return checks


def _role_tool_problems(spec: WorkflowSpec, base_dir: Path) -> Iterator[tuple[str, str]]:
    owners: dict[str, str] = {}
    for path, ref in role_tool_refs(spec):
        if ref in BUILTIN_TOOLS:
            if ref in LIBRARY_TOOLS and spec.library is None:
                where = "" if ".tools[" in path else f"role {spec.steps[path.split('.')[1]].role!r} uses "
                yield (
                    path,
                    (
                        f"{where}tool {ref!r}, which needs a library: set 'library:' to a folder of notes "
                        "(e.g. 'library: library', next to the workflow file)"
                    ),
                )
            name = ref
        else:
            try:
                name = resolve_tool(ref, library=None, search_path=base_dir).name
            except SpecError as exc:
                yield path, "; ".join(problem.message for problem in exc.problems)
                continue
        if owners.setdefault(name, ref) != ref:
            yield (
                path,
                (
                    f"tools {owners[name]!r} and {ref!r} are both named {name!r}; tool names must be unique: "
                    "rename one (for a function, with @tool(name=...))"
                ),
            )


def _library_problems(spec: WorkflowSpec, base_dir: Path, *, notes: bool) -> Iterator[tuple[str, str]]:
    if spec.library is None:
        return
    folder = base_dir / spec.library
    if not folder.is_dir():
        yield (
            "library",
            (
                f"library folder {spec.library!r} does not exist (looked for {folder.resolve()}); "
                "create it with your notes (*.md), or give the folder's path relative to the workflow file"
            ),
        )
        return
    if not notes:
        return
    try:
        Library.from_dir(folder).close()  # indexes the folder into the index the run will use
    except LibraryError as exc:
        for problem in exc.problems:
            yield "library", f"library {problem}"


def _model_strings(spec: WorkflowSpec) -> Iterator[tuple[str, str]]:
    for name, entry in spec.models.items():
        if isinstance(entry, ModelSpec):
            yield f"models.{name}.model", entry.model
        else:
            yield f"models.{name}", entry
    for users, kind in ((spec.roles, "roles"), (spec.steps, "steps")):
        for name, user in users.items():
            if user.model is not None and user.model not in spec.models:
                yield f"{kind}.{name}.model", user.model


def _model_problems(spec: WorkflowSpec, base_dir: Path) -> Iterator[tuple[str, str]]:
    for name, entry in spec.models.items():
        if isinstance(entry, ModelSpec) and entry.lora is not None:
            adapter = Path(os.path.expanduser(entry.lora))
            adapter = adapter if adapter.is_absolute() else base_dir / adapter
            if not adapter.is_file():
                yield (
                    f"models.{name}.lora",
                    f"LoRA adapter {entry.lora!r} does not exist (looked for {adapter.resolve()}); "
                    "give its path relative to the workflow file",
                )
    for path, string in _model_strings(spec):
        prefix, _, rest = string.strip().partition(":")
        if prefix in ("llamacpp", "scripted") and rest.strip():
            file = Path(os.path.expanduser(rest.strip()))
            file = file if file.is_absolute() else base_dir / file
            if not file.is_file():
                yield (
                    path,
                    (
                        f"model file {rest.strip()!r} does not exist (looked for {file.resolve()}); "
                        "give its path relative to the workflow file"
                    ),
                )
        if prefix in ("llamacpp", "local") and importlib.util.find_spec("llama_cpp") is None:
            yield path, f"{string.strip()!r} needs llama-cpp-python: pip install 'rolegraph[local]' (or uv sync)"
        elif string.strip() == "local":
            from rolegraph.models.local import local_model_path  # finds the file without loading llama.cpp

            try:
                local_model_path()
            except ModelNotAvailableError as exc:
                yield path, str(exc)
