"""OTLP/JSON export: request shape, deterministic ids, parent links, typed attributes, status and unfinished spans."""

from __future__ import annotations

import re
from typing import Any

from rolegraph.traces.export import attribute_value, otlp_any_value, otlp_span_id, otlp_trace_id, to_otlp_json
from rolegraph.traces.trace import Trace

RUN_ID = "20261101-120000-aaaaaa"
VALUE_KEYS = {"stringValue", "intValue", "doubleValue", "boolValue", "arrayValue"}


def _spans(document: dict[str, Any]) -> list[dict[str, Any]]:
    [resource_spans] = document["resourceSpans"]
    [scope_spans] = resource_spans["scopeSpans"]
    assert scope_spans["scope"]["name"] == "rolegraph"
    spans: list[dict[str, Any]] = scope_spans["spans"]
    return spans


class TestOtlpJson:
    def test_structure(self, records: list[dict[str, Any]]) -> None:
        """Every span has 32/16-hex ids, a parent inside the trace (but the root), times as strings, typed values."""
        document = to_otlp_json(Trace(records), RUN_ID, {"rolegraph.workflow": "demo"})
        resource = {a["key"]: a["value"] for a in document["resourceSpans"][0]["resource"]["attributes"]}
        assert resource["service.name"] == {"stringValue": "rolegraph"}
        spans = _spans(document)
        assert len(spans) == 13
        ids = {s["spanId"] for s in spans}
        assert len(ids) == 13
        for span in spans:
            assert span["traceId"] == otlp_trace_id(RUN_ID) and re.fullmatch(r"[0-9a-f]{32}", span["traceId"])
            assert re.fullmatch(r"[0-9a-f]{16}", span["spanId"])
            assert span.get("parentSpanId") in ids or span["name"] == "invoke_workflow demo"
            assert int(span["startTimeUnixNano"]) <= int(span["endTimeUnixNano"])
            assert span["kind"] in (1, 3) and span["status"]["code"] == 1
            for attribute in span["attributes"]:
                assert isinstance(attribute["key"], str) and set(attribute["value"]) <= VALUE_KEYS
        [chat] = [s for s in spans if s["name"] == "chat local"]
        attributes = {a["key"]: a["value"] for a in chat["attributes"]}
        assert attributes["gen_ai.request.model"] == {"stringValue": "local"}
        assert attributes["gen_ai.usage.input_tokens"] == {"intValue": "2000"}
        assert chat["kind"] == 3
        assert to_otlp_json(Trace(records), RUN_ID) == to_otlp_json(Trace(records), RUN_ID)

    def test_models_named_as_their_provider_names_them(self, records: list[dict[str, Any]]) -> None:
        """A chat that recorded rolegraph.model.id is exported as `chat <id>` with that gen_ai.request.model and
        the model string as rolegraph.model; a chat without it (an older trace) keeps the string."""
        for record in records:
            if record["name"] == "chat local" and record["event"] == "span_end":
                record["attributes"]["rolegraph.model.id"] = "SmolLM2-135M-Instruct.Q4_1"
        spans = _spans(to_otlp_json(Trace(records), RUN_ID))
        [chat] = [s for s in spans if s["name"] == "chat SmolLM2-135M-Instruct.Q4_1"]
        attributes = {a["key"]: a["value"]["stringValue"] for a in chat["attributes"] if "stringValue" in a["value"]}
        assert attributes["gen_ai.request.model"] == "SmolLM2-135M-Instruct.Q4_1"
        assert attributes["rolegraph.model"] == "local" and "rolegraph.model.id" not in attributes
        assert not [s for s in spans if s["name"] == "chat local"]
        others = [s for s in spans if s["name"] == "chat openai:gpt-4o-mini"]
        assert len(others) == 2
        for other in others:
            keys = {a["key"]: a["value"] for a in other["attributes"]}
            assert keys["gen_ai.request.model"] == {"stringValue": "openai:gpt-4o-mini"}
            assert "rolegraph.model" not in keys

    def test_errors_and_unfinished_spans(self, records: list[dict[str, Any]]) -> None:
        """An error span has status code 2 and its message; a span that never ended is exported with code 0."""
        for record in records:
            if record["event"] == "span_end" and record["name"] == "execute_tool library_search":
                record.update(status="error", error="ValueError: boom")
        root_id = next(r["span_id"] for r in records if r["parent_id"] is None)
        cut = [r for r in records if not (r["event"] == "span_end" and r["span_id"] == root_id)]
        spans = _spans(to_otlp_json(Trace(cut), RUN_ID))
        [root] = [s for s in spans if "parentSpanId" not in s]
        assert root["status"]["code"] == 0 and root["spanId"] == otlp_span_id(RUN_ID, root_id)
        assert int(root["endTimeUnixNano"]) >= max(int(s["endTimeUnixNano"]) for s in spans)
        tools = [s for s in spans if s["name"] == "execute_tool library_search"]
        assert {s["status"]["code"] for s in tools} == {2}
        assert tools[0]["status"]["message"] == "ValueError: boom"

    def test_any_value(self) -> None:
        """Scalars keep their type, lists of scalars become arrays, anything else JSON text."""
        assert otlp_any_value(True) == {"boolValue": True}
        assert otlp_any_value(3) == {"intValue": "3"}
        assert otlp_any_value(0.5) == {"doubleValue": 0.5}
        assert otlp_any_value(["stop"]) == {"arrayValue": {"values": [{"stringValue": "stop"}]}}
        assert otlp_any_value({"topic": "x"}) == {"stringValue": '{"topic": "x"}'}
        assert otlp_any_value([{"a": 1}]) == {"stringValue": '[{"a": 1}]'}

    def test_attribute_value(self) -> None:
        """OpenTelemetry attribute values: scalars as is, one-typed lists as tuples, the rest JSON; null unset."""
        assert attribute_value(None) is None
        assert attribute_value("a") == "a" and attribute_value(2) == 2 and attribute_value(False) is False
        assert attribute_value(["stop", "length"]) == ("stop", "length") and attribute_value([]) == ()
        assert attribute_value([1, "a"]) == '[1, "a"]'  # OTel arrays hold one type
        assert attribute_value([True, 1]) == "[true, 1]"  # bool is not int here
        assert attribute_value(2**70) == str(2**70)  # past int64
        assert otlp_any_value([1, "a"]) == {"stringValue": '[1, "a"]'}
