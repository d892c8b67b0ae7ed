"""Output checks: each built-in's verdicts, a check that raises, a judge that answers garbage, and their spans."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rolegraph.agents.guardrails import (
    Blocklist,
    CheckCall,
    FunctionCheck,
    JudgeCheck,
    MaxLength,
    ModerationCheck,
    NoPII,
    OutputCheck,
    Verdict,
    check_output,
)
from rolegraph.models.model import Completion
from rolegraph.models.scripted import ScriptedModel
from rolegraph.traces.sinks import MemorySink
from rolegraph.traces.tracer import Tracer

UNTRACED = Tracer("t")


async def verdict(check: OutputCheck, output: dict[str, Any]) -> Verdict:
    return await check(output, CheckCall(UNTRACED))


class TestNoPII:
    @pytest.mark.parametrize(
        ("text", "what"),
        [
            ("write to ada.lovelace@example.org today", "an email address"),
            ("call +44 20 7946 0958 now", "a phone number"),
            ("call (555) 123-4567", "a phone number"),
            ("the key sk-proj-abcdefghijklmnop1234 works", "an API key"),
            ("token hf_abcdefghijklmnopqrstuvwx", "an API key"),
            ("AKIAIOSFODNN7EXAMPLE", "an API key"),
        ],
    )
    async def test_finds_each_kind_without_echoing_it(self, text: str, what: str) -> None:
        """Each kind is found and named with its field; the value itself is not in the reason."""
        result = await verdict(NoPII(), {"notes": [{"text": text}]})
        assert result == Verdict(False, f"the answer contains {what} in notes[0].text: remove it")

    @pytest.mark.parametrize("text", ["LoRA (Hu et al., 2021) cuts trainable weights 10,000 times.", "see 2106.09685"])
    async def test_ordinary_text_passes(self, text: str) -> None:
        """Years, counts and arXiv ids are not phone numbers."""
        assert await verdict(NoPII(), {"summary": text}) == Verdict(True)


class TestBlocklistAndLength:
    async def test_blocklist_whole_words_any_case(self) -> None:
        """A blocked word in any case fails, naming it; a word containing it does not."""
        check = Blocklist(["miracle", "sure thing"])
        assert (await verdict(check, {"a": "A MIRACLE cure"})).reason == (
            "the answer uses blocked words: 'miracle'; rephrase it"
        )
        assert await verdict(check, {"a": "miracles happen", "b": "surely"}) == Verdict(True)
        assert not (await verdict(check, {"a": ["it is a Sure  thing", "Sure thing."]})).passed

    async def test_max_length_counts_every_string(self) -> None:
        """The text of every field counts together; at the limit passes, past it fails."""
        assert await verdict(MaxLength(6), {"a": "abc", "b": ["def"]}) == Verdict(True)
        assert await verdict(MaxLength(5), {"a": "abc", "b": ["def"]}) == Verdict(
            False, "the answer's text is 6 characters; shorten it to at most 5"
        )


class TestFunctionCheck:
    @pytest.mark.parametrize(
        ("returned", "expected"),
        [
            (None, Verdict(True)),
            (True, Verdict(True)),
            (False, Verdict(False, "the answer did not pass")),
            ("too much jargon", Verdict(False, "too much jargon")),
        ],
    )
    async def test_return_values(self, returned: Any, expected: Verdict) -> None:
        """None/True pass; False fails; a string fails with it as the reason."""
        assert await verdict(FunctionCheck("m:f", lambda answer: returned), {"a": "x"}) == expected

    async def test_async_function_sees_a_copy(self) -> None:
        """An async function is awaited with a copy: changing it does not change the answer."""
        output = {"a": "x"}

        async def meddle(answer: dict[str, Any]) -> str:
            answer["a"] = "changed"
            return "no"

        assert await verdict(FunctionCheck("m:f", meddle), output) == Verdict(False, "no")
        assert output == {"a": "x"}

    async def test_a_raising_check_is_a_failed_check_with_its_message(self) -> None:
        """check_output turns an exception into a failure that carries its message, not a crash."""

        def broken(answer: dict[str, Any]) -> None:
            raise RuntimeError("dictionary not found")

        problem = await check_output([FunctionCheck("m:broken", broken)], {"a": "x"}, UNTRACED)
        assert problem == "check m:broken failed: the check raised RuntimeError: dictionary not found"

    async def test_a_wrong_return_type_fails(self) -> None:
        """A function returning something else (a number) fails the check, saying what to return."""
        problem = await check_output([FunctionCheck("m:f", lambda a: 3)], {"a": "x"}, UNTRACED)
        assert problem == (
            "check m:f failed: the check raised TypeError: returned int; return None or True to pass, "
            "False or a reason to fail"
        )


def judge(*texts: str) -> JudgeCheck:
    return JudgeCheck(ScriptedModel([Completion(text=t) for t in texts], name="scripted:judge"), "No stereotypes.")


class TestJudge:
    async def test_pass_and_fail_with_reason(self) -> None:
        """The judge's verdict and reason come back; it is sent the rule and the answer under the verdict schema."""
        check = judge('{"verdict": "fail", "reason": "It generalises about nurses."}', '{"verdict":"pass","reason":""}')
        assert await verdict(check, {"text": "Nurses are..."}) == Verdict(False, "It generalises about nurses.")
        assert await verdict(check, {"text": "fine"}) == Verdict(True, "the judge scripted:judge said pass")
        model = check.model
        assert isinstance(model, ScriptedModel)
        first = model.calls[0]
        assert "The rule: No stereotypes." in first.messages[0].content
        assert json.loads(first.messages[1].content) == {"text": "Nurses are..."}
        assert first.output_schema is not None and first.output_schema["required"] == ["verdict", "reason"]

    @pytest.mark.parametrize("garbage", ["I think it is fine", '{"verdict": "maybe"}', "[1, 2]", ""])
    async def test_garbage_fails_the_check(self, garbage: str) -> None:
        """A reply that is not a verdict fails the check, quoting what the judge said."""
        result = await verdict(judge(garbage), {"text": "x"})
        assert not result.passed
        assert result.reason.startswith("the judge scripted:judge gave no verdict (it answered ")


