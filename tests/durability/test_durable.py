"""A run's durable state per invocation: the elapsed time its checkpoints record, the rows it shares with the step
log."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from durable_projects import store_as_a_kill_leaves
from rolegraph.durability import durable
from rolegraph.durability.durable import ELAPSED_EVERY_S, Durability
from rolegraph.durability.store import RunStore
from rolegraph.layout import RunFolder
from rolegraph.models.model import Model, Usage
from rolegraph.runtime.run_info import RunInfo
from rolegraph.runtime.scheduler import Checkpoint, StepState
from rolegraph.runtime.step_log import StepLog
from rolegraph.tools.sources import SourceRegistry
from rolegraph.traces.redact import Redactor
from rolegraph.traces.tracer import Tracer
from rolegraph.workflows.spec import WorkflowSpec

COPIES = itertools.count()

SPEC = WorkflowSpec.model_validate({"rolegraph": 1, "name": "wf", "steps": {"a": {"function": "m:f"}}})


class Clock:
    """A `time.perf_counter` the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def saved_elapsed(run_dir: Path) -> float:
    """The elapsed time in the run's record as committed (read from a copy: the live run holds its store)."""
    copy = store_as_a_kill_leaves(run_dir, run_dir / f"copy{next(COPIES)}")
    store = RunStore.open_existing(copy, read_only=True)
    elapsed = store.record().elapsed_s
    store.close()
    return elapsed


def step(status: str) -> Checkpoint:
    return Checkpoint(states={"a": StepState(step_id="a", status=status)})  # type: ignore[arg-type]


