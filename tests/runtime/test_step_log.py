"""The step log: lines appended off the loop in order, one write per run and batch, waited for at close, restored
states appended after a torn tail, failures raised."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import pytest

from rolegraph.layout import RunFolder
from rolegraph.runtime import step_log
from rolegraph.runtime.scheduler import StepState
from rolegraph.runtime.step_log import StepLog
from rolegraph.traces.redact import Redactor
from rolegraph.traces.sinks import MemorySink
from rolegraph.traces.tracer import Tracer


def log_in(tmp_path: Path) -> tuple[StepLog, RunFolder, MemorySink]:
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    sink = MemorySink()
    tracer = Tracer("run", redactor=Redactor(["sk-secret-value"]))
    tracer.add_sink(sink)
    return StepLog(folder, tracer), folder, sink


def lines(folder: RunFolder) -> list[object]:
    return [json.loads(line) for line in folder.step_log.read_text().splitlines()]


def completed(step_id: str, **fields: object) -> StepState:
    return StepState(step_id=step_id, status="completed", **fields)  # type: ignore[arg-type]


def test_completed_steps_are_appended_in_order_and_waited_for(tmp_path: Path) -> None:
    """After close, the log holds one line per completed visit, in order, redacted, the last one a step's final
    state; other statuses write nothing, and no line adds a span to the trace (the step's own span marks its end)."""
    log, folder, sink = log_in(tmp_path)
    seen: list[str] = []
    listener = log.listener(lambda state: seen.append(state.status))
    listener(StepState(step_id="a", status="running", visits=1))
    for n in range(50):  # a step sent back by a route ends with its last state
        listener(completed("a", output={"n": n, "key": "sk-secret-value"}, visits=n))
    listener(StepState(step_id="b", status="failed", error="boom"))
    log.close()
    written = lines(folder)
    assert [line["output"]["n"] for line in written] == list(range(50))  # type: ignore[index]
    assert written[-1] == completed("a", output={"n": 49, "key": "[REDACTED]"}, visits=49).model_dump(mode="json")
    assert folder.step_states() == {"a": written[-1]}
    assert seen == ["running", *["completed"] * 50, "failed"]
    assert sink.records == []


def test_a_runs_gathered_lines_are_appended_with_one_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lines handed over together reach the file in one ``write()`` per run, not one (or four calls) per step."""
    monkeypatch.setattr(step_log, "GATHER_S", 3600.0)  # the batch ends when the runs wait for their lines
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (first, first_folder, _), (second, second_folder, _) = log_in(tmp_path / "a"), log_in(tmp_path / "b")
    writes: list[int] = []
    real_write = os.write

    def write(fd: int, data: bytes | memoryview) -> int:
        if threading.current_thread().name == "rolegraph-step-log":
            writes.append(fd)
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    for n in range(10):
        first.listener(None)(completed(f"s{n}"))
        second.listener(None)(completed(f"s{n}"))
    closing = threading.Thread(target=second.close, daemon=True)
    closing.start()
    first.close()
    closing.join(timeout=60)
    assert len(lines(first_folder)) == len(lines(second_folder)) == 10
    assert len(writes) == 2


def test_restore_ends_a_torn_line_then_appends_the_restored_states(tmp_path: Path) -> None:
    """A resume's restored steps get their lines from the saved states after what the killed run left: a torn
    last line is ended with a newline first (so it stays one skipped line), a stale visit is superseded."""
    log, folder, _ = log_in(tmp_path)
    folder.step_log.write_bytes(b'{"step_id": "stale", "output": {"visit": 1}}\n{"step_id": "lost", "outp')
    log.restore(
        [
            completed("stale", output={"visit": 2}, visits=2),
            completed("lost", output={"x": 2}),
            StepState(step_id="pending", status="pending"),
        ]
    )
    log.close()
    text = folder.step_log.read_text().splitlines()
    assert text[1] == '{"step_id": "lost", "outp'
    states = folder.step_states()
    assert (states["stale"]["output"], states["lost"]["output"]) == ({"visit": 2}, {"x": 2})
    assert "pending" not in states


def test_more_runs_than_open_files_all_get_their_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With more runs writing than the writer keeps open, each run's file is closed and opened again as needed:
    every run gets all its lines, in order, none glued to another."""
    monkeypatch.setattr(step_log, "MAX_OPEN", 2)
    logs = []
    for n in range(5):
        (tmp_path / str(n)).mkdir()
        logs.append(log_in(tmp_path / str(n)))
    for visit in range(3):
        for log, _, _ in logs:
            log.listener(None)(completed("a", visits=visit + 1))
            log.close()  # a batch per visit: the files are closed and opened again between them
    for _, folder, _ in logs:
        assert [line["visits"] for line in lines(folder)] == [1, 2, 3]  # type: ignore[index]


def test_what_orjson_refuses_is_still_one_readable_line(tmp_path: Path) -> None:
    """An output holding a lone surrogate or an integer past 64 bits is written as one line that reads back."""
    log, folder, _ = log_in(tmp_path)
    log.listener(None)(completed("a", output={"text": "ab\udcffc", "big": 2**70}))
    log.close()
    assert folder.step_states()["a"]["output"] == {"text": "ab\udcffc", "big": 2**70}


def test_a_line_that_cannot_be_written_is_raised_at_close(tmp_path: Path) -> None:
    """A write that fails (``steps.jsonl`` is a folder) is raised by close, and later runs' lines still get
    written."""
    log, folder, _ = log_in(tmp_path)
    folder.step_log.mkdir()
    log.listener(None)(completed("a"))
    with pytest.raises(OSError):
        log.close()
    (tmp_path / "next").mkdir()
    other, other_folder, _ = log_in(tmp_path / "next")
    other.listener(None)(completed("a"))
    other.close()
    assert other_folder.step_states()["a"]["step_id"] == "a"


def test_a_removed_run_folder_is_not_made_again(tmp_path: Path) -> None:
    """A run folder removed meanwhile is not made again by the log: close raises."""
    log, folder, _ = log_in(tmp_path)
    folder.path.rmdir()
    log.listener(None)(completed("a"))
    with pytest.raises(FileNotFoundError):
        log.close()
    assert not folder.path.exists()


def test_a_run_waiting_for_its_lines_cuts_the_writers_gathering_short(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the writer gathering lines for an hour, close still returns with every line written: a run that
    waits for its lines does not wait for more to gather."""
    monkeypatch.setattr(step_log, "GATHER_S", 3600.0)
    log, folder, _ = log_in(tmp_path)
    log.listener(None)(completed("a", output={"n": 1}, visits=1))
    closing = threading.Thread(target=log.close, daemon=True)
    closing.start()
    closing.join(timeout=60)  # a hang detector, not a timing: the broken writer waits an hour
    assert not closing.is_alive()
    assert lines(folder) == [completed("a", output={"n": 1}, visits=1).model_dump(mode="json")]


def test_a_handed_line_is_taken_once_for_its_visit_while_completed(tmp_path: Path) -> None:
    """`take` gives the run store a completed state's line (redacted, without its newline) once, and nothing for a
    state sent back meanwhile, another visit, or a step never handed over."""
    log, _, _ = log_in(tmp_path)
    state = completed("a", output={"key": "sk-secret-value"}, visits=1)
    log.listener(None)(state)
    assert log.take(state) == json.dumps(
        completed("a", output={"key": "[REDACTED]"}, visits=1).model_dump(mode="json"), separators=(",", ":")
    )
    assert log.take(state) is None
    log.listener(None)(state)
    state.status = "pending"
    assert log.take(state) is None
    log.listener(None)(completed("a", visits=1))
    assert log.take(completed("a", visits=2)) is None
    assert log.take(completed("b")) is None
    log.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_a_forked_child_writes_its_lines_with_its_own_writer(tmp_path: Path) -> None:
    """A process forked after the writer started gets a writer thread of its own: its lines are written."""
    (tmp_path / "parent").mkdir()
    (tmp_path / "child").mkdir()
    parent, _, _ = log_in(tmp_path / "parent")
    parent.listener(None)(completed("p"))
    parent.close()
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if its line is written
        code = 1
        signal.alarm(60)  # a child without a writer would wait for its line for ever
        try:
            child, folder, _ = log_in(tmp_path / "child")
            child.listener(None)(completed("c"))
            child.close()
            code = 0 if lines(folder) == [completed("c").model_dump(mode="json")] else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