class TestModerationCheck:
    async def test_flagged_categories_fail(self) -> None:
        """Flagged categories are named; nothing flagged passes; the classifier gets every string."""
        classifier = ScriptedModel(
            [Completion(text='{"flagged": []}'), Completion(text='{"flagged": ["harassment", "violence"]}')]
        )
        check = ModerationCheck(classifier)
        assert await verdict(check, {"a": "good", "b": ["words"]}) == Verdict(True)
        assert [c.messages[-1].content for c in classifier.calls] == ["good\nwords"]
        assert (await verdict(check, {"a": "bad"})).reason == (
            "the answer was flagged by moderation for: harassment, violence; rewrite it"
        )

    async def test_a_reply_of_another_shape_fails_the_check(self) -> None:
        """A classifier reply that is not {"flagged": [...]} fails the check, quoting it."""
        problem = await check_output([ModerationCheck(ScriptedModel([Completion(text="ok")]))], {"a": "x"}, UNTRACED)
        assert problem == (
            "check moderation failed: the check raised ValueError: "
            "the classifier answered 'ok', not {\"flagged\": [...]}"
        )


class TestSpans:
    async def test_each_check_is_a_run_guardrail_span_with_verdict_and_reason(self) -> None:
        """One run_guardrail span per check, with its name, verdict and reason; a failure marks the span."""
        sink = MemorySink()
        tracer = Tracer("t", sinks=[sink])
        problem = await check_output([MaxLength(100), Blocklist(["x"])], {"a": "x"}, tracer)
        assert problem == "check blocklist failed: the answer uses blocked words: 'x'; rephrase it"
        ends = [r for r in sink.records if r["event"] == "span_end"]
        assert [(r["kind"], r["name"], r["status"]) for r in ends] == [
            ("run_guardrail", "run_guardrail max_length 100", "ok"),
            ("run_guardrail", "run_guardrail blocklist", "failed_check"),
        ]
        assert {k: v for k, v in ends[1]["attributes"].items() if k.startswith("rolegraph.guardrail")} == {
            "rolegraph.guardrail.name": "blocklist",
            "rolegraph.guardrail.verdict": "fail",
            "rolegraph.guardrail.reason": "the answer uses blocked words: 'x'; rephrase it",
        }

    async def test_the_judges_call_is_a_chat_span_under_the_check(self) -> None:
        """A judge's model call is traced as a chat span inside its run_guardrail span, with its tokens."""
        sink = MemorySink()
        tracer = Tracer("t", sinks=[sink])
        await check_output([judge('{"verdict": "pass", "reason": "ok"}')], {"a": "x"}, tracer)
        ends = {r["kind"]: r for r in sink.records if r["event"] == "span_end"}
        assert ends["chat"]["parent_id"] == ends["run_guardrail"]["span_id"]
        assert ends["chat"]["attributes"]["rolegraph.purpose"] == "judge"


class TestAgent:
    async def test_a_failed_check_is_a_repair_turn_in_python(self) -> None:
        """Agent(checks=...) sends a failed check back to the model and accepts the answer that passes."""
        from rolegraph.agents.agent import Agent
        from rolegraph.agents.roles import Role, output_model
        from rolegraph.testing import final

        role = Role(name="scout", instructions="Answer.", output_model=output_model("scout", {"notes": "string"}))
        model = ScriptedModel([final({"notes": "a miracle"}), final({"notes": "a result"})])
        result = await Agent(role, model, checks=[Blocklist(["miracle"])]).run("t")
        assert result.output == {"notes": "a result"}
        assert "check blocklist failed: the answer uses blocked words: 'miracle'" in model.calls[1].messages[-1].content
        model.assert_complete()
