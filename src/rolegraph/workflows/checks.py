"""Checks of a whole workflow, past its schema: roles, models, templates and what they reference, outputs.

Each check yields `Finding`s by field path; the loader places them in the file.
The graph's own checks (cycles, unknown steps, routes) are in
`rolegraph.workflows.graph`.
"""

from __future__ import annotations

import difflib
import posixpath

import networkx as nx

from rolegraph.agents.roles import BUILTIN_ROLE_NAMES, field_definition
from rolegraph.models.registry import model_string_problem
from rolegraph.workflows import templates
from rolegraph.workflows.context import TemplateUse, workflow_templates
from rolegraph.workflows.graph import dependency_graph, validate_graph
from rolegraph.workflows.messages import suggest
from rolegraph.workflows.reader import Finding
from rolegraph.workflows.spec import WorkflowSpec

__all__ = ["workflow_findings"]


def workflow_findings(spec: WorkflowSpec) -> list[Finding]:
    """Every problem of a schema-valid workflow that its schema cannot see."""
    data = dependency_graph(spec)
    findings = [*_role_findings(spec), *_model_findings(spec), *_template_findings(spec, data)]
    findings += _output_findings(spec)
    return findings + [Finding(p.path, p.message) for p in validate_graph(spec, data)]


def _is_model_string(text: str) -> bool:
    return ":" in text or text == "local"


def _role_findings(spec: WorkflowSpec) -> list[Finding]:
    findings: list[Finding] = []
    known = BUILTIN_ROLE_NAMES | spec.roles.keys()
    builtins = ", ".join(sorted(BUILTIN_ROLE_NAMES))
    for step_id, step in spec.steps.items():
        if step.role is not None and not step.task.strip():
            absent = "task" not in step.model_fields_set
            problem = "missing required key 'task'" if absent else "'task' is empty"
            hint = "add 'task: ...', what the step should do (a Jinja template)"
            findings.append(Finding(f"steps.{step_id}.task", f"{problem}: {hint}"))
        if step.role is not None and step.role not in known:
            message = (
                f"unknown role {step.role!r}; define it under 'roles:' or use a built-in role ({builtins})"
                f"{suggest(step.role, known)}"
            )
            findings.append(Finding(f"steps.{step_id}.role", message))
    for name, role in spec.roles.items():
        if name not in BUILTIN_ROLE_NAMES:
            missing = [field for field in ("instructions", "output") if getattr(role, field) is None]
            if missing:
                close = difflib.get_close_matches(name, BUILTIN_ROLE_NAMES, n=1, cutoff=0.6)
                also = f" (to change the built-in role {close[0]!r}, use that name)" if close else ""
                needs = " and ".join(repr(m) for m in missing)
                message = f"role {name!r} is not built in, so it needs {needs}{also}"
                findings.append(Finding(f"roles.{name}", message, at_key=True))
        for output_field, field in (role.output or {}).items():
            try:
                field_definition(field)
            except ValueError as exc:
                findings.append(Finding(f"roles.{name}.output.{output_field}", str(exc)))
    return findings


def _model_findings(spec: WorkflowSpec) -> list[Finding]:
    findings: list[Finding] = []
    if "default" not in spec.models:
        message = (
            "'models' has no 'default' entry, used by every role without its own model; "
            "add 'default: local' (or another model string)"
        )
        findings.append(Finding("models", message, at_key=True))
    for name, entry in spec.models.items():
        text, path = (entry, f"models.{name}") if isinstance(entry, str) else (entry.model, f"models.{name}.model")
        if not _is_model_string(text):
            message = (
                f"{text!r} is not a model string; write '<provider>:<model>' "
                f"(e.g. 'openai:gpt-4o-mini', 'ollama:qwen2.5:7b') or 'local'{suggest(text, ['local'])}"
            )
            findings.append(Finding(path, message))
        elif (problem := model_string_problem(text)) is not None:
            findings.append(Finding(path, problem))
    users = [(f"roles.{n}.model", r.model) for n, r in spec.roles.items()]
    users += [(f"steps.{n}.model", s.model) for n, s in spec.steps.items()]
    for path, model in users:
        if model is None or model in spec.models:
            continue
        if not _is_model_string(model):
            message = (
                f"unknown model {model!r}; name one defined under 'models:' or give a model string such as "
                f"'openai:gpt-4o-mini'{suggest(model, spec.models)}"
            )
            findings.append(Finding(path, message))
        elif (problem := model_string_problem(model)) is not None:
            findings.append(Finding(path, problem))
    return findings


