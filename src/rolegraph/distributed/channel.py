"""The run's channel between the Ray workers and the driver: one trace, one source registry, one journal.

A run on Ray has one `RunChannel` actor, pinned to the driver's node. A worker
running a step sends what the step produces through it as it happens — trace
records, sources, journal entries — and asks it for journal look-ups, which the
driver answers from the run's own journal (so a retried step replays the calls
its first attempt recorded, and a resumed run those of earlier invocations).
The driver drains it in one task (`ChannelPump`), so records reach the run's
sinks in the order each worker sent them.

Worker side: `ForwardSink` (trace records), `ForwardingRegistry` (sources) and
`RemoteJournal` (the call journal). Every send waits for the actor to take it,
so when a step's task returns, all it sent is in the channel.
"""

from __future__ import annotations

import asyncio
import itertools
import pickle
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import ray

from rolegraph.agents.journal import CallJournal, RequestDigest
from rolegraph.tools.sources import Source, SourceRegistry
from rolegraph.traces.spans import Span
from rolegraph.traces.tracer import Tracer

__all__ = ["ChannelPump", "ForwardSink", "ForwardingRegistry", "RemoteJournal", "RunChannel"]

_POLL_S = 0.5
"""How long one drain waits for records before it returns empty (the pump then asks again)."""


@ray.remote(num_cpus=0, max_concurrency=1000)
class RunChannel:
    """The actor: a queue of messages from workers, and the journal questions awaiting the driver's answer."""

    def __init__(self) -> None:
        self._messages: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()
        self._answers: dict[str, asyncio.Future[bytes]] = {}
        self._sent = 0

    async def push(self, messages: list[dict[str, Any]]) -> int:
        """Queue messages; returns how many were ever queued."""
        self._messages.extend(messages)
        self._sent += len(messages)
        self._arrived.set()
        return self._sent

    async def sent(self) -> int:
        """How many messages were ever queued (the driver waits until it has taken that many)."""
        return self._sent

    async def drain(self) -> list[dict[str, Any]]:
        """The queued messages (waits up to half a second for one)."""
        if not self._messages:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), _POLL_S)
            except TimeoutError:
                return []
        messages, self._messages = self._messages, []
        return messages

    async def ask(self, question: dict[str, Any]) -> bytes:
        """Queue a journal look-up and wait for the driver's answer (a pickled value or exception)."""
        answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._answers[question["id"]] = answer
        await self.push([{"type": "ask", **question}])
        return await answer

    async def answer(self, question_id: str, reply: bytes) -> None:
        """Answer a look-up."""
        waiting = self._answers.pop(question_id, None)
        if waiting is not None and not waiting.done():
            waiting.set_result(reply)


def _send(channel: Any, messages: list[dict[str, Any]]) -> None:
    ray.get(channel.push.remote(messages))


class ForwardSink:
    """A worker's trace sink: sends each record to the driver, with the node and worker that made it."""

    def __init__(self, channel: Any, dispatch: str, *, node: str, host: str, worker: str) -> None:
        self.channel = channel
        self.dispatch = dispatch
        self.node = node
        self.host = host
        self.worker = worker

    def emit(self, record: dict[str, Any]) -> None:
        """Send the record (span records get ``rolegraph.node``, ``rolegraph.host`` and ``rolegraph.worker``)."""
        if "span_id" in record:
            record = {**record, "attributes": {**record.get("attributes", {}), **self.placement}}
        _send(self.channel, [{"type": "trace", "dispatch": self.dispatch, "record": record}])

    @property
    def placement(self) -> dict[str, str]:
        """Where the record was made."""
        return {"rolegraph.node": self.node, "rolegraph.host": self.host, "rolegraph.worker": self.worker}


class ForwardingRegistry(SourceRegistry):
    """A worker's source registry: starts from the run's sources and sends each one a tool adds."""

    def __init__(self, channel: Any, sources: Iterable[Source]) -> None:
        self._channel: Any = None
        super().__init__(sources)
        self._channel = channel

    def add(self, source: Source) -> Source:
        """Register `source` here and in the run's registry."""
        kept = super().add(source)
        if self._channel is not None:
            _send(self._channel, [{"type": "source", "source": source.model_dump(mode="json")}])
        return kept


