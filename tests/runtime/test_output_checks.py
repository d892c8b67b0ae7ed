"""Output checks in workflows: a failed check is a repair turn, then a failed step with its message; load errors
at their line; tool and function steps checked too; moderation against a loopback server in OpenAI's wire format."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import openai
import pytest

import rolegraph
from moderation_wire import moderation_body
from projects import isolated_home, write_script
from rolegraph.errors import SpecError
from rolegraph.models.moderation import Moderation
from rolegraph.models.providers import OpenAIProvider
from rolegraph.retry import RetryPolicy
from rolegraph.testing import FaultServer, Status

CHECKS_PY = """
def no_jargon(answer):
    if "synergy" in answer["notes"].lower():
        return "drop the jargon word 'synergy'"


def broken(answer):
    raise ValueError("the glossary file is missing")


def shouty(output):
    return None if output["content"].islower() else "the tool's content must be lower case"

NOT_A_FUNCTION = 3
"""

HEAD = """
rolegraph: 1
name: wf
models: {default: 'scripted:model.yaml', judge: 'scripted:judge.yaml'}
roles:
  scout:
    instructions: Answer.
    output: {notes: string}
    checks: CHECKS
steps:
  a: {role: scout, task: t, max_steps: 1}
"""


def project(folder: Path, checks: str, body: str = HEAD) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "my_checks.py").write_text(CHECKS_PY)
    path = folder / "wf.yaml"
    path.write_text(textwrap.dedent(body).lstrip("\n").replace("CHECKS", checks))
    return path


def answers(*notes: str) -> list[dict[str, Any]]:
    return [{"final": {"notes": n}} for n in notes]


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolated_home(tmp_path, monkeypatch)


class TestAgentSteps:
    async def test_a_failed_check_is_a_repair_turn(self, tmp_path: Path) -> None:
        """The model sees the check's message, answers again, and the second answer is the output; two
        run_guardrail spans for the check, fail then pass."""
        path = project(tmp_path / "p", "[my_checks:no_jargon]")
        write_script(path.parent, "model", answers("Synergy everywhere.", "Plain words."))
        result = await rolegraph.load(path).run()
        assert (result.status, result.steps["a"].output) == ("completed", {"notes": "Plain words."})
        chats = [s for s in result.trace.walk() if s.kind == "chat"]
        assert (
            "check my_checks:no_jargon failed: drop the jargon word 'synergy'"
            in (chats[1].attributes["rolegraph.input.last"])
        )
        guards = [s for s in result.trace.walk() if s.name == "run_guardrail my_checks:no_jargon"]
        assert [s.attributes["rolegraph.guardrail.verdict"] for s in guards] == ["fail", "pass"]

    async def test_repairs_run_out_and_the_step_fails_with_the_checks_message(self, tmp_path: Path) -> None:
        """A check failed again after the repair fails the step; its error carries the check's message."""
        path = project(tmp_path / "p", "[{blocklist: [synergy]}]")
        write_script(path.parent, "model", answers("Synergy.", "More synergy.", "Synergy again."))
        wf = rolegraph.load(path)
        result = await wf.run()
        assert result.status == "failed"
        assert result.error is not None
        assert result.error.endswith("check blocklist failed: the answer uses blocked words: 'synergy'; rephrase it")

    async def test_a_check_that_raises_fails_the_answer_not_the_run(self, tmp_path: Path) -> None:
        """A check raising is a failed check with its message: the step fails with it, the run returns."""
        path = project(tmp_path / "p", "[my_checks:broken]")
        write_script(path.parent, "model", answers("One.", "Two.", "Three."))
        result = await rolegraph.load(path).run()
        assert result.status == "failed"
        assert result.error is not None
        assert (
            "check my_checks:broken failed: the check raised ValueError: the glossary file is missing" in result.error
        )

    async def test_judge_from_yaml(self, tmp_path: Path) -> None:
        """A judge on a named model fails the first answer and passes the second."""
        path = project(tmp_path / "p", "[{judge: {model: judge, prompt: No stereotypes.}}]")
        write_script(path.parent, "model", answers("Old people hate phones.", "Some people dislike phones."))
        write_script(
            path.parent,
            "judge",
            [
                {"text": '{"verdict": "fail", "reason": "a stereotype about age"}'},
                {"text": '{"verdict": "pass", "reason": "fine"}'},
            ],
        )
        result = await rolegraph.load(path).run()
        assert result.steps["a"].output == {"notes": "Some people dislike phones."}
        chats = [s.name for s in result.trace.walk() if s.kind == "chat"]
        assert chats == ["chat scripted:model.yaml", "chat scripted:judge.yaml"] * 2

    async def test_judge_garbage_fails_the_step(self, tmp_path: Path) -> None:
        """A judge that never answers a verdict fails the step, quoting it."""
        path = project(tmp_path / "p", "[{judge: {model: judge, prompt: Be kind.}}]")
        write_script(path.parent, "model", answers("One.", "Two.", "Three."))
        write_script(path.parent, "judge", [{"text": "lol"}] * 3)
        result = await rolegraph.load(path).run()
        assert result.status == "failed" and result.error is not None
        assert "the judge scripted:judge.yaml gave no verdict (it answered 'lol')" in result.error

    async def test_step_checks_add_to_the_roles(self, tmp_path: Path) -> None:
        """A step's checks run after its role's."""
        body = HEAD.replace("max_steps: 1}", "max_steps: 1, checks: [{max_length: 5}]}")
        path = project(tmp_path / "p", "[no_pii]", body)
        write_script(path.parent, "model", answers("Too long here.", "Short"))
        result = await rolegraph.load(path).run()
        assert result.steps["a"].output == {"notes": "Short"}
        names = [s.name for s in result.trace.walk() if s.name.startswith("run_guardrail ")]
        assert names == [
            "run_guardrail no_pii",
            "run_guardrail max_length 5",
            "run_guardrail no_pii",
            "run_guardrail max_length 5",
        ]


