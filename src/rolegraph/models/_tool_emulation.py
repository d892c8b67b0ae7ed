"""Tool calling for models without it: one JSON step, constrained by a grammar.

A model that cannot call tools natively is asked for exactly one JSON object per
turn, and decoding is constrained to a JSON Schema that admits only

- a tool call, ``{"thought": ..., "tool": <name>, "arguments": <that tool's arguments>}``, or
- the final answer: the caller's ``output_schema`` (or, without one, ``{"thought": ..., "answer": "<text>"}``).

This module builds that schema (bounded, so a tiny model cannot run away), renders
a conversation for a chat template that knows no tool roles, and parses the step back
into a `Completion`. It knows nothing of llama.cpp; `local.py` compiles the schema.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from rolegraph.models.envelope import THOUGHT_MAX_CHARS
from rolegraph.models.messages import Message, ToolCall, ToolSpec
from rolegraph.models.model import Completion

__all__ = [
    "ARRAY_MAX_ITEMS",
    "STRING_MAX_CHARS",
    "bounded_schema",
    "parse_step",
    "render_messages",
    "step_schema",
]

STRING_MAX_CHARS = 400
"""Length given to every string the schema leaves unbounded."""
ARRAY_MAX_ITEMS = 8
"""Length given to every array the schema leaves unbounded."""

_THOUGHT = {"type": "string", "maxLength": THOUGHT_MAX_CHARS}
_STEP_KEYS = frozenset({"thought", "tool", "arguments"})
_TEXT_ANSWER_KEYS = frozenset({"thought", "answer"})
# Formats json-schema-to-grammar turns into their own (bounded) rules.
_GRAMMAR_FORMATS = frozenset({"date", "time", "date-time", "uuid", "uuid1", "uuid2", "uuid3", "uuid4", "uuid5"})
_SCALAR_TYPES = ("string", "number", "integer", "boolean", "null")


def _any_value() -> dict[str, Any]:
    """A bounded stand-in for an unconstrained value (``{}``): a scalar or a short list of scalars."""
    scalar: dict[str, Any] = {
        "anyOf": [
            {"type": "string", "maxLength": STRING_MAX_CHARS},
            {"type": "number"},
            {"type": "boolean"},
            {"type": "null"},
        ]
    }
    return {"anyOf": [*scalar["anyOf"], {"type": "array", "items": scalar, "maxItems": ARRAY_MAX_ITEMS}]}


def step_schema(
    tools: Sequence[ToolSpec], output_schema: dict[str, Any] | None, *, require_tool: bool = False
) -> dict[str, Any] | None:
    """The JSON Schema one step must match, or None for free text (no tools, no output schema).

    With `require_tool` (and tools), the final-answer alternative is left out: the step must call a tool.

    Every string without a ``maxLength`` gets `STRING_MAX_CHARS`, every array without
    ``maxItems`` gets `ARRAY_MAX_ITEMS`, and each alternative's ``$defs`` are hoisted to
    the root under a prefix (the grammar converter resolves ``#/...`` against the root).
    """
    defs: dict[str, Any] = {}
    if not tools:
        if output_schema is None:
            return None
        root = _hoist_defs(output_schema, "", defs)
        return bounded_schema({**root, "$defs": defs} if defs else root)
    alternatives: list[dict[str, Any]] = []
    for index, spec in enumerate(tools):
        arguments = _hoist_defs(spec.parameters, f"tool{index}_", defs)
        alternatives.append(
            {
                "type": "object",
                "properties": {"thought": _THOUGHT, "tool": {"const": spec.name}, "arguments": arguments},
                "required": ["thought", "tool", "arguments"],
                "additionalProperties": False,
            }
        )
    if output_schema is not None and not require_tool:
        alternatives.append(_hoist_defs(output_schema, "final_", defs))
    elif not require_tool:
        alternatives.append(
            {
                "type": "object",
                "properties": {"thought": _THOUGHT, "answer": {"type": "string"}},
                "required": ["thought", "answer"],
                "additionalProperties": False,
            }
        )
    step: dict[str, Any] = {"anyOf": alternatives}
    if defs:
        step["$defs"] = defs
    return bounded_schema(step)


def _hoist_defs(schema: dict[str, Any], prefix: str, defs: dict[str, Any]) -> dict[str, Any]:
    """`schema` with every ``$defs``/``definitions`` (at any depth) moved into `defs` as ``prefix + name``.

    Nested definitions are pooled too: a pydantic schema embedded in another (the
    envelope's ``answer``) keeps refs like ``#/$defs/Claim`` that only make sense once
    its definitions sit at the root. Other local pointers (``#``, ``#/properties/x``)
    are resolved against `schema` and hoisted as definitions of their own.
    """
    local: dict[str, Any] = {}

    def collect(node: Any) -> None:
        if isinstance(node, list):
            for v in node:
                collect(v)
        elif isinstance(node, dict):
            for key in ("definitions", "$defs"):
                if isinstance(node.get(key), dict):
                    for name, sub in node[key].items():
                        local.setdefault(name, sub)
            for v in node.values():
                collect(v)

    collect(schema)
    pointers: dict[str, str] = {}

    def rename(ref: str) -> str:
        for head in ("#/$defs/", "#/definitions/"):
            if ref.startswith(head) and ref[len(head) :] in local:
                return f"#/$defs/{prefix}{ref[len(head) :]}"
        if ref == "#" or ref.startswith("#/"):
            if ref not in pointers:
                pointers[ref] = f"{prefix}ref{len(pointers)}"
                target = _pointer(schema, ref)
                if target is not None:
                    defs[pointers[ref]] = walk(target)
            return f"#/$defs/{pointers[ref]}"
        return ref

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(v) for v in node]
        if not isinstance(node, dict):
            return node
        out = {k: walk(v) for k, v in node.items() if k not in ("$defs", "definitions")}
        if isinstance(out.get("$ref"), str):
            out["$ref"] = rename(out["$ref"])
        return out

    for name, sub in local.items():
        defs[f"{prefix}{name}"] = walk(sub)
    hoisted: dict[str, Any] = walk(schema)
    return hoisted


def _pointer(document: Any, ref: str) -> Any:
    """The node `ref` (``#`` or ``#/a/b``) points at in `document`, or None."""
    node = document
    for part in ref[2:].split("/") if ref != "#" else ():
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def bounded_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of `schema` that llama.cpp's json-schema-to-grammar accepts and that bounds every string and array.

    Also rewrites what the converter gets wrong: a list ``type`` (it would drop the
    other keywords) becomes an ``anyOf``; an untyped schema (``{}``, or one with only a
    description) becomes a bounded any-value instead of an assertion failure.
    """
    bounded: dict[str, Any] = _bound(schema)
    return bounded


def _bound(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return {"$ref": node["$ref"]}  # the converter ignores siblings of $ref
    out: dict[str, Any] = dict(node)
    if "$defs" in out:
        out["$defs"] = {k: _bound(v) for k, v in out["$defs"].items()}
    types = out.get("type")
    if isinstance(types, list):
        rest = {k: v for k, v in out.items() if k not in ("type", "$defs")}
        bounded: dict[str, Any] = {"anyOf": [_bound({**rest, "type": t}) for t in types]}
        if "$defs" in out:
            bounded["$defs"] = out["$defs"]
        return bounded
    for key in ("anyOf", "oneOf"):
        if key in out:
            out[key] = [_bound(v) for v in out[key]]
            return out
    if "allOf" in out and len(out["allOf"]) == 1 and isinstance(out["allOf"][0], dict):
        merged = {**{k: v for k, v in out.items() if k != "allOf"}, **out["allOf"][0]}
        return _bound(merged)
    if "const" in out or "enum" in out:
        return out
    kind = types if isinstance(types, str) else None
    if kind is None and "properties" in out:
        kind = "object"
    elif kind is None and ("items" in out or "prefixItems" in out):
        kind = "array"
    if kind == "integer" and (small := _small_range(out)) is not None:
        # The converter has no rule for integer bounds; a short range is spelt out so the grammar keeps it.
        return {**{k: v for k, v in out.items() if k not in ("type", "minimum", "maximum")}, "enum": small}
    if kind == "string":
        if "maxLength" not in out and "pattern" not in out and out.get("format") not in _GRAMMAR_FORMATS:
            out["maxLength"] = max(STRING_MAX_CHARS, int(out.get("minLength", 0)))
    elif kind == "array":
        if isinstance(out.get("prefixItems"), list):
            out["prefixItems"] = [_bound(v) for v in out["prefixItems"]]
            out.pop("items", None)
        else:
            items = out.get("items")
            out["items"] = _bound(items) if isinstance(items, dict) and items else _any_value()
            if "maxItems" not in out:
                out["maxItems"] = max(ARRAY_MAX_ITEMS, int(out.get("minItems", 0)))
    elif kind == "object":
        declared = "properties" in out
        out["properties"] = {k: _bound(v) for k, v in out.get("properties", {}).items()}
        extra = out.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            out["additionalProperties"] = _bound(extra)
        elif extra is True or extra == {} or (extra is None and not declared):
            # Free-form keys: their values are bounded, the keys and their count are not (max_tokens is the backstop).
            out["additionalProperties"] = _any_value()
    elif kind is None or kind not in _SCALAR_TYPES:
        return _any_value()
    return out


INTEGER_ENUM_MAX = 101
"""Integer ranges of at most this many values (``minimum`` to ``maximum``) are spelt out as an ``enum``."""


def _small_range(node: dict[str, Any]) -> list[int] | None:
    low, high = node.get("minimum"), node.get("maximum")
    if not isinstance(low, int | float) or not isinstance(high, int | float):
        return None
    first, last = math.ceil(low), math.floor(high)
    return list(range(first, last + 1)) if 0 < last - first + 1 <= INTEGER_ENUM_MAX else None


def render_messages(
    messages: Sequence[Message], tools: Sequence[ToolSpec], has_output_schema: bool
) -> list[dict[str, str]]:
    """`messages` for a chat template with only system, user and assistant roles.

    An assistant's tool calls become the JSON steps it would have written; a tool
    result becomes a user message ``Observation from <tool> (call <id>):``. With
    tools, a compact description of them and of the step format joins the system
    message (a new one is put first if there is none).
    """
    out: list[dict[str, str]] = []
    for message in messages:
        if message.role == "assistant" and message.tool_calls:
            steps = [
                json.dumps(
                    {"thought": message.content if i == 0 else "", "tool": c.name, "arguments": _arguments(c)},
                    ensure_ascii=False,
                )
                for i, c in enumerate(message.tool_calls)
            ]
            out.append({"role": "assistant", "content": "\n".join(steps)})
        elif message.role == "tool":
            header = f"Observation from {message.name or 'tool'} (call {message.tool_call_id or '?'}):"
            out.append({"role": "user", "content": f"{header}\n{message.content}"})
        else:
            out.append({"role": message.role, "content": message.content})
    if tools:
        guide = _tools_guide(tools, has_output_schema)
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": f"{out[0]['content']}\n\n{guide}"}
        else:
            out.insert(0, {"role": "system", "content": guide})
    return out


def _arguments(call: ToolCall) -> Any:
    try:
        return json.loads(call.arguments or "{}")
    except ValueError:
        return call.arguments


def _tools_guide(tools: Sequence[ToolSpec], has_output_schema: bool) -> str:
    lines = ["Tools you can call:"]
    for spec in tools:
        lines.append(f"- {spec.name}({_signature(spec.parameters)}): {spec.description.strip()}")
    lines.append('To call a tool, reply with JSON: {"thought": "<why>", "tool": "<name>", "arguments": {...}}')
    if has_output_schema:
        lines.append("When you have what you need, reply with your final answer as JSON instead.")
    else:
        lines.append('When you have what you need, reply with JSON: {"thought": "<why>", "answer": "<your answer>"}')
    return "\n".join(lines)


def _signature(parameters: dict[str, Any]) -> str:
    defs = {**parameters.get("definitions", {}), **parameters.get("$defs", {})}
    required = set(parameters.get("required", []))
    return ", ".join(
        f"{name}{'' if name in required else '?'}: {_type_hint(schema, defs, 0)}"
        for name, schema in parameters.get("properties", {}).items()
    )


def _type_hint(schema: Any, defs: dict[str, Any], depth: int) -> str:
    """A short, Python-like type for `schema`, for the model's eyes only."""
    if not isinstance(schema, dict) or depth > 3:
        return "any"
    if isinstance(schema.get("$ref"), str):
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _type_hint(defs[name], defs, depth + 1) if name in defs else name
    if "const" in schema:
        return json.dumps(schema["const"])
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " | ".join(_type_hint(s, defs, depth + 1) for s in schema[key])
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(str(k) for k in kind)
    if kind == "array" or "items" in schema:
        return f"list[{_type_hint(schema.get('items'), defs, depth + 1)}]"
    if kind == "object" or "properties" in schema:
        fields = ", ".join(f"{k}: {_type_hint(v, defs, depth + 1)}" for k, v in schema.get("properties", {}).items())
        return f"{{{fields}}}" if fields else "object"
    return str(kind) if kind else "any"


def parse_step(
    text: str, tools: Sequence[ToolSpec], has_output_schema: bool, *, first_call_number: int
) -> Completion | None:
    """The `Completion` a constrained step's text stands for, or None if it is no complete step.

    A tool step becomes a tool call with id ``call_<n>`` (numbered from
    `first_call_number`, so ids are unique within a conversation and reproducible);
    anything else is the final answer: its JSON text, or, without an output schema,
    the ``answer`` string.
    """
    try:
        value = json.loads(text)
    except ValueError:
        try:  # raw control characters in strings: invalid JSON, but the meaning is clear; re-serialise it
            value = json.loads(text, strict=False)
        except ValueError:
            return None
        text = json.dumps(value, ensure_ascii=False)
    names = {spec.name for spec in tools}
    if isinstance(value, dict) and set(value) == _STEP_KEYS and value["tool"] in names:
        thought = value["thought"] if isinstance(value["thought"], str) else ""
        call = ToolCall(
            id=f"call_{first_call_number}",
            name=value["tool"],
            arguments=json.dumps(value["arguments"], ensure_ascii=False),
        )
        return Completion(text=thought, tool_calls=[call], finish_reason="tool_calls")
    if (
        tools
        and not has_output_schema
        and isinstance(value, dict)
        and set(value) == _TEXT_ANSWER_KEYS
        and isinstance(value["answer"], str)
    ):
        return Completion(text=value["answer"])
    return Completion(text=text.strip())
