"""``settings.privacy: local_only``: a workflow whose content may not leave this machine.

The course's data-privacy point, made a switch. Under ``local_only`` (in the file, or
forced with ``--privacy local_only`` / ``rolegraph.load(path, privacy="local_only")``)
loading refuses, each at its line:

- every model entry or model string that is hosted (`rolegraph.models.locality` says what
  counts as local: embedded models, and servers on a loopback address);
- every built-in web tool a role or tool step uses (`rolegraph.tools.registry.WEB_TOOLS`:
  the web, the browser, the scholarly APIs); the library tools stay;
- an output check that sends the answer elsewhere: a judge on a hosted model, ``moderation``
  against a hosted endpoint.

A run's model override (``--model``, ``run(model=...)``) is checked when the run starts
(`override_problem`). Tools and functions named by import path are the user's own code:
what they send where is not known here, and they are not refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from rolegraph.errors import Problem
from rolegraph.models.locality import hosted_destination, is_loopback_url
from rolegraph.runtime.steps.refs import role_tool_refs
from rolegraph.tools.registry import WEB_TOOLS
from rolegraph.workflows.spec import ModelSpec, Privacy, WorkflowSpec

__all__ = ["LOCAL_MODELS_HINT", "model_refusal", "override_problem", "privacy_problems"]

LOCAL_MODELS_HINT = (
    "use 'local', 'llamacpp:<file.gguf>', or a server on this machine "
    "('ollama:<model>' with Ollama on 127.0.0.1, 'openai-compatible:<model>@http://127.0.0.1:<port>/v1')"
)
"""What a refused hosted model is told to use instead."""


def _why(spec: WorkflowSpec, forced: Privacy | None) -> str:
    if spec.settings.privacy == "local_only":
        return "settings.privacy is local_only"
    return "privacy is local_only (--privacy)" if forced == "local_only" else ""


def model_refusal(string: str, base_url: str | None, why: str) -> str | None:
    """The message refusing the model `string` under `why`, or None when it is local."""
    where = hosted_destination(string, base_url)
    if where is None:
        return None
    return f"{why}, so model {string.strip()!r} cannot be used: it sends the workflow's content to {where}; " + (
        LOCAL_MODELS_HINT
    )


def _model_entries(spec: WorkflowSpec) -> Iterator[tuple[str, str, str | None]]:
    """``(field path, model string, base_url)`` for every model entry and every model string roles and steps name."""
    for name, entry in spec.models.items():
        if isinstance(entry, ModelSpec):
            yield f"models.{name}.model", entry.model, entry.base_url
        else:
            yield f"models.{name}", entry, None
    for users, kind in ((spec.roles, "roles"), (spec.steps, "steps")):
        for name, user in users.items():
            if user.model is not None and user.model not in spec.models:
                yield f"{kind}.{name}.model", user.model, None


def privacy_problems(spec: WorkflowSpec, forced: Privacy | None = None) -> list[tuple[str, str]]:
    """``(field path, message)`` for each hosted model and web tool a ``local_only`` workflow names.

    Args:
        spec: The workflow.
        forced: ``local_only`` applies the rule whatever the file's ``settings.privacy`` says.
    """
    why = _why(spec, forced)
    if not why:
        return []
    problems = [
        (path, message)
        for path, string, base_url in _model_entries(spec)
        if (message := model_refusal(string, base_url, why)) is not None
    ]
    problems += _check_refusals(spec, why)
    tools = [*role_tool_refs(spec)]
    tools += [(f"steps.{step_id}.tool", step.tool) for step_id, step in spec.steps.items() if step.tool is not None]
    for path, ref in tools:
        if ref in WEB_TOOLS:
            message = (
                f"{why}, so tool {ref!r} cannot be used: it sends requests off this machine; remove it "
                "(library_search and read_document stay on this machine)"
            )
            problems.append((path, message))
    return problems


def _check_refusals(spec: WorkflowSpec, why: str) -> list[tuple[str, str]]:
    """A judge on a hosted model, and ``moderation`` off this machine, under ``local_only``."""
    entries = [(f"roles.{n}", r.checks) for n, r in spec.roles.items()]
    entries += [(f"steps.{n}", s.checks) for n, s in spec.steps.items()]
    problems: list[tuple[str, str]] = []
    for owner, checks in entries:
        for index, check in enumerate(checks or ()):
            path = f"{owner}.checks[{index}]"
            if check.judge is not None:
                judge = spec.model_spec(check.judge.model)
                message = model_refusal(judge.model, judge.base_url, why)
                if message is not None:
                    problems.append((f"{path}.judge.model", f"the judge: {message}"))
            if check.moderation is not None:
                url = check.moderation.base_url
                if url is None or not is_loopback_url(url):
                    where = url or "OpenAI's moderation endpoint (api.openai.com)"
                    problems.append(
                        (
                            path,
                            f"{why}, so the moderation check cannot be used: it sends each answer to {where}; "
                            "use a judge on a local model, or 'moderation: {base_url: ...}' on 127.0.0.1",
                        )
                    )
    return problems


def override_problem(spec: WorkflowSpec, model: str | None, file: Path | None = None) -> Problem | None:
    """The problem with running a ``local_only`` workflow on the model override `model` (None: no problem).

    Args:
        spec: The workflow (its ``settings.privacy`` already forced, if it was).
        model: The run's ``--model`` / ``model=`` (None: none given).
        file: The workflow's file, for the problem's place.
    """
    if model is None or spec.settings.privacy != "local_only":
        return None
    message = model_refusal(model, None, "settings.privacy is local_only")
    if message is None:
        return None
    return Problem(f"--model / model=: {message}", "settings.privacy", file)
