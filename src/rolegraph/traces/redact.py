"""Secret redaction: no API key or token ever reaches a trace, log or error."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["REDACTED", "REDACT_ENV_VAR", "Redactor", "Remembered", "add_secret", "default_redactor"]

REDACTED = "[REDACTED]"

#: Environment variables whose values are always treated as secrets.
SECRET_ENV_VARS = ("OPENAI_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "ANTHROPIC_API_KEY")
#: Names more variables (comma- or space-separated) whose values are always redacted.
REDACT_ENV_VAR = "ROLEGRAPH_REDACT_ENV"
_SECRET_NAME = re.compile(r"(_API_KEY|_TOKEN|_SECRET|_PASSWORD)$")
# Secret-shaped strings: each pattern with the literal every match contains, which `Redactor._may_hold_secret`
# looks for first (in the lower-cased text when the pattern ignores case). tests/traces/test_redact.py derives
# each pattern's shortest match and checks it is redacted, so a pattern whose literal is wrong cannot slip past.
_PATTERNS: tuple[tuple[str, bool, str], ...] = (
    ("sk-", False, r"\bsk-[A-Za-z0-9_-]{16,}"),  # OpenAI-style keys
    ("hf_", False, r"\bhf_[A-Za-z0-9]{20,}"),  # Hugging Face tokens
    ("bearer", True, r"\b[Bb][Ee][Aa][Rr][Ee][Rr]\s+[A-Za-z0-9._~+/=-]{8,}"),  # Authorization headers
)
_EXACT_LITERALS = tuple(literal for literal, any_case, _ in _PATTERNS if not any_case)
_ANY_CASE_LITERALS = tuple(literal for literal, any_case, _ in _PATTERNS if any_case)
_SHORTEST_MATCH = 15
"""The fewest characters any pattern matches ("bearer", a space, 8 characters): a shorter string holds no
secret-shaped match (the test of the patterns checks this against each pattern's shortest match)."""
# Redactions of short strings are remembered: the same names, ids and short values recur in every record.
_REMEMBERED_LEN = 128
_REMEMBERED = 4096
# Values shorter than this are not treated as secrets: redacting "1" everywhere helps no one.
_MIN_SECRET_LEN = 6
# Secrets known to this process but to no environment variable (keys typed at a prompt).
_PROCESS_SECRETS: list[str] = []
# Each compiled set of secrets takes the next number, unique across redactors (see `Redactor.attributes`).
_GENERATIONS = itertools.count(1)

Remembered = dict[str, tuple[str, str, int]]
"""What `Redactor.attributes` remembers of one span's text attributes: by name, the value last redacted, its
redaction, and the generation of secrets it was redacted with."""


def add_secret(value: str) -> None:
    """Redact `value` from now on, in every redactor built by `Redactor.from_env` (existing ones too).

    For secrets that live in no environment variable, such as an API key typed at a prompt.
    """
    if len(value) >= _MIN_SECRET_LEN and value not in _PROCESS_SECRETS:
        _PROCESS_SECRETS.append(value)


class Redactor:
    """Replaces known secret values and secret-shaped strings with ``[REDACTED]``."""

    def __init__(self, secrets: Iterable[str] = (), *, process_secrets: bool = False) -> None:
        self._given = {s for s in secrets if len(s) >= _MIN_SECRET_LEN}
        self._process = process_secrets
        self._known = -1
        self._compile()

    def _compile(self) -> None:
        extra = _PROCESS_SECRETS if self._process else []
        self._known = len(_PROCESS_SECRETS)
        values = sorted(self._given | set(extra), key=len, reverse=True)
        self._secrets = tuple(values)
        # One alternation, one pass per string: redaction runs on every string of every record.
        self._pattern = re.compile("|".join([*(re.escape(v) for v in values), *(p for _, _, p in _PATTERNS)]))
        self._shortest = min([_SHORTEST_MATCH, *(len(v) for v in values)])
        self._remembered: dict[str, str] = {}
        """Short strings already redacted, and their redaction (forgotten when the secrets change)."""
        self._generation = next(_GENERATIONS)
        """Changes whenever the secrets do: a redaction remembered with another generation is stale."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, extra_names: Iterable[str] = ()) -> Redactor:
        """A redactor for the secrets in `env` (default: ``os.environ``).

        Covers the well-known key variables, every variable named ``*_API_KEY``,
        ``*_TOKEN``, ``*_SECRET`` or ``*_PASSWORD``, the variables listed in
        ``ROLEGRAPH_REDACT_ENV`` and `extra_names` (a workflow's ``settings.redact_env``),
        and every secret given to `add_secret`, before or after this redactor was made.
        """
        extra = tuple(extra_names)
        secrets = _environ_secrets(extra) if env is None else _secrets_in(env, extra)
        return cls(secrets, process_secrets=True)

    def text(self, value: str) -> str:
        """`value` with every secret replaced."""
        self._catch_up()
        return self._text(value)

    def _text(self, value: str) -> str:
        """`text` once the secrets are up to date."""
        if len(value) < self._shortest:
            return value  # shorter than any secret and any secret-shaped match
        remembered = self._remembered.get(value)
        if remembered is not None:
            return remembered
        redacted = self._pattern.sub(REDACTED, value) if self._may_hold_secret(value) else value
        if len(value) <= _REMEMBERED_LEN:
            if len(self._remembered) >= _REMEMBERED:
                self._remembered.clear()
            self._remembered[value] = redacted
        return redacted

    def _may_hold_secret(self, value: str) -> bool:
        """Whether `value` contains a known secret or the literal of a secret-shaped pattern.

        Substring tests in C, about ten times cheaper than the alternation's regex scan, which then runs
        only on the rare string that may match (a miss here is a miss of the regex: every match of a
        pattern contains its literal).
        """
        for literal in _EXACT_LITERALS:
            if literal in value:
                return True
        if _ANY_CASE_LITERALS:
            lowered = value.lower()
            for literal in _ANY_CASE_LITERALS:
                if literal in lowered:
                    return True
        for secret in self._secrets:
            if secret in value:
                return True
        return False

    def _catch_up(self) -> None:
        """Recompile if a key was typed since the patterns were built (process secrets only): redact it too."""
        if self._process and self._known != len(_PROCESS_SECRETS):
            self._compile()

    @property
    def shortest(self) -> int:
        """The length of the shortest text that can hold a secret: `text` returns a shorter one unchanged."""
        self._catch_up()
        return self._shortest

    def attributes(self, attributes: dict[str, Any], remembered: Remembered) -> dict[str, Any]:
        """A span's `attributes` redacted, for one of its records (a new dict: the span's is not changed).

        Numbers, booleans, None and text too short to hold a secret pass as they are; containers are walked
        (they may have changed in place since the last record). A longer text is redacted once: `remembered`
        (the span's own, kept across its records) holds its redaction for the span's next record, as long as the
        attribute still holds that very string and the secrets did not change.
        """
        self._catch_up()
        shortest = self._shortest
        generation = self._generation
        out = attributes.copy()  # in C; the loop below replaces only what redaction may change
        for key, value in attributes.items():
            cls = type(value)
            if cls is str:
                if len(value) >= shortest:
                    last = remembered.get(key)
                    if last is None or last[0] is not value or last[2] != generation:
                        last = remembered[key] = (value, self._text(value), generation)
                    out[key] = last[1]
            elif cls is not int and cls is not float and cls is not bool and value is not None:
                out[key] = self._walk(value)
        return out

    def value(self, value: Any) -> Any:
        """`value` (str, list, tuple, dict, nested) with every string redacted."""
        self._catch_up()
        return self._walk(value)

    def _walk(self, value: Any) -> Any:
        """`value` redacted, the leaves of a container handled in its loop: a checkpoint or a journal record
        is mostly short strings and numbers, and a call per leaf cost more than the redaction it did."""
        cls = type(value)
        if cls is dict:
            shortest = self._shortest
            out: dict[Any, Any] = {}
            for key, item in value.items():
                kind = type(item)
                if kind is str:
                    out[key] = item if len(item) < shortest else self._text(item)
                elif kind is int or kind is float or kind is bool or item is None:
                    out[key] = item
                else:
                    out[key] = self._walk(item)
            return out
        if cls is str:
            return value if len(value) < self._shortest else self._text(value)
        if cls is int or cls is float or cls is bool or value is None:
            return value
        if cls is list or cls is tuple:
            shortest = self._shortest
            items: list[Any] = []
            for item in value:
                kind = type(item)
                if kind is str:
                    items.append(item if len(item) < shortest else self._text(item))
                elif kind is int or kind is float or kind is bool or item is None:
                    items.append(item)
                else:
                    items.append(self._walk(item))
            return items
        if isinstance(value, str):
            return self._text(value)
        if isinstance(value, dict):
            return {key: self._walk(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self._walk(item) for item in value]
        return value


def _secrets_in(env: Mapping[str, str], extra_names: tuple[str, ...]) -> tuple[str, ...]:
    """The values of `env`'s secret variables (see `Redactor.from_env`)."""
    listed = re.split(r"[\s,]+", env.get(REDACT_ENV_VAR, "").strip())
    names = set(SECRET_ENV_VARS) | set(extra_names) | {name for name in listed if name}
    names |= {name for name in env if _SECRET_NAME.search(name)}
    return tuple(env[name] for name in names if env.get(name))


_ENVIRON_SECRETS: dict[tuple[str, ...], tuple[dict[Any, Any], tuple[str, ...]]] = {}
"""``os.environ``'s secrets by the extra names asked for, with a copy of the environment they were read from."""
_ENVIRON_SECRETS_KEPT = 32


def _environ_secrets(extra_names: tuple[str, ...]) -> tuple[str, ...]:
    """The secrets of ``os.environ`` (see `Redactor.from_env`), read again only when the environment changed.

    A run builds its redactor as it starts, and reading the environment (decoding every variable, matching every
    name) cost more than the rest of the redactor. What the secrets were read from is kept as CPython's own copy
    of the environment (``os.environ._data``, which every change through ``os.environ`` updates): comparing it
    with the current one is a dictionary comparison in C. Without that copy (another Python), the environment is
    read every time.
    """
    data = getattr(os.environ, "_data", None)
    if not isinstance(data, dict):
        return _secrets_in(os.environ, extra_names)
    known = _ENVIRON_SECRETS.get(extra_names)
    if known is not None and known[0] == data:
        return known[1]
    snapshot = dict(data)  # before reading: a change made meanwhile is then seen as one by the next call
    secrets = _secrets_in(os.environ, extra_names)
    if len(_ENVIRON_SECRETS) >= _ENVIRON_SECRETS_KEPT:
        _ENVIRON_SECRETS.clear()
    _ENVIRON_SECRETS[extra_names] = (snapshot, secrets)
    return secrets


def default_redactor() -> Redactor:
    """A redactor built from the current environment."""
    return Redactor.from_env()
