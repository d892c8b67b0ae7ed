"""The runs' channel between the Ray workers and the driver: one trace, one source registry, one journal.

A driver process has one `RunChannel` actor (`channel_for`), pinned to its node and
serving all its runs. A worker running a step sends what the step produces through
it as it happens — trace records, sources, journal entries — without waiting
(`Outbox`: numbered batches, which the actor puts back in order), and asks it for
journal look-ups, which the driver answers from the run's own journal (so a retried
step replays the calls its first attempt recorded, and a resumed run those of earlier
invocations). The driver drains each run's queue in one task (`ChannelPump`), so
records reach the run's sinks in the order each worker sent them.

Worker side: `ForwardSink` (trace records), `ForwardingRegistry` (sources) and
`RemoteJournal` (the call journal), all through the attempt's `Outbox`. Before a
step's task returns it flushes the outbox and says how many messages it sent; the
driver returns the step's outcome once it has taken them all.
"""

from __future__ import annotations

import asyncio
import itertools
import pickle
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from rolegraph.agents.journal import CallJournal, RequestDigest
from rolegraph.models.cache import RunCache
from rolegraph.models.model import Completion
from rolegraph.tools.sources import Source, SourceRegistry
from rolegraph.traces.spans import Span
from rolegraph.traces.tracer import Tracer

__all__ = [
    "ChannelPump",
    "ForwardSink",
    "ForwardedCache",
    "ForwardingRegistry",
    "Outbox",
    "RemoteJournal",
    "RunChannel",
    "channel_for",
]

_POLL_S = 0.5
"""How long one drain waits for records before it returns empty (the pump then asks again)."""

_PENDING_MAX = 256
"""How many unconfirmed batches a worker may have in flight before it waits for the channel."""


@ray.remote(num_cpus=0, max_concurrency=1000)
class RunChannel:
    """The actor: per run, a queue of messages from workers, and the journal questions awaiting the driver's answer.

    One actor serves every run of a driver process (`channel_for`): a run is a key. Workers send
    without waiting (`Outbox`), numbering what each attempt of a step sends; the actor queues an
    attempt's messages in that order whatever order they arrive in.
    """

    def __init__(self) -> None:
        self._queues: dict[str, list[dict[str, Any]]] = {}
        self._arrived: dict[str, asyncio.Event] = {}
        self._sent: dict[str, int] = {}
        self._next: dict[str, int] = {}
        self._held: dict[str, dict[int, tuple[str, list[dict[str, Any]]]]] = {}
        self._answers: dict[str, asyncio.Future[bytes]] = {}

    def _event(self, run: str) -> asyncio.Event:
        if run not in self._arrived:
            self._arrived[run] = asyncio.Event()
        return self._arrived[run]

    async def push(self, run: str, sender: str, seq: int, messages: list[dict[str, Any]]) -> None:
        """Take message batch `seq` of `sender` (one attempt of a step); queue it once those before it are in."""
        held = self._held.setdefault(sender, {})
        held[seq] = (run, messages)
        while self._next.get(sender, 0) in held:
            target, batch = held.pop(self._next.get(sender, 0))
            self._next[sender] = self._next.get(sender, 0) + 1
            self._queues.setdefault(target, []).extend(batch)
            self._sent[target] = self._sent.get(target, 0) + len(batch)
            self._event(target).set()

    async def sent(self, run: str) -> int:
        """How many messages of `run` were ever queued (the driver waits until it has taken that many)."""
        return self._sent.get(run, 0)

    async def drain(self, run: str) -> list[dict[str, Any]]:
        """The run's queued messages (waits up to half a second for one)."""
        if not self._queues.get(run):
            event = self._event(run)
            event.clear()
            try:
                await asyncio.wait_for(event.wait(), _POLL_S)
            except TimeoutError:
                return []
        return self._queues.pop(run, [])

    async def ask(self, run: str, sender: str, seq: int, question: dict[str, Any]) -> bytes:
        """Queue a journal look-up (as batch `seq` of `sender`) and wait for the driver's answer."""
        answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._answers[question["id"]] = answer
        await self.push(run, sender, seq, [{"type": "ask", **question}])
        return await answer

    async def answer(self, question_id: str, reply: bytes) -> None:
        """Answer a look-up."""
        waiting = self._answers.pop(question_id, None)
        if waiting is not None and not waiting.done():
            waiting.set_result(reply)

    async def forget(self, run: str, senders: list[str]) -> None:
        """Drop what is kept for a finished run and its steps' attempts."""
        self._queues.pop(run, None)
        self._arrived.pop(run, None)
        self._sent.pop(run, None)
        for sender in senders:
            self._next.pop(sender, None)
            self._held.pop(sender, None)