def test_checkpoints_set_the_elapsed_time_at_most_every_interval_and_the_end_always(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first checkpoint records the elapsed time, later ones only once `ELAPSED_EVERY_S` has passed since
    (the in-memory record always has it), and the invocation's end records it exactly."""
    clock = Clock()
    monkeypatch.setattr(durable.time, "perf_counter", clock)
    record = RunInfo(run_id="20261101-120000-aaaaaa", workflow="wf", elapsed_s=3.0)
    durability = Durability(SPEC, tmp_path, record, prices_file=tmp_path / "prices.yaml", redactor=Redactor())
    models: dict[str, Model] = {}
    durability.open(resuming=False, sources=SourceRegistry(), models=models)
    durability.begin("root")
    clock.now += 0.1
    durability.save(step("running"))
    durability.store.flush()
    assert saved_elapsed(tmp_path) == pytest.approx(3.1)
    clock.now += ELAPSED_EVERY_S / 2
    durability.save(step("completed"))
    durability.store.flush()
    assert record.elapsed_s == pytest.approx(3.1 + ELAPSED_EVERY_S / 2)
    assert saved_elapsed(tmp_path) == pytest.approx(3.1)
    clock.now += ELAPSED_EVERY_S / 2
    durability.save(step("completed"))
    durability.store.flush()
    assert saved_elapsed(tmp_path) == pytest.approx(3.1 + ELAPSED_EVERY_S)
    clock.now += 0.01
    durability.finish("completed")
    durability.close()
    assert saved_elapsed(tmp_path) == pytest.approx(3.11 + ELAPSED_EVERY_S)


def logged(tmp_path: Path, redactor: Redactor, log_redactor: Redactor) -> tuple[Durability, StepLog]:
    """An open `Durability` whose checkpoints take their rows from a step log redacting with `log_redactor`."""
    record = RunInfo(run_id="20261101-120000-aaaaaa", workflow="wf")
    durability = Durability(SPEC, tmp_path, record, prices_file=tmp_path / "prices.yaml", redactor=redactor)
    models: dict[str, Model] = {}
    durability.open(resuming=False, sources=SourceRegistry(), models=models)
    log = StepLog(RunFolder(tmp_path), Tracer("run", redactor=log_redactor))
    durability.log_steps(log)
    return durability, log


def rows(run_dir: Path) -> dict[str, str]:
    """The committed checkpoint rows (read from a copy: the live run holds its store)."""
    copy = store_as_a_kill_leaves(run_dir, run_dir / f"copy{next(COPIES)}")
    db = sqlite3.connect(RunFolder(copy).store)
    try:
        return dict(db.execute("SELECT step_id, state FROM steps"))
    finally:
        db.close()


def test_a_completed_steps_row_is_its_step_log_line_redacted_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The row saved for a step that just completed is its step-log line (what orjson refuses included): the
    state is redacted and serialised once for both files, and reads back as it was, redacted."""
    redactor = Redactor(["sk-secret-value"])
    redacted: list[Any] = []
    redact = redactor.value
    monkeypatch.setattr(redactor, "value", lambda value: redacted.append(value) or redact(value))
    durability, log = logged(tmp_path, redactor, redactor)
    output = {"key": "sk-secret-value", "text": "ab\udcffc", "big": 2**70}
    state = StepState(step_id="a", status="completed", output=output, visits=1)
    log.listener(None)(state)
    durability.save(Checkpoint(states={"a": state}))
    durability.finish("completed")
    durability.close()
    log.close()
    assert [value for value in redacted if isinstance(value, dict) and value.get("step_id") == "a"] == [state.as_data()]
    line = RunFolder(tmp_path).step_log.read_text().splitlines()
    assert rows(tmp_path) == {"a": line[0]}
    store = RunStore.open_existing(tmp_path, read_only=True)
    loaded = store.load()
    store.close()
    assert loaded is not None
    assert loaded.states["a"].output == {"key": "[REDACTED]", "text": "ab\udcffc", "big": 2**70}


def test_a_step_sent_back_before_its_save_gets_its_own_row(tmp_path: Path) -> None:
    """A step a route made pending again before the checkpoint is saved as pending (its completed line stays in
    the log); a step log that redacts otherwise is not used: the store redacts the row itself."""
    durability, log = logged(tmp_path, Redactor(["sk-secret-value"]), Redactor())
    state = StepState(step_id="a", status="completed", output={"key": "sk-secret-value"}, visits=1)
    log.listener(None)(state)
    state.status = "pending"
    durability.save(Checkpoint(states={"a": state}))
    durability.store.flush()
    assert rows(tmp_path)["a"] == '{"step_id":"a","status":"pending","output":{"key":"[REDACTED]"},' + (
        '"error":null,"visits":1,"usage":{"input_tokens":0,"output_tokens":0},"tool_calls":0,"skipped_items":[]}'
    )
    state.status = "completed"
    durability.save(Checkpoint(states={"a": state}))
    durability.finish("completed")
    durability.close()
    log.close()
    assert "sk-secret-value" not in rows(tmp_path)["a"]
    assert "sk-secret-value" in RunFolder(tmp_path).step_log.read_text()


def test_each_steps_usage_and_tool_calls_come_from_the_journal(tmp_path: Path) -> None:
    """At the end, a step's usage and tool calls are the journal's (earlier invocations' calls included), whether
    the state counted fewer or the same; a step the journal never saw keeps its own."""
    record = RunInfo(run_id="20261101-120000-aaaaaa", workflow="wf")
    durability = Durability(SPEC, tmp_path, record, prices_file=tmp_path / "prices.yaml", redactor=Redactor())
    meter = durability.meter
    meter.count_call("a", "chat", "scripted:x", 10, 4, reserved=False)  # an earlier invocation's call
    meter.count_call("a", "chat", "scripted:x", 3, 2, reserved=False)
    meter.count_call("a", "tool", None, 0, 0, reserved=False)
    meter.count_call("b", "chat", "scripted:x", 7, 1, reserved=False)
    states = {
        "a": StepState(step_id="a", usage=Usage(input_tokens=3, output_tokens=2)),  # this invocation's calls only
        "b": StepState(step_id="b", usage=Usage(input_tokens=7, output_tokens=1)),  # all of them
        "c": StepState(step_id="c", usage=Usage(input_tokens=1), tool_calls=2),  # none in the journal
    }
    durability.account(states)
    figures = {k: (s.usage.input_tokens, s.usage.output_tokens, s.tool_calls) for k, s in states.items()}
    assert figures == {"a": (13, 6, 1), "b": (7, 1, 0), "c": (1, 0, 2)}