class _Upstream:
    """The steps upstream of one step (all steps for an output), for ``in`` tests.

    Most references name a direct dependency, so the ancestors are computed only
    when one does not: computing them for every step made loading a chain of n
    steps take O(n²) time.
    """

    def __init__(self, data: nx.DiGraph[str], step: str | None) -> None:
        self._data = data
        self._step = step
        self._ancestors: set[str] | None = None

    def __contains__(self, name: str) -> bool:
        if self._step is None:
            return name in self._data
        if self._data.has_edge(name, self._step):
            return True
        if self._ancestors is None:
            self._ancestors = nx.ancestors(self._data, self._step)
        return name in self._ancestors


def _template_findings(spec: WorkflowSpec, data: nx.DiGraph[str]) -> list[Finding]:
    findings: list[Finding] = []
    upstream: dict[str | None, _Upstream] = {}
    for use in workflow_templates(spec):
        if use.expression and (braced := _braced(use)) is not None:
            findings.append(braced)
            continue
        check = templates.check_expression if use.expression else templates.check_template
        issue = check(use.text)
        if issue is not None:
            message = f"{use.what} is not valid Jinja: {issue.message}"
            findings.append(Finding(use.path, message, text_line=issue.line))
        else:
            if use.step not in upstream:
                upstream[use.step] = _Upstream(data, use.step)
            findings += _reference_findings(spec, use, upstream[use.step])
    return findings


def _braced(use: TemplateUse) -> Finding | None:
    """An expression written as a template (``items: "{{ steps.plan.questions }}"``): say to drop the braces."""
    text = use.text.strip()
    if not (text.startswith("{{") and text.endswith("}}")):
        return None
    key = use.path.rsplit(".", 1)[-1]
    inner = text[2:-2].strip()
    message = f"{key} is an expression, not a template: drop the {{{{ }}}} (write {key}: {inner})"
    return Finding(use.path, message)


def _reference_findings(spec: WorkflowSpec, use: TemplateUse, upstream: _Upstream) -> list[Finding]:
    path, what, names = use.path, use.what, use.names
    findings = [
        Finding(
            path,
            f"{what} uses {name!r}, which is not defined here (available: {', '.join(sorted(names))})"
            f"{suggest(name, names)}",
        )
        for name in sorted(templates.undeclared_names(use.text, expression=use.expression) - names)
    ]
    for kind, name in sorted(templates.referenced_names(use.text, expression=use.expression)):
        message = None
        if kind == "inputs" and name not in spec.inputs:
            message = f"references inputs.{name} but the workflow declares no input {name!r}"
            message += f"; add it under 'inputs:'{suggest(name, spec.inputs)}"
        elif kind == "steps" and name not in spec.steps:
            message = f"references steps.{name} but there is no step {name!r}{suggest(name, spec.steps)}"
        elif kind == "steps" and name == use.step:
            message = f"references steps.{name}, its own step"
            message += "; use 'output' for this step's own output" if "output" in names else ""
        elif kind == "steps" and name not in upstream:
            message = f"references steps.{name} but {name!r} is not in depends_on; add it to depends_on of {use.step!r}"
        if message is not None:
            findings.append(Finding(path, f"{what} {message}"))
    return findings


def _output_findings(spec: WorkflowSpec) -> list[Finding]:
    findings = [
        Finding(f"outputs.{name}.from", f"output comes from unknown step {out.from_!r}{suggest(out.from_, spec.steps)}")
        for name, out in spec.outputs.items()
        if out.from_ is not None and out.from_ not in spec.steps
    ]
    # Caught here, not only when the run writes its outputs: by then every step's work would be done.
    findings += [
        Finding(f"outputs.{name}.path", f"path {out.path!r} leaves the run folder; use a relative path inside it")
        for name, out in spec.outputs.items()
        if posixpath.isabs(out.path) or posixpath.normpath(out.path).split("/")[0] == ".."
    ]
    return findings
