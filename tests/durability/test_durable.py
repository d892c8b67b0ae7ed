"""A run's durable state per invocation: the elapsed time its checkpoints record."""

from __future__ import annotations

from pathlib import Path

import pytest

from rolegraph.durability import durable
from rolegraph.durability.durable import ELAPSED_EVERY_S, Durability
from rolegraph.durability.store import RunStore
from rolegraph.models.model import Model
from rolegraph.runtime.run_info import RunInfo
from rolegraph.runtime.scheduler import Checkpoint, StepState
from rolegraph.tools.sources import SourceRegistry
from rolegraph.traces.redact import Redactor
from rolegraph.workflows.spec import WorkflowSpec

SPEC = WorkflowSpec.model_validate({"rolegraph": 1, "name": "wf", "steps": {"a": {"function": "m:f"}}})


class Clock:
    """A `time.perf_counter` the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def saved_elapsed(run_dir: Path) -> float:
    store = RunStore.open_existing(run_dir, read_only=True)
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
    assert saved_elapsed(tmp_path) == pytest.approx(3.11 + ELAPSED_EVERY_S)
