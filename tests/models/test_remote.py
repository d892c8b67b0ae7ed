"""Every remote model's call: its time limit, and what each kind of failure becomes (`RemoteModel`)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from rolegraph.errors import ModelError
from rolegraph.models.messages import Message, ToolSpec
from rolegraph.models.model import Completion, ModelSettings
from rolegraph.models.providers import Provider
from rolegraph.models.remote import Failure, RemoteModel
from rolegraph.traces.redact import Redactor

SECRET = "sk-canaryRemote0123456789abcdef"


class HTTPError(Exception):
    """What the made-up client raises for an HTTP error (its message echoes the key, as servers do)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status} for key {SECRET}")
        self.status = status


class Service(Provider[None]):
    """A provider with no client: the model below never sends anything."""

    def __init__(self) -> None:
        self.name, self.base_url, self.key_env = "service", None, "SERVICE_KEY"
        self.redactor = Redactor([SECRET])

    @property
    def client(self) -> None:
        return None


class Failing(RemoteModel[Service]):
    """Its protocol raises `error` (after `delay` seconds); its client's errors are `HTTPError`."""

    def __init__(self, error: Exception, delay: float = 0.0) -> None:
        super().__init__("m1", provider=Service(), retry=None, name="service:m1")
        self.error, self.delay = error, delay

    async def _complete(
        self, messages: Sequence[Message], tools: list[ToolSpec], schema: dict[str, Any] | None, settings: ModelSettings
    ) -> Completion:
        await asyncio.sleep(self.delay)
        raise self.error

    def _failure(self, exc: Exception) -> Failure | None:
        return Failure(exc.status, str(exc)) if isinstance(exc, HTTPError) else None


async def failure_of(model: Failing, settings: ModelSettings | None = None) -> ModelError:
    with pytest.raises(ModelError) as raised:
        await model.complete([Message(role="user", content="hi")], settings=settings)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__  # the client's error is not chained
    return raised.value


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (HTTPError(401), "model service:m1 refused the API key (HTTP 401): check the SERVICE_KEY environment variable"),
        (HTTPError(403), "model service:m1 refused the API key (HTTP 403): check the SERVICE_KEY environment variable"),
        (HTTPError(500), "model service:m1 failed: HTTP 500 for key "),
        (KeyError("choices"), "model service:m1 returned a malformed response: KeyError: 'choices'"),
        (IndexError("list index out of range"), "model service:m1 returned a malformed response: IndexError"),
    ],
    ids=["401", "403", "500", "malformed (KeyError)", "malformed (IndexError)"],
)
async def test_a_failed_call_is_one_model_error_without_the_key(error: Exception, expected: str) -> None:
    """A refused key names the variable to check, another client failure says what it was, an unreadable answer
    says so; never with the key in the message."""
    message = str(await failure_of(Failing(error)))
    assert message.startswith(expected) and SECRET not in message


async def test_a_call_past_its_timeout_says_how_long_it_waited() -> None:
    """The call's ``timeout`` bounds it, retries included: a ModelError giving the limit."""
    error = await failure_of(Failing(RuntimeError("never reached"), delay=10), ModelSettings(timeout=0.05))
    assert str(error) == "model service:m1 did not answer within 0.05s"


async def test_an_error_that_is_no_failure_of_the_call_is_raised_as_it_is() -> None:
    """A bug (an exception that is neither the client's nor a misread answer) is not dressed up as a model error."""
    with pytest.raises(RuntimeError, match="a bug"):
        await Failing(RuntimeError("a bug")).complete([Message(role="user", content="hi")])
