"""Citation fields in output schemas: constrain them to retrieved ids, and find them in answers.

A field marked with `SOURCE_ID_MARK` (the `SourceId` type) may only hold the id
of a source the agent has seen. Before each model call the answer schema is
rewritten so that such fields are an ``enum`` of those ids: with grammar-
constrained decoding a model *cannot* cite anything else. After the call, the
same walk finds every citation in the answer, so the check is repeated on the
validated data (providers without constrained decoding can still err).

An object holding both a citation and a `QUOTE_MARK` field (a `Claim`) becomes
an ``anyOf`` with one branch per source: the citation fixed to that source's id
and the quote an ``enum`` of sentences from that source's text (`evidence.sentences`).
A quote can then only be a real sentence of the source it is attributed to. The
same segmentation checks every answer after the call (`evidence.quote_problem`),
so models without constrained decoding are held to the same rule.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from pydantic import BaseModel

from rolegraph.agents.evidence import MAX_SENTENCES_PER_SOURCE, collapse_whitespace, sentences
from rolegraph.agents.roles import QUOTE_MARK, SOURCE_ID_MARK

__all__ = [
    "MAX_SENTENCES_PER_SOURCE",
    "QuotedClaim",
    "answer_schema",
    "cites_sources",
    "collapse_whitespace",
    "constrain_citations",
    "find_citations",
    "find_claims",
    "find_quotes",
    "inline_refs",
    "sentences",
    "strings_in",
]

NO_SOURCE = "(no source retrieved yet)"
"""The only value a citation can take before any source was retrieved; never a valid id."""


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with every local ``$ref`` replaced by its ``$defs`` entry (pydantic nests models there)."""
    defs = schema.get("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                target = copy.deepcopy(defs[ref.removeprefix("#/$defs/")])
                extra = {k: v for k, v in node.items() if k != "$ref"}
                return resolve({**target, **extra})
            return {k: resolve(v) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


@functools.lru_cache(maxsize=256)
def answer_schema(output_model: type[BaseModel]) -> dict[str, Any]:
    """The inlined JSON Schema of a role's output model, computed once per model class.

    Generating a schema costs more than the rest of an agent's set-up; callers must not mutate it.
    """
    schema = inline_refs(output_model.model_json_schema())
    schema.pop("title", None)
    return schema


@functools.lru_cache(maxsize=256)
def cites_sources(output_model: type[BaseModel]) -> bool:
    """Whether a role's answers have a citation field anywhere (without one, an answer cites nothing and
    quotes nothing: `find_citations` and `find_quotes` find nothing, and need not walk it at every step)."""

    def walk(node: Any) -> bool:
        if isinstance(node, list):
            return any(walk(v) for v in node)
        if not isinstance(node, dict):
            return False
        return _is_citation(node) or any(walk(v) for v in node.values())

    return walk(answer_schema(output_model))


def strings_in(data: Any) -> Iterator[str]:
    """Every string in JSON-like `data` (nested dicts and lists), depth first."""
    if isinstance(data, str):
        yield data
    elif isinstance(data, dict):
        for value in data.values():
            yield from strings_in(value)
    elif isinstance(data, list | tuple):
        for value in data:
            yield from strings_in(value)


def _is_citation(node: dict[str, Any]) -> bool:
    return bool(node.get(SOURCE_ID_MARK))


def _quoted_object(node: dict[str, Any]) -> tuple[str, str] | None:
    """``(citation field, quote field)`` if `node` is an object schema holding both."""
    properties = node.get("properties")
    if not isinstance(properties, dict):
        return None
    cite = next((k for k, v in properties.items() if isinstance(v, dict) and _is_citation(v)), None)
    quote = next((k for k, v in properties.items() if isinstance(v, dict) and v.get(QUOTE_MARK)), None)
    return (cite, quote) if cite and quote else None


def constrain_citations(
    schema: dict[str, Any], ids: Sequence[str], texts: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A copy of `schema` (already inlined) whose citation fields only accept `ids`.

    With `texts` (source id -> text), quote fields are constrained to sentences of the cited source.
    """
    allowed = list(dict.fromkeys(ids)) or [NO_SOURCE]
    texts = texts or {}

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(v) for v in node]
        if not isinstance(node, dict):
            return node
        if _is_citation(node):
            return {"type": "string", "enum": allowed, SOURCE_ID_MARK: True}
        pair = _quoted_object(node)
        if pair is not None:
            branches = []
            cite, quote = pair
            for source_id in allowed:
                quotable = sentences(texts.get(source_id, ""))
                if not quotable:
                    continue
                properties = dict(node["properties"])
                properties[cite] = {"type": "string", "const": source_id, SOURCE_ID_MARK: True}
                properties[quote] = {"type": "string", "enum": quotable, QUOTE_MARK: True}
                branches.append(
                    {**node, "properties": {k: walk(v) if k not in pair else v for k, v in properties.items()}}
                )
            if branches:
                return branches[0] if len(branches) == 1 else {"anyOf": branches}
        return {k: walk(v) for k, v in node.items()}

    constrained: dict[str, Any] = walk(schema)
    return constrained


def find_citations(schema: dict[str, Any], data: Any) -> Iterator[str]:
    """Every value in `data` that sits in a citation field of `schema` (inlined)."""
    if _is_citation(schema):
        if isinstance(data, str):
            yield data
        return
    if isinstance(data, dict):
        properties = schema.get("properties", {})
        for key, value in data.items():
            if key in properties:
                yield from find_citations(properties[key], value)
    elif isinstance(data, list) and isinstance(schema.get("items"), dict):
        for value in data:
            yield from find_citations(schema["items"], value)
    for option in schema.get("anyOf", ()):
        if isinstance(option, dict):
            yield from find_citations(option, data)


class QuotedClaim(NamedTuple):
    """One object of an answer holding a citation and a quote: the source, the quote, and what it claims."""

    source_id: str
    quote: str
    claim: str
    """The object's other text fields, joined (a `Claim`'s ``claim``); empty when it has none."""


def find_claims(schema: dict[str, Any], data: Any) -> Iterator[QuotedClaim]:
    """Every object in `data` that holds a citation and a quote field, with its other text as the claim."""
    pair = _quoted_object(schema)
    if pair is not None and isinstance(data, dict):
        cite, quote = pair
        if isinstance(data.get(cite), str) and isinstance(data.get(quote), str):
            rest = [v for k, v in data.items() if k not in pair and isinstance(v, str) and v.strip()]
            yield QuotedClaim(data[cite], data[quote], " ".join(rest))
        return
    if isinstance(data, dict):
        properties = schema.get("properties", {})
        for key, value in data.items():
            if key in properties:
                yield from find_claims(properties[key], value)
    elif isinstance(data, list) and isinstance(schema.get("items"), dict):
        for value in data:
            yield from find_claims(schema["items"], value)
    for option in schema.get("anyOf", ()):  # an optional claim (``Claim | None``) sits in an anyOf
        if isinstance(option, dict):
            yield from find_claims(option, data)


def find_quotes(schema: dict[str, Any], data: Any) -> Iterator[tuple[str, str]]:
    """Every ``(source id, quote)`` pair in `data`, from objects holding a citation and a quote field."""
    for found in find_claims(schema, data):
        yield found.source_id, found.quote
