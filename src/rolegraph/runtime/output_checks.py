"""A workflow's ``checks:`` made into `OutputCheck`s, and their load-time problems.

`check_entries` gives the checks a step's answers must pass: its role's, then its
own. `build_check` makes one (a function imported as function steps are, a judge on
a model the executor resolves, the moderation endpoint as a model the executor
resolves too, so a replay can stand in for it). `check_problems` is the
loader's check of them, so `rolegraph validate` reports a check that cannot be
built at its line: an import path that does not import, a judge's unknown model,
``moderation`` without a key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from rolegraph.agents.guardrails import (
    Blocklist,
    FunctionCheck,
    JudgeCheck,
    MaxLength,
    ModerationCheck,
    NoPII,
    OutputCheck,
)
from rolegraph.imports import ImportPathError, import_object
from rolegraph.models.keys import api_key, can_prompt
from rolegraph.models.model import Model, ModelSettings
from rolegraph.models.moderation import MODERATION_KEY_ENV
from rolegraph.models.registry import model_string_problem
from rolegraph.workflows.spec import CheckSpec, ModerationSpec, WorkflowSpec

__all__ = ["JudgeResolver", "ModerationResolver", "build_check", "check_entries", "check_problems"]

JudgeResolver = Callable[[str], tuple[Model, ModelSettings, bool]]
"""Gives a judge's model, its settings and whether the call cache is on for it, from its `model`
(a name from `models` or a model string)."""
ModerationResolver = Callable[[ModerationSpec], tuple[Model, bool]]
"""Gives the moderation check's classifier model, and whether the call cache is on for it."""


def check_entries(spec: WorkflowSpec, step_id: str) -> list[tuple[str, CheckSpec]]:
    """``(field path, check)`` for every check a step's answers must pass: its role's, then its own."""
    step = spec.steps[step_id]
    role = spec.roles.get(step.role) if step.role is not None else None
    if not step.checks and (role is None or not role.checks):
        return []  # most steps: every run asks for every step's checks
    entries: list[tuple[str, CheckSpec]] = []
    if role is not None and role.checks:
        entries += [(f"roles.{step.role}.checks[{i}]", c) for i, c in enumerate(role.checks)]
    entries += [(f"steps.{step_id}.checks[{i}]", c) for i, c in enumerate(step.checks or ())]
    return entries


def build_check(
    entry: CheckSpec, *, search_path: Path | None, judge: JudgeResolver, moderation: ModerationResolver
) -> OutputCheck:
    """The check `entry` describes.

    Args:
        entry: The check.
        search_path: The workflow file's folder (searched first for a function's import path).
        judge: Resolves a judge's model.
        moderation: Resolves the moderation endpoint's model (the caller closes it).

    Raises:
        ImportPathError: A function's import path cannot be imported.
        TypeError: It names something that is not callable.
        ModelNotAvailableError: A judge's model, or the moderation endpoint's key, is not available.
    """
    if entry.function is not None:
        fn = import_object(entry.function, search_path)
        if not callable(fn):
            raise TypeError(f"{entry.function!r} is a {type(fn).__name__}, not a function")
        return FunctionCheck(entry.function, fn)
    if entry.blocklist is not None:
        return Blocklist(entry.blocklist)
    if entry.max_length is not None:
        return MaxLength(entry.max_length)
    if entry.judge is not None:
        model, settings, cached = judge(entry.judge.model)
        return JudgeCheck(model, entry.judge.prompt, settings, cache=cached)
    if entry.moderation is not None:
        classifier, cached = moderation(entry.moderation)
        return ModerationCheck(classifier, cache=cached)
    return NoPII()


def _all_entries(spec: WorkflowSpec) -> Iterator[tuple[str, CheckSpec]]:
    for name, role in spec.roles.items():
        yield from ((f"roles.{name}.checks[{i}]", c) for i, c in enumerate(role.checks or ()))
    for step_id, step in spec.steps.items():
        yield from ((f"steps.{step_id}.checks[{i}]", c) for i, c in enumerate(step.checks or ()))


def check_problems(spec: WorkflowSpec, search_path: Path | None) -> Iterator[tuple[str, str]]:
    """``(field path, message)`` for each check that could not be built when the run starts."""
    for path, entry in _all_entries(spec):
        if entry.function is not None:
            try:
                fn = import_object(entry.function, search_path)
            except ImportPathError as exc:
                yield path, str(exc)
                continue
            if not callable(fn):
                yield path, f"{entry.function!r} is a {type(fn).__name__}, not a function"
        elif entry.judge is not None:
            model = entry.judge.model
            if model not in spec.models:
                problem = model_string_problem(model)
                if problem is not None:
                    yield f"{path}.judge.model", f"{problem} (name a model under 'models:' or give a model string)"
        elif entry.moderation is not None and entry.moderation.base_url is None:
            if api_key(MODERATION_KEY_ENV, required=False, purpose="the moderation check") is None and not can_prompt():
                yield (
                    path,
                    f"the moderation check calls OpenAI's moderation endpoint, which needs an API key: set "
                    f"{MODERATION_KEY_ENV} (or give 'moderation: {{base_url: ...}}' for a compatible server)",
                )
