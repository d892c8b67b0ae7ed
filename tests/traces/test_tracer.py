"""Tracer: span records, nesting over contextvars, usage roll-ups, redaction."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rolegraph.tokens import Usage
from rolegraph.traces import redact
from rolegraph.traces.redact import Redactor
from rolegraph.traces.sinks import JsonlSink, MemorySink, read_jsonl
from rolegraph.traces.spans import UNRECORDED, SpanKind, current_span
from rolegraph.traces.trace import Trace
from rolegraph.traces.tracer import Tracer, current_tracer


def _ends(sink: MemorySink) -> dict[str, dict[str, object]]:
    return {r["name"]: r for r in sink.records if r["event"] == "span_end"}


class TestSpans:
    def test_start_and_end_records(self) -> None:
        """Each span is emitted at start (so a hang is visible) and at end with status and duration."""
        sink = MemorySink()
        tracer = Tracer("run-1", sinks=[sink], redactor=Redactor())
        with tracer.span(SpanKind.INVOKE_WORKFLOW, "wf", rolegraph__workflow="demo"):
            pass
        start, end = sink.records
        assert start["event"] == "span_start" and "status" not in start
        assert end["event"] == "span_end" and end["status"] == "ok"
        assert end["attributes"] == {"rolegraph.workflow": "demo"}
        assert end["duration_s"] >= 0 and end["run_id"] == "run-1"

    def test_a_kept_start_record_is_not_changed_by_the_span_s_end(self) -> None:
        """A sink may keep a span's start record (the index writer buffers it): attributes set later and the
        end's fields go to the end record only."""
        sink = MemorySink()
        tracer = Tracer("run-1", sinks=[sink], redactor=Redactor())
        with tracer.span(SpanKind.REACT_STEP, "react_step 1", rolegraph__step=1) as span:
            span.set(rolegraph__action="final_answer", rolegraph__final_only=False)
        start, end = sink.records
        assert start["event"] == "span_start" and start["attributes"] == {"rolegraph.step": 1}
        assert not {"end_time", "duration_s", "status"} & start.keys()
        assert end["attributes"] == {
            "rolegraph.step": 1,
            "rolegraph.action": "final_answer",
            "rolegraph.final_only": False,
        }
        head = ("run_id", "span_id", "parent_id", "kind", "name", "start_time")
        assert [end[k] for k in head] == [start[k] for k in head]

    def test_error_status(self) -> None:
        """An exception inside a span marks it as an error with the message, and propagates."""
        sink = MemorySink()
        tracer = Tracer("run-1", sinks=[sink], redactor=Redactor())
        with pytest.raises(ValueError), tracer.span(SpanKind.EXECUTE_TOOL, "boom"):
            raise ValueError("bad input")
        assert _ends(sink)["boom"]["status"] == "error"
        assert _ends(sink)["boom"]["error"] == "ValueError: bad input"

    async def test_parallel_branches_nest_under_their_own_parent(self) -> None:
        """Spans opened in concurrent tasks get the parent that was current in their own task."""
        sink = MemorySink()
        tracer = Tracer("run-1", sinks=[sink], redactor=Redactor())
        both_open = asyncio.Barrier(2)

        async def branch(name: str) -> None:
            with tracer.span(SpanKind.INVOKE_AGENT, name):
                await both_open.wait()  # both agents are open at once: interleaved for real
                with tracer.span(SpanKind.CHAT, f"chat {name}"):
                    await asyncio.sleep(0)

        with tracer.span(SpanKind.INVOKE_WORKFLOW, "wf"):
            async with asyncio.TaskGroup() as group:
                group.create_task(branch("a"))
                group.create_task(branch("b"))
        ends = _ends(sink)
        assert ends["a"]["parent_id"] == ends["wf"]["span_id"]
        assert ends["b"]["parent_id"] == ends["wf"]["span_id"]
        assert ends["chat a"]["parent_id"] == ends["a"]["span_id"]
        assert ends["chat b"]["parent_id"] == ends["b"]["span_id"]
        assert current_span() is None

    async def test_usage_only_on_chat_and_aggregated_on_ancestors(self) -> None:
        """Tokens sit on chat spans; ancestors carry separate aggregated totals, so nothing counts twice."""
        sink = MemorySink()
        tracer = Tracer("run-1", sinks=[sink], redactor=Redactor())

        async def agent(name: str, tokens: int) -> None:
            with tracer.span(SpanKind.INVOKE_AGENT, name):
                for i in range(2):
                    with tracer.span(SpanKind.CHAT, f"chat {name} {i}") as chat:
                        await asyncio.sleep(0)
                        chat.record_usage(tokens, 1)

        with tracer.span(SpanKind.INVOKE_WORKFLOW, "wf"):
            async with asyncio.TaskGroup() as group:
                group.create_task(agent("a", 10))
                group.create_task(agent("b", 100))
        ends = _ends(sink)
        assert ends["a"]["attributes"]["rolegraph.aggregated.input_tokens"] == 20
        assert ends["b"]["attributes"]["rolegraph.aggregated.input_tokens"] == 200
        assert ends["wf"]["attributes"]["rolegraph.aggregated.input_tokens"] == 220
        assert ends["wf"]["attributes"]["rolegraph.aggregated.output_tokens"] == 4
        assert "gen_ai.usage.input_tokens" not in ends["wf"]["attributes"]
        assert Trace(sink.records).usage() == Usage(input_tokens=220, output_tokens=4)

    def test_usage_refused_outside_chat(self) -> None:
        """Recording tokens on a non-chat span is a programming error."""
        tracer = Tracer("run-1", sinks=[MemorySink()], redactor=Redactor())
        with tracer.span(SpanKind.INVOKE_AGENT, "a") as span, pytest.raises(ValueError):
            span.record_usage(1, 1)


