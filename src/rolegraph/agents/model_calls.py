"""The one path every model call of a run takes: its journal, the call cache, a ``chat`` span and its usage.

An agent's model calls and an output check's (a judge model, the moderation
endpoint) go the same way, so a check's call is a call of the run like any other::

    path = CallPath(tracer, journal, cache)
    completion = await path.complete(model, messages, call_id="write#1/check/2/0", settings=settings)

In order: the journal is asked first (a resumed run or a replay gets the recorded
answer, and the budget checks that a new call may start); then the cache, when it
is on for the model (a hit costs nothing); then the model. The answer is kept in
the cache if it may answer the same call again, and recorded in the journal after
the span has its usage (recording may stop the run: a budget crossed).
"""

from __future__ import annotations

import asyncio
import contextvars
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter

from rolegraph.agents.journal import DIGEST_VERSION, CallJournal, RequestDigest, part_digest
from rolegraph.errors import ModelError
from rolegraph.models.cache import RunCache
from rolegraph.models.messages import Message, ToolSpec
from rolegraph.models.model import Completion, Model, ModelSettings, Usage
from rolegraph.traces.spans import Span, SpanKind
from rolegraph.traces.tracer import Tracer

__all__ = [
    "ANSWER_SETTINGS",
    "STEP_DEADLINE",
    "CallPath",
    "Conversation",
    "chat_request",
    "messages_digest",
    "settings_digest",
]

_TRACE_TEXT_MAX = 4000

ANSWER_SETTINGS = frozenset({"temperature", "top_p", "seed", "max_tokens", "tool_choice"})
"""The settings that can change a model's answer (a call's timeout and retries cannot)."""

_MESSAGES = TypeAdapter(list[Message])
_MESSAGE = TypeAdapter(Message)

STEP_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("rolegraph_step_deadline", default=None)
"""When the running step's own timer fires (event-loop time), set by the scheduler for each step's task.

A model call whose timeout would end no sooner is not given a timer of its own: the step's fires
first anyway, so one timer per step is armed instead of two."""


def messages_digest(messages: Sequence[Message]) -> str:
    """The digest of a call's messages (serialised by pydantic in one go)."""
    return part_digest(_MESSAGES.dump_json(list(messages)))


class Conversation:
    """An agent's messages, each serialised at most once.

    The digest of a call's messages covers the whole conversation, and a conversation
    grows by a turn or two per call: serialising it whole at every call made a tool-using
    agent's digests quadratic in its turns. `digest` equals `messages_digest` of `messages`
    (messages are not changed once added). Nothing is serialised until a digest is asked for
    (a run without a journal or cache never asks).

    Args:
        messages: The first messages, each with its serialised form when the caller keeps it
            (a role's system message is the same for every step), else None.
    """

    def __init__(self, messages: Iterable[tuple[Message, bytes | None]] = ()) -> None:
        self.messages: list[Message] = []
        """The conversation, in order (what the model is sent)."""
        self._json: list[bytes] = []
        for message, json in messages:
            self.append(message, json)

    def append(self, message: Message, json: bytes | None = None) -> None:
        """Add `message` (`json`: its form serialised by `message_json`, if the caller has it)."""
        if json is not None and len(self._json) == len(self.messages):
            self._json.append(json)
        self.messages.append(message)

    def digest(self) -> str:
        """The digest of the messages so far: `messages_digest`, serialising only the messages added since."""
        self._json.extend(message_json(message) for message in self.messages[len(self._json) :])
        return part_digest(b"[" + b",".join(self._json) + b"]")


def message_json(message: Message) -> bytes:
    """One message serialised as `messages_digest` serialises it within a conversation."""
    return _MESSAGE.dump_json(message)


def settings_digest(settings: ModelSettings) -> str:
    """The digest of the settings that can change the answer."""
    return part_digest(settings.model_dump(mode="json", include=set(ANSWER_SETTINGS)))


def chat_request(
    messages: Sequence[Message],
    tools: Sequence[ToolSpec] | None,
    schema: dict[str, Any] | None,
    settings: ModelSettings,
) -> RequestDigest:
    """The digest of a model call's request (see `rolegraph.agents.journal`)."""
    return {
        "messages": messages_digest(messages),
        "tools": part_digest([t.model_dump(mode="json") for t in tools or ()]),
        "schema": part_digest(schema),
        "settings": settings_digest(settings),
        "version": DIGEST_VERSION,
    }


def _clip(text: str) -> str:
    return text if len(text) <= _TRACE_TEXT_MAX else text[:_TRACE_TEXT_MAX] + " …"


