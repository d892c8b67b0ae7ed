"""The call journal: where an agent looks up and records its model and tool calls, for durable runs.

A durable run gives each agent a journal. Before a call the agent asks it for a
recorded result under a deterministic call id; if there is one (the run was
resumed after a crash) the agent replays it instead of calling again, and after
a call it records the result. An agent without a journal just makes its calls.

Call ids (`rolegraph.agents.call_ids`) name a call's place in the run, so the
same call gets the same id in every process that works on the run.

With each call the agent passes a digest of its request (`request_digest`): one
hash per part of the request (the messages, the tools offered, the answer's
schema and the sampling settings of a model call; the tool and its arguments of
a tool call). A journal records it with the result, so a replay can tell which
part of a request changed since the call was recorded.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any, Protocol

__all__ = [
    "DIGEST_VERSION",
    "CallJournal",
    "RequestDigest",
    "describe_changes",
    "part_digest",
    "request_changes",
    "request_digest",
]

RequestDigest = dict[str, str]
"""A request's fingerprint: a SHA-256 (hex, first 32 digits) per named part of the request, and
``version``: digests of different versions were computed differently and are not compared."""

DIGEST_VERSION = "1"
"""The version of how digests are computed; raise it whenever that changes."""


class CallJournal(Protocol):
    """Recorded results of an agent's calls, by call id (JSON data in, JSON data out).

    Either method may raise to stop the agent before or after a call (a run's
    budget that ran out does); the exception propagates out of `Agent.run`.
    """

    def get(self, call_id: str, *, request: RequestDigest | None = None) -> Any | None:
        """The recorded result of `call_id`, or None if the call has to be made.

        `request` is the digest of the request about to be made (a replay compares it
        with the recorded one).
        """
        ...

    def put(self, call_id: str, result: Any, *, request: RequestDigest | None = None) -> None:
        """Record the result of the completed call `call_id`, made with the request `request`."""
        ...


def request_digest(**parts: Any) -> RequestDigest:
    """One hash per part of a request, so two requests can be compared part by part.

    A part is JSON data (hashed in its canonical form, keys sorted) or `bytes` a caller
    has already serialised canonically (hashed as they are).
    """
    return {name: part_digest(value) for name, value in parts.items()} | {"version": DIGEST_VERSION}


def part_digest(value: Any) -> str:
    """The hash of one part of a request (see `request_digest`)."""
    data = value if isinstance(value, bytes) else json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(data if isinstance(data, bytes) else data.encode("utf-8")).hexdigest()[:32]


def request_changes(recorded: RequestDigest | None, request: RequestDigest | None) -> list[str]:
    """The parts of a request that differ from the recorded one (``messages``, ``tools``, ...), in order.

    Empty when they are the same, and when they cannot be compared: either digest missing
    (a store from before digests) or computed by another version.
    """
    if recorded is None or request is None or recorded.get("version") != request.get("version"):
        return []
    changed = [part for part in recorded if recorded.get(part) != request.get(part)]
    changed += [part for part in request if part not in recorded]
    return list(dict.fromkeys(changed))


_CHANGES = {
    "messages": "prompt changed",
    "tools": "tools offered changed",
    "schema": "answer schema changed",
    "settings": "model settings changed",
    "tool": "tool changed",
    "arguments": "tool arguments changed",
}
"""What a difference in each part of a request digest means."""


def describe_changes(parts: Sequence[str]) -> str:
    """What changed in a request, for people: ``prompt changed, tools offered changed``."""
    return ", ".join(_CHANGES.get(part, f"{part} changed") for part in parts)