class TestWithoutSinks:
    def test_a_span_nobody_listens_to_is_not_recorded_nor_current(self) -> None:
        """With no sink a span is the shared unrecorded one: not current, its attributes and usage kept nowhere."""
        tracer = Tracer("run-1", redactor=Redactor())
        with tracer.span(SpanKind.INVOKE_AGENT, "a", rolegraph__task="t") as agent:
            with tracer.span(SpanKind.CHAT, "chat") as chat:
                chat.record_usage(5, 1)
                chat.set(rolegraph__output__text="x")
                assert (current_span(), current_tracer()) == (None, None)
        assert agent is chat is UNRECORDED
        assert (UNRECORDED.attributes, UNRECORDED.aggregated_input_tokens, UNRECORDED.span_id) == ({}, 0, "0" * 16)

    def test_an_exception_goes_through_an_unrecorded_span(self) -> None:
        """A span nobody records lets an exception through, as a recorded one does."""
        with pytest.raises(ValueError, match="bad"), Tracer("run-1").span(SpanKind.EXECUTE_TOOL, "t"):
            raise ValueError("bad")

    async def test_a_sink_added_later_sees_every_later_span_in_full(self) -> None:
        """Spans opened after a sink is added are recorded start and end, nested under recorded spans only,
        with their tokens rolled up; the spans opened before it leave no record."""
        sink = MemorySink()
        tracer = Tracer("run-1", redactor=Redactor())
        with tracer.span(SpanKind.INVOKE_WORKFLOW, "before"):
            tracer.add_sink(sink)
            with tracer.span(SpanKind.INVOKE_AGENT, "agent"):
                with tracer.span(SpanKind.CHAT, "chat") as chat:
                    await asyncio.sleep(0)
                    chat.record_usage(7, 2)
        assert [(r["event"], r["name"]) for r in sink.records] == [
            ("span_start", "agent"),
            ("span_start", "chat"),
            ("span_end", "chat"),
            ("span_end", "agent"),
        ]
        ends = _ends(sink)
        assert ends["agent"]["parent_id"] is None and ends["chat"]["parent_id"] == ends["agent"]["span_id"]
        assert ends["agent"]["attributes"]["rolegraph.aggregated.input_tokens"] == 7
        assert Trace(sink.records).usage() == Usage(input_tokens=7, output_tokens=2)

    def test_an_unrecorded_span_leaves_the_recorded_one_current(self) -> None:
        """A tracer without sinks used inside a recorded span (a workflow run inside a tool) hides nothing:
        the recorded span stays current, and later spans nest under it."""
        sink = MemorySink()
        outer = Tracer("run-1", sinks=[sink], redactor=Redactor())
        with outer.span(SpanKind.EXECUTE_TOOL, "tool") as tool:
            with Tracer("run-1").span(SpanKind.INVOKE_AGENT, "inner"):
                assert (current_span(), current_tracer()) == (tool, outer)
                with outer.span(SpanKind.CHAT, "chat"):
                    pass
        assert _ends(sink)["chat"]["parent_id"] == tool.span_id

    def test_a_reopened_span_is_recorded_even_without_a_sink(self) -> None:
        """A span reopened by id keeps that id (its caller records it), and its end reaches a sink added later."""
        sink = MemorySink()
        tracer = Tracer("run-1", redactor=Redactor())
        with tracer.span(SpanKind.INVOKE_WORKFLOW, "wf", span_id="00000000000000ab") as root:
            assert (root.span_id, current_span()) == ("00000000000000ab", root)
            tracer.add_sink(sink)
        assert [(r["event"], r["span_id"], r["status"]) for r in sink.records] == [
            ("span_end", "00000000000000ab", "ok")
        ]


