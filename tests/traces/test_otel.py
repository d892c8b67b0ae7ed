"""Live OTLP export: spans reach a loopback OTLP/HTTP receiver as the file export shapes them; collectors that
fail or hang never fail or hold up a run."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from otlp_receiver import OtlpReceiver, attributes
from trace_projects import probe_project, probe_script

import rolegraph
from rolegraph.models.local import local_model_path
from rolegraph.traces.export import otlp_span_id, otlp_trace_id, to_otlp_json
from rolegraph.traces.otel import OtlpSink
from rolegraph.traces.redact import Redactor
from rolegraph.traces.spans import SpanKind
from rolegraph.traces.trace import Trace
from rolegraph.traces.tracer import Tracer

RUN_ID = "20261101-120000-aaaaaa"
TINY_LOCAL_WORKFLOW = """
rolegraph: 1
name: tiny
models: {default: {model: local, max_tokens: 24, seed: 1}}
roles:
  namer:
    instructions: Answer with one word.
    output: {word: string}
steps:
  name: {role: namer, task: Name a colour.}
"""
TOPIC = "moth lattice anomaly"


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    server = OtlpReceiver()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def no_collector_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests configure the exporter themselves, never from the caller's environment."""
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)


def _hex(value: str) -> str:
    return base64.b64decode(value).hex()


def _comparable(span: dict[str, Any]) -> dict[str, Any]:
    """A span in OTLP/JSON terms, ids as hex, attributes by key: the fields both exports must agree on."""
    keys = ("name", "kind", "startTimeUnixNano", "endTimeUnixNano", "status")
    data = {k: span[k] for k in keys if k in span}
    data["attributes"] = {a["key"]: a["value"] for a in span.get("attributes", [])}
    return data


