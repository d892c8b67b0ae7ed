"""An agent with a call journal: records each model and tool call under its call id, replays recorded ones."""

from __future__ import annotations

from typing import Any

import pytest

from rolegraph.agents import agent as agent_module
from rolegraph.agents.agent import Agent
from rolegraph.agents.call_ids import chat_call_id, tool_call_id
from rolegraph.agents.journal import RequestDigest, describe_changes, request_changes, request_digest
from rolegraph.agents.model_calls import ANSWER_SETTINGS, chat_request
from rolegraph.agents.roles import BUILTIN_ROLES, Role, output_model
from rolegraph.errors import BudgetExceeded
from rolegraph.models.model import ModelSettings
from rolegraph.testing import ScriptedModel, final, tool_call
from rolegraph.tools.sources import Source, SourceRegistry
from rolegraph.tools.tool import ToolResult, tool
from rolegraph.traces.sinks import MemorySink
from rolegraph.traces.tracer import Tracer

CALLS: list[str] = []
LORA_TEXT = "LoRA trains two small low-rank matrices per layer."


@tool
async def lookup(query: str) -> ToolResult:
    """Find a paper."""
    CALLS.append(query)
    return ToolResult(content=f"[lora] about {query}", sources=[Source(id="lora", title="LoRA", text=LORA_TEXT)])


RESEARCHER = BUILTIN_ROLES["researcher"].model_copy(update={"tools": ("lookup",), "max_steps": 3})
ANSWER = {"claims": [{"source_id": "lora", "evidence": LORA_TEXT, "claim": "LoRA trains small matrices."}]}


class DictJournal:
    """A journal in a dict, recording the order of gets and puts."""

    def __init__(self) -> None:
        self.recorded: dict[str, Any] = {}
        self.log: list[tuple[str, str]] = []

    def get(self, call_id: str, *, request: RequestDigest | None = None) -> Any | None:
        self.log.append(("get", call_id))
        return self.recorded.get(call_id)

    def put(self, call_id: str, result: Any, *, request: RequestDigest | None = None) -> None:
        self.log.append(("put", call_id))
        self.recorded[call_id] = result


def script() -> ScriptedModel:
    return ScriptedModel([tool_call("lookup", query="LoRA"), final(ANSWER, thought="done")])


@pytest.fixture(autouse=True)
def _no_calls() -> None:
    CALLS.clear()


class TestJournal:
    async def test_calls_are_looked_up_then_recorded_under_their_ids(self) -> None:
        """Each model and tool call is asked for first, then recorded, under ids from the agent's prefix."""
        journal = DictJournal()
        await Agent(RESEARCHER, script(), [lookup], journal=journal, call_prefix="r[0]#1").run("Find LoRA.")
        assert journal.log == [
            ("get", "r[0]#1/chat/1"),
            ("put", "r[0]#1/chat/1"),
            ("get", "r[0]#1/tool/1/0"),
            ("put", "r[0]#1/tool/1/0"),
            ("get", "r[0]#1/chat/2"),
            ("put", "r[0]#1/chat/2"),
        ]
        assert journal.recorded["r[0]#1/tool/1/0"]["sources"][0]["id"] == "lora"
        assert (chat_call_id("p", 2), tool_call_id("p", 2, 1)) == ("p/chat/2", "p/tool/2/1")

    async def test_recorded_calls_are_replayed_not_made(self) -> None:
        """A second agent on the same journal gives the same result without calling the model or the tool;
        replayed chat spans say so and carry no gen_ai usage."""
        journal = DictJournal()
        first = await Agent(RESEARCHER, script(), [lookup], journal=journal).run("Find LoRA.")
        sink = MemorySink()
        silent = ScriptedModel([])
        sources = SourceRegistry()
        again = await Agent(
            RESEARCHER, silent, [lookup], journal=journal, sources=sources, tracer=Tracer("t", [sink])
        ).run("Find LoRA.")
        assert (again.output, again.usage, again.tool_calls) == (first.output, first.usage, first.tool_calls)
        assert (silent.calls, CALLS) == ([], ["LoRA"])
        assert sources.ids() == ["lora"]  # a replayed tool result still registers its sources
        ends = [r for r in sink.records if r["event"] == "span_end" and r["kind"] in ("chat", "execute_tool")]
        assert [r["attributes"]["rolegraph.replayed"] for r in ends] == [True, True, True]
        chats = [r["attributes"] for r in ends if r["kind"] == "chat"]
        assert all("gen_ai.usage.input_tokens" not in a for a in chats)
        assert sum(a["rolegraph.replayed.input_tokens"] for a in chats) == first.usage.input_tokens

    async def test_a_journal_can_stop_the_agent(self) -> None:
        """An exception from the journal (a budget that ran out) ends the run before the call is made."""

        class Refusing(DictJournal):
            def get(self, call_id: str, *, request: RequestDigest | None = None) -> Any | None:
                if "/tool/" in call_id:
                    raise BudgetExceeded("max_tool_calls", "run", 0, 0)
                return super().get(call_id, request=request)

        with pytest.raises(BudgetExceeded, match="max_tool_calls is 0"):
            await Agent(RESEARCHER, script(), [lookup], journal=Refusing()).run("Find LoRA.")
        assert CALLS == []


class DigestJournal(DictJournal):
    """Keeps the request digest each call was recorded with."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: dict[str, RequestDigest | None] = {}

    def put(self, call_id: str, result: Any, *, request: RequestDigest | None = None) -> None:
        self.requests[call_id] = request
        super().put(call_id, result, request=request)


class TestRequestDigests:
    async def test_agents_of_a_run_hash_its_settings_and_no_tools_once(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Agents sharing a settings object and calling no tools hash those parts once between them, and
        every call's digest is the one `chat_request` computes from scratch."""
        hashed: list[Any] = []
        counted = agent_module.part_digest

        def counting(data: Any) -> str:
            hashed.append(data)
            return counted(data)

        monkeypatch.setattr(agent_module, "part_digest", counting)
        role = Role(name="rater", instructions="Rate.", output_model=output_model("rater", {"score": "integer"}))
        answer = {"score": 3}
        settings = ModelSettings(seed=11, temperature=0.3)
        journals = []
        for number in range(3):
            model = ScriptedModel([final(answer)])
            journals.append(DigestJournal())
            await Agent(role, model, settings=settings, journal=journals[-1], call_prefix=f"w{number}").run("Write.")
            call = model.calls[0]
            expected = chat_request(call.messages, None, call.output_schema, settings)
            assert journals[-1].requests[f"w{number}/chat/1"] == expected
        assert settings.model_dump(mode="json", include=set(ANSWER_SETTINGS)) in hashed
        assert len(hashed) <= 3  # at most the schema, the settings and "no tools", for three agents


class TestRequestChanges:
    def test_the_parts_that_changed_are_named_in_order(self) -> None:
        """Two digests of one version give the parts that differ; the same or incomparable ones give none."""
        recorded = request_digest(messages=["a"], tools=[], schema={}, settings={})
        edited = request_digest(messages=["b"], tools=[], schema={"x": 1}, settings={})
        assert request_changes(recorded, edited) == ["messages", "schema"]
        assert describe_changes(request_changes(recorded, edited)) == "prompt changed, answer schema changed"
        assert request_changes(recorded, recorded) == []
        assert request_changes(None, edited) == [] and request_changes(recorded, None) == []
        assert request_changes({**recorded, "version": "0"}, edited) == []  # computed another way: not compared
