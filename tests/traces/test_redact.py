"""Redaction's fast paths miss no secret: each secret-shaped pattern's shortest match passes the literal
pre-check and the short-string cut-off, and a remembered redaction is forgotten when a secret is added."""

from __future__ import annotations

import collections
import importlib
import re
from typing import Any

import pytest

from rolegraph.traces import redact
from rolegraph.traces.redact import REDACTED, Redactor, add_secret

_parser: Any = importlib.import_module("re._parser")
_c: Any = importlib.import_module("re._constants")


def shortest_match(pattern: str) -> str:
    """A shortest string `pattern` matches, built from its parse tree (fails on a construct it does not know)."""
    return _shortest(_parser.parse(pattern))


def _shortest(items: Any) -> str:
    out = []
    for op, arg in items:
        if op is _c.LITERAL:
            out.append(chr(arg))
        elif op is _c.IN:
            out.append(_first_of_class(arg))
        elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT):
            low, _, sub = arg
            out.append(_shortest(sub) * low)
        elif op is _c.SUBPATTERN:
            out.append(_shortest(arg[-1]))
        elif op is _c.BRANCH:
            out.append(min((_shortest(sub) for sub in arg[1]), key=len))
        elif op is not _c.AT:  # \b and anchors match no character
            raise AssertionError(f"shortest_match does not know {op} in a redaction pattern: teach it")
    return "".join(out)


def _first_of_class(members: Any) -> str:
    op, arg = members[0]
    if op is _c.LITERAL:
        return chr(arg)
    if op is _c.RANGE:
        return chr(arg[0])
    if op is _c.CATEGORY and arg is _c.CATEGORY_SPACE:
        return " "
    raise AssertionError(f"shortest_match does not know {op} {arg} in a character class: teach it")


PATTERNS = [pattern for _, _, pattern in redact._PATTERNS]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_each_patterns_shortest_match_is_redacted(pattern: str) -> None:
    """The shortest string a pattern matches, alone, inside text and in every case the pattern accepts, is
    redacted: the literal pre-check and the short-string cut-off never let a match through."""
    match = shortest_match(pattern)
    assert re.fullmatch(pattern, match), match  # the helper builds what the pattern matches
    redactor = Redactor()
    variants = {match, match.upper(), match.lower(), match.swapcase(), match.title()}
    for variant in sorted(v for v in variants if re.fullmatch(pattern, v)):
        for text in (variant, f"header: {variant} and more", f"x\n{variant}"):
            assert variant not in redactor.text(text) and REDACTED in redactor.text(text), text


def test_short_known_secrets_are_redacted() -> None:
    """A known secret shorter than any pattern's match (six characters) is still redacted, alone or in text."""
    redactor = Redactor(["abc123"])
    assert redactor.text("abc123") == REDACTED
    assert redactor.text("id abc123!") == f"id {REDACTED}!"


def test_a_remembered_text_is_redacted_once_a_secret_is_added(monkeypatch: pytest.MonkeyPatch) -> None:
    """A string redacted before a key was typed (and remembered as harmless) is redacted after `add_secret`."""
    monkeypatch.setattr(redact, "_PROCESS_SECRETS", [])
    redactor = Redactor.from_env({})
    text = "the key is typed-key-0042"
    assert redactor.text(text) == text
    assert redactor.text(text) == text  # now remembered
    add_secret("typed-key-0042")
    assert redactor.text(text) == f"the key is {REDACTED}"


def test_many_distinct_texts_stay_redacted() -> None:
    """Past the remembered strings' bound, texts are still redacted (the memory is cleared, not trusted)."""
    redactor = Redactor(["secret-value-1"])
    texts = [f"line {i} secret-value-1" for i in range(redact._REMEMBERED + 10)]
    assert all(redactor.text(t) == t.replace("secret-value-1", REDACTED) for t in texts)
    assert all(redactor.text(t) == t.replace("secret-value-1", REDACTED) for t in texts[:20])