class TestOtlpSink:
    def test_spans_reach_the_collector_as_the_file_export_has_them(
        self, receiver: OtlpReceiver, records: list[dict[str, Any]]
    ) -> None:
        """Every span arrives at POST /v1/traces with derived ids, parent links, typed attributes and the resource."""
        sink = OtlpSink.from_env(
            RUN_ID, {"rolegraph.workflow": "demo"}, env={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url}
        )
        assert sink is not None
        for record in records:
            sink.emit(record)
        assert sink.close() is True
        assert set(receiver.paths) == {"/v1/traces"}
        assert {r["service.name"] for r in receiver.resources()} == {"rolegraph"}
        assert {(r["rolegraph.workflow"], r["rolegraph.run_id"]) for r in receiver.resources()} == {("demo", RUN_ID)}
        spans = receiver.spans()
        assert len(spans) == 13 and sink.errors == 0
        assert {s.trace_id.hex() for s in spans} == {otlp_trace_id(RUN_ID)}
        by_id = {s.span_id.hex(): s for s in spans}
        for record in (r for r in records if r["event"] == "span_end"):
            span = by_id[otlp_span_id(RUN_ID, record["span_id"])]
            parent = record["parent_id"]
            assert span.parent_span_id.hex() == (otlp_span_id(RUN_ID, parent) if parent else "")
            assert span.name == record["name"]
        for span in spans:
            usage = {k for k in attributes(span) if k.startswith("gen_ai.usage.")}
            assert usage == ({"gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"} if span.kind == 3 else set())
        [chat] = [s for s in spans if s.name == "chat local"]
        assert attributes(chat)["gen_ai.usage.input_tokens"] == 2000
        assert attributes(chat)["gen_ai.request.model"] == "local"
        [tool] = [
            s
            for s in spans
            if s.name == "execute_tool library_search" and "a" in attributes(s)["rolegraph.tool.arguments"]
        ]
        assert json.loads(attributes(tool)["rolegraph.tool.arguments"]) == {"query": "a"}
        # The file export and the live export are one mapping: same names, kinds, times, status and attributes.
        live = {
            _hex(s["spanId"]): s
            for r in receiver.requests
            for s in _spans(MessageToDict(r, use_integers_for_enums=True))
        }
        for span in _spans(to_otlp_json(Trace(records), RUN_ID)):
            assert _comparable(live[span["spanId"]]) == _comparable(span)
            assert _hex(live[span["spanId"]].get("parentSpanId", "")) == span.get("parentSpanId", "")

    def test_errors_become_error_status(self, receiver: OtlpReceiver, records: list[dict[str, Any]]) -> None:
        """A failed span is exported with status ERROR and its message; a tool error stays OK."""
        for record in records:
            if record["event"] == "span_end" and record["name"] == "chat local":
                record.update(status="error", error="ModelError: down")
        sink = OtlpSink(RUN_ID, exporter=_exporter(receiver.url))
        for record in records:
            sink.emit(record)
        assert sink.close()
        [chat] = [s for s in receiver.spans() if s.name == "chat local"]
        assert (chat.status.code, chat.status.message) == (2, "ModelError: down")
        assert {s.status.code for s in receiver.spans() if s.name != "chat local"} == {1}

    def test_events_join_their_span(self, receiver: OtlpReceiver) -> None:
        """A point event recorded under a span is exported as an event of that span, with its attributes."""
        sink = OtlpSink(RUN_ID, exporter=_exporter(receiver.url))
        tracer = Tracer(RUN_ID, sinks=[sink], redactor=Redactor())
        with tracer.span(SpanKind.INVOKE_WORKFLOW, "invoke_workflow demo"):
            tracer.event("run_resumed", rolegraph__steps_done=2)
        assert sink.close()
        [span] = receiver.spans()
        [event] = span.events
        assert (event.name, {a.key: a.value.int_value for a in event.attributes}) == (
            "run_resumed",
            {"rolegraph.steps_done": 2},
        )
        assert span.start_time_unix_nano <= event.time_unix_nano <= span.end_time_unix_nano

    def test_a_hanging_collector_does_not_hold_the_close(self, records: list[dict[str, Any]]) -> None:
        """With a collector that never answers, `close` gives up after its bounded wait and reports it."""
        held = OtlpReceiver(hold=True)
        try:
            sink = OtlpSink(RUN_ID, exporter=_exporter(held.url, timeout=60), shutdown_timeout_s=0.2)
            for record in records:
                sink.emit(record)
            assert sink.close() is False  # cut short: the export is still waiting on the collector
            assert held.arrived.wait(30) and held.answered == 0
        finally:
            held.close()

    def test_not_configured(self) -> None:
        """Without an OTLP endpoint (or with the SDK disabled) there is no sink."""
        assert OtlpSink.from_env(RUN_ID, env={}) is None
        assert OtlpSink.from_env(RUN_ID, env={"OTEL_EXPORTER_OTLP_ENDPOINT": "x", "OTEL_SDK_DISABLED": "true"}) is None
        configured = OtlpSink.from_env(
            RUN_ID, env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "ROLEGRAPH_OTLP_SHUTDOWN_TIMEOUT": "0.5"}
        )
        assert configured is not None and configured.shutdown_timeout_s == 0.5
        configured.close()


def _exporter(url: str, timeout: float = 5) -> Any:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=f"{url}/v1/traces", timeout=timeout)


