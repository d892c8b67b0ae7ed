"""What tool and function steps share: their one call, journaled, traced and turned into the step's output.

A tool or function step makes one call, with no model. It goes through the
run's call journal like an agent's tool call (call id `step_call_id`, kind
``tool``): a resumed run or a replay gets the recorded result instead of calling
again, the budget counts it as a tool call, and the sources it returned are
restored on resume. The call is traced as an ``execute_tool`` span carrying the
step's id, item and visit.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rolegraph.agents.call_ids import call_prefix, step_call_id
from rolegraph.agents.journal import CallJournal, request_digest
from rolegraph.runtime.scheduler import StepCall
from rolegraph.tools.sources import SourceRegistry
from rolegraph.tools.tool import ToolResult
from rolegraph.traces.spans import SpanKind
from rolegraph.traces.tracer import Tracer

__all__ = ["CallRecord", "journaled_call"]

_TRACE_TEXT_MAX = 4000


@dataclass(frozen=True)
class CallRecord:
    """How a step's call went: its result, and whether it came from the journal."""

    result: ToolResult
    replayed: bool


def _clip(text: str) -> str:
    return text if len(text) <= _TRACE_TEXT_MAX else text[:_TRACE_TEXT_MAX] + " …"


async def journaled_call(
    call: StepCall,
    *,
    name: str,
    arguments: Mapping[str, Any],
    make: Callable[[], Awaitable[ToolResult]],
    sources: SourceRegistry,
    tracer: Tracer,
    journal: CallJournal | None,
    kind: str = "tool",
) -> CallRecord:
    """Make (or replay) a step's one call under an ``execute_tool`` span, and register its sources.

    Args:
        call: The step call.
        name: The tool's name, or ``function <import path>``.
        arguments: The call's arguments, as JSON data (hashed for the journal's request digest).
        make: Makes the call; a failure is an error result, never an exception.
        sources: The run's source registry; the result's sources are added to it.
        tracer: Where the span goes.
        journal: The step's call journal (None: the call is always made).
        kind: ``tool`` or ``function`` (recorded on the span).

    A failed call (an error result) is not recorded, so a resumed run tries it again.
    """
    call_id = step_call_id(call_prefix(call.step_id, call.item_index, call.visit, call.attempt))
    request = request_digest(tool=name, arguments=dict(arguments))
    with tracer.span(
        SpanKind.EXECUTE_TOOL,
        f"execute_tool {name}",
        gen_ai__operation__name="execute_tool",
        gen_ai__tool__name=name,
        rolegraph__step__id=call.step_id,
        rolegraph__step__item=call.item_index,
        rolegraph__step__visit=call.visit,
        rolegraph__step__kind=kind,
        rolegraph__tool__arguments=_clip(_json(arguments)),
        rolegraph__call__id=call_id,
    ) as span:
        recorded = journal.get(call_id, request=request) if journal is not None else None
        if recorded is not None:
            result = ToolResult.model_validate(recorded)
            span.set(rolegraph__replayed=True)
        else:
            result = await make()
            if journal is not None and not result.is_error:
                journal.put(call_id, result.model_dump(mode="json"), request=request)
        for source in result.sources:
            sources.add(source)
        span.set(
            rolegraph__tool__is_error=result.is_error,
            rolegraph__tool__result=_clip(result.content or _json(result.data)),
            rolegraph__tool__sources=[s.id for s in result.sources],
        )
        if result.is_error:
            span.status = "tool_error"
        return CallRecord(result, recorded is not None)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