@dataclass(frozen=True)
class CallPath:
    """Where one agent run's (or one check's) model calls go.

    Attributes:
        tracer: Where each call's ``chat`` span goes.
        journal: The run's journal for the calling step and model (None: every call is made).
        cache: The model-call cache, when it is on for the model (None: off).
    """

    tracer: Tracer
    journal: CallJournal | None = None
    cache: RunCache | None = None

    async def complete(
        self,
        model: Model,
        messages: Sequence[Message],
        *,
        call_id: str,
        settings: ModelSettings,
        tools: Sequence[ToolSpec] | None = None,
        schema: dict[str, Any] | None = None,
        request: Callable[[], RequestDigest] | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Completion:
        """The model's answer to `messages`: recorded, cached or asked for, in a ``chat`` span.

        Args:
            model: The model.
            messages: The conversation.
            call_id: The call's id in the journal (`rolegraph.agents.call_ids`).
            settings: Sampling and limits (its timeout bounds the call).
            tools: Tools the model may call.
            schema: The answer's JSON Schema.
            request: Computes the request's digest (default `chat_request`), only when a journal
                or the cache needs it.
            attributes: More attributes for the span (``.`` written as ``__``).

        Raises:
            ModelError: The model failed or did not answer within the timeout.
            BudgetExceeded: The journal stopped the run (before the call, or after recording it).
        """
        tracer = self.tracer
        with tracer.span(
            SpanKind.CHAT,
            f"chat {model.name}",
            **(_chat_attributes(model, settings, call_id, attributes) if tracer.recording else {}),
        ) as span:
            digest = None
            if self.journal is not None or self.cache is not None:
                digest = request() if request is not None else chat_request(messages, tools, schema, settings)
            recorded = self.journal.get(call_id, request=digest) if self.journal is not None else None
            if recorded is not None:
                # Answered from the journal: the tokens were spent (and traced) when the call was made.
                completion = Completion.model_validate(recorded)
                span.set(
                    rolegraph__replayed=True,
                    rolegraph__replayed__input_tokens=completion.usage.input_tokens,
                    rolegraph__replayed__output_tokens=completion.usage.output_tokens,
                    rolegraph__output__text=_clip(completion.text),
                )
                return completion
            completion = await self._answer(model, messages, tools, schema, settings, digest, span)
            if span.recording:
                span.record_usage(completion.usage.input_tokens, completion.usage.output_tokens)
                span.set(
                    gen_ai__response__model=completion.model,
                    gen_ai__response__finish_reasons=[completion.finish_reason],
                    rolegraph__output__text=_clip(completion.text),
                    rolegraph__output__tool_calls=[c.model_dump() for c in completion.tool_calls],
                )
            if self.journal is not None:  # after the span has the usage: a put may stop the run (a budget)
                self.journal.put(call_id, completion.model_dump(mode="json"), request=digest)
        return completion

    async def _answer(
        self,
        model: Model,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] | None,
        schema: dict[str, Any] | None,
        settings: ModelSettings,
        digest: RequestDigest | None,
        span: Span,
    ) -> Completion:
        """The cache's answer (with nothing spent), else the model's, kept in the cache when it may be."""
        cached = self.cache.lookup(model, digest, settings) if self.cache is not None and digest else None
        if cached is not None:
            model.skip_replayed(1)  # a script stays where it would be had the call been made
            span.set(
                rolegraph__cached=True,
                rolegraph__cached__input_tokens=cached.usage.input_tokens,
                rolegraph__cached__output_tokens=cached.usage.output_tokens,
            )
            return cached.model_copy(update={"usage": Usage()})
        completion = await _bounded(
            model, model.complete(messages, tools=tools, output_schema=schema, settings=settings), settings
        )
        if self.cache is not None and digest is not None:
            span.set(rolegraph__cache__kept=self.cache.keep(model, digest, settings, completion))
        return completion


def _chat_attributes(
    model: Model, settings: ModelSettings, call_id: str, more: Mapping[str, Any] | None
) -> dict[str, Any]:
    """A ``chat`` span's attributes at its start (worked out only when the span is recorded)."""
    attributes: dict[str, Any] = {
        "gen_ai__operation__name": "chat",
        "gen_ai__request__model": model.name,
        "gen_ai__request__temperature": settings.temperature,
        "gen_ai__request__seed": settings.seed,
        "gen_ai__request__max_tokens": settings.max_tokens,
        "rolegraph__call__id": call_id,
        **(more or {}),
    }
    if model.model_id != model.name:  # the provider's name for it, for the OTLP export
        attributes["rolegraph__model__id"] = model.model_id
    if model.options:  # how the model was built: its API, inference provider, LoRA adapter
        attributes["rolegraph__model__options"] = model.options
    return attributes


async def _bounded(model: Model, call: Coroutine[Any, Any, Completion], settings: ModelSettings) -> Completion:
    """`call`'s answer within `settings.timeout`, a timer armed only if the call has to wait.

    The call runs up to its first wait with no timer: one that answers at once (a script, a
    provider's own cache) never needed one. A call that would time out no sooner than the step's
    timer (`STEP_DEADLINE`) is given none at all: the step's fires first anyway.

    Raises:
        ModelError: The call did not answer within the timeout.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.timeout
    step_deadline = STEP_DEADLINE.get()
    if step_deadline is not None and deadline >= step_deadline:
        return await call
    rest: Awaitable[Completion] = call
    if type(call) is types.CoroutineType:  # not another awaitable a provider may return: it is awaited whole
        try:
            waiting = call.send(None)
        except StopIteration as answered:
            result: Completion = answered.value
            return result
        rest = _Resumed(call, waiting)
    try:
        async with asyncio.timeout_at(deadline):
            return await rest
    except TimeoutError as exc:
        raise ModelError(f"model {model.name} did not answer within {settings.timeout:g}s") from exc


class _Resumed:
    """Awaits the rest of a coroutine that was run up to its first wait, where it yielded `waiting`.

    What ``await`` does for a coroutine, from its second step on: what the event loop sends or
    throws (a cancellation, a timeout's) goes into the coroutine, what it yields goes to the loop.
    """

    __slots__ = ("_call", "_waiting")

    def __init__(self, call: Coroutine[Any, Any, Completion], waiting: Any) -> None:
        self._call = call
        self._waiting = waiting

    def __await__(self) -> Generator[Any, Any, Completion]:
        call, value = self._call, self._waiting
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                call.close()
                raise
            except BaseException as exc:  # the loop's cancellation: the call must see it, as under await
                try:
                    value = call.throw(exc)
                except StopIteration as answered:
                    result: Completion = answered.value
                    return result
            else:
                try:
                    value = call.send(sent)
                except StopIteration as answered:
                    result = answered.value
                    return result
