"""Loading workflow files: safe YAML, every problem at once, each at its file:line:col.

Reading a document goes through four stages, each in its own module:
`rolegraph.workflows.reader` composes bounded YAML into plain data that keeps each
field's position; the pydantic schema (`rolegraph.workflows.spec`) validates it,
its errors told by `rolegraph.workflows.messages`; `rolegraph.workflows.checks`
runs the checks that need the whole workflow (roles, models, templates and what
they reference, outputs, the graph). Every problem found is reported together in
one `SpecError`.

`parse_document` gives other YAML documents (eval sets) the same reading: a
`DocumentKind` names the schema and the words its messages use.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from rolegraph.errors import Problem, SpecError
from rolegraph.workflows._gc import paused_gc
from rolegraph.workflows.checks import workflow_findings
from rolegraph.workflows.lint import workflow_warnings
from rolegraph.workflows.messages import MAX_HINTS, hint_budget, salvage, validation_findings
from rolegraph.workflows.reader import (
    MAX_BYTES,
    MAX_DEPTH,
    MAX_NODES,
    MAX_PROBLEMS,
    DocumentKind,
    Finding,
    compose,
    read_bytes,
)
from rolegraph.workflows.spec import WorkflowSpec

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_HINTS",
    "MAX_NODES",
    "MAX_PROBLEMS",
    "WORKFLOW",
    "Check",
    "DocumentKind",
    "ReadSpec",
    "load_document",
    "load_spec",
    "parse_document",
    "parse_spec",
    "read_spec",
    "read_spec_file",
]

M = TypeVar("M", bound=BaseModel)

Check = Callable[[M], Iterable[tuple[str, str]]]
"""A check of a validated document: yields ``(field path, message)`` for each problem it finds."""

_MISSING_HINTS = {
    "rolegraph": "put 'rolegraph: 1' (the format version) at the top of the file",
    "name": "give the workflow a name, e.g. 'name: literature_review'",
    "steps": "add 'steps:' with at least one step",
    "role": "say which role does the step, e.g. 'role: researcher'",
    "task": "add 'task: ...', what the step should do (a Jinja template)",
    "max_times": "every route needs a bound: add 'max_times: <n>', how often it may fire",
    "goto": "add 'goto: <step>', the step to run again",
    "when": "add 'when: <condition>', e.g. when: output.verdict == 'revise'",
    "items": "add 'items: <expression giving a list>', e.g. items: steps.plan.questions",
    "model": "add 'model: <model string>', e.g. model: openai:gpt-4o-mini",
    "path": "add 'path: <file name>' inside the run folder",
    "render": "add 'render: report' (or json, sources, bibtex, template)",
}


def _step_stub(step: Any) -> dict[str, Any]:
    """A valid step standing in for a broken one: it keeps the step's place in the graph."""
    stub: dict[str, Any] = {"role": "writer", "task": "-"}
    if isinstance(step, dict) and "depends_on" in step:
        stub["depends_on"] = step["depends_on"]  # dropped in turn if it is what is broken
    return stub


_STUBS: dict[str, Callable[[Any], Any]] = {
    "rolegraph": lambda _: 1,
    "name": lambda _: "workflow",
    "steps[]": _step_stub,
    "roles[]": lambda _: {},  # so that the steps of a broken role do not also name an unknown role
    "models[]": lambda _: "local",
    "inputs[]": lambda _: {},
}
WORKFLOW: DocumentKind[WorkflowSpec] = DocumentKind(
    "workflow", WorkflowSpec, "rolegraph", "rolegraph, name, steps, ...", _MISSING_HINTS, _STUBS
)
"""The workflow document kind."""


def load_document(path: Path, kind: DocumentKind[M], checks: Sequence[Check[M]] = ()) -> M:
    """Read at most `MAX_BYTES` of `path` and `parse_document` it.

    Raises:
        SpecError: The file cannot be read or is invalid; holds every problem found.
    """
    return parse_document(read_bytes(path, kind.noun), kind, path, checks)


def parse_document(
    text: str | bytes, kind: DocumentKind[M], file: Path | None = None, checks: Sequence[Check[M]] = ()
) -> M:
    """Parse a YAML document safely into `kind.model`, then run `checks` on it.

    The same bounded, position-keeping reading as workflows: every schema error and
    every problem a check yields is reported at its file:line:col.

    Raises:
        SpecError: Every problem found, each with file, line, column, field path and what to do.
    """
    with hint_budget(), paused_gc():
        return _parse_document(text, kind, file, checks)


