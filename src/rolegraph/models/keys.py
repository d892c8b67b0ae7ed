"""API keys, read from the environment, never from files, never into traces, logs or errors."""

from __future__ import annotations

import os

from rolegraph.errors import ModelNotAvailableError

__all__ = ["MissingKeyError", "api_key"]


class MissingKeyError(ModelNotAvailableError):
    """A model needs a key that is not set.

    Attributes:
        variable: The environment variable to set.
    """

    def __init__(self, variable: str, purpose: str) -> None:
        super().__init__(f"{purpose} needs an API key: set the {variable} environment variable")
        self.variable = variable


def api_key(variable: str, *, required: bool, purpose: str) -> str | None:
    """The key held by the environment variable `variable` (None when unset and not `required`).

    Args:
        variable: The environment variable, e.g. ``OPENAI_API_KEY``.
        required: Fail when it is missing; otherwise return None.
        purpose: What needs it, for the error, e.g. ``model openai:gpt-4o-mini``.

    Raises:
        MissingKeyError: The key is required and missing.
    """
    value = os.environ.get(variable, "").strip()
    if value:
        return value
    if required:
        raise MissingKeyError(variable, purpose)
    return None
