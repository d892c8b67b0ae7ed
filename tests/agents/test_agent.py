"""The agent loop with ScriptedModel: acting, observing, final answers, repairs, and faults."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from rolegraph.agents.agent import Agent
from rolegraph.agents.roles import BUILTIN_ROLES, Quote, Role, SourceId, output_model
from rolegraph.errors import AgentError
from rolegraph.models.model import Completion, Usage
from rolegraph.testing import ScriptedModel, final, text, tool_call, tool_calls
from rolegraph.tools.sources import Source, SourceRegistry
from rolegraph.tools.tool import Tool, ToolResult, tool
from rolegraph.traces.redact import Redactor
from rolegraph.traces.sinks import MemorySink
from rolegraph.traces.trace import Trace
from rolegraph.traces.tracer import Tracer


@tool
async def lookup(query: str) -> ToolResult:
    """Find a paper."""
    key = query.lower().replace(" ", "")
    return ToolResult(
        content=f"[{key}] A paper about {query}",
        sources=[Source(id=key, title=f"On {query}", text=f"Short. The {query} method works well on every task.")],
    )


@tool
def explode(reason: str) -> str:
    """Always fails."""
    raise RuntimeError(f"boom: {reason}")


class Hang(Tool):
    """A tool that never returns."""

    name = "hang"
    description = "Never returns."
    timeout = 0.05

    class Args(BaseModel):
        pass

    args_model = Args

    async def __call__(self, args: BaseModel) -> ToolResult:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


RESEARCHER = BUILTIN_ROLES["researcher"].model_copy(update={"tools": ("lookup",), "max_steps": 3})


def claim(source_id: str) -> dict[str, Any]:
    evidence = f"The {source_id} method works well on every task."
    return {"claims": [{"claim": "It works on every task.", "evidence": evidence, "source_id": source_id}]}


def agent(role: Role, model: ScriptedModel, tools: list[Tool], **kwargs: Any) -> tuple[Agent, MemorySink]:
    sink = MemorySink()
    tracer = Tracer("run", sinks=[sink], redactor=Redactor())
    return Agent(role, model, tools, tracer=tracer, **kwargs), sink


class TestLoop:
    async def test_act_observe_answer(self) -> None:
        """The agent calls a tool, sees the observation, and returns a validated answer citing the source."""
        model = ScriptedModel(
            [tool_call("lookup", thought="search first", query="lora"), final(claim("lora"), "found it")]
        )
        registry = SourceRegistry()
        a, sink = agent(RESEARCHER, model, [lookup], sources=registry)
        result = await a.run("What is LoRA?")
        model.assert_complete()
        assert result.output == claim("lora")
        assert result.thoughts == ["search first", "found it"]
        assert (result.steps, result.tool_calls) == (2, 1)
        assert registry.ids() == ["lora"]
        second_call = model.calls[1].messages
        assert second_call[-1].role == "tool" and "[lora] A paper about lora" in second_call[-1].content
        kinds = [(r["kind"], r["name"]) for r in sink.records if r["event"] == "span_end"]
        assert ("execute_tool", "execute_tool lookup") in kinds
        assert [k for k, _ in kinds].count("chat") == 2

    async def test_usage_is_the_sum_of_every_call(self) -> None:
        """An agent's usage sums its calls' (the first one's taken as it is), leaving each call's own unchanged."""
        acting = Completion(text="search", tool_calls=tool_call("lookup", query="lora").tool_calls)
        acting.usage = Usage(input_tokens=10, output_tokens=2)
        answering = final(claim("lora"), "done")
        answering.usage = Usage(input_tokens=30, output_tokens=5)
        a, _ = agent(RESEARCHER, ScriptedModel([acting, answering]), [lookup])
        result = await a.run("What is LoRA?")
        assert result.usage == Usage(input_tokens=40, output_tokens=7)
        assert (acting.usage, answering.usage) == (
            Usage(input_tokens=10, output_tokens=2),
            Usage(input_tokens=30, output_tokens=5),
        )
        writer = Role(name="w", instructions="Write.", output_model=output_model("w", {"value": "string"}))
        once = final({"value": "v"})
        once.usage = Usage(input_tokens=3, output_tokens=1)
        one, _ = agent(writer, ScriptedModel([once]), [])
        assert (await one.run("Answer at once.")).usage == Usage(input_tokens=3, output_tokens=1)

    async def test_an_untraced_agent_counts_and_answers_as_a_traced_one(self) -> None:
        """With no sink (spans unrecorded) the answer, thoughts, tool calls and usage are those of a traced run,
        whose chat spans carry the same tokens."""

        def script() -> ScriptedModel:
            return ScriptedModel([tool_call("lookup", thought="search", query="lora"), final(claim("lora"), "done")])

        traced, sink = agent(RESEARCHER, script(), [lookup])
        untraced = Agent(RESEARCHER, script(), [lookup], tracer=Tracer("run", redactor=Redactor()))
        seen, unseen = await traced.run("What is LoRA?"), await untraced.run("What is LoRA?")
        assert (unseen.output, unseen.thoughts, unseen.steps, unseen.tool_calls, unseen.usage) == (
            seen.output,
            seen.thoughts,
            seen.steps,
            seen.tool_calls,
            seen.usage,
        )
        assert unseen.usage.input_tokens > 0 and Trace(sink.records).usage() == unseen.usage

    async def test_the_system_prompt_names_the_answer_fields_and_whether_tools_may_be_called(self) -> None:
        """The system message is the role's instructions, what a turn may do and the answer's fields, at every call."""
        role = Role(name="rater", instructions="Rate it.", output_model=output_model("rater", {"score": "integer"}))
        plain = ScriptedModel([final({"score": 1}), final({"score": 2})])
        for task in ("one", "two"):
            await Agent(role, plain).run(task)
        acting = ScriptedModel([tool_call("lookup", query="x"), final({"score": 3})])
        await Agent(role, acting, [lookup]).run("three")
        rule = 'The final answer is JSON: {"thought": ..., "answer": {score}}.'
        assert [c.messages[0].content for c in plain.calls] == [
            f"Rate it.\n\nEach turn, think briefly, then give your final answer. {rule}"
        ] * 2
        assert [c.messages[0].content for c in acting.calls] == [
            f"Rate it.\n\nEach turn, think briefly, then call a tool or give your final answer. {rule}"
        ] * 2
        assert [(m.role, m.content) for m in plain.calls[1].messages[1:]] == [("user", "two")]

    async def test_citation_field_is_an_enum_of_retrieved_ids(self) -> None:
        """The answer schema sent to the model only allows ids of sources retrieved so far."""
        model = ScriptedModel([tool_call("lookup", query="bert"), final(claim("bert"))])
        a, _ = agent(RESEARCHER, model, [lookup])
        await a.run("task")
        before, after = (call.output_schema for call in model.calls)
        assert before is not None and after is not None
        item = after["properties"]["answer"]["properties"]["claims"]["items"]
        # One quotable source: the claim is that source's branch, its citation fixed to the id.
        assert item["properties"]["source_id"]["const"] == "bert"
        first_item = before["properties"]["answer"]["properties"]["claims"]["items"]
        assert "bert" not in first_item["properties"]["source_id"]["enum"]

    async def test_quote_choices_follow_a_source_whose_text_grew(self) -> None:
        """A page fetched under a snippet's id widens the quotes allowed: the schema is not reused stale."""
        texts = iter(["Snippet only.", "Snippet only. The full page says more."])

        @tool
        async def fetch(url: str) -> ToolResult:
            """Fetch a page."""
            return ToolResult(content=url, sources=[Source(id="page", title="Page", text=next(texts))])

        role = RESEARCHER.model_copy(update={"tools": ("fetch",)})
        quote = {"claims": [{"claim": "More.", "evidence": "The full page says more.", "source_id": "page"}]}
        model = ScriptedModel([tool_call("fetch", url="a"), tool_call("fetch", url="b"), final(quote)])
        a, _ = agent(role, model, [fetch])
        result = await a.run("task")
        assert result.output == quote
        schemas = [call.output_schema for call in model.calls]
        assert "The full page says more." not in str(schemas[1])
        assert "The full page says more." in str(schemas[2])

    async def test_parallel_tool_calls_run_concurrently(self) -> None:
        """Several tool calls in one turn all run, concurrently, and each gets its own observation."""
        both_started = asyncio.Barrier(2)

        @tool
        async def meet(name: str) -> str:
            """Waits for the other call."""
            await both_started.wait()  # deadlocks unless the two calls run at the same time
            return f"met {name}"

        role = RESEARCHER.model_copy(update={"tools": ("meet",)})
        model = ScriptedModel([tool_calls([("meet", {"name": "a"}), ("meet", {"name": "b"})]), final({"claims": []})])
        a, _ = agent(role, model, [meet])
        result = await asyncio.wait_for(a.run("task"), timeout=30)
        observations = [m.content for m in model.calls[1].messages if m.role == "tool"]
        assert observations == ["met a", "met b"] and result.tool_calls == 2

    async def test_known_sources_from_upstream_can_be_cited(self) -> None:
        """Sources handed in from upstream steps are listed in the task and citable without a tool call."""
        registry = SourceRegistry([Source(id="hu2021lora", title="LoRA")])
        writer = BUILTIN_ROLES["writer"]
        report = {
            "title": "T",
            "paragraphs": [
                {"citations": ["hu2021lora"], "text": "LoRA is cheap."},
                {"citations": ["hu2021lora"], "text": "It freezes the weights."},
            ],
        }
        model = ScriptedModel([final(report)])
        a, _ = agent(writer, model, [], sources=registry, known_sources=["hu2021lora"])
        result = await a.run("Write it.")
        assert result.output == report
        assert "hu2021lora: LoRA" in model.calls[0].messages[-1].content

    @pytest.mark.parametrize("model_id", ["SmolLM2-135M-Instruct.Q4_1", None])
    async def test_chat_span_names_the_provider_model(self, model_id: str | None) -> None:
        """A chat span keeps the model string as gen_ai.request.model and, when the provider calls the model
        otherwise, records that name as rolegraph.model.id (what the OTLP export reports)."""

        class Named(ScriptedModel):
            @property
            def model_id(self) -> str:
                return model_id or self.name

        model = Named([final({"claims": []})], name="local")
        a, sink = agent(RESEARCHER, model, [lookup])
        await a.run("What is LoRA?")
        [chat] = [r for r in sink.records if r["event"] == "span_end" and r["kind"] == "chat"]
        assert (chat["name"], chat["attributes"]["gen_ai.request.model"]) == ("chat local", "local")
        assert chat["attributes"].get("rolegraph.model.id") == model_id


class TestFaults:
    async def test_unknown_tool_and_bad_arguments_become_observations(self) -> None:
        """An unknown tool, malformed JSON and invalid arguments are error observations, not crashes."""
        model = ScriptedModel(
            [
                tool_call("nope", query="x"),
                Completion(text="", tool_calls=[_raw_call("lookup", "{not json")]),
                tool_call("lookup", wrong=1),
                final({"claims": []}),
            ]
        )
        a, _ = agent(RESEARCHER.model_copy(update={"max_steps": 5}), model, [lookup])
        result = await a.run("task")
        observations = [m.content for m in model.calls[3].messages if m.role == "tool"]
        assert observations[0].startswith("ERROR: unknown tool 'nope'; the tools you have are: lookup")
        assert observations[1].startswith("ERROR: arguments for lookup are not a JSON object")
        assert observations[2].startswith("ERROR: invalid arguments for lookup")
        assert "query: Field required" in observations[2]
        assert result.output == {"claims": []}

    async def test_repeated_identical_call_is_not_run_again(self) -> None:
        """The same tool with the same arguments (however spaced) runs once; the repeat is an error observation."""
        calls = 0

        @tool
        async def count(query: str) -> str:
            """Counts its calls."""
            nonlocal calls
            calls += 1
            return f"result {calls}"

        role = RESEARCHER.model_copy(update={"tools": ("count",)})
        model = ScriptedModel(
            [
                tool_call("count", query="x"),
                Completion(tool_calls=[_raw_call("count", '{ "query" :  "x" }')]),
                final({"claims": []}),
            ]
        )
        a, _ = agent(role, model, [count])
        await a.run("task")
        assert calls == 1
        repeat = model.calls[2].messages[-1].content
        assert repeat.startswith("ERROR: you already called count with these arguments")

    async def test_tool_that_raises_or_hangs(self) -> None:
        """A raising tool and a hanging tool (past its timeout) are error observations; the loop goes on."""
        role = RESEARCHER.model_copy(update={"tools": ("explode", "hang")})
        model = ScriptedModel([tool_calls([("explode", {"reason": "x"}), ("hang", {})]), final({"claims": []})])
        a, sink = agent(role, model, [explode, Hang()])
        await a.run("task")
        observations = [m.content for m in model.calls[1].messages if m.role == "tool"]
        assert observations == [
            "ERROR: explode failed: RuntimeError: boom: x",
            "ERROR: hang did not finish within 0.05s",
        ]
        statuses = {r["name"]: r["status"] for r in sink.records if r["event"] == "span_end"}
        assert statuses["execute_tool explode"] == "tool_error"

    async def test_garbage_then_repair(self) -> None:
        """Garbage costs an acting step; an invalid final answer gets one repair turn with the error."""
        model = ScriptedModel([text("I think the answer is 42"), final({"claims": "many"}), final({"claims": []})])
        a, _ = agent(RESEARCHER.model_copy(update={"max_steps": 1}), model, [lookup])
        result = await a.run("task")
        assert result.output == {"claims": []}
        repair_prompt = model.calls[2].messages[-1].content
        assert repair_prompt.startswith("Your final answer was invalid:") and "claims" in repair_prompt
        assert model.calls[1].tools == []  # past max_steps the model may only answer

    async def test_gives_up_after_bounded_repairs(self) -> None:
        """A model that never answers validly makes the agent fail with AgentError, after a bounded number of calls."""
        model = ScriptedModel(lambda call: text("garbage"))
        a, _ = agent(RESEARCHER.model_copy(update={"max_steps": 2}), model, [lookup])
        with pytest.raises(AgentError, match="no valid answer after 4 model calls"):
            await a.run("task")
        assert len(model.calls) == 4  # 2 acting steps + the final answer + 1 repair

    async def test_citation_of_unretrieved_source_is_rejected(self) -> None:
        """A citation naming a source no tool returned is caught, even from a model that ignores the schema."""
        model = ScriptedModel(lambda call: final(claim("made_up_2024")))
        a, _ = agent(RESEARCHER.model_copy(update={"max_steps": 1}), model, [lookup])
        with pytest.raises(AgentError, match="cites sources that were never retrieved: made_up_2024"):
            await a.run("task")
        assert len(model.calls) == 3  # the acting step, the final answer, one repair


def _raw_call(name: str, arguments: str) -> Any:
    from rolegraph.models.messages import ToolCall

    return ToolCall(id="call_x", name=name, arguments=arguments)


class Field:
    """An output field in full, as a workflow's `OutputField` gives it to `output_model`."""

    def __init__(self, type: str, **bounds: Any) -> None:  # the YAML key's name
        self.type = type
        self.description: str = bounds.pop("description", "")
        self.minimum: float | None = bounds.pop("minimum", None)
        self.maximum: float | None = bounds.pop("maximum", None)
        self.min_items: int | None = bounds.pop("min_items", None)
        self.max_items: int | None = bounds.pop("max_items", None)
        self.values: list[str] | None = bounds.pop("values", None)


class TestUserRoles:
    async def test_bounded_fields_reach_the_model_and_hold(self) -> None:
        """Descriptions and bounds reach the schema the model answers to; an answer out of bounds is sent back
        for repair (a relevance of 100 on a 0-10 scale is not accepted)."""
        model_cls = output_model(
            "rater",
            {
                "relevance": Field("integer", minimum=0, maximum=10, description="How relevant, 0 to 10"),
                "tags": Field("list[string]", min_items=1, max_items=2),
                "verdict": Field("enum", values=["keep", "drop"]),
            },
        )
        role = Role(name="rater", instructions="Rate.", output_model=model_cls)
        model = ScriptedModel(
            [
                final({"relevance": 100, "tags": ["a"], "verdict": "keep"}),
                final({"relevance": 7, "tags": ["a"], "verdict": "keep"}),
            ]
        )
        a, _ = agent(role, model, [])
        result = await a.run("task")
        assert result.output == {"relevance": 7, "tags": ["a"], "verdict": "keep"}
        envelope = model.calls[0].output_schema
        assert envelope is not None
        schema = envelope["properties"]["answer"]
        assert schema["properties"]["relevance"] == {
            "description": "How relevant, 0 to 10",
            "maximum": 10,
            "minimum": 0,
            "title": "Relevance",
            "type": "integer",
        }
        assert (schema["properties"]["tags"]["minItems"], schema["properties"]["tags"]["maxItems"]) == (1, 2)
        assert schema["properties"]["verdict"]["enum"] == ["keep", "drop"]
        assert "relevance" in model.calls[1].messages[-1].content

    async def test_typed_output_fields_from_yaml_types(self) -> None:
        """A user role's output model comes from YAML type names, enums and source ids included."""
        model_cls = output_model(
            "summarizer", {"summary": "string", "stance": "enum[pro, con]", "cites": "list[source_id]"}
        )
        role = Role(name="summarizer", instructions="Summarise.", output_model=model_cls, tools=("lookup",))
        model = ScriptedModel(
            [
                tool_call("lookup", query="x"),
                final({"summary": "ok", "stance": "maybe", "cites": ["x"]}),
                final({"summary": "ok", "stance": "pro", "cites": ["x"]}),
            ]
        )
        a, _ = agent(role, model, [lookup])
        result = await a.run("task")
        assert result.output == {"summary": "ok", "stance": "pro", "cites": ["x"]}
        assert "stance" in model.calls[2].messages[-1].content


PAPER = (
    "LoRA freezes the pretrained weights.\n"
    "It trains two small low-rank matrices per layer. Only these matrices are updated during training."
)


@tool
async def paper(query: str) -> ToolResult:
    """Find the LoRA paper (and a second one)."""
    return ToolResult(
        content="[lora] [qlora]",
        sources=[
            Source(id="lora", title="LoRA", text=PAPER),
            Source(id="qlora", title="QLoRA", text="QLoRA quantizes the frozen base model to four bits."),
        ],
    )


def quoted(evidence: str, source_id: str = "lora") -> dict[str, Any]:
    return {"claims": [{"source_id": source_id, "evidence": evidence, "claim": "LoRA trains small matrices."}]}


class TestEvidence:
    """Evidence must be a whole sentence of the cited source, whatever the model: the grammar is not the only guard."""

    @pytest.mark.parametrize(
        ("evidence", "source_id", "says"),
        [
            (" ", "lora", "the evidence for lora is blank"),
            ("a", "lora", "'a' is too short to be evidence (1 characters, 1 words)"),
            ("LoRA", "lora", "'LoRA' is too short to be evidence"),
            ("two small low-rank matrices per layer", "lora", "is part of a sentence of lora, not a whole one"),
            ("LoRA retrains all the pretrained weights.", "lora", "is not a sentence of lora: copy one"),
            ("QLoRA quantizes the frozen base model to four bits.", "lora", "is a sentence of qlora, not of lora"),
        ],
    )
    async def test_bad_evidence_is_a_repair_turn(self, evidence: str, source_id: str, says: str) -> None:
        """A blank, a word, a fragment, a misquote or another source's sentence is sent back with what is wrong."""
        good = quoted("It trains two small low-rank matrices per layer.")
        model = ScriptedModel([tool_call("paper", query="lora"), final(quoted(evidence, source_id)), final(good)])
        a, sink = agent(RESEARCHER.model_copy(update={"tools": ("paper",)}), model, [paper])
        result = await a.run("task")
        assert result.output == good
        repair = model.calls[2].messages[-1].content
        assert repair.startswith("Your final answer was invalid:\n- evidence: ") and says in repair
        steps = [r["attributes"] for r in sink.records if r["kind"] == "react_step" and r["event"] == "span_end"]
        assert [s["rolegraph.action"] for s in steps] == ["tool_calls", "invalid_answer", "final_answer"]
        assert says in steps[1]["rolegraph.problem"]

    async def test_whitespace_does_not_matter(self) -> None:
        """The right sentence, spaced or wrapped differently and without its stop, is accepted at once."""
        spaced = "It  trains two small\nlow-rank matrices   per layer"
        model = ScriptedModel([tool_call("paper", query="lora"), final(quoted(spaced))])
        a, _ = agent(RESEARCHER.model_copy(update={"tools": ("paper",)}), model, [paper])
        result = await a.run("task")
        model.assert_complete()
        assert result.steps == 2

    async def test_a_model_that_keeps_misquoting_fails(self) -> None:
        """Misquotes past the repair budget fail the agent with the last problem in the error."""
        model = ScriptedModel([tool_call("paper", query="lora"), final(quoted("LoRA")), final(quoted("LoRA"))])
        a, _ = agent(RESEARCHER.model_copy(update={"tools": ("paper",), "max_steps": 1}), model, [paper])
        with pytest.raises(AgentError, match="'LoRA' is too short to be evidence"):
            await a.run("task")

    async def test_a_python_role_with_a_quote_field_is_held_to_it(self) -> None:
        """A user's own output model with a SourceId and a Quote is validated like the researcher's claims."""

        class Finding(BaseModel):
            source: SourceId
            quote: Quote
            finding: str

        role = Role(name="reader", instructions="Quote one finding.", output_model=Finding, tools=("paper",))
        bad = {"source": "lora", "quote": "low-rank matrices", "finding": "LoRA is cheap."}
        good = {"source": "lora", "quote": "Only these matrices are updated during training.", "finding": "Cheap."}
        model = ScriptedModel([tool_call("paper", query="lora"), final(bad), final(good)])
        a, _ = agent(role, model, [paper])
        result = await a.run("task")
        assert result.output == good
        assert "'low-rank matrices' is too short to be evidence" in model.calls[2].messages[-1].content