class TestRedaction:
    def test_secret_values_never_reach_a_sink(self, tmp_path: Path) -> None:
        """Values of secret env vars and key-shaped strings are replaced in every record."""
        canary = "canary-key-0123456789"
        redactor = Redactor.from_env({"OPENAI_API_KEY": canary, "MY_SERVICE_TOKEN": "tok-abcdef-99"})
        sink = JsonlSink(tmp_path / "t.jsonl")
        tracer = Tracer("run-1", sinks=[sink], redactor=redactor)
        with tracer.span(SpanKind.CHAT, "chat", prompt=f"key={canary}", nested={"h": ["Bearer abcdefghijkl"]}):
            tracer.event("note", text="tok-abcdef-99 and sk-abcdefghijklmnopqrstu")
        sink.close()
        text = (tmp_path / "t.jsonl").read_text()
        assert canary not in text and "tok-abcdef-99" not in text
        assert "abcdefghijkl" not in text and "sk-abcdefghijklmnopqrstu" not in text
        assert text.count("[REDACTED]") >= 4

    def test_secrets_anywhere_in_any_case_are_found(self) -> None:
        """A secret deep in a long text, a bearer token in any case and a key after a newline are all redacted."""
        redactor = Redactor.from_env({"MY_SERVICE_TOKEN": "tok-abcdef-99"})
        filler = "plain words and numbers 12345 " * 40
        text = f"{filler}tok-abcdef-99{filler}\nsk-abcdefghijklmnopqrstu bEaReR abcdefghijkl {filler}"
        redacted = redactor.text(text)
        assert "tok-abcdef-99" not in redacted and "sk-abcdefghijklmnopqrstu" not in redacted
        assert "abcdefghijkl" not in redacted and redacted.count("[REDACTED]") == 3
        assert redactor.text(filler) == filler

    def test_a_text_attribute_changed_before_the_end_is_redacted_again(self) -> None:
        """The end record redacts an attribute replaced after the start, and numbers and lists pass through."""
        sink = MemorySink()
        tracer = Tracer("run-1", sinks=[sink], redactor=Redactor.from_env({"X_TOKEN": "tok-abcdef-99"}))
        with tracer.span(SpanKind.CHAT, "chat", text="harmless", count=3) as span:
            span.set(text="now tok-abcdef-99", tools=["a", "tok-abcdef-99"], ratio=0.5, flag=True, nothing=None)
        start, end = sink.records
        assert start["attributes"] == {"text": "harmless", "count": 3}
        assert end["attributes"] == {
            "text": "now [REDACTED]",
            "count": 3,
            "tools": ["a", "[REDACTED]"],
            "ratio": 0.5,
            "flag": True,
            "nothing": None,
        }

    def test_a_short_secret_typed_during_a_span_is_redacted_in_its_end(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A seven-character key typed while a span is open (`add_secret`) is redacted from the span's end record,
        as a whole attribute; the start, written before, had nothing to hide."""
        monkeypatch.setattr(redact, "_PROCESS_SECRETS", [])
        sink = MemorySink()
        tracer = Tracer("run-1", sinks=[sink], redactor=Redactor.from_env({}))
        with tracer.span(SpanKind.CHAT, "chat", key="k3y-abc", count=1):
            redact.add_secret("k3y-abc")
        start, end = sink.records
        assert start["attributes"] == {"key": "k3y-abc", "count": 1}
        assert end["attributes"] == {"key": "[REDACTED]", "count": 1}

    def test_a_long_text_redacted_at_the_start_is_redacted_again_once_a_secret_is_typed(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A text attribute redacted for the start record (and remembered for the end) is redacted afresh in the
        end record when a key it holds was typed in between: the remembered redaction is stale."""
        monkeypatch.setattr(redact, "_PROCESS_SECRETS", [])
        sink = MemorySink()
        tracer = Tracer("run-1", sinks=[sink], redactor=Redactor.from_env({}))
        text = "the prompt quotes typed-key-0042 in full"
        with tracer.span(SpanKind.CHAT, "chat", prompt=text):
            redact.add_secret("typed-key-0042")
        start, end = sink.records
        assert start["attributes"] == {"prompt": text}
        assert end["attributes"] == {"prompt": "the prompt quotes [REDACTED] in full"}

    def test_configured_variables_are_secrets(self) -> None:
        """Variables named in ROLEGRAPH_REDACT_ENV or passed as extra names are redacted whatever their name."""
        env = {"ROLEGRAPH_REDACT_ENV": "DB_URL, ,LICENSE", "DB_URL": "postgres://u:pw@db", "LICENSE": "lic-123456"}
        env |= {"EXTRA": "extra-value-1", "PLAIN": "plain-value-1"}
        redactor = Redactor.from_env(env, extra_names=["EXTRA"])
        text = "postgres://u:pw@db lic-123456 extra-value-1 plain-value-1"
        assert redactor.text(text) == "[REDACTED] [REDACTED] [REDACTED] plain-value-1"

    def test_short_values_are_not_secrets(self) -> None:
        """A one-character env value would redact everything; such values are ignored."""
        redactor = Redactor.from_env({"HF_TOKEN": "x"})
        assert redactor.text("x marks the spot") == "x marks the spot"


class TestTraceFile:
    def test_torn_last_line_and_open_spans(self, tmp_path: Path) -> None:
        """A crash mid-write loses only the torn line; spans that never ended show as unfinished."""
        path = tmp_path / "t.jsonl"
        sink = JsonlSink(path)
        tracer = Tracer("run-1", sinks=[sink], redactor=Redactor())
        with tracer.span(SpanKind.INVOKE_WORKFLOW, "wf"):
            with tracer.span(SpanKind.INVOKE_AGENT, "done"):
                pass
            # Simulate a crash: the workflow span never ends, and a line is torn.
            sink.close()
        with path.open("a") as f:
            f.write('{"event": "span_end", "span_')
        trace = Trace.load(path)
        assert len(read_jsonl(path)) == 3
        [root] = trace.roots
        assert root.status == "unfinished"
        assert [c.name for c in root.children] == ["done"]
        assert root.children[0].status == "ok"


class TestBufferedFile:
    def test_a_finished_span_is_on_disk_at_its_end(self, tmp_path: Path) -> None:
        """A span's end record, and the records before it, are in the file as soon as the span ends."""
        path = tmp_path / "t.jsonl"
        sink = JsonlSink(path, flush_interval=3600)  # no background write can help here
        tracer = Tracer("run-1", sinks=[sink], redactor=Redactor())
        with tracer.span(SpanKind.INVOKE_AGENT, "agent"):
            with tracer.span(SpanKind.CHAT, "chat"):
                pass
            on_disk = [(r["event"], r["name"]) for r in read_jsonl(path)]
        sink.close()
        assert on_disk == [("span_start", "agent"), ("span_start", "chat"), ("span_end", "chat")]

    def test_an_open_span_reaches_the_file_within_the_interval(self, tmp_path: Path) -> None:
        """The start of a span that is still running is written by the background flush (a hung step shows)."""
        path = tmp_path / "t.jsonl"
        sink = JsonlSink(path, flush_interval=0.05)
        tracer = Tracer("run-1", sinks=[sink], redactor=Redactor())
        with tracer.span(SpanKind.INVOKE_AGENT, "hung"):
            deadline = time.monotonic() + 30
            while not path.read_bytes() and time.monotonic() < deadline:
                time.sleep(0.01)
            assert [r["name"] for r in read_jsonl(path)] == ["hung"]
        sink.close()

    def test_a_killed_process_leaves_every_finished_span(self, tmp_path: Path) -> None:
        """SIGKILL with the file never closed: every span that ended before the kill is in the file, whole."""
        path = tmp_path / "t.jsonl"
        script = f"""
import os, signal
from pathlib import Path
from rolegraph.traces import redact
from rolegraph.traces.redact import Redactor
from rolegraph.traces.sinks import JsonlSink
from rolegraph.traces.spans import SpanKind
from rolegraph.traces.tracer import Tracer
tracer = Tracer("run-1", sinks=[JsonlSink(Path({str(path)!r}), flush_interval=3600)], redactor=Redactor())
with tracer.span(SpanKind.INVOKE_WORKFLOW, "wf"):
    for i in range(50):
        with tracer.span(SpanKind.CHAT, f"chat {{i}}"):
            pass
    with tracer.span(SpanKind.INVOKE_AGENT, "open"):
        os.kill(os.getpid(), signal.SIGKILL)
"""
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120, check=False)
        assert done.returncode == -signal.SIGKILL, done.stderr
        trace = Trace.load(path)
        [root] = trace.roots
        assert [c.name for c in root.children] == [f"chat {i}" for i in range(50)]
        assert all(c.status == "ok" for c in root.children) and root.status == "unfinished"

    def test_records_orjson_refuses_are_written_too(self, tmp_path: Path) -> None:
        """A lone surrogate and an integer past 64 bits are written (by the standard library) and read back."""
        path = tmp_path / "t.jsonl"
        sink = JsonlSink(path)
        tracer = Tracer("run-1", sinks=[sink], redactor=Redactor())
        with tracer.span(SpanKind.CHAT, "chat", text="a\ud800b", big=2**70):
            pass
        sink.close()
        [start, _end] = read_jsonl(path)
        assert start["attributes"] == {"text": "a\ud800b", "big": 2**70}


