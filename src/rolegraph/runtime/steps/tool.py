"""Tool steps: one call of a tool with the step's rendered `args`, no model.

```yaml
search:
  tool: library_search
  for_each: {items: steps.plan.questions, as: question}
  args: {query: "{{ question }} {{ inputs.topic }}", max_results: 4}
```

The step's output is ``{"args", "content", "data", "sources"}``: the validated
arguments, the observation text an agent would have seen, the tool's structured
result, and the ids of the sources it returned (registered in the run's source
registry, so later agents can cite them). A tool that fails, or arguments that do
not fit the tool, fail the step with the reason.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from rolegraph.agents.journal import CallJournal
from rolegraph.errors import StepError
from rolegraph.runtime.scheduler import StepCall, StepOutcome
from rolegraph.runtime.steps.calls import journaled_call
from rolegraph.tools.registry import call_tool
from rolegraph.tools.sources import SourceRegistry
from rolegraph.tools.tool import Tool
from rolegraph.traces.tracer import Tracer

__all__ = ["run_tool_step", "tool_output"]


def tool_output(args: dict[str, Any], content: str, data: Any, source_ids: list[str]) -> dict[str, Any]:
    """A tool step's output (also what a function step that returns a `ToolResult` gives)."""
    return {"args": args, "content": content, "data": data, "sources": source_ids}


def _arguments_problem(step_id: str, tool: Tool[Any], exc: ValidationError) -> str:
    lines = []
    for error in exc.errors()[:8]:
        where = ".".join(str(part) for part in error["loc"]) or "(arguments)"
        lines.append(f"args.{where}: {error['msg']}")
    allowed = ", ".join(tool.args_model.model_fields)
    return f"step {step_id!r}: the arguments do not fit {tool.name} ({allowed}): " + "; ".join(lines)


async def run_tool_step(
    call: StepCall,
    tool: Tool[Any],
    *,
    sources: SourceRegistry,
    tracer: Tracer,
    journal: CallJournal | None,
) -> StepOutcome:
    """Call `tool` once with the call's arguments; the result is the step's output.

    Args:
        call: The step call (its `args` are the rendered arguments).
        tool: The tool.
        sources: The run's source registry.
        tracer: The run's tracer.
        journal: The step's call journal (durable runs).

    The output is redacted like an agent's answer: no secret reaches checkpoints or later steps.

    Raises:
        StepError: The arguments do not fit the tool, or the tool failed.
    """
    try:
        args = tool.args_model.model_validate(call.args or {})
    except ValidationError as exc:
        raise StepError(_arguments_problem(call.step_id, tool, exc)) from None
    arguments = args.model_dump(mode="json")
    record = await journaled_call(
        call,
        name=tool.name,
        arguments=arguments,
        make=lambda: call_tool(tool, args),
        sources=sources,
        tracer=tracer,
        journal=journal,
    )
    result = record.result
    if result.is_error:
        raise StepError(f"step {call.step_id!r}: {tool.name} failed: {result.content}")
    output = tool_output(arguments, result.content, result.data, [s.id for s in result.sources])
    return StepOutcome(output=tracer.redactor.value(output), tool_calls=1)
