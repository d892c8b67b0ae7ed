"""Reading a trace and a run summary back: damage is named (file, line, field), a torn write is skipped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rolegraph.errors import DamagedFileError
from rolegraph.traces.records import read_summary, read_trace_records
from rolegraph.traces.trace import Trace

RUN_ID = "20261101-120000-aaaaaa"
START = {"event": "span_start", "run_id": RUN_ID, "span_id": "s1", "parent_id": None, "kind": "invoke_workflow"}
GOOD = [
    {**START, "name": "invoke_workflow demo", "start_time": 1.0, "attributes": {}},
    {
        **START,
        "event": "span_end",
        "name": "invoke_workflow demo",
        "start_time": 1.0,
        "end_time": 2.0,
        "duration_s": 1.0,
        "status": "ok",
        "attributes": {"rolegraph.aggregated.input_tokens": 5},
    },
]

# The damage defect 4 of issue 17 found, each as the line it appends, and what the error must name.
DAMAGE: dict[str, tuple[bytes, str]] = {
    "invalid UTF-8": (b'{"event": "event", "name": "caf\xe9", "attributes": {}}', "not UTF-8"),
    "not an object": (b"[1, 2, 3]", "not a JSON object but a list"),
    "no span_id": (json.dumps({**START, "span_id": None} | {"name": "x", "start_time": 1.0}).encode(), "`span_id`"),
    "span_id missing": (
        json.dumps({k: v for k, v in START.items() if k != "span_id"} | {"name": "x", "start_time": 1.0}).encode(),
        "field `span_id` is missing",
    ),
    "attributes not an object": (
        json.dumps({**START, "span_id": "s2", "name": "x", "start_time": 1.0, "attributes": [1]}).encode(),
        "field `attributes` is not an object but a list",
    ),
    "name not a string": (
        json.dumps({**START, "span_id": "s2", "name": 5, "start_time": 1.0}).encode(),
        "field `name` is not a string but the number 5",
    ),
    "a time out of the calendar": (
        json.dumps({**START, "span_id": "s2", "name": "x", "start_time": 1e300}).encode(),
        "field `start_time` is not a Unix time",
    ),
    "tokens not a count": (
        json.dumps(
            {**START, "span_id": "s2", "name": "x", "start_time": 1.0, "attributes": {"gen_ai.usage.input_tokens": "9"}}
        ).encode(),
        "field `attributes.gen_ai.usage.input_tokens` is not a token count but a string",
    ),
}


def write(path: Path, records: list[dict[str, Any]], tail: bytes = b"") -> Path:
    path.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in records) + tail)
    return path


class TestTraceRecords:
    @pytest.mark.parametrize("damage", list(DAMAGE), ids=list(DAMAGE))
    def test_damage_is_named_with_its_line(self, damage: str, tmp_path: Path) -> None:
        """Each kind of damage raises DamagedFileError naming the file, the line and what is wrong."""
        line, expected = DAMAGE[damage]
        path = write(tmp_path / "trace.jsonl", GOOD, line + b"\n" + json.dumps(GOOD[0]).encode() + b"\n")
        with pytest.raises(DamagedFileError) as raised:
            Trace.load(path)
        assert raised.value.path == path and raised.value.line == 3
        assert expected in raised.value.reason
        assert str(raised.value).startswith(f"{path}, line 3: ")
        assert "\n" not in str(raised.value)

    def test_a_torn_last_line_is_skipped(self, tmp_path: Path) -> None:
        """A line cut short by a crash (even inside a multi-byte character) is a torn write, not damage."""
        torn = json.dumps({**START, "span_id": "s9", "name": "café"}, ensure_ascii=False).encode()[:-3]
        assert torn.endswith(b"caf\xc3")  # the cut fell inside "é"
        path = write(tmp_path / "trace.jsonl", GOOD, torn)
        assert read_trace_records(path) == GOOD

    def test_a_torn_line_ended_by_a_resume_is_skipped(self, tmp_path: Path) -> None:
        """A torn line that a resumed run ended with a newline (then wrote on) is skipped too."""
        path = write(tmp_path / "trace.jsonl", GOOD[:1], b'{"event": "span_end", "span_id": "s1", "na\n')
        with path.open("ab") as f:
            f.write(json.dumps(GOOD[1]).encode() + b"\n")
        assert read_trace_records(path) == GOOD

    def test_records_of_unknown_events_are_skipped(self, tmp_path: Path) -> None:
        """A record of an event this version does not know (a newer rolegraph's) is skipped, not damage."""
        path = write(tmp_path / "trace.jsonl", [*GOOD, {"event": "future_thing", "payload": [1]}])
        assert read_trace_records(path) == GOOD


class TestSummary:
    def test_a_missing_summary_is_empty(self, tmp_path: Path) -> None:
        """No run.json (a run killed while starting) reads as {}."""
        assert read_summary(tmp_path / RUN_ID / "run.json") == {}

    @pytest.mark.parametrize(
        ("content", "expected"),
        [
            (b'{"run_id": "\xff"}', "not UTF-8"),
            (b'{"run_id": ', "not JSON"),
            (b"[]", "not a JSON object but a list"),
            (b'{"status": 3}', "field `status` is not a string but the number 3"),
            (b'{"steps": {"a": 1}}', "field `steps`"),
            (b'{"run_id": "20990101-000000-bbbbbb"}', "field `run_id` names another run"),
        ],
    )
    def test_damage_is_named(self, content: bytes, expected: str, tmp_path: Path) -> None:
        """A summary that is not UTF-8, not JSON, not an object, has a wrong field or names another run is damage."""
        path = tmp_path / RUN_ID / "run.json"
        path.parent.mkdir()
        path.write_bytes(content)
        with pytest.raises(DamagedFileError) as raised:
            read_summary(path)
        assert raised.value.path == path and expected in raised.value.reason