class TestCurrentTracer:
    async def test_names_the_tracer_of_the_innermost_span(self) -> None:
        """Inside a span its tracer is current, in tasks started there too; outside, none."""
        outer, inner = Tracer("a", sinks=[MemorySink()]), Tracer("b", sinks=[MemorySink()])

        async def in_a_task() -> Tracer | None:
            return current_tracer()

        assert current_tracer() is None
        with outer.span(SpanKind.INVOKE_AGENT, "agent"):
            assert current_tracer() is outer
            with inner.span(SpanKind.CHAT, "chat"):
                assert await asyncio.create_task(in_a_task()) is inner
            assert current_tracer() is outer
        assert current_tracer() is None


class TestSpanIds:
    def test_ids_are_64_bit_hex_in_increasing_order(self) -> None:
        """Span ids are 16 hex digits, distinct, and made in increasing order (the index appends a run's rows)."""
        sink = MemorySink()
        tracer = Tracer("run-1", sinks=[sink], redactor=Redactor())
        for _ in range(500):
            with tracer.span(SpanKind.CHAT, "chat"):
                pass
        ids = [r["span_id"] for r in sink.records if r["event"] == "span_start"]
        assert len(set(ids)) == 500
        assert all(len(i) == 16 and int(i, 16) > 0 for i in ids)
        assert ids == sorted(ids)

    def test_processes_count_from_different_starts(self) -> None:
        """Two processes (a resumed run's, or a forked child and its parent) make no id in common."""
        script = """
import os
from rolegraph.traces.spans import Span, SpanKind
def ids():
    return [Span(SpanKind.CHAT, "chat", "run-1").span_id for _ in range(200)]
ours = ids()
read, write = os.pipe()
if os.fork() == 0:
    os.write(write, " ".join(ids()).encode())
    os._exit(0)
os.close(write)
child = b""
while chunk := os.read(read, 65536):
    child += chunk
os.wait()
print(" ".join(ours + ids()), "|", child.decode())
"""
        runs = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)]
        runs.append(
            subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
        )
        parents = [set(run.stdout.split("|")[0].split()) for run in runs]
        children = [set(run.stdout.split("|")[1].split()) for run in runs]
        assert all(len(ids) == 400 for ids in parents) and all(len(ids) == 200 for ids in children)
        assert not parents[0] & children[0] and not parents[0] & parents[1]

    def test_a_reopened_span_continues_one_tree(self, tmp_path: Path) -> None:
        """Reopening a span by id in another tracer (a resumed run) gives one root holding both invocations' spans."""
        path = tmp_path / "trace.jsonl"
        first = JsonlSink(path)
        with Tracer("r", [first], Redactor()).span(SpanKind.INVOKE_WORKFLOW, "wf") as root:
            with Tracer("r", [first], Redactor()).span(SpanKind.INVOKE_AGENT, "one"):
                pass
        first.close()
        path.write_text(path.read_text() + '{"torn": ')  # the first process died mid-record
        second = JsonlSink(path)
        tracer = Tracer("r", [second], Redactor())
        with tracer.span(SpanKind.INVOKE_WORKFLOW, "wf", span_id=root.span_id):
            with tracer.span(SpanKind.INVOKE_AGENT, "two"):
                pass
        second.close()
        trace = Trace.load(path)
        (only,) = trace.roots
        assert (only.span_id, [c.name for c in only.children]) == (root.span_id, ["one", "two"])