def _parse_document(text: str | bytes, kind: DocumentKind[M], file: Path | None, checks: Sequence[Check[M]]) -> M:
    # Apart from `parse_document`, so that the reading's temporaries are freed before the collector runs again.
    document, data = compose(text, file, kind)
    try:
        value = kind.model.model_validate(data)
    except ValidationError as exc:
        document.add_findings(validation_findings(exc.errors(include_url=False), data, kind), document.replaced)
        raise SpecError(document.sorted_problems()) from None
    document.add_findings(_check_findings(checks, value))
    if document.has_problems():
        raise SpecError(document.sorted_problems())
    return value


def _check_findings(checks: Sequence[Check[M]], value: M) -> Iterable[Finding]:
    return (Finding(path, message) for check in checks for path, message in check(value))


@dataclass(frozen=True)
class ReadSpec:
    """A valid workflow document and its warnings."""

    spec: WorkflowSpec
    """The workflow."""
    warnings: list[Problem]
    """What is valid but probably not meant (`rolegraph.workflows.lint`), each at its file:line:col."""
    sha256: str | None = None
    """The SHA-256 of the bytes the document was read from, in hex (`read_spec_file`; None: not read from a file)."""


def load_spec(path: Path, checks: Sequence[Check[WorkflowSpec]] = ()) -> WorkflowSpec:
    """Load and validate a workflow file (see `parse_spec`).

    Raises:
        SpecError: The file cannot be read or is invalid; holds every problem found.
    """
    return read_spec_file(path, checks).spec


def read_spec_file(path: Path, checks: Sequence[Check[WorkflowSpec]] = ()) -> ReadSpec:
    """`load_spec`, with the warnings of the valid document.

    Raises:
        SpecError: The file cannot be read or is invalid; holds every problem found.
    """
    data = read_bytes(path, "workflow")
    return replace(read_spec(data, path, checks), sha256=hashlib.sha256(data).hexdigest())


def read_spec(text: str | bytes, file: Path | None = None, checks: Sequence[Check[WorkflowSpec]] = ()) -> ReadSpec:
    """`parse_spec`, with the warnings of the valid document.

    Raises:
        SpecError: Every problem found, each with file, line, column, field path and what to do.
    """
    with hint_budget(), paused_gc():
        return _parse_spec(text, file, checks)


def parse_spec(text: str | bytes, file: Path | None = None, checks: Sequence[Check[WorkflowSpec]] = ()) -> WorkflowSpec:
    """Parse and validate a workflow document.

    Args:
        text: The YAML, as text or UTF-8 bytes.
        file: Where it came from, for the positions of problems.
        checks: More checks of the valid document, each yielding ``(field path, message)`` (the
            engine's: tools and functions the steps name exist), reported like the loader's own.

    Raises:
        SpecError: Every problem found, each with file, line, column, field path and what to do.
    """
    return read_spec(text, file, checks).spec


def _parse_spec(text: str | bytes, file: Path | None, checks: Sequence[Check[WorkflowSpec]]) -> ReadSpec:
    # Apart from `parse_spec`, so that the reading's temporaries (nodes, positions, data) are freed on
    # return, before the paused collector runs again and would walk them all.
    document, data = compose(text, file, WORKFLOW)
    try:
        spec = WorkflowSpec.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        document.add_findings(validation_findings(errors, data, WORKFLOW), document.replaced)
        salvaged = salvage(data, errors, WORKFLOW)  # check the rest of the document too: one reading, every problem
        hidden = [*salvaged.altered, *document.replaced]
        if salvaged.value is not None:
            document.add_findings(workflow_findings(salvaged.value), hidden)
            document.add_findings(_check_findings(checks, salvaged.value), hidden)
        raise SpecError(document.sorted_problems()) from None
    document.add_findings(workflow_findings(spec))
    document.add_findings(_check_findings(checks, spec))
    if document.has_problems():
        raise SpecError(document.sorted_problems())
    warnings = sorted(map(document.place, workflow_warnings(spec)), key=lambda p: (p.line or 0, p.column or 0))
    return ReadSpec(spec, warnings)
