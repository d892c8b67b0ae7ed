"""rolegraph.testing's fault helpers: misbehaving tools and the fault server, as users would use them."""

from __future__ import annotations

import http.client
import json
import math

import pytest

from rolegraph.agents.agent import Agent
from rolegraph.agents.roles import Role, output_model
from rolegraph.testing import (
    GARBAGE,
    Chat,
    FaultServer,
    Reset,
    ScriptedModel,
    Status,
    final,
    garbage_tool,
    hanging_tool,
    raising_tool,
    rate_limited,
    tool_call,
    tool_calls,
)
from rolegraph.tools.tool import FunctionTool

ROLE = Role(
    name="worker",
    instructions="Work.",
    tools=("failing_tool", "hanging_tool", "garbage_tool"),
    output_model=output_model("worker", {"note": "string"}),
    max_steps=3,
)


class TestMisbehavingTools:
    async def test_each_fault_is_an_observation_and_the_agent_answers(self) -> None:
        """Raising, hanging and garbage tools called together: three observations, then the answer is taken."""
        model = ScriptedModel(
            [
                tool_calls([("failing_tool", {}), ("hanging_tool", {"query": "x"}), ("garbage_tool", {})]),
                final({"note": "coped"}),
            ]
        )
        tools = [raising_tool(error="disk on fire"), hanging_tool(timeout=0.01), garbage_tool()]
        result = await Agent(ROLE, model, tools).run("work")
        assert result.output == {"note": "coped"}
        observations = [m.content for m in model.calls[1].messages if m.role == "tool"]
        assert observations == [
            "ERROR: failing_tool failed: RuntimeError: disk on fire",
            "ERROR: hanging_tool did not finish within 0.01s",
            "",  # the first garbage value is the empty string
        ]

    async def test_garbage_cycles_through_its_values(self) -> None:
        """garbage_tool returns each GARBAGE value in turn; the unprintable one makes the call fail."""
        tool = garbage_tool()
        assert isinstance(tool, FunctionTool)
        args = tool.args_model()
        contents = []
        for _ in GARBAGE:
            try:
                contents.append((await tool(args)).content)
            except RuntimeError as exc:
                contents.append(f"raised: {exc}")
        assert contents[3] == "x" * 200_000
        assert contents[5] == json.dumps(math.nan)
        assert contents[-1] == "raised: this value refuses to be printed"

    async def test_exceptions_are_raised_as_given(self) -> None:
        """An exception instance is raised as it is, not wrapped."""
        tool = raising_tool("t", error=PermissionError("no"))
        with pytest.raises(PermissionError, match="no"):
            await tool(tool.args_model())

    def test_scripted_helpers_still_import_from_the_package(self) -> None:
        """`from rolegraph.testing import ScriptedModel, final, tool_call` keeps working."""
        assert tool_call("a", q=1).tool_calls[0].arguments == '{"q": 1}'


def _post(server: FaultServer) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        connection.request(
            "POST", "/v1/chat/completions", body=b'{"x": 1}', headers={"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


class TestFaultServer:
    def test_answers_in_script_order_then_500(self) -> None:
        """Each request takes the next entry; past the end of the script the answer is a 500."""
        with FaultServer([rate_limited(2), Status(418, body="teapot"), Chat("hi")]) as server:
            first, second, third, fourth = (_post(server) for _ in range(4))
        assert (first[0], first[1]["Retry-After"]) == (429, "2")
        assert (second[0], second[2]) == (418, b"teapot")
        assert third[0] == 200 and json.loads(third[2])["choices"][0]["message"]["content"] == "hi"
        assert fourth[0] == 500 and b"exhausted" in fourth[2]
        assert [r.body for r in server.requests] == [{"x": 1}] * 4

    def test_reset_drops_the_connection(self) -> None:
        """A Reset entry closes the connection without an HTTP answer."""
        with FaultServer([Reset()]) as server, pytest.raises((ConnectionError, http.client.HTTPException)):
            _post(server)