def test_a_short_secret_typed_later_is_redacted_deep_in_a_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """A seven-character key given to `add_secret` after the redactor was made is redacted in every leaf of a
    nested value (dict, list, tuple), where strings that short were passed over before it was typed."""
    monkeypatch.setattr(redact, "_PROCESS_SECRETS", [])
    redactor = Redactor.from_env({})
    value = {"a": "k3y-abc", "b": ["k3y-abc", ("x", {"c": "k3y-abc"})], "n": 3, "none": None}
    assert redactor.value(value) == {"a": "k3y-abc", "b": ["k3y-abc", ["x", {"c": "k3y-abc"}]], "n": 3, "none": None}
    add_secret("k3y-abc")
    assert redactor.value(value) == {"a": REDACTED, "b": [REDACTED, ["x", {"c": REDACTED}]], "n": 3, "none": None}


def test_strings_of_every_type_and_length_are_redacted_in_a_value() -> None:
    """A secret in a long text, in a `str` subclass, in a dict subclass's value and as a top-level string is
    redacted; numbers, booleans and other objects pass as they are."""

    class Name(str):
        pass

    secret = "sk-" + "a" * 20
    redactor = Redactor()
    value = {"long": f"{'x' * 200} {secret}", "sub": Name(secret), "mapping": collections.OrderedDict(k=secret)}
    assert redactor.value(value) == {"long": f"{'x' * 200} {REDACTED}", "sub": REDACTED, "mapping": {"k": REDACTED}}
    assert redactor.value(secret) == REDACTED
    marker = object()
    assert [redactor.value(v) for v in (1, 2.5, True, None, marker)] == [1, 2.5, True, None, marker]


def test_every_leaf_of_a_list_is_redacted() -> None:
    """A list's items are redacted one by one whatever their kind: texts (long, short, of a `str` subclass),
    nested lists, tuples and dicts; numbers, booleans, None and other objects pass as they are."""

    class Name(str):
        pass

    secret = "sk-" + "b" * 20
    marker = object()
    redactor = Redactor()
    items = [
        secret,
        Name(secret),
        "ok",
        f"{'y' * 150} {secret}",
        1,
        2.5,
        False,
        None,
        (secret,),
        [{"k": secret}],
        marker,
    ]
    assert redactor.value(items) == [
        REDACTED,
        REDACTED,
        "ok",
        f"{'y' * 150} {REDACTED}",
        1,
        2.5,
        False,
        None,
        [REDACTED],
        [{"k": REDACTED}],
        marker,
    ]
    assert redactor.value((secret, "ok")) == [REDACTED, "ok"]


def test_a_redactor_of_the_environment_sees_every_change_to_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """`Redactor.from_env` (of ``os.environ``) redacts a secret variable set, changed or named in
    ``ROLEGRAPH_REDACT_ENV`` since the last redactor was built, and no longer one that was removed."""
    first, second, listed = "first-secret-0042", "second-secret-0042", "listed-value-0042"
    monkeypatch.setenv("RUNCOST_TEST_TOKEN", first)
    assert Redactor.from_env().text(first) == REDACTED
    assert Redactor.from_env().text(first) == REDACTED  # the same environment again
    monkeypatch.setenv("RUNCOST_TEST_TOKEN", second)
    changed = Redactor.from_env()
    assert (changed.text(second), changed.text(first)) == (REDACTED, first)
    monkeypatch.setenv("RUNCOST_PLAIN", listed)
    assert Redactor.from_env().text(listed) == listed
    monkeypatch.setenv(redact.REDACT_ENV_VAR, "RUNCOST_PLAIN")
    assert Redactor.from_env().text(listed) == REDACTED
    monkeypatch.delenv("RUNCOST_TEST_TOKEN")
    assert Redactor.from_env().text(second) == second


def test_a_redactor_of_the_environment_redacts_the_extra_names_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """Redactors of one environment with different `extra_names` each redact their own names' values."""
    monkeypatch.setenv("RUNCOST_PLAIN", "plain-value-0042")
    assert Redactor.from_env().text("plain-value-0042") == "plain-value-0042"
    assert Redactor.from_env(extra_names=["RUNCOST_PLAIN"]).text("plain-value-0042") == REDACTED
    assert Redactor.from_env().text("plain-value-0042") == "plain-value-0042"
