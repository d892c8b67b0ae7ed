"""Function steps: one call of a Python function, by import path, with the step's rendered `args`, no model.

```yaml
count:
  function: my_steps:count_words     # my_steps.py next to the workflow file
  args: {text: "{{ steps.write.paragraphs | map(attribute='text') | join(' ') }}"}
  output: {words: integer}           # optional: the return value's fields and types
```

The function may be sync (run in a worker thread, off the event loop, so a function
that blocks never stalls the other steps or the step timeout) or async (awaited on
the loop: no thread hop, about 50 µs a call on a loaded 2-core machine, which a
quick function that does no blocking work saves by being declared ``async def``).
The thread is the default executor's: one dedicated worker thread measured no cheaper
(the hop is the handover between threads, not the pool) and would run the sync
functions of parallel steps one after another.
What it returns is the step's output: a mapping (or a pydantic model) as it is,
a `ToolResult` as a tool step's output (its sources registered, so later agents
can cite them), anything else as ``{"result": value}``. It must be JSON data.
With `output:` the value is validated like a role's answer, and a ``source_id``
field must name a source the run has retrieved.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from rolegraph.agents.citations import answer_schema, find_citations
from rolegraph.agents.journal import CallJournal
from rolegraph.agents.roles import FieldSpec, output_model
from rolegraph.errors import StepError
from rolegraph.imports import import_object
from rolegraph.runtime.scheduler import StepCall, StepOutcome
from rolegraph.runtime.steps.calls import journaled_call
from rolegraph.runtime.steps.tool import tool_output
from rolegraph.tools.sources import SourceRegistry
from rolegraph.tools.tool import ToolResult
from rolegraph.traces.tracer import Tracer

__all__ = ["StepFunction", "run_function_step"]


@dataclass(frozen=True)
class StepFunction:
    """A function step's function, imported once per run, and the output it must give.

    Attributes:
        ref: Its import path.
        fn: The function.
        output_model: The model its return value is validated against (None: any JSON data).
    """

    ref: str
    fn: Callable[..., Any]
    output_model: type[BaseModel] | None = None

    @classmethod
    def load(
        cls, ref: str, *, step_id: str, output: Mapping[str, str | FieldSpec] | None, search_path: Path | None
    ) -> StepFunction:
        """Import `ref` (the workflow's folder searched first) and build its output model.

        Raises:
            ImportPathError: `ref` cannot be imported.
            TypeError: It is not callable.
        """
        fn = import_object(ref, search_path)
        if not callable(fn):
            raise TypeError(f"{ref!r} is a {type(fn).__name__}, not a function")
        return cls(ref, fn).with_output(step_id, output)

    @functools.cached_property
    def signature(self) -> inspect.Signature:
        """The function's signature, worked out once (the arguments of every call are bound to it)."""
        return inspect.signature(self.fn)

    @functools.cached_property
    def is_async(self) -> bool:
        """Whether the function is ``async def`` (awaited on the loop) rather than sync (run in a thread)."""
        return inspect.iscoroutinefunction(self.fn)

    def with_output(self, step_id: str, output: Mapping[str, str | FieldSpec] | None) -> StepFunction:
        """This function with the output model of step `step_id`'s `output:` (None: any JSON data)."""
        if output is None:
            return self if self.output_model is None else replace(self, output_model=None)
        return replace(self, output_model=output_model(step_id, dict(output)))


def _as_data(value: Any, arguments: dict[str, Any]) -> tuple[Any, list[Any]]:
    """The step's output for a return value, and the sources it carries."""
    if isinstance(value, ToolResult):
        return tool_output(arguments, value.content, value.data, [s.id for s in value.sources]), value.sources
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json"), []
    if isinstance(value, Mapping):
        return dict(value), []
    return ({} if value is None else {"result": value}), []


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in error['loc']) or '(output)'}: {error['msg']}" for error in exc.errors()[:8]
    )


async def run_function_step(
    call: StepCall,
    function: StepFunction,
    *,
    sources: SourceRegistry,
    tracer: Tracer,
    journal: CallJournal | None,
) -> StepOutcome:
    """Call the function once with the call's arguments; its (validated) return value is the step's output.

    Raises:
        StepError: The arguments do not fit the function's signature, it raised, or its return
            value is not JSON data or not the declared output.
    """
    args = dict(call.args or {})
    where = f"step {call.step_id!r}: {function.ref}"
    try:
        function.signature.bind(**args)
    except TypeError as exc:
        raise StepError(f"{where} cannot be called with args {sorted(args)}: {exc}") from None

    async def make() -> ToolResult:
        try:
            if function.is_async:
                value = await function.fn(**args)
            else:
                value = await asyncio.to_thread(function.fn, **args)
        except Exception as exc:  # the user's code failed: the step fails with its error, the run decides the rest
            return ToolResult.error(f"raised {type(exc).__name__}: {exc}")
        data, found = _as_data(value, args)
        try:
            data = json.loads(json.dumps(data, allow_nan=False))
        except (TypeError, ValueError) as exc:
            return ToolResult.error(f"returned data that is not JSON ({exc})")
        if function.output_model is not None:
            try:
                data = function.output_model.model_validate(data).model_dump(mode="json")
            except ValidationError as exc:
                return ToolResult.error(f"returned an output that does not fit 'output:': {_problems(exc)}")
            known = {s.id for s in found}
            schema = answer_schema(function.output_model)
            unknown = [c for c in find_citations(schema, data) if c not in known and c not in sources]
            if unknown:
                return ToolResult.error(f"cites sources that were never retrieved: {', '.join(sorted(set(unknown)))}")
        return ToolResult(content="", data=data, sources=found)

    record = await journaled_call(
        call,
        name=f"function {function.ref}",
        arguments=args,
        make=make,
        sources=sources,
        tracer=tracer,
        journal=journal,
        kind="function",
    )
    if record.result.is_error:
        raise StepError(f"{where} {record.result.content}")
    return StepOutcome(output=tracer.redactor.value(record.result.data), tool_calls=1)