_CHANNELS: dict[str, Any] = {}


def channel_for(node_id: str) -> Any:
    """This driver's channel actor (made on first use, on `node_id`, the driver's node; it ends with the driver)."""
    job = ray.get_runtime_context().get_job_id()
    if job not in _CHANNELS:
        strategy = NodeAffinitySchedulingStrategy(node_id, soft=False)
        _CHANNELS[job] = RunChannel.options(scheduling_strategy=strategy).remote()  # type: ignore[attr-defined]
    return _CHANNELS[job]


class Outbox:
    """One attempt of a step call sending to its run's channel: batches go without waiting, numbered in order.

    `flush` waits until the channel has every batch sent so far (a step's task calls it before it returns).
    """

    def __init__(self, channel: Any, run: str) -> None:
        self.channel = channel
        self.run = run
        self.sender = uuid.uuid4().hex
        self.count = 0
        """How many messages this attempt sent."""
        self._seq = itertools.count()
        self._pending: list[Any] = []

    def send(self, messages: list[dict[str, Any]]) -> None:
        """Send messages (not waiting for the channel to take them)."""
        self.count += len(messages)
        tagged = [{**message, "sender": self.sender} for message in messages]
        self._pending.append(self.channel.push.remote(self.run, self.sender, next(self._seq), tagged))
        if len(self._pending) > _PENDING_MAX:
            self.flush()

    def ask(self, question: dict[str, Any]) -> bytes:
        """Ask the driver a journal question, in order after everything sent before; wait for the answer."""
        self.count += 1
        asked = {**question, "sender": self.sender}
        reply: bytes = ray.get(self.channel.ask.remote(self.run, self.sender, next(self._seq), asked))
        return reply

    def flush(self) -> None:
        """Wait until the channel has taken every batch sent."""
        pending, self._pending = self._pending, []
        ray.get(pending)


class ForwardSink:
    """A worker's trace sink: sends each record to the driver, with the node and worker that made it."""

    def __init__(self, outbox: Outbox, dispatch: str, *, node: str, host: str, worker: str) -> None:
        self.outbox = outbox
        self.dispatch = dispatch
        self.node = node
        self.host = host
        self.worker = worker

    def emit(self, record: dict[str, Any]) -> None:
        """Send the record (span records get ``rolegraph.node``, ``rolegraph.host`` and ``rolegraph.worker``)."""
        if "span_id" in record:
            record = {**record, "attributes": {**record.get("attributes", {}), **self.placement}}
        self.outbox.send([{"type": "trace", "dispatch": self.dispatch, "record": record}])

    @property
    def placement(self) -> dict[str, str]:
        """Where the record was made."""
        return {"rolegraph.node": self.node, "rolegraph.host": self.host, "rolegraph.worker": self.worker}


class ForwardingRegistry(SourceRegistry):
    """A worker's source registry: starts from the run's sources and sends each one a tool adds."""

    def __init__(self, outbox: Outbox, sources: Iterable[Source]) -> None:
        self._outbox: Outbox | None = None
        super().__init__(sources)
        self._outbox = outbox

    def add(self, source: Source) -> Source:
        """Register `source` here and in the run's registry."""
        kept = super().add(source)
        if self._outbox is not None:
            self._outbox.send([{"type": "source", "source": source.model_dump(mode="json")}])
        return kept


