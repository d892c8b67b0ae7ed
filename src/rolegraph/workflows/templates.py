"""Jinja in one place: rendering tasks, evaluating expressions, checking and inspecting both.

Every template and expression of a workflow (step tasks, ``for_each.items``,
route conditions, output templates) goes through the one sandboxed environment
here. Undefined names are errors (`StrictUndefined`), never silent blanks, and
the sandbox refuses attribute escapes such as ``''.__class__``.

```python
render("Topic: {{ inputs.topic }}", {"inputs": {"topic": "LoRA"}})   # 'Topic: LoRA'
evaluate("output.verdict == 'revise'", {"output": {"verdict": "ok"}})  # False
referenced_names("{{ steps.plan.questions }}", expression=False)      # {('steps', 'plan')}
```
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import StrictUndefined, meta, nodes
from jinja2.parser import Parser
from jinja2.sandbox import SandboxedEnvironment

from rolegraph.errors import RolegraphError

__all__ = [
    "ENV",
    "SyntaxIssue",
    "TemplateError",
    "check_expression",
    "check_template",
    "evaluate",
    "is_plain",
    "referenced_names",
    "render",
    "render_value",
    "undeclared_names",
    "value_templates",
    "wholly_used",
]

_TRACKED = frozenset({"steps", "inputs"})


class TemplateError(RolegraphError):
    """A template or expression could not be rendered or evaluated (missing variable, unsafe access, bad syntax)."""


@dataclass(frozen=True)
class SyntaxIssue:
    """A syntax error in a template or expression.

    Attributes:
        message: Jinja's description of the problem.
        line: 1-based line inside the template text.
    """

    message: str
    line: int


def _tojson(value: Any, indent: int | None = None) -> str:
    """Serialise to JSON as written (no HTML escaping: tasks are prompts, not web pages)."""
    return json.dumps(value, ensure_ascii=False, indent=indent, default=str)


def _bullets(items: Iterable[Any], marker: str = "-") -> str:
    """Render a list as one ``- item`` line per item."""
    if isinstance(items, str | bytes | Mapping):
        items = [items]
    return "\n".join(f"{marker} {item}" for item in items)


def _numbered(items: Iterable[Any]) -> str:
    """Render a list as ``1. item`` lines."""
    if isinstance(items, str | bytes | Mapping):
        items = [items]
    return "\n".join(f"{number}. {item}" for number, item in enumerate(items, start=1))


class _Environment(SandboxedEnvironment):
    """The sandbox, reading mapping keys before attributes.

    Workflow data is JSON, so ``steps.plan.items`` means the field ``items`` of the
    plan's output, not the method ``dict.items`` (which Jinja would find first).
    """

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping):
            try:
                return obj[attribute]
            except (KeyError, TypeError):
                pass
        return super().getattr(obj, attribute)


ENV = _Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
"""The one Jinja environment of rolegraph: sandboxed, strict about undefined names, no autoescaping."""
ENV.filters["tojson"] = _tojson
ENV.filters["bullets"] = _bullets
ENV.filters["numbered"] = _numbered

# Errors a template can raise while rendering on user data (a filter on the wrong type, a division by zero).
_RENDER_ERRORS = (jinja2.TemplateError, TypeError, ValueError, ArithmeticError, LookupError, AttributeError)


# Compiled once per text: a workflow's templates are rendered at every step of every run. Sized for a
# 10,000-step workflow (a chain's steps each have their own texts): a cache smaller than the workflow is
# swept through by every run in the same order, so it would compile every template again (a few KB each).
_COMPILED_CACHE = 16384


@lru_cache(maxsize=_COMPILED_CACHE)
def _template(text: str) -> jinja2.Template:
    return ENV.from_string(text)


@lru_cache(maxsize=_COMPILED_CACHE)
def _expression(text: str) -> Any:
    return ENV.compile_expression(text, undefined_to_none=False)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, jinja2.UndefinedError):
        return f"undefined variable: {exc.message}"
    if isinstance(exc, jinja2.exceptions.SecurityError):
        return f"not allowed in a workflow template: {exc}"
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return f"syntax error on line {exc.lineno}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"


def render(template: str, context: Mapping[str, Any]) -> str:
    """Render a Jinja template over `context`.

    Raises:
        TemplateError: A variable is undefined, an access is unsafe, or the template is invalid.
    """
    if is_plain(template):
        # Nothing for Jinja to do: a step's task is often plain.
        return template
    try:
        return _template(template).render(context)
    except _RENDER_ERRORS as exc:
        raise TemplateError(f"template failed: {_describe(exc)}") from exc


def evaluate(expression: str, context: Mapping[str, Any]) -> Any:
    """Evaluate a Jinja expression (``steps.plan.questions``, ``output.verdict == 'revise'``).

    Raises:
        TemplateError: A name is undefined (even as the final result), or the expression is invalid.
    """
    try:
        result = _expression(expression)(**context)
        if isinstance(result, jinja2.Undefined):
            result._fail_with_undefined_error()
    except _RENDER_ERRORS as exc:
        raise TemplateError(f"expression {expression!r} failed: {_describe(exc)}") from exc
    return result


def _untagged(text: str) -> bool:
    """Whether a template has no ``{`` (so no ``{{``, ``{%`` or ``{#``): nothing for Jinja to parse."""
    return "{" not in text


def is_plain(template: str) -> bool:
    """Whether a template renders to itself whatever the context: no tag (`_untagged`), and no ``\r`` (which
    Jinja would turn into ``\n``)."""
    return _untagged(template) and "\r" not in template


def check_template(text: str) -> SyntaxIssue | None:
    """The syntax error of a template (including unknown filters and tests), or None if it compiles."""
    if _untagged(text):
        return None
    try:
        _template(text)
    except jinja2.TemplateSyntaxError as exc:
        return SyntaxIssue(exc.message or "invalid template", exc.lineno)
    return None


def check_expression(text: str) -> SyntaxIssue | None:
    """The syntax error of an expression (including unknown filters and tests), or None if it compiles."""
    try:
        _expression(text)
    except jinja2.TemplateSyntaxError as exc:
        return SyntaxIssue(exc.message or "invalid expression", exc.lineno)
    return None


def _parse(text: str, *, expression: bool) -> nodes.Node:
    """The syntax tree of a template, or of an expression wrapped in an output node (so that `find_all` sees it)."""
    if not expression:
        return ENV.parse(text)
    parser = Parser(ENV, text, state="variable")
    node = parser.parse_expression()
    if not parser.stream.eos:
        raise jinja2.TemplateSyntaxError("unexpected text after the expression", parser.stream.current.lineno)
    return nodes.Output([node])


def referenced_names(text: str, *, expression: bool) -> set[tuple[str, str]]:
    """The ``steps.<id>`` and ``inputs.<name>`` references in a template or expression.

    Finds attribute (``steps.plan``) and constant-subscript (``steps['plan']``) access
    on the names ``steps`` and ``inputs``; dynamic subscripts cannot be known and are skipped.

    Returns:
        Pairs such as ``("steps", "plan")`` and ``("inputs", "topic")``.

    Raises:
        TemplateError: The text does not parse.
    """
    return set(_referenced_names(text, expression))


@lru_cache(maxsize=4096)
def _referenced_names(text: str, expression: bool) -> frozenset[tuple[str, str]]:
    # Cached: every run's scheduler reads every step's templates, and walking their trees
    # cost a tenth of a step's engine time. A syntax error is raised, never cached.
    if not expression and _untagged(text):
        return frozenset()
    try:
        tree = _parse(text, expression=expression)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(_describe(exc)) from exc
    found: set[tuple[str, str]] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        target = getattr(node, "node", None)
        if not (isinstance(target, nodes.Name) and target.ctx == "load" and target.name in _TRACKED):
            continue
        if isinstance(node, nodes.Getattr):
            found.add((target.name, node.attr))
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            found.add((target.name, node.arg.value))
    return frozenset(found)


def wholly_used(text: str, *, expression: bool) -> frozenset[str]:
    """Which of ``steps`` and ``inputs`` a template uses as a whole (``{{ inputs | tojson }}``,
    ``inputs[name]``), not only through a constant attribute or key: then any of its entries may be read.

    Raises:
        TemplateError: The text does not parse.
    """
    if not expression and _untagged(text):
        return frozenset()
    try:
        tree = _parse(text, expression=expression)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(_describe(exc)) from exc
    named: set[int] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        target = getattr(node, "node", None)
        arg = getattr(node, "arg", None)
        constant = isinstance(node, nodes.Getattr) or (isinstance(arg, nodes.Const) and isinstance(arg.value, str))
        if constant and isinstance(target, nodes.Name):
            named.add(id(target))
    return frozenset(
        n.name for n in tree.find_all(nodes.Name) if n.ctx == "load" and n.name in _TRACKED and id(n) not in named
    )


def undeclared_names(text: str, *, expression: bool) -> set[str]:
    """Top-level names a template or expression reads from its context (globals such as ``range`` excluded).

    Raises:
        TemplateError: The text does not parse.
    """
    return set(_undeclared_names(text, expression))


@lru_cache(maxsize=4096)
def _undeclared_names(text: str, expression: bool) -> frozenset[str]:
    # Cached like `_referenced_names`: workflows repeat their templates (a chain of similar steps).
    if not expression and _untagged(text):
        return frozenset()
    try:
        tree = _parse(text, expression=expression)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(_describe(exc)) from exc
    if isinstance(tree, nodes.Template):
        names = meta.find_undeclared_variables(tree)
    else:  # an expression binds no names, so every name it loads comes from the context
        names = {n.name for n in tree.find_all(nodes.Name) if n.ctx == "load"}
    return frozenset(names - set(ENV.globals))


_ONE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\{\{|\}\}).)*)\}\}\s*$", re.DOTALL)


def value_templates(value: Any, path: str = "") -> Iterator[tuple[str, str, bool]]:
    """Every template in a step's `args` value: ``(path, text, is_expression)``, depth first.

    A string that is exactly one ``{{ expression }}`` is an expression (its value keeps its
    type when rendered); any other string is a template; other values hold no template.
    """
    if isinstance(value, str):
        match = _ONE_EXPRESSION.match(value)
        if match is not None:
            yield path, match.group("expr").strip(), True
        else:
            yield path, value, False
    elif isinstance(value, Mapping):
        for key, inner in value.items():
            yield from value_templates(inner, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, inner in enumerate(value):
            yield from value_templates(inner, f"{path}[{index}]")


def render_value(value: Any, context: Mapping[str, Any]) -> Any:
    """`value` with every string rendered over `context` (see `value_templates`); other values as they are.

    ```python
    render_value({"query": "{{ q }} LoRA", "hits": "{{ steps.s.data }}"}, context)
    # {'query': 'adapters LoRA', 'hits': [...the list itself...]}
    ```

    Raises:
        TemplateError: A template or expression failed.
    """
    if isinstance(value, str):
        match = _ONE_EXPRESSION.match(value)
        return evaluate(match.group("expr").strip(), context) if match is not None else render(value, context)
    if isinstance(value, Mapping):
        return {key: render_value(inner, context) for key, inner in value.items()}
    if isinstance(value, list | tuple):
        return [render_value(inner, context) for inner in value]
    return value
