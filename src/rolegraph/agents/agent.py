"""The agent loop: think, act, observe, until a typed final answer or the step budget runs out.

Each iteration is one `react_step` span holding one `chat` span (the model
call) and one `execute_tool` span per tool call. Tool calls the model asks for
together run concurrently. Nothing a model or tool does raises out of the loop
except a final failure to answer (`AgentError`): unknown tools, malformed
arguments, tool exceptions and timeouts all become error observations the
model sees and can react to.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from rolegraph.agents.call_ids import chat_call_id, tool_call_id
from rolegraph.agents.citations import (
    answer_schema,
    cites_sources,
    constrain_citations,
    find_citations,
    find_quotes,
)
from rolegraph.agents.evidence import quote_problem
from rolegraph.agents.guardrails import CheckCalls, OutputCheck, check_output
from rolegraph.agents.journal import DIGEST_VERSION, CallJournal, RequestDigest, part_digest, request_digest
from rolegraph.agents.model_calls import ANSWER_SETTINGS, CallPath, Conversation, message_json
from rolegraph.agents.roles import Role
from rolegraph.errors import AgentError
from rolegraph.models.cache import RunCache
from rolegraph.models.envelope import final_schema, parse_final
from rolegraph.models.messages import Message, ToolCall, ToolSpec
from rolegraph.models.model import Completion, Model, ModelSettings, Usage
from rolegraph.tools.sources import Source, SourceRegistry
from rolegraph.tools.tool import Tool, ToolResult
from rolegraph.traces.spans import SpanKind
from rolegraph.traces.tracer import Tracer

__all__ = ["Agent", "AgentResult"]

OBSERVATION_MAX_CHARS = 4000
"""Tool output past this many characters is cut before the model sees it."""
_TRACE_TEXT_MAX = 4000

_SHARED_DIGESTS: dict[tuple[str, int], tuple[object, str]] = {}
"""The digests of the request parts hashed last, by part and object id (kept alive with its digest, so
an id is never another object's): the answer schemas are cached and shared by a role's agents (one per
step), and so are a run's model settings (one object per model name) and "no tools" (None), so a chain
of steps hashes each of them once, not at every step's first call."""
_SHARED_DIGESTS_MAX = 64
_NO_USAGE = Usage()
"""A run's usage before its first model call, shared: never returned, as the first call's usage replaces it
as it is (a result is only returned after a call; usages are replaced by sums, never changed in place)."""


def _keep_shared_digest(part: str, kept: tuple[object, str]) -> None:
    """Remember a part's digest for the next agents, the oldest forgotten past `_SHARED_DIGESTS_MAX`."""
    key = (part, id(kept[0]))
    _SHARED_DIGESTS.pop(key, None)
    _SHARED_DIGESTS[key] = kept
    while len(_SHARED_DIGESTS) > _SHARED_DIGESTS_MAX:
        del _SHARED_DIGESTS[next(iter(_SHARED_DIGESTS))]


@dataclass
class AgentResult:
    """What an agent produced.

    Attributes:
        output: The validated final answer, as JSON-ready data.
        thoughts: The thought recorded at each step, in order.
        steps: Model calls made (acting steps, the final answer and repairs).
        tool_calls: Tool calls executed.
        usage: Tokens used by all of the agent's model calls.
        sources: Sources the agent's tool calls retrieved, in order.
    """

    output: dict[str, Any]
    thoughts: list[str] = field(default_factory=list)
    steps: int = 0
    tool_calls: int = 0
    usage: Usage = field(default_factory=Usage)
    sources: list[Source] = field(default_factory=list)


@functools.lru_cache(maxsize=256)
def _system_message(role: Role, with_tools: bool) -> tuple[Message, bytes | None]:
    """A role's system message and its serialised form, made once and shared by the role's agents (one per
    step): the answer's schema travels with each call (constrained decoding or a response format), so the
    prompt only names its fields, as small models copy long schemas. Shared: nothing changes a message."""
    fields = ", ".join(answer_schema(role.output_model).get("properties", {}))
    steps = "call a tool or give your final answer" if with_tools else "give your final answer"
    message = Message.system(
        f"{role.instructions}\n\nEach turn, think briefly, then {steps}. "
        f'The final answer is JSON: {{"thought": ..., "answer": {{{fields}}}}}.'
    )
    try:
        return message, message_json(message)
    except ValueError:  # not serialisable (a lone surrogate): only a digest would need it, and says so then
        return message, None


@functools.lru_cache(maxsize=256)
def _sourceless_final_schema(output_model: type[BaseModel], thought_chars: int) -> dict[str, Any]:
    """The final answer's schema while no source is visible (shared: callers must not mutate it)."""
    return final_schema(constrain_citations(answer_schema(output_model), []), thought_chars)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n[... {len(text) - limit} more characters cut]"


def _validation_summary(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors()[:8]:
        where = ".".join(str(part) for part in error["loc"]) or "(answer)"
        lines.append(f"- {where}: {error['msg']}")
    return "\n".join(lines)


class Agent:
    """One role working on one task with a model and tools.

    ```python
    agent = Agent(BUILTIN_ROLES["researcher"], model, tools=[library_search])
    result = await agent.run("What does LoRA change in a transformer?")
    ```

    Args:
        role: What the agent is told and what it must answer.
        model: The model to think with.
        tools: The tools it may call (normally the role's tools).
        settings: Sampling and limits for its model calls.
        sources: The run's source registry; retrieved sources are added to it.
        tracer: Where spans go; by default nothing is recorded.
        known_sources: Ids the agent may cite without retrieving them (from upstream steps).
        max_steps: Acting steps before the final answer is required (default: the role's).
        max_repairs: Chances to fix an invalid final answer.
        journal: Where calls are looked up before and recorded after they are made (durable
            runs); None: every call is made.
        call_prefix: Prefix of this agent's call ids in the journal (its step, item and visit).
        cache: The model-call cache, when it is on for this agent's model: a call it can answer is
            not made (`rolegraph.models.cache`).
        checks: Output checks a valid answer must pass before it is accepted
            (`rolegraph.agents.guardrails`); a failed one is a repair turn, like an invalid answer.
        check_calls: Where the checks' own model calls go (the run's journals and cache; default:
            they are just made).
    """

    def __init__(
        self,
        role: Role,
        model: Model,
        tools: Sequence[Tool[Any]] = (),
        *,
        settings: ModelSettings | None = None,
        sources: SourceRegistry | None = None,
        tracer: Tracer | None = None,
        known_sources: Iterable[str] = (),
        max_steps: int | None = None,
        max_repairs: int = 1,
        journal: CallJournal | None = None,
        call_prefix: str = "agent",
        cache: RunCache | None = None,
        checks: Sequence[OutputCheck] = (),
        check_calls: CheckCalls | None = None,
    ) -> None:
        self.role = role
        self.model = model
        self.tools = {t.name: t for t in tools}
        self.settings = settings or ModelSettings()
        self.sources = sources if sources is not None else SourceRegistry()
        self.tracer = tracer or Tracer("untraced")
        self.known_sources = list(dict.fromkeys(known_sources))
        self.max_steps = max_steps or role.max_steps
        self.max_repairs = max_repairs
        self.journal = journal
        self.call_prefix = call_prefix
        self.cache = cache
        self.checks = list(checks)
        self.check_calls = check_calls or CheckCalls()
        self._path = CallPath(self.tracer, journal, cache)
        self._answer_schema = answer_schema(role.output_model)
        self._final_schemas: dict[tuple[tuple[str, str | None], ...], dict[str, Any]] = {}
        self._specs = [t.spec() for t in self.tools.values()]
        self._kept_digests: dict[str, tuple[object, str]] = {}

    def _final_schema(self, visible: Sequence[str]) -> dict[str, Any]:
        """The final answer's schema for the sources visible now, rebuilt only when they change.

        Walking and copying the schema on every call was the largest single cost of a step
        (benchmarks/RESULTS.md). With no source visible (every agent's first call) the schema
        is the same for every agent of the role. The key holds each source's text as well as
        its id: a fetched page replaces its search snippet under the same id.
        """
        if not visible:
            return _sourceless_final_schema(self.role.output_model, self.role.thought_chars)
        texts = {i: s.text for i in visible if (s := self.sources.get(i)) is not None}
        key = tuple((i, texts.get(i)) for i in visible)
        schema = self._final_schemas.get(key)
        if schema is None:
            constrained = constrain_citations(self._answer_schema, visible, texts)
            schema = self._final_schemas[key] = final_schema(constrained, self.role.thought_chars)
        return schema

    def _conversation(self, task: str) -> Conversation:
        """The conversation a run starts with: the role's (shared) system message, then the task."""
        first = Message.user(self._first_message(task))
        return Conversation([_system_message(self.role, bool(self.tools)), (first, None)])

    def _first_message(self, task: str) -> str:
        if not self.known_sources:
            return task
        listing = []
        for source_id in self.known_sources:
            source = self.sources.get(source_id)
            listing.append(f"- {source_id}: {source.title}" if source else f"- {source_id}")
        return task + "\n\nSources you may cite (by id):\n" + "\n".join(listing)

    async def run(self, task: str, *, trace_attributes: Mapping[str, Any] | None = None) -> AgentResult:
        """Work on `task` until a valid final answer.

        Args:
            task: What to do.
            trace_attributes: Extra attributes for the `invoke_agent` span (e.g. the workflow step).

        Raises:
            AgentError: No valid answer within the step budget and repairs.
            ModelError: The model provider failed.
        """
        visible = list(self.known_sources)
        done_calls: set[tuple[str, str]] = set()
        result = AgentResult(output={}, usage=_NO_USAGE)
        conversation = self._conversation(task)
        repairs_left = self.max_repairs
        acting_steps = 0
        tracer = self.tracer
        with tracer.span(
            SpanKind.INVOKE_AGENT,
            f"invoke_agent {self.role.name}",
            **(self._agent_attributes(task, trace_attributes) if tracer.recording else {}),
        ) as agent_span:
            while True:
                must_answer = acting_steps >= self.max_steps
                must_act = not must_answer and result.tool_calls < self.role.min_tool_calls and bool(self.tools)
                result.steps += 1
                with tracer.span(SpanKind.REACT_STEP, f"react_step {result.steps}") as step_span:
                    step_span.set(rolegraph__step=result.steps, rolegraph__final_only=must_answer)
                    schema = self._final_schema(visible)
                    completion = await self._chat(
                        conversation,
                        schema,
                        tools_allowed=not must_answer,
                        must_act=must_act,
                        call_id=chat_call_id(self.call_prefix, result.steps),
                    )
                    result.usage = completion.usage if result.steps == 1 else result.usage + completion.usage
                    if completion.tool_calls and not must_answer:
                        acting_steps += 1
                        result.thoughts.append(completion.text)
                        step_span.set(rolegraph__thought=completion.text, rolegraph__action="tool_calls")
                        conversation.append(
                            Message.assistant(completion.text, completion.tool_calls, completion.reasoning)
                        )
                        observations = await self._run_tools(completion.tool_calls, done_calls, result.steps)
                        for call, observation in zip(completion.tool_calls, observations, strict=True):
                            result.tool_calls += 1
                            for source in observation.sources:
                                registered = self.sources.add(source)
                                result.sources.append(registered)
                                if registered.id not in visible:
                                    visible.append(registered.id)
                            content = ("ERROR: " if observation.is_error else "") + observation.content
                            conversation.append(Message.tool(call, _clip(content, OBSERVATION_MAX_CHARS)))
                        continue
                    problem = self._check_final(completion, visible, result)
                    if problem is None and self.checks:
                        problem = await check_output(
                            self.checks,
                            result.output,
                            self.tracer,
                            calls=self.check_calls,
                            call_prefix=self.call_prefix,
                            number=result.steps,
                        )
                        if problem is not None:  # not accepted: the answer and its thought are taken back
                            result.thoughts.pop()
                            result.output = {}
                    if problem is None:
                        step_span.set(rolegraph__thought=result.thoughts[-1], rolegraph__action="final_answer")
                        agent_span.set(rolegraph__output=result.output)
                        return result
                    step_span.set(rolegraph__action="invalid_answer", rolegraph__problem=problem)
                    if must_answer:
                        if repairs_left <= 0:
                            raise AgentError(
                                f"{self.role.name}: no valid answer after {result.steps} model calls: {problem}"
                            )
                        repairs_left -= 1
                    else:
                        # A bad reply while the agent may still act costs an acting step, not a repair.
                        acting_steps += 1
                    conversation.append(
                        Message.assistant(_clip(completion.text, OBSERVATION_MAX_CHARS), reasoning=completion.reasoning)
                    )
                    conversation.append(
                        Message.user(f"Your final answer was invalid:\n{problem}\nReply again with a corrected answer.")
                    )

    def _agent_attributes(self, task: str, more: Mapping[str, Any] | None) -> dict[str, Any]:
        """The ``invoke_agent`` span's attributes at its start (worked out only when the span is recorded)."""
        return {
            "gen_ai__operation__name": "invoke_agent",
            "gen_ai__agent__name": self.role.name,
            "rolegraph__task": _clip(task, _TRACE_TEXT_MAX),
            **{k.replace(".", "__"): v for k, v in (more or {}).items()},
        }

    def _check_final(self, completion: Completion, visible: list[str], result: AgentResult) -> str | None:
        """Validate a final answer; on success fill `result` and return None, else say what is wrong.

        No span of its own: the `react_step` span around it records the verdict (``rolegraph.action``,
        and ``rolegraph.problem`` when the answer is sent back), which a `validate_answer` span repeated.
        """
        try:
            thought, answer = parse_final(completion.text)
            validated: BaseModel = self.role.output_model.model_validate(answer)
        except ValidationError as exc:
            problem = _validation_summary(exc)
        except ValueError as exc:
            cut = " (the answer was cut off at max_tokens)" if completion.finish_reason == "length" else ""
            problem = f"the answer is not valid JSON{cut}: {exc}"
        else:
            # Redacted here, so no secret a model repeats reaches checkpoints, outputs or later steps.
            output = self.tracer.redactor.value(validated.model_dump(mode="json"))
            unknown: list[str] = []
            misquoted: list[str] = []
            if cites_sources(self.role.output_model):  # an answer with no citation field cites nothing
                unknown = [c for c in find_citations(self._answer_schema, output) if c not in visible]
                texts = {i: s.text for i in visible if (s := self.sources.get(i)) is not None}
                misquoted = [
                    bad
                    for source_id, quote in find_quotes(self._answer_schema, output)
                    if source_id in visible and (bad := quote_problem(quote, source_id, texts)) is not None
                ]
            if not unknown and not misquoted:
                result.thoughts.append(thought)
                result.output = output
                return None
            if unknown:
                problem = f"cites sources that were never retrieved: {', '.join(sorted(set(unknown)))}"
            else:
                # Evidence must be a whole sentence of the cited source, for every model (evidence.py).
                problem = "\n".join(f"- evidence: {bad}" for bad in list(dict.fromkeys(misquoted))[:3])
        return problem

    def _chat(
        self,
        conversation: Conversation,
        schema: dict[str, Any],
        *,
        tools_allowed: bool,
        must_act: bool,
        call_id: str,
    ) -> Coroutine[Any, Any, Completion]:
        """The model call of one turn, through the call path (not a coroutine of its own: one frame less
        between the agent and its model at every call)."""
        tools = self._specs if tools_allowed and self._specs else None
        settings = self.settings.model_copy(update={"tool_choice": "required"}) if must_act else self.settings
        messages = conversation.messages
        return self._path.complete(
            self.model,
            messages,
            call_id=call_id,
            settings=settings,
            tools=tools,
            schema=schema,
            request=lambda: self._chat_request(conversation, tools, schema, settings),
            attributes={
                "rolegraph__input__messages": len(messages),
                "rolegraph__input__last": _clip(messages[-1].content, _TRACE_TEXT_MAX),
                "rolegraph__tools": [t.name for t in tools or ()],
            }
            if self.tracer.recording
            else None,
        )

    def _chat_request(
        self,
        conversation: Conversation,
        tools: Sequence[ToolSpec] | None,
        schema: dict[str, Any],
        settings: ModelSettings,
    ) -> RequestDigest:
        """The digest of a model call's request (as `rolegraph.agents.model_calls.chat_request`).

        Kept cheap, as it is computed for every call of a durable run: the digests of the
        schema, tools and settings are kept while the same (cached) objects come back.
        """
        return {
            "messages": conversation.digest(),
            "tools": self._kept_digest("tools", tools, lambda: [t.model_dump(mode="json") for t in tools or ()]),
            "schema": self._kept_digest("schema", schema, lambda: schema),
            "settings": self._kept_digest(
                "settings", settings, lambda: settings.model_dump(mode="json", include=set(ANSWER_SETTINGS))
            ),
            "version": DIGEST_VERSION,
        }

    def _kept_digest(self, part: str, value: object, data: Callable[[], Any]) -> str:
        """The digest of `part`, computed from `data()` only when `value` is not the object hashed last time."""
        kept = self._kept_digests.get(part)
        if kept is None or kept[0] is not value:
            # Shared between agents: a schema, the run's settings for a model, or no tools (a list of
            # tool specs is the agent's own, so sharing it would only push the others out).
            sharable = part != "tools" or value is None
            shared = _SHARED_DIGESTS.get((part, id(value))) if sharable else None
            kept = shared if shared is not None and shared[0] is value else (value, part_digest(data()))
            self._kept_digests[part] = kept
            if sharable and shared is not kept:
                _keep_shared_digest(part, kept)
        return kept[1]

    async def _run_tools(self, calls: Sequence[ToolCall], done: set[tuple[str, str]], step: int) -> list[ToolResult]:
        """Run `calls` (asked for by model call `step`) concurrently; `done` holds the calls already made."""
        results: list[ToolResult] = [ToolResult.error("not run")] * len(calls)

        async def one(index: int, call: ToolCall) -> None:
            results[index] = await self._run_tool(call, done, tool_call_id(self.call_prefix, step, index))

        try:
            async with asyncio.TaskGroup() as group:
                for index, call in enumerate(calls):
                    group.create_task(one(index, call))
        except BaseExceptionGroup as failed:
            # Tools never raise (failures are observations); what does is the journal stopping the
            # agent, and callers should see that error itself, not a group around it.
            raise failed.exceptions[0] from None
        return results

    async def _run_tool(self, call: ToolCall, done: set[tuple[str, str]], call_id: str) -> ToolResult:
        with self.tracer.span(
            SpanKind.EXECUTE_TOOL,
            f"execute_tool {call.name}",
            gen_ai__operation__name="execute_tool",
            gen_ai__tool__name=call.name,
            gen_ai__tool__call__id=call.id,
            rolegraph__tool__arguments=_clip(call.arguments, _TRACE_TEXT_MAX),
            rolegraph__call__id=call_id,
        ) as span:
            request = _tool_request(call) if self.journal is not None else None
            recorded = self.journal.get(call_id, request=request) if self.journal is not None else None
            if recorded is not None:
                result = ToolResult.model_validate(recorded)
                done.add(_call_key(call))
                span.set(rolegraph__replayed=True)
            else:
                result = await self._execute(call, done)
                if self.journal is not None:
                    # `data` is for programs, not the model: the agent never reads it, so it is not kept.
                    self.journal.put(call_id, result.model_dump(mode="json", exclude={"data"}), request=request)
            span.set(
                rolegraph__tool__is_error=result.is_error,
                rolegraph__tool__result=_clip(result.content, _TRACE_TEXT_MAX),
                rolegraph__tool__sources=[s.id for s in result.sources],
            )
            if result.is_error:
                span.status = "tool_error"
            return result

    async def _execute(self, call: ToolCall, done: set[tuple[str, str]]) -> ToolResult:
        key = _call_key(call)
        if key in done:
            return ToolResult.error(
                f"you already called {call.name} with these arguments; its result is above. "
                "Use it, call with different arguments, or give your final answer."
            )
        done.add(key)
        tool = self.tools.get(call.name)
        if tool is None:
            names = ", ".join(self.tools) or "none"
            return ToolResult.error(f"unknown tool {call.name!r}; the tools you have are: {names}")
        try:
            args = tool.validate(call.parsed_arguments())
        except ValidationError as exc:
            return ToolResult.error(f"invalid arguments for {call.name}:\n{_validation_summary(exc)}")
        except ValueError as exc:
            return ToolResult.error(f"arguments for {call.name} are not a JSON object: {exc}")
        try:
            async with asyncio.timeout(tool.timeout):
                return await tool(args)
        except TimeoutError:
            return ToolResult.error(f"{call.name} did not finish within {tool.timeout:g}s")
        except Exception as exc:  # any failure of a tool is an observation, never a crash of the run
            return ToolResult.error(f"{call.name} failed: {type(exc).__name__}: {exc}")


def _call_key(call: ToolCall) -> tuple[str, str]:
    """What makes two tool calls the same call: the tool and its arguments, normalised."""
    try:
        return call.name, json.dumps(call.parsed_arguments(), sort_keys=True)
    except ValueError:
        return call.name, call.arguments.strip()


def _tool_request(call: ToolCall) -> RequestDigest:
    """The digest of a tool call's request: the tool and its arguments, normalised."""
    name, arguments = _call_key(call)
    return request_digest(tool=name, arguments=arguments)
