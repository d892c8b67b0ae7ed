"""API keys: from the environment, or asked for once in a terminal or notebook, and kept in memory only.

The course's notebooks do ``InferenceClient(token=getpass.getpass("HF token: "))``;
rolegraph does the same when it has to, and no more:

1. the environment variable (``OPENAI_API_KEY``, ``HF_TOKEN``, ...) when it is set;
2. else, a key already typed in this process;
3. else, when a person is there to answer — standard input is a terminal, or the
   code runs in a Jupyter kernel — `getpass` asks for it, once per variable and
   process. The answer lives in this module's memory: it is not put in the
   environment (child processes do not inherit it), not written to any file, and
   every `Redactor` replaces it from then on, so it reaches no trace, log or error;
4. else (CI, scripts, pipes) `MissingKeyError` names the variable to set, and the
   CLI exits 2.

``ROLEGRAPH_NO_PROMPT=1`` turns step 3 off, for terminals that should fail like scripts.
"""

from __future__ import annotations

import getpass
import os
import sys
import threading

from rolegraph.errors import ModelNotAvailableError
from rolegraph.traces.redact import add_secret

__all__ = ["NO_PROMPT_ENV_VAR", "MissingKeyError", "api_key", "can_prompt", "forget_keys"]

NO_PROMPT_ENV_VAR = "ROLEGRAPH_NO_PROMPT"
"""Set to ``1`` to never ask for a key, even in a terminal."""

_TYPED: dict[str, str] = {}
_LOCK = threading.Lock()


class MissingKeyError(ModelNotAvailableError):
    """A model needs a key that is not set, and nobody is there to type it.

    Attributes:
        variable: The environment variable to set.
    """

    def __init__(self, variable: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs an API key: set the {variable} environment variable "
            f"(or run in a terminal to be asked for it)"
        )
        self.variable = variable


def can_prompt() -> bool:
    """Whether a person can be asked: stdin is a terminal, or this is a Jupyter kernel; not if turned off."""
    if os.environ.get(NO_PROMPT_ENV_VAR, "").strip() not in ("", "0"):
        return False
    if "ipykernel" in sys.modules:
        return True
    stdin = sys.stdin
    try:
        return stdin is not None and stdin.isatty()
    except (ValueError, OSError):  # a closed or detached stdin
        return False


def api_key(variable: str, *, required: bool, purpose: str) -> str | None:
    """The key held by `variable`: from the environment, typed earlier, or asked for now.

    Args:
        variable: The environment variable, e.g. ``OPENAI_API_KEY``.
        required: Ask (or fail) when it is missing; otherwise return None.
        purpose: What needs it, for the prompt and the error, e.g. ``model openai:gpt-4o-mini``.

    Raises:
        MissingKeyError: The key is required, missing, and nobody can be asked (or the answer was empty).
    """
    value = os.environ.get(variable, "").strip()
    if value:
        return value
    with _LOCK:  # two models resolved at once must not ask twice
        if variable in _TYPED:
            return _TYPED[variable]
        if not required:
            return None
        if not can_prompt():
            raise MissingKeyError(variable, purpose)
        try:
            typed = getpass.getpass(f"{variable} for {purpose} (hidden; kept in memory for this run only): ").strip()
        except (EOFError, KeyboardInterrupt):
            typed = ""
        if not typed:
            raise MissingKeyError(variable, purpose)
        add_secret(typed)
        _TYPED[variable] = typed
        return typed


def forget_keys() -> None:
    """Drop every key typed in this process (they stay redacted)."""
    with _LOCK:
        _TYPED.clear()
