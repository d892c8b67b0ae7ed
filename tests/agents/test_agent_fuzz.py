"""Fuzzing the agent loop: thousands of malformed model outputs, and never an exception but AgentError."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rolegraph.agents.agent import Agent, AgentResult
from rolegraph.agents.roles import BUILTIN_ROLES, Role, output_model
from rolegraph.errors import AgentError
from rolegraph.models.envelope import final_text
from rolegraph.models.messages import ToolCall
from rolegraph.models.model import Completion, ModelSettings, Usage
from rolegraph.testing import ScriptedCall, ScriptedModel, garbage_tool, hanging_tool, raising_tool
from rolegraph.tools.sources import Source
from rolegraph.tools.tool import Tool, ToolResult, tool
from rolegraph.traces.sinks import JsonlSink, read_jsonl
from rolegraph.traces.tracer import Tracer

FUZZ = settings(
    max_examples=int(os.environ.get("ROLEGRAPH_FUZZ_EXAMPLES", "1000")),
    deadline=None,
    derandomize=True,  # the same cases on every run, so CI failures reproduce
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TOOL_NAMES = ("lookup", "failing_tool", "garbage_tool", "hanging_tool")


@tool
async def lookup(query: str) -> ToolResult:
    """Find a paper."""
    return ToolResult(
        content=f"[paper1] A paper about {query}",
        sources=[Source(id="paper1", title="On adapters", text="Adapters work well on small data.")],
    )


def _tools() -> list[Tool]:
    return [
        lookup,
        raising_tool(error="boom sk-fuzz-0123456789abcdefghij"),
        garbage_tool(),
        hanging_tool(timeout=0.001),
    ]


SUMMARY = Role(
    name="summariser",
    instructions="Summarise.",
    tools=TOOL_NAMES,
    output_model=output_model("summariser", {"summary": "string", "cites": "list[source_id]"}),
    max_steps=3,
)
RESEARCHER = BUILTIN_ROLES["researcher"].model_copy(update={"tools": TOOL_NAMES, "max_steps": 3, "min_tool_calls": 1})

# --- strategies -------------------------------------------------------------------------------

any_text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=80)
"""Any code points, lone surrogates and control characters included."""
json_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | any_text
json_value = st.recursive(
    json_leaf, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4), max_leaves=12
)
deep_junk = st.integers(min_value=1, max_value=400).map(lambda n: "[" * n + "1" + "]" * n)
huge = st.integers(min_value=10_000, max_value=100_000).map(lambda n: "x" * n)
envelope = st.builds(lambda answer, thought: final_text(answer, thought), json_value, any_text)
plausible = st.sampled_from(
    [
        final_text({"summary": "Adapters help.", "cites": ["paper1"]}),
        final_text({"summary": "Adapters help.", "cites": ["never-retrieved"]}),
        final_text(
            {"claims": [{"claim": "It works.", "evidence": "Adapters work well on small data.", "source_id": "paper1"}]}
        ),
        final_text({"claims": [{"claim": "It works.", "evidence": "Adapters work well", "source_id": "paper1"}]}),
        final_text({"claims": [{"claim": "It works.", "evidence": "made up quote", "source_id": "paper1"}]}),
        final_text({"claims": []}),
    ]
)
truncated = st.builds(lambda whole, cut: whole[: max(0, int(len(whole) * cut))], plausible | envelope, st.floats(0, 1))
answer_text = st.one_of(
    st.just(""), any_text, truncated, envelope, plausible, deep_junk, huge, json_value.map(json.dumps)
)
arguments = st.one_of(
    st.just(""),
    st.just("{}"),
    st.just('{"query": "adapters"}'),
    st.just('{"query": '),
    st.just("null"),
    st.just("[1, 2]"),
    st.just('{"query": 42}'),
    st.just('{"unexpected": true}'),
    any_text,
    deep_junk,
    st.dictionaries(any_text, json_value, max_size=3).map(json.dumps),
)
tool_name = st.sampled_from(TOOL_NAMES) | st.sampled_from(["", "LOOKUP", "lookup ", "no_such_tool"]) | any_text
call = st.builds(ToolCall, id=st.sampled_from(["", "call_1", "dup"]) | any_text, name=tool_name, arguments=arguments)
completion = st.builds(
    Completion,
    text=answer_text,
    tool_calls=st.lists(call, max_size=4),
    finish_reason=st.sampled_from(["stop", "length", "tool_calls", "content_filter", ""]),
    usage=st.builds(Usage, input_tokens=st.integers(0, 10_000), output_tokens=st.integers(0, 10_000)),
)
script = st.lists(completion, min_size=1, max_size=8)


def _responder(completions: list[Completion]) -> Any:
    """Answers each call with the next completion, cycling: the loop must end on its own budget."""
    turns = itertools.cycle(completions)

    def respond(_call: ScriptedCall) -> Completion:
        return next(turns)

    return respond


def _check_trace(records: list[dict[str, Any]], run_id: str) -> None:
    """Every span started ends once, every parent is a span of the run, and the root is invoke_agent."""
    starts = {r["span_id"]: r for r in records if r["event"] == "span_start"}
    ends = [r for r in records if r["event"] == "span_end"]
    assert sorted(starts) == sorted(r["span_id"] for r in ends)
    assert all(r["run_id"] == run_id for r in records)
    roots = [r for r in ends if r["parent_id"] is None]
    assert [r["kind"] for r in roots] == ["invoke_agent"]
    assert all(r["parent_id"] is None or r["parent_id"] in starts for r in ends)


def _run(role: Role, completions: list[Completion]) -> AgentResult | AgentError:
    """Run one agent on the script, through a real JSONL trace file; its outcome (result or AgentError)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "trace.jsonl"
        sink = JsonlSink(path)
        model = ScriptedModel(_responder(completions))
        agent = Agent(
            role,
            model,
            _tools(),
            tracer=Tracer("fuzz", sinks=[sink]),
            settings=ModelSettings(timeout=5),
            max_repairs=2,
        )
        try:
            outcome: AgentResult | AgentError = asyncio.run(agent.run("Summarise what is known about adapters."))
        except AgentError as exc:
            outcome = exc
        finally:
            sink.close()
        _check_trace(read_jsonl(path), "fuzz")
        assert len(model.calls) <= role.max_steps + 1 + 2  # acting steps, the final call, the repairs
        return outcome


