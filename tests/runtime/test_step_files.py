"""Step files: written off the loop in order, waited for at close, missing ones restored, failures raised."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from rolegraph.layout import RunFolder
from rolegraph.runtime import step_files
from rolegraph.runtime.scheduler import StepState
from rolegraph.runtime.step_files import StepFiles
from rolegraph.traces.redact import Redactor
from rolegraph.traces.sinks import MemorySink
from rolegraph.traces.tracer import Tracer


def files_in(tmp_path: Path) -> tuple[StepFiles, RunFolder, MemorySink]:
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    sink = MemorySink()
    tracer = Tracer("run", redactor=Redactor(["sk-secret-value"]))
    tracer.add_sink(sink)
    return StepFiles(folder, tracer), folder, sink


def read(folder: RunFolder, step: str) -> object:
    return json.loads(folder.step_file(step).read_text())


def test_completed_steps_are_written_in_order_and_waited_for(tmp_path: Path) -> None:
    """After close, each completed step's file holds its last state, redacted; other statuses write nothing, and
    no file adds a span to the trace (the step's own span marks its end)."""
    files, folder, sink = files_in(tmp_path)
    seen: list[str] = []
    listener = files.listener(lambda state: seen.append(state.status))
    state = StepState(step_id="a", status="running", visits=1)
    listener(state)
    for n in range(50):  # a step sent back by a route ends with its last state
        listener(StepState(step_id="a", status="completed", output={"n": n, "key": "sk-secret-value"}, visits=n))
    listener(StepState(step_id="b", status="failed", error="boom"))
    files.close()
    assert read(folder, "a") == StepState(
        step_id="a", status="completed", output={"n": 49, "key": "[REDACTED]"}, visits=49
    ).model_dump(mode="json")
    assert not folder.step_file("b").exists()
    assert seen == ["running", *["completed"] * 50, "failed"]
    assert sink.records == []


def test_restore_writes_the_restored_steps_from_their_saved_states(tmp_path: Path) -> None:
    """A resume's restored steps get their files from the saved states: a missing file is written, and so is
    one an earlier visit left (a route sent the step back, the run was killed before its new file)."""
    files, folder, _ = files_in(tmp_path)
    folder.steps.mkdir()
    folder.step_file("stale").write_text('{"output": {"visit": 1}}')
    files.restore(
        [
            StepState(step_id="stale", status="completed", output={"visit": 2}, visits=2),
            StepState(step_id="lost", status="completed", output={"x": 2}),
            StepState(step_id="pending", status="pending"),
        ]
    )
    files.close()
    assert read(folder, "stale")["output"] == {"visit": 2}  # type: ignore[index]
    assert read(folder, "lost")["output"] == {"x": 2}  # type: ignore[index]
    assert not folder.step_file("pending").exists()


def test_a_file_that_cannot_be_written_is_raised_at_close(tmp_path: Path) -> None:
    """A write that fails (the steps folder is a file) is raised by close, and later runs' files still get written."""
    files, folder, _ = files_in(tmp_path)
    folder.steps.write_text("not a folder")
    files.listener(None)(StepState(step_id="a", status="completed"))
    with pytest.raises(OSError):
        files.close()
    (tmp_path / "next").mkdir()
    other, other_folder, _ = files_in(tmp_path / "next")
    other.listener(None)(StepState(step_id="a", status="completed"))
    other.close()
    assert read(other_folder, "a")["step_id"] == "a"  # type: ignore[index]


def test_the_steps_folder_is_made_but_not_a_removed_run_folder(tmp_path: Path) -> None:
    """The first file makes ``steps/``; a run folder removed meanwhile is not made again: close raises."""
    files, folder, _ = files_in(tmp_path)
    folder.path.rmdir()
    files.listener(None)(StepState(step_id="a", status="completed"))
    with pytest.raises(FileNotFoundError):
        files.close()
    assert not folder.path.exists()


def test_a_run_waiting_for_its_files_cuts_the_writers_gathering_short(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the writer gathering files for an hour, close still returns with every file written: a run that
    waits for its files does not wait for more to gather."""
    monkeypatch.setattr(step_files, "GATHER_S", 3600.0)
    files, folder, _ = files_in(tmp_path)
    listener = files.listener(None)
    listener(StepState(step_id="a", status="completed", output={"n": 1}, visits=1))
    closing = threading.Thread(target=files.close, daemon=True)
    closing.start()
    closing.join(timeout=60)  # a hang detector, not a timing: the broken writer waits an hour
    assert not closing.is_alive()
    assert read(folder, "a") == StepState(step_id="a", status="completed", output={"n": 1}, visits=1).model_dump(
        mode="json"
    )
