"""Values as the run store's rows hold them (`rolegraph.durability.store`): compact JSON text, and back."""

from __future__ import annotations

import json
from typing import Any

import orjson

from rolegraph.agents.journal import RequestDigest

__all__ = ["as_digest", "dumps", "loads", "request_text"]


def dumps(value: Any, *, strict: bool = False, sort_keys: bool = False) -> str:
    """`value` as compact JSON text: orjson, the standard library for what orjson refuses (a lone
    surrogate, an integer past 64 bits; ASCII-escaped there, so a lone surrogate is stored as its JSON
    escape, which SQLite's UTF-8 can hold and `loads` reads back as the same string). A value JSON
    cannot hold is written as its ``str``, or raises `TypeError` if `strict`."""
    default = None if strict else str
    option = orjson.OPT_NON_STR_KEYS | orjson.OPT_SORT_KEYS if sort_keys else orjson.OPT_NON_STR_KEYS
    try:
        return orjson.dumps(value, default=default, option=option).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value, default=default, sort_keys=sort_keys)


def loads(text: str) -> Any:
    """JSON text written by `dumps` back to a value (the standard library for a lone surrogate's escape, which
    orjson and pydantic's JSON parser refuse: rows are parsed here, then validated)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def as_digest(value: Any) -> RequestDigest | None:
    """A recorded request digest, if it is one (a JSON object of strings).

    Raises:
        ValueError: It is not.
    """
    if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return value
    raise ValueError("a request digest is not an object of strings")


def request_text(request: RequestDigest | None) -> str | None:
    """A request digest as its row holds it: JSON, keys sorted (a digest is an object of texts: orjson takes it)."""
    if request is None:
        return None
    try:
        return orjson.dumps(request, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # not a digest of ours (a lone surrogate, a key that is not a text)
        return dumps(request, sort_keys=True)