def _spans(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for rs in document["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TestWorkflowRuns:
    async def test_a_run_exports_its_spans_in_its_content_mode(
        self, tmp_path: Path, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With an OTLP endpoint set, every span of a run reaches the collector, minus the text metadata drops."""
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
        path = probe_project(tmp_path / "p", probe_script(TOPIC), settings="{content: metadata}")
        result = await rolegraph.load(path).run({"topic": TOPIC}, home=tmp_path / "home")
        assert result.status == "completed", result.error
        spans = receiver.spans()
        assert sorted(s.name for s in spans) == sorted(s.name for s in result.trace.walk())
        assert {r["rolegraph.workflow"] for r in receiver.resources()} == {"probe"}
        [root] = [s for s in spans if not s.parent_span_id]
        assert (root.name, attributes(root)["rolegraph.content"]) == ("invoke_workflow probe", "metadata")
        chats = [s for s in spans if s.name.startswith("chat ")]
        assert len(chats) == 4 and all(attributes(c)["gen_ai.usage.input_tokens"] > 0 for c in chats)
        assert all(TOPIC.encode() not in body for body in receiver.bodies)

    @pytest.mark.local_model
    async def test_the_embedded_model_is_exported_by_its_name(
        self, tmp_path: Path, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A run on `local` reaches the collector naming the GGUF's model, not `local` (which stays as
        rolegraph.model); the file export says the same."""
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
        path = tmp_path / "tiny.yaml"
        path.write_text(TINY_LOCAL_WORKFLOW)
        result = await rolegraph.load(path).run({}, home=tmp_path / "home")
        assert result.status == "completed", result.error
        name = local_model_path().stem
        [chat] = [s for s in receiver.spans() if attributes(s).get("gen_ai.operation.name") == "chat"]
        assert chat.name == f"chat {name}"
        assert (attributes(chat)["gen_ai.request.model"], attributes(chat)["rolegraph.model"]) == (name, "local")
        assert attributes(chat)["gen_ai.response.model"] == name
        [exported] = [s for s in _spans(to_otlp_json(result.trace, result.run_id)) if s["name"].startswith("chat ")]
        assert _comparable(exported)["name"] == chat.name
        assert {"key": "gen_ai.request.model", "value": {"stringValue": name}} in exported["attributes"]

    async def test_the_export_flush_at_a_runs_end_leaves_the_loop_free(
        self, tmp_path: Path, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A run's end waits for its OTLP flush (bounded) in a worker thread: the loop's other work goes on
        meanwhile. The flush here waits for a task of the loop to run; on the loop's thread it would wait in vain."""
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
        flushing, loop_ran, flushes = threading.Event(), threading.Event(), []
        close = OtlpSink.close

        def waiting_close(sink: OtlpSink) -> bool:
            flushing.set()
            flushes.append(loop_ran.wait(10))
            return close(sink)

        async def other_work() -> None:
            assert await asyncio.to_thread(flushing.wait, 30)
            loop_ran.set()  # only once the loop runs this task again

        monkeypatch.setattr(OtlpSink, "close", waiting_close)
        path = probe_project(tmp_path / "p", probe_script(TOPIC))
        result, _ = await asyncio.gather(
            rolegraph.load(path).run({"topic": TOPIC}, home=tmp_path / "home"), other_work()
        )
        assert result.status == "completed", result.error
        assert flushes == [True]
        assert sorted(s.name for s in receiver.spans()) == sorted(s.name for s in result.trace.walk())

    @pytest.mark.parametrize("collector", ["closed port", "hanging"])
    async def test_an_unreachable_collector_changes_nothing(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, collector: str
    ) -> None:
        """A collector that refuses or never answers leaves the run completed with the same result."""
        path = probe_project(tmp_path / "p", probe_script(TOPIC))
        baseline = await rolegraph.load(path).run({"topic": TOPIC}, home=tmp_path / "home-a")
        held = OtlpReceiver(hold=True) if collector == "hanging" else None
        try:
            monkeypatch.setenv(
                "OTEL_EXPORTER_OTLP_ENDPOINT", held.url if held else f"http://127.0.0.1:{_closed_port()}"
            )
            monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "60")  # longer than any run should wait
            monkeypatch.setenv("ROLEGRAPH_OTLP_SHUTDOWN_TIMEOUT", "0.2")
            result = await rolegraph.load(path).run({"topic": TOPIC}, home=tmp_path / "home-b")
            assert (result.status, result.error) == ("completed", None)
            assert result.step_outputs == baseline.step_outputs
            assert result.usage == baseline.usage
            assert [s.name for s in result.trace.walk()] == [s.name for s in baseline.trace.walk()]
            if held is not None:
                assert held.arrived.wait(30) and held.answered == 0  # the run returned with its export unanswered
        finally:
            if held is not None:
                held.close()