class RemoteJournal:
    """A worker's call journal: look-ups and records go to the run's journal on the driver."""

    def __init__(self, channel: Any, dispatch: str, step_id: str, model: str) -> None:
        self.channel = channel
        self.key = {"dispatch": dispatch, "step_id": step_id, "model": model}
        self._ids = itertools.count()

    def get(self, call_id: str, *, request: RequestDigest | None = None) -> Any | None:
        """The recorded result, as the driver's journal answers (its exception is raised here)."""
        question = {**self.key, "id": f"{self.key['dispatch']}/{next(self._ids)}", "call_id": call_id}
        reply = pickle.loads(ray.get(self.channel.ask.remote({**question, "request": request})))
        if isinstance(reply, BaseException):
            raise reply
        return reply

    def put(self, call_id: str, result: Any, *, request: RequestDigest | None = None) -> None:
        """Record the result in the run's journal."""
        _send(self.channel, [{"type": "put", **self.key, "call_id": call_id, "result": result, "request": request}])


@dataclass
class _Dispatch:
    """One step call sent to a worker, as the driver tracks it."""

    parent: Span | None
    journals: dict[str, CallJournal] = field(default_factory=dict)
    failure: BaseException | None = None
    """An error the run's journal raised on a record (a budget ran out); the step fails with it."""


class ChannelPump:
    """The driver's side: takes the channel's messages, in order, into the run's tracer, sources and journal."""

    def __init__(
        self,
        channel: Any,
        *,
        tracer: Tracer,
        sources: SourceRegistry,
        journals: Callable[[str, str], CallJournal] | None,
    ) -> None:
        self.channel = channel
        self.tracer = tracer
        self.sources = sources
        self.journals = journals
        self.dispatches: dict[str, _Dispatch] = {}
        self._taken = 0
        self._progress = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    def open(self, dispatch: str, parent: Span | None) -> None:
        """Track a step call sent to a worker: its records go under `parent`."""
        self.dispatches[dispatch] = _Dispatch(parent=parent)

    def close(self, dispatch: str) -> BaseException | None:
        """Stop tracking a step call; the error the run's journal raised on one of its records, if any."""
        return self.dispatches.pop(dispatch).failure

    def start(self) -> None:
        """Start draining (on the running event loop)."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop draining."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def settle(self) -> None:
        """Wait until every message queued so far has been taken."""
        sent: int = await self.channel.sent.remote()
        async with self._progress:
            await self._progress.wait_for(lambda: self._taken >= sent)

    async def _run(self) -> None:
        while True:
            messages: list[dict[str, Any]] = await self.channel.drain.remote()
            for message in messages:
                await self._take(message)
            async with self._progress:
                self._taken += len(messages)
                self._progress.notify_all()

    async def _take(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "trace":
            self._trace(message["dispatch"], message["record"])
        elif kind == "source":
            self.sources.add(Source.model_validate(message["source"]))
        elif kind == "put":
            self._put(message)
        elif kind == "ask":
            reply = self._ask(message)
            await self.channel.answer.remote(message["id"], pickle.dumps(reply))

    def _trace(self, dispatch: str, record: dict[str, Any]) -> None:
        self.tracer.ingest(record)
        usage = record.get("attributes", {})
        if record.get("event") == "span_end" and "gen_ai.usage.input_tokens" in usage:
            # A chat span's tokens roll up its ancestors, the driver's spans above the step included.
            node = self.dispatches[dispatch].parent if dispatch in self.dispatches else None
            while node is not None:
                node.aggregated_input_tokens += int(usage["gen_ai.usage.input_tokens"])
                node.aggregated_output_tokens += int(usage["gen_ai.usage.output_tokens"])
                node = node.parent

    def _journal(self, message: dict[str, Any]) -> CallJournal | None:
        dispatch = self.dispatches.get(message["dispatch"])
        if self.journals is None or dispatch is None:
            return None
        model = message["model"]
        if model not in dispatch.journals:
            dispatch.journals[model] = self.journals(message["step_id"], model)
        return dispatch.journals[model]

    def _put(self, message: dict[str, Any]) -> None:
        journal = self._journal(message)
        if journal is None:
            return
        try:
            journal.put(message["call_id"], message["result"], request=message["request"])
        except Exception as exc:  # a budget ran out: the step fails with it once its task returns
            self.dispatches[message["dispatch"]].failure = exc

    def _ask(self, message: dict[str, Any]) -> Any:
        dispatch = self.dispatches.get(message["dispatch"])
        if dispatch is not None and dispatch.failure is not None:
            return dispatch.failure
        journal = self._journal(message)
        if journal is None:
            return None
        try:
            return journal.get(message["call_id"], request=message["request"])
        except Exception as exc:
            return exc
