"""Content modes: what full, metadata and redacted traces keep, per record and for whole scripted runs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from trace_projects import probe_project, probe_script
from typer.testing import CliRunner

import rolegraph
from rolegraph.cli import app
from rolegraph.errors import SpecError
from rolegraph.layout import RunFolder
from rolegraph.traces.content import content_processor, filter_attributes, marker
from rolegraph.traces.export import to_otlp_json
from rolegraph.traces.index_writer import drain
from rolegraph.traces.redact import Redactor
from rolegraph.traces.sinks import MemorySink, read_jsonl
from rolegraph.traces.spans import SpanKind
from rolegraph.traces.store import TraceStore
from rolegraph.traces.tracer import Tracer
from rolegraph.workflows.loader import parse_spec

TOPIC = "moth lattice anomaly"
MARKER = re.compile(r"^\[redacted len=\d+ sha256:[0-9a-f]{12}\]$")


def traced(mode: str) -> list[dict[str, Any]]:
    """The records of one chat span with a prompt, an answer, tool calls, numbers and an error."""
    processor = content_processor(mode)  # type: ignore[arg-type]
    sink = MemorySink()
    tracer = Tracer("r", sinks=[sink], redactor=Redactor(), processors=[processor] if processor else [])
    with (
        pytest.raises(ValueError),
        tracer.span(
            SpanKind.CHAT,
            "chat local",
            gen_ai__request__model="local",
            rolegraph__input__last="What is a moth?",
            rolegraph__input__messages=2,
            rolegraph__tools=["lookup"],
        ) as span,
    ):
        span.record_usage(12, 3)
        span.set(rolegraph__output__tool_calls=[{"name": "lookup", "arguments": '{"q": "moth"}'}])
        raise ValueError("bad answer: 'a moth is'")
    return sink.records


class TestProcessor:
    def test_full_keeps_everything(self) -> None:
        """In full mode the records are as recorded: there is no processor at all."""
        assert content_processor("full") is None
        end = traced("full")[-1]
        assert end["attributes"]["rolegraph.input.last"] == "What is a moth?"
        assert end["error"] == "ValueError: bad answer: 'a moth is'"

    def test_metadata_drops_text_and_keeps_sizes(self) -> None:
        """Metadata keeps names, numbers, tokens and statuses; each text attribute leaves only its size."""
        end = traced("metadata")[-1]
        assert end["attributes"] == {
            "gen_ai.request.model": "local",
            "rolegraph.input.last.size": len("What is a moth?"),
            "rolegraph.input.messages": 2,
            "rolegraph.tools": ["lookup"],
            "gen_ai.usage.input_tokens": 12,
            "gen_ai.usage.output_tokens": 3,
            "rolegraph.output.tool_calls.size": len('[{"name":"lookup","arguments":"{\\"q\\": \\"moth\\"}"}]'),
        }
        assert (end["status"], end["error"], end["name"]) == ("error", "ValueError", "chat local")

    def test_redacted_keeps_shape_and_hashes(self) -> None:
        """Redacted keeps keys, list lengths and numbers; every text becomes a marker of its length and hash."""
        end = traced("redacted")[-1]
        attributes = end["attributes"]
        assert attributes["rolegraph.input.last"] == marker("What is a moth?")
        assert marker("What is a moth?") != marker("What is a moth!")
        assert MARKER.match(attributes["rolegraph.input.last"]) and "len=15 " in attributes["rolegraph.input.last"]
        [call] = attributes["rolegraph.output.tool_calls"]
        assert call == {"name": marker("lookup"), "arguments": marker('{"q": "moth"}')}
        assert (attributes["gen_ai.request.model"], attributes["gen_ai.usage.input_tokens"]) == ("local", 12)
        assert end["error"] == "ValueError: " + marker("ValueError: bad answer: 'a moth is'")

    def test_unknown_string_attributes_are_payload(self) -> None:
        """A string attribute not on the metadata allow-list is dropped; numbers and booleans never are."""
        kept = filter_attributes({"new.text": "secret plan", "new.flag": True, "new.count": 3}, "metadata")
        assert kept == {"new.text.size": 11, "new.flag": True, "new.count": 3}

    def test_unknown_mode(self) -> None:
        """An unknown mode is refused."""
        with pytest.raises(ValueError, match="full, metadata, redacted"):
            content_processor("none")  # type: ignore[arg-type]


def payload_texts(records: list[dict[str, Any]]) -> str:
    return json.dumps(records)


class TestScriptedRuns:
    @pytest.mark.parametrize("mode", ["full", "metadata", "redacted"])
    async def test_trace_index_and_export_follow_the_mode(self, tmp_path: Path, mode: str) -> None:
        """The trace has the task, thoughts, tool payloads and answers only in full mode; index and export agree."""
        path = probe_project(tmp_path / "p", probe_script(TOPIC), settings=f"{{content: {mode}}}")
        result = await rolegraph.load(path).run({"topic": TOPIC}, home=tmp_path / "home")
        assert result.status == "completed", result.error
        records = read_jsonl(result.run_dir / "trace.jsonl")
        spans = {s.span_id: s for s in result.trace.walk()}
        [root] = result.trace.roots
        assert root.attributes["rolegraph.content"] == mode
        tools = [s for s in spans.values() if s.kind == "execute_tool"]
        assert [t.attributes["gen_ai.tool.name"] for t in tools] == ["lookup", "lookup"]
        assert {s.status for s in spans.values()} == {"ok"}
        assert result.trace.usage() == result.usage
        drain(tmp_path / "home" / "index.sqlite")  # the run's end is committed by the writer's next pass
        with TraceStore(tmp_path / "home" / "index.sqlite") as store:
            indexed = json.dumps([s.attributes for s in store.spans(result.run_id)])
        exported = json.dumps(to_otlp_json(result.trace, result.run_id))
        for text in (payload_texts(records), indexed, exported):
            assert (TOPIC in text) is (mode == "full")
        if mode == "metadata":
            assert tools[0].attributes["rolegraph.tool.arguments.size"] == len(json.dumps({"query": TOPIC}))
            assert "rolegraph.tool.result" not in tools[0].attributes
        if mode == "redacted":
            first, second = (t.attributes["rolegraph.tool.arguments"] for t in tools)
            assert first == second == marker(json.dumps({"query": TOPIC}))  # same arguments, same marker
            assert tools[0].attributes["rolegraph.tool.result"] == marker(f"notes about {TOPIC}")
        # The run's own data is not a trace: the step outputs keep their text in every mode.
        assert result.step_outputs["first"] == {"summary": f"about {TOPIC}"}

    async def test_argument_overrides_the_setting(self, tmp_path: Path) -> None:
        """`content=` of `Workflow.run` replaces settings.content; a bad value is a SpecError before the run."""
        path = probe_project(tmp_path / "p", probe_script(TOPIC), settings="{content: full}")
        workflow = rolegraph.load(path)
        result = await workflow.run({"topic": TOPIC}, home=tmp_path / "home", content="metadata")
        assert TOPIC not in (result.run_dir / "trace.jsonl").read_text()
        with pytest.raises(SpecError, match="content must be one of full, metadata, redacted"):
            await workflow.run({"topic": TOPIC}, home=tmp_path / "home2", content="none")  # type: ignore[arg-type]
        assert not (tmp_path / "home2").exists()

    def test_cli_content_option(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """`rolegraph run --content redacted` records markers instead of the task text."""
        path = probe_project(tmp_path / "p", probe_script(TOPIC))
        monkeypatch.setenv("ROLEGRAPH_HOME", str(tmp_path / "home"))
        outcome = CliRunner().invoke(
            app, ["run", str(path), "-q", "--json", "-i", f"topic={TOPIC}", "--content", "redacted"]
        )
        assert outcome.exit_code == 0, outcome.output
        trace = Path(json.loads(outcome.stdout[: outcome.stdout.rindex("}") + 1])["trace"]).read_text()
        assert TOPIC not in trace and "[redacted len=" in trace
        refused = CliRunner().invoke(app, ["run", str(path), "-q", "-i", f"topic={TOPIC}", "--content", "none"])
        assert refused.exit_code == 2


CANARIES = {
    "PROBE_API_KEY": "canary-api-key-7f3a9b",  # secret by its name
    "MY_PASSPHRASE": "canary-passphrase-5e1d2c",  # listed in settings.redact_env
    "PROBE_LISTED": "canary-listed-value-991",  # listed in ROLEGRAPH_REDACT_ENV
}


class TestSecrets:
    @pytest.mark.parametrize("mode", ["full", "metadata", "redacted"])
    async def test_canaries_appear_nowhere(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
        """Secret values in the task, tool calls, results and answers reach no trace, run.json, step file or index."""
        for name, value in CANARIES.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("ROLEGRAPH_REDACT_ENV", "PROBE_LISTED, OTHER_UNSET")
        topic = " ".join(["topic", *CANARIES.values()])
        settings = f"{{content: {mode}, redact_env: [MY_PASSPHRASE]}}"
        path = probe_project(tmp_path / "p", probe_script(topic), settings=settings)
        home = tmp_path / "home"
        result = await rolegraph.load(path).run({"topic": topic}, home=home)
        assert result.status == "completed", result.error
        files = [p for p in home.rglob("*") if p.is_file()]
        assert {"trace.jsonl", "run.json", "steps.jsonl", "index.sqlite"} <= {p.name for p in files}
        for file in files:
            data = file.read_bytes()
            for value in CANARIES.values():
                assert value.encode() not in data, (file, value)
        if mode == "full":
            assert "[REDACTED]" in (result.run_dir / "trace.jsonl").read_text()
            assert "[REDACTED]" in RunFolder(result.run_dir).step_log.read_text()


class TestSettings:
    def test_bad_content_value_is_located(self) -> None:
        """A bad settings.content names file, line and the allowed values."""
        text = "rolegraph: 1\nname: wf\nsteps:\n  a: {role: writer, task: t}\nsettings: {content: secret}\n"
        with pytest.raises(SpecError) as info:
            parse_spec(text, Path("wf.yaml"))
        [problem] = info.value.problems
        assert (problem.location(), problem.path) == ("wf.yaml:5:21", "settings.content")
        assert "'full', 'metadata' or 'redacted'" in problem.message

    def test_bad_env_name_is_located(self) -> None:
        """A settings.redact_env entry that is not a variable name is reported at its place."""
        text = "rolegraph: 1\nname: wf\nsteps:\n  a: {role: writer, task: t}\nsettings: {redact_env: [MY-KEY]}\n"
        with pytest.raises(SpecError) as info:
            parse_spec(text, Path("wf.yaml"))
        [problem] = info.value.problems
        assert (problem.location(), problem.path) == ("wf.yaml:5:25", "settings.redact_env[0]")