def _check_result(role: Role, outcome: AgentResult | AgentError) -> None:
    if isinstance(outcome, AgentResult):
        role.output_model.model_validate(outcome.output)
        assert outcome.steps >= 1
    else:
        assert str(outcome).startswith(f"{role.name}: no valid answer after")


class TestFuzz:
    @FUZZ
    @given(completions=script)
    def test_malformed_outputs_end_in_a_result_or_agent_error(self, completions: list[Completion]) -> None:
        """Any sequence of malformed completions ends in a valid result or AgentError, with a whole trace."""
        _check_result(SUMMARY, _run(SUMMARY, completions))

    @settings(FUZZ, max_examples=500)
    @given(completions=script)
    def test_researcher_with_required_tool_calls(self, completions: list[Completion]) -> None:
        """The built-in researcher (evidence quotes, a required tool call) copes with the same junk."""
        _check_result(RESEARCHER, _run(RESEARCHER, completions))

    @settings(FUZZ, max_examples=300)
    @given(junk=st.lists(completion, min_size=0, max_size=3))
    def test_junk_then_a_valid_answer_is_accepted(self, junk: list[Completion]) -> None:
        """Junk calls followed by a valid final answer: the loop keeps going and the answer is taken."""
        good = Completion(text=final_text({"summary": "Adapters help.", "cites": []}))
        outcome = _run(SUMMARY, [*junk, good, good, good])  # up to 3 junk calls fit in max_steps=3
        assert isinstance(outcome, AgentResult)
        assert outcome.output == {"summary": "Adapters help.", "cites": []}
