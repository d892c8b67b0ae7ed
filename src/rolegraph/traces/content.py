"""Content modes: how much of the prompts, answers and tool payloads a trace keeps.

A run's trace is captured in one of three modes (``settings.content`` in the
workflow, ``--content`` on ``rolegraph run``, ``content=`` of `Workflow.run`):

``full`` (the default)
    Every attribute as recorded (secrets are still redacted, in every mode).
``metadata``
    Span structure, names, kinds, timings, statuses, token counts, model and tool
    names, step ids, the ids of retrieved sources, route conditions (from the
    workflow file) and every number or boolean stay. Every text
    payload goes: the task, inputs, messages, thoughts, answers, tool arguments
    and results, validation problems. Each dropped attribute ``k`` leaves its
    size as ``k.size`` (characters of the text, or of the compact JSON of a
    structured value). An error keeps only its exception type.
``redacted``
    Payloads keep their shape (the keys of a mapping, the length of a list,
    numbers and booleans), but every string in them becomes a marker
    ``[redacted len=<chars> sha256:<12 hex>]``, so two runs can still be compared
    (``rolegraph trace diff`` tells same text from different) without the text.
    The hash is unkeyed: a short, guessable text can be confirmed by hashing
    guesses. Use ``metadata`` when that matters.

What counts as metadata is an allow-list (`METADATA_ATTRIBUTES`): a string
attribute that is not on it is treated as a payload, so a new attribute added
anywhere in the engine is dropped by default rather than leaked.

The mode is applied by one processor in the tracer's chain, after secret
redaction (so a marker's hash is never the hash of a secret), which means every
sink (the JSONL file, the index, OTLP export) sees the same filtered records.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, MutableMapping
from typing import Any, Literal, get_args

__all__ = [
    "CONTENT_MODES",
    "METADATA_ATTRIBUTES",
    "ContentMode",
    "Processor",
    "content_processor",
    "filter_attributes",
    "marker",
]

ContentMode = Literal["full", "metadata", "redacted"]
"""How much content a trace keeps; see the module docstring."""

CONTENT_MODES: tuple[ContentMode, ...] = get_args(ContentMode)

#: Attributes whose strings describe the run rather than carry its content; kept in every mode.
METADATA_ATTRIBUTES = frozenset(
    {
        "gen_ai.operation.name",
        "gen_ai.agent.name",
        "gen_ai.system",
        "gen_ai.provider.name",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "gen_ai.response.finish_reasons",
        "gen_ai.tool.name",
        "gen_ai.tool.call.id",
        "rolegraph.action",
        "rolegraph.content",
        "rolegraph.model.id",
        "rolegraph.status",
        "rolegraph.step.id",
        "rolegraph.tools",
        "rolegraph.tool.sources",
        "rolegraph.route.when",
        "rolegraph.workflow",
        "rolegraph.workflow.file",
    }
)

Processor = Callable[[object, str, MutableMapping[str, Any]], MutableMapping[str, Any]]
"""A structlog processor, as the tracer's chain runs them."""


def marker(text: str) -> str:
    """The stand-in for `text` in ``redacted`` mode: its length and a short hash."""
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"[redacted len={len(text)} sha256:{digest}]"


def _has_text(value: Any) -> bool:
    if isinstance(value, str):
        return True
    if isinstance(value, dict):
        return any(_has_text(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_text(v) for v in value)
    return False


def _size(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str))


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return marker(value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    return value


def _error_type(error: str) -> str:
    # Errors are recorded as "<ExceptionType>: <message>"; the message may quote content.
    head, sep, _ = error.partition(": ")
    return head if sep and head.isidentifier() else "error"


def filter_attributes(attributes: dict[str, Any], mode: ContentMode) -> dict[str, Any]:
    """`attributes` as `mode` keeps them (a new dict; the input is not changed)."""
    if mode == "full":
        return attributes
    kept: dict[str, Any] = {}
    for key, value in attributes.items():
        if key in METADATA_ATTRIBUTES or not _has_text(value):
            kept[key] = value
        elif mode == "metadata":
            kept[f"{key}.size"] = _size(value)
        else:
            kept[key] = _masked(value)
    return kept


def content_processor(mode: ContentMode) -> Processor | None:
    """The tracer processor that applies `mode` to every record; None for ``full`` (nothing to do).

    Raises:
        ValueError: `mode` is not one of `CONTENT_MODES`.
    """
    if mode not in CONTENT_MODES:
        raise ValueError(f"unknown content mode {mode!r}; use one of {', '.join(CONTENT_MODES)}")
    if mode == "full":
        return None

    def apply(_logger: object, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        attributes = event_dict.get("attributes")
        if isinstance(attributes, dict):
            event_dict["attributes"] = filter_attributes(attributes, mode)
        error = event_dict.get("error")
        if isinstance(error, str):
            event_dict["error"] = _error_type(error) if mode == "metadata" else f"{_error_type(error)}: {marker(error)}"
        return event_dict

    return apply