FUNCTION_STEPS = """
rolegraph: 1
name: wf
steps:
  t: {tool: 'my_tools:echo', args: {text: Hello}, checks: ['my_checks:shouty']}
"""


class TestToolSteps:
    async def test_a_tool_steps_failed_check_fails_the_step(self, tmp_path: Path) -> None:
        """A tool step has no model to repair its output: a failed check fails it with the message."""
        path = project(tmp_path / "p", "", FUNCTION_STEPS)
        (path.parent / "my_tools.py").write_text(
            "from rolegraph.tools.tool import tool\n\n\n@tool\ndef echo(text: str) -> str:\n"
            '    """Echo."""\n    return text\n'
        )
        result = await rolegraph.load(path).run()
        assert result.status == "failed"
        assert result.error is not None
        assert result.error.endswith("step 't': check my_checks:shouty failed: the tool's content must be lower case")


class TestLoad:
    def problems(self, path: Path) -> list[tuple[str, str, str]]:
        with pytest.raises(SpecError) as info:
            rolegraph.load(path)
        return [(p.location().removeprefix(f"{path}:"), p.path, p.message) for p in info.value.problems]

    def test_unknown_word_is_a_schema_error_at_its_line(self, tmp_path: Path) -> None:
        """A misspelt built-in is refused at its line with a did-you-mean."""
        [(where, field, message)] = self.problems(project(tmp_path, "[no_pi]"))
        assert (where, field) == ("8:14", "roles.scout.checks[0]")
        assert "unknown check 'no_pi'; did you mean 'no_pii'?" in message

    def test_function_that_does_not_import_or_is_not_callable(self, tmp_path: Path) -> None:
        """A check function that cannot be imported, or is not a function, is refused at its place."""
        found = self.problems(project(tmp_path, "[my_checks:no_jargn, my_checks:NOT_A_FUNCTION]"))
        assert [(w, f) for w, f, _ in found] == [("8:14", "roles.scout.checks[0]"), ("8:34", "roles.scout.checks[1]")]
        assert "did you mean 'no_jargon'?" in found[0][2]
        assert found[1][2] == "'my_checks:NOT_A_FUNCTION' is a int, not a function"

    def test_judge_on_an_unknown_model(self, tmp_path: Path) -> None:
        """A judge naming neither a model entry nor a model string is refused at its model."""
        [(where, field, message)] = self.problems(project(tmp_path, "[{judge: {model: jduge, prompt: p}}]"))
        assert (where, field) == ("8:30", "roles.scout.checks[0].judge.model")
        assert message.startswith("unknown model string 'jduge'")

    def test_moderation_without_a_key_names_the_variable(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """moderation with no OPENAI_API_KEY (and nobody to ask) is a load error naming the variable."""
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        monkeypatch.setenv("ROLEGRAPH_NO_PROMPT", "1")
        [(where, field, message)] = self.problems(project(tmp_path, "[moderation]"))
        assert (where, field) == ("8:14", "roles.scout.checks[0]")
        assert "needs an API key: set OPENAI_API_KEY" in message

    def test_moderation_with_a_base_url_needs_no_key(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A compatible moderation server needs no key: the workflow loads."""
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        monkeypatch.setenv("ROLEGRAPH_NO_PROMPT", "1")
        rolegraph.load(project(tmp_path, "[{moderation: {base_url: 'http://127.0.0.1:9/v1'}}]"))

    def test_local_only_refuses_a_hosted_judge_and_moderation(self, tmp_path: Path) -> None:
        """Under local_only a judge on openai: and OpenAI's moderation are refused at their places."""
        body = HEAD + "settings: {privacy: local_only}\n"
        path = project(tmp_path, "[{judge: {model: 'openai:gpt-4o-mini', prompt: p}}, moderation]", body)
        found = [(f, m) for _, f, m in self.problems(path) if "local_only" in m]
        assert [f for f, _ in found] == ["roles.scout.checks[0].judge.model", "roles.scout.checks[1]"]
        assert found[0][1].startswith("the judge: settings.privacy is local_only, so model 'openai:gpt-4o-mini'")
        assert "it sends each answer to OpenAI's moderation endpoint" in found[1][1]


class TestModerationEndpoint:
    async def test_wire_format_and_flagged_categories(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """POST /v1/moderations with the model and the text, the key as a bearer token; flagged categories read."""
        monkeypatch.setenv("OPENAI_API_KEY", "sk-moderation-canary-0123456789")
        with FaultServer([Status(200, body=moderation_body(True)), Status(200, body=moderation_body(False))]) as server:
            provider = OpenAIProvider(name="openai", base_url=server.url, require_key=True)
            moderation = Moderation(provider=provider)
            try:
                assert await moderation.classify("you are awful") == ["harassment", "violence"]
                assert await moderation.classify("hello") == []
            finally:
                await moderation.aclose()
        first = server.requests[0]
        assert (first.method, first.path) == ("POST", "/v1/moderations")
        assert first.body == {"model": "omni-moderation-latest", "input": "you are awful"}
        assert first.headers["authorization"] == "Bearer sk-moderation-canary-0123456789"

    async def test_a_500_is_retried_a_401_is_not(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A transient 500 is retried and the answer read; a 401 fails at once with the SDK's error."""
        monkeypatch.setenv("OPENAI_API_KEY", "sk-moderation-canary-0123456789")
        script = [Status(500, body={"error": {"message": "busy"}}), Status(200, body=moderation_body(False))]
        script.append(Status(401, body={"error": {"message": "bad key", "type": "invalid_request_error"}}))
        with FaultServer(script) as server:
            provider = OpenAIProvider(name="openai", base_url=server.url, require_key=True)
            moderation = Moderation(provider=provider, retry=RetryPolicy(attempts=3, initial_delay=0, jitter=0))
            try:
                assert await moderation.classify("hello") == []
                with pytest.raises(openai.AuthenticationError):
                    await moderation.classify("again")
            finally:
                await moderation.aclose()
        assert len(server.requests) == 3

    async def test_a_workflow_with_moderation_on_a_loopback_server(self, tmp_path: Path) -> None:
        """moderation: {base_url} in YAML: a flagged answer is repaired, the clean one accepted."""
        with FaultServer([Status(200, body=moderation_body(True)), Status(200, body=moderation_body(False))]) as server:
            path = project(tmp_path / "p", f"[{{moderation: {{base_url: '{server.url}'}}}}]")
            write_script(path.parent, "model", answers("Insult.", "Polite."))
            result = await rolegraph.load(path).run()
        assert result.steps["a"].output == {"notes": "Polite."}
        guards = [s for s in result.trace.walk() if s.name == "run_guardrail moderation"]
        assert [s.attributes["rolegraph.guardrail.reason"] for s in guards] == [
            "the answer was flagged by moderation for: harassment, violence; rewrite it",
            "",
        ]
