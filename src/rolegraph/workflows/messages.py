"""Pydantic's validation errors, told as a person would: the field, what was wrong, what to do.

Each error's location is walked through the document's data to a field path (so
that `rolegraph.workflows.reader` can place it at its line), and its type becomes
a message in the document's own words ("unknown key 'rloe' — did you mean
'role'?", "expected a whole number, got the string 'three'").
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import difflib
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from rolegraph.agents.roles import field_type
from rolegraph.workflows.reader import DocumentKind, Finding, describe_value, join_path

__all__ = ["MAX_HINTS", "Salvaged", "hint_budget", "salvage", "suggest", "validation_findings"]

MAX_HINTS = 50
"""Did-you-mean hints per document, at most: each scans a list of names, and a hostile file
may hold thousands of unknown ones (loading must stay linear in the file's size)."""
_hints: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("rolegraph_loader_hints", default=None)

M = TypeVar("M", bound=BaseModel)

_LIMITS = {"greater_than": ">", "greater_than_equal": "≥", "less_than": "<", "less_than_equal": "≤"}
_NAME_RULE = "use letters, digits and underscores, starting with a letter or underscore (at most 64 characters)"


@contextlib.contextmanager
def hint_budget() -> Iterator[None]:
    """Allow `MAX_HINTS` did-you-mean hints (`suggest`) inside the block: one document's reading."""
    token = _hints.set([MAX_HINTS])
    try:
        yield
    finally:
        _hints.reset(token)


def suggest(name: str, choices: Iterable[str]) -> str:
    """ " — did you mean 'x'?" for the choice closest to `name`, or "" (also once the hint budget is spent)."""
    budget = _hints.get()
    if budget is not None:
        if budget[0] <= 0:
            return ""
        budget[0] -= 1
    match = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" — did you mean {match[0]!r}?" if match else ""


@dataclass
class _Where:
    """Where a pydantic error is in the data."""

    parts: list[str | int] = field(default_factory=list)
    """The loc's parts that are keys and indexes of the data (or the missing key)."""
    member: str | None = None
    """The union member named in the loc (``ModelSpec``, ``str``), if any."""
    member_at: int = 0
    """How many of `parts` lead to the union's value."""
    is_key: bool = False
    """The error is about the mapping key, not its value."""


def _walk(loc: tuple[int | str, ...], data: Any, missing: bool) -> _Where:
    where = _Where()
    current = data
    for number, part in enumerate(loc):
        if part == "[key]":
            where.is_key = True
        elif isinstance(current, dict) and isinstance(part, str) and part in current:
            where.parts.append(part)
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            where.parts.append(part)
            current = current[part]
        elif missing and number == len(loc) - 1:
            where.parts.append(part)
        elif where.member is None:
            where.member, where.member_at = str(part), len(where.parts)
    return where


def _get(data: Any, parts: Sequence[str | int]) -> Any:
    for part in parts:
        data = data[part]
    return data


def _path(parts: Iterable[str | int]) -> str:
    path = ""
    for part in parts:
        path = join_path(path, part)
    return path


def _unwrap(annotation: Any) -> Any:
    while get_origin(annotation) is not None and get_origin(annotation) not in (dict, list):
        args = [a for a in get_args(annotation) if a is not type(None)]
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        annotation = models[0] if models else args[0]
    return annotation


def _model_at(root: type[BaseModel], parts: Sequence[str | int]) -> type[BaseModel] | None:
    """The schema model describing the mapping at `parts` of a `root` document, if it is one."""
    current: Any = root
    for part in parts:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            fields = {info.alias or name: info for name, info in current.model_fields.items()}
            if part not in fields:
                return None
            current = fields[str(part)].annotation
        elif get_origin(current) in (dict, list):
            current = get_args(current)[-1]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def validation_findings(errors: Sequence[ErrorDetails], data: Any, kind: DocumentKind[Any]) -> list[Finding]:
    """Pydantic's errors on `data` (validated as `kind.model`) as findings by field path."""
    unions: set[str] = set()
    findings = (_validation_finding(error, data, unions, kind) for error in errors)
    return [finding for finding in findings if finding is not None]


def _validation_finding(error: ErrorDetails, data: Any, unions: set[str], kind: DocumentKind[Any]) -> Finding | None:
    error_type = error["type"]
    where = _walk(error["loc"], data, error_type == "missing")
    if where.member is not None and where.parts[:1] == ["models"] and not where.is_key:  # `ModelSpec | str`
        union = where.parts[: where.member_at]
        at = _get(data, union)
        if isinstance(at, dict) and where.member == "str":
            return None  # the mapping branch of `ModelSpec | str` explains the problem
        if not isinstance(at, dict):
            if _path(union) in unions:
                return None
            unions.add(_path(union))
            message = (
                "expected a model string such as 'openai:gpt-4o-mini' or a mapping with 'model:', "
                f"got {describe_value(at)}"
            )
            return Finding(_path(union), message)
    message = _message(error, where.parts, error.get("input"), where.is_key, kind)
    return Finding(_path(where.parts), message, at_key=where.is_key or error_type == "extra_forbidden")


def _message(error: ErrorDetails, parts: list[str | int], value: Any, is_key: bool, kind: DocumentKind[Any]) -> str:
    error_type = error["type"]
    ctx = error.get("ctx") or {}
    name = str(parts[-1]) if parts else ""
    if error_type == "extra_forbidden":
        model = _model_at(kind.model, parts[:-1])
        allowed = [info.alias or field for field, info in model.model_fields.items()] if model else []
        if value is None and " " in name:  # `{description: fast, cheap}`: the comma ended the value
            return f"unknown key {name!r}: inside {{ }} a comma ends a value; put the value before it in quotes"
        hint = suggest(name, allowed) or (f"; allowed keys here: {', '.join(allowed)}" if allowed else "")
        return f"unknown key {name!r}{hint}"
    if error_type == "missing":
        return f"missing required key {name!r}: {kind.hints.get(name, f'add {name!r}')}"
    if error_type == "literal_error":
        if parts == [kind.version_key]:
            key = kind.version_key
            return f"unsupported format version {value!r}: this version of rolegraph reads '{key}: 1'"
        expected = str(ctx.get("expected", ""))
        choices = re.findall(r"'(\w+)'", expected)
        return f"{value!r} is not allowed here; use {expected}{suggest(str(value), choices)}"
    if error_type == "string_pattern_mismatch":
        if _is_output_type(parts) and not is_key:
            try:
                field_type(str(value))
            except ValueError as exc:
                return str(exc)
        return f"{value!r} is not a valid name: {_NAME_RULE}"
    if error_type == "string_too_long":
        return f"{value!r} is too long: {_NAME_RULE}"
    return _type_message(error_type, value, ctx, parts) or error["msg"]


def _is_output_type(parts: list[str | int]) -> bool:
    """Whether `parts` lead to an output field's type: ``roles.<r>.output.<f>`` (short form) or ``...<f>.type``."""
    return (
        len(parts) in (4, 5) and parts[0] in ("roles", "steps") and parts[2] == "output" and parts[4:] in ([], ["type"])
    )


def _type_message(error_type: str, value: Any, ctx: dict[str, Any], parts: list[str | int]) -> str | None:
    """The message for a value of the wrong type or out of range, if the error is one."""
    if error_type == "string_type":
        quote = "; put it in quotes" if isinstance(value, bool | int | float) else ""
        return f"expected a string, got {describe_value(value)}{quote}"
    if error_type in ("int_type", "int_parsing", "int_from_float"):
        return f"expected a whole number, got {describe_value(value)}"
    if error_type in ("float_type", "float_parsing"):
        return f"expected a number, got {describe_value(value)}"
    if error_type in ("bool_type", "bool_parsing"):
        return f"expected true or false, got {describe_value(value)}"
    if error_type in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected a mapping (key: value lines), got {describe_value(value)}"
    if error_type == "list_type":
        return f"expected a list such as [a, b], got {describe_value(value)}"
    if error_type in _LIMITS:
        limit = next(iter(ctx.values()), "?")
        return f"{value!r} is out of range: it must be {_LIMITS[error_type]} {limit}"
    if error_type == "too_short" and parts == ["steps"]:
        return "a workflow needs at least one step under 'steps:'"
    if error_type == "value_error" and "error" in ctx:
        return str(ctx["error"])
    return None


_SALVAGE_ROUNDS = 4
"""Validations of a document with its broken parts dropped or stood in for, at most (dropping a part
can uncover another: a route without its bound is dropped with its step's other routes, and so on)."""


@dataclass
class Salvaged(Generic[M]):
    """What is left of a document with schema errors once its broken parts are dropped or stood in for."""

    value: M | None
    """The document validated without them, if it then is valid."""
    altered: list[str] = field(default_factory=list)
    """Field paths dropped or replaced: problems at, inside or around them are not told (they may be
    the drop's doing, such as a mapping left without a key whose name was misspelt)."""


def salvage(data: dict[str, Any], errors: Sequence[ErrorDetails], kind: DocumentKind[M]) -> Salvaged[M]:
    """`data` validated again with each broken part dropped, or replaced by `kind.stubs`, nearest its error.

    So that a document with schema errors still has its other checks run, and one
    reading shows every problem: an optional key that failed is dropped, a broken
    step is stood in for by a stub that keeps its place in the graph.
    """
    pruned = copy.deepcopy(data)
    result: Salvaged[M] = Salvaged(None)
    for _ in range(_SALVAGE_ROUNDS):
        before = len(result.altered)
        for error in errors:
            where = _walk(error["loc"], pruned, error["type"] == "missing")
            fix = _nearest_fix(kind, where, error["type"] == "missing")
            if fix is not None and _apply(pruned, *fix):
                result.altered.append(_path(fix[0]))
        try:
            result.value = kind.model.model_validate(pruned)
            return result
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
        if len(result.altered) == before:
            break  # nothing more can be dropped: the document stays invalid
    return result


def _nearest_fix(
    kind: DocumentKind[Any], where: _Where, missing: bool
) -> tuple[list[str | int], Callable[[Any], Any] | None] | None:
    """The part of the data nearest an error that can be dropped (stub None) or stood in for, if any."""
    parts = where.parts
    for length in range(len(parts), 0, -1):
        prefix = parts[:length]
        key = prefix[-1]
        if not isinstance(key, str):
            continue  # a list's item: dropping it would move every later one
        path = _path(prefix)
        if path in kind.stubs and not where.is_key:
            return prefix, kind.stubs[path]
        if missing and length == len(parts):
            continue  # the missing key is not there to drop: drop (or stand in for) what lacks it
        parent = _model_at(kind.model, prefix[:-1])
        if parent is None:  # an entry of a map: a stub keeps its place, else it goes
            stub = kind.stubs.get(_path(prefix[:-1]) + "[]")
            return prefix, None if where.is_key else stub
        fields = {info.alias or name: info for name, info in parent.model_fields.items()}
        if key not in fields or not fields[key].is_required():
            return prefix, None
    return None


def _apply(data: dict[str, Any], parts: list[str | int], stub: Callable[[Any], Any] | None) -> bool:
    """Drop the value at `parts`, or replace it by `stub(value)`; False if it is no longer there."""
    try:
        parent = _get(data, parts[:-1])
    except (KeyError, IndexError, TypeError):
        return False
    key = parts[-1]
    if not isinstance(parent, dict) or not isinstance(key, str):
        return False
    if stub is None:
        return parent.pop(key, _ABSENT) is not _ABSENT
    parent[key] = stub(parent.get(key))
    return True


_ABSENT = object()