class ForwardedCache(RunCache):
    """A worker's model-call cache: the run's cache on the driver answers and keeps each call (its home's
    file, its tally of what was saved), so a worker needs no cache file of its own."""

    def __init__(self, outbox: Outbox) -> None:  # no store here: `answer` and `store_answer` ask the driver's
        self.outbox = outbox
        self._ids = itertools.count()

    def answer(self, key: str, model_name: str) -> Completion | None:
        """The driver's cache's answer under `key` (counted there)."""
        reply = self._ask("answer", key, model_name, None)
        return reply if isinstance(reply, Completion) else None

    def store_answer(self, key: str, model_name: str, completion: Completion) -> bool:
        """Keep `completion` in the driver's cache; whether it was."""
        return self._ask("keep", key, model_name, completion) is True

    def close(self) -> None:
        """Nothing to close: the driver's cache stays open for the run."""

    def _ask(self, action: str, key: str, model_name: str, completion: Completion | None) -> Any:
        question = {"id": f"{self.outbox.sender}/cache/{next(self._ids)}", "about": "cache", "action": action}
        return pickle.loads(self.outbox.ask({**question, "key": key, "model": model_name, "completion": completion}))


class RemoteJournal:
    """A worker's call journal: look-ups and records go to the run's journal on the driver."""

    def __init__(self, outbox: Outbox, dispatch: str, step_id: str, model: str) -> None:
        self.outbox = outbox
        self.key = {"dispatch": dispatch, "step_id": step_id, "model": model}
        self._ids = itertools.count()

    def get(self, call_id: str, *, request: RequestDigest | None = None) -> Any | None:
        """The recorded result, as the driver's journal answers (its exception is raised here)."""
        question = {**self.key, "id": f"{self.outbox.sender}/{next(self._ids)}", "call_id": call_id, "about": "journal"}
        reply = pickle.loads(self.outbox.ask({**question, "request": request}))
        if isinstance(reply, BaseException):
            raise reply
        return reply

    def put(self, call_id: str, result: Any, *, request: RequestDigest | None = None) -> None:
        """Record the result in the run's journal."""
        self.outbox.send([{"type": "put", **self.key, "call_id": call_id, "result": result, "request": request}])


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
        run: str,
        *,
        tracer: Tracer,
        sources: SourceRegistry,
        journals: Callable[[str, str], CallJournal] | None,
        cache: RunCache | None = None,
    ) -> None:
        self.channel = channel
        self.run = run
        self.cache = cache
        self.tracer = tracer
        self.sources = sources
        self.journals = journals
        self.dispatches: dict[str, _Dispatch] = {}
        self._taken = 0
        self._taken_from: dict[str, int] = {}
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
        """Stop draining, and drop what the channel keeps for the run."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.channel.forget.remote(self.run, list(self._taken_from))

    async def settle(self, sender: str | None = None, count: int = 0) -> None:
        """Wait until the `count` messages of `sender` (an attempt that returned) have been taken; without
        a sender, until every message the channel queued for the run so far has been."""
        if sender is not None:
            async with self._progress:
                await self._progress.wait_for(lambda: self._taken_from.get(sender, 0) >= count)
            return
        sent: int = await self.channel.sent.remote(self.run)
        async with self._progress:
            await self._progress.wait_for(lambda: self._taken >= sent)

    async def _run(self) -> None:
        while True:
            messages: list[dict[str, Any]] = await self.channel.drain.remote(self.run)
            for message in messages:
                await self._take(message)
            async with self._progress:
                self._taken += len(messages)
                for message in messages:
                    self._taken_from[message["sender"]] = self._taken_from.get(message["sender"], 0) + 1
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
            reply = self._cache(message) if message.get("about") == "cache" else self._ask(message)
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

    def _cache(self, message: dict[str, Any]) -> Any:
        """A worker's cache question, answered by the run's cache (a miss, or not kept, when the run has none)."""
        if self.cache is None:
            return None
        try:
            if message["action"] == "answer":
                return self.cache.answer(message["key"], message["model"])
            return self.cache.store_answer(message["key"], message["model"], message["completion"])
        except Exception:  # the cache never fails a run: a problem is a miss
            return None
