"""Replaying a run offline: the workflow file as it is now, answered by the run's recorded calls.

```python
from rolegraph.durability import replay

report = await replay(run_dir)           # after editing the YAML, or the code
if report.divergence is not None:
    print(report.divergence.describe())  # step review, call review#1/chat/1: prompt changed
```

A replay is a new run (its own id and folder; the recorded run is opened read-only
and never changed) of the workflow file as it is now, with the recorded run's
inputs, model override and settings. Every model string is served by
`ReplayModel`, so no model is loaded, and every agent's journal is a
`ReplayJournal`: each call is answered from the recording when the recording holds
a call under the same call id made with the same request (the same digest of
messages, tools, answer schema and settings; of tool and arguments). No model is
called and no tool runs.

The first call that does not fit is the divergence: a call the recording does not
hold (a new step, a step that asks more), or one whose request changed (a changed
task or instructions: "prompt changed"). The replay stops there (every later call
diverges too; the run ends ``failed``). A replay that asked for every recorded call
and got the same step outputs, status and outputs is ``identical``: the run is
reproducible from its recording. Stores from before request digests replay by
call id alone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rolegraph.agents.call_ids import CallId
from rolegraph.agents.journal import CallJournal, RequestDigest, describe_changes, request_changes
from rolegraph.durability.durable import run_durably
from rolegraph.durability.store import JournalEntry, RunStore
from rolegraph.errors import ModelError, ReplayDiverged, ReplayError, ResumeError, RunError
from rolegraph.layout import STORE_FILE, Home, RunFolder, new_run_id
from rolegraph.models.messages import Message, ToolSpec
from rolegraph.models.model import Completion, Model, ModelSettings
from rolegraph.runtime.compiled import CompiledWorkflow
from rolegraph.runtime.invoke import InvokeHooks
from rolegraph.runtime.result import RunResult
from rolegraph.runtime.run_info import RunInfo, file_hash
from rolegraph.runtime.scheduler import StepListener
from rolegraph.traces.sinks import TraceSink

__all__ = [
    "Divergence",
    "Recording",
    "ReplayDiverged",
    "ReplayError",
    "ReplayJournal",
    "ReplayModel",
    "ReplayReport",
    "replay",
]


@dataclass(frozen=True)
class Divergence:
    """Where a replay first stopped agreeing with its recording.

    Attributes:
        step_id: The step.
        call_id: The call (None when the difference is in a step's output or the run's status).
        kind: ``chat``, ``tool``, ``output`` or ``status``.
        reason: What differed, e.g. ``prompt changed``, ``call not in the recording``.
    """

    step_id: str
    call_id: str | None
    kind: str
    reason: str

    def describe(self) -> str:
        """One line for people: ``step X, call Y (chat): prompt changed``."""
        where = f"step {self.step_id}" if self.step_id else "the run"
        if self.call_id:
            where += f", call {self.call_id}"
        return f"{where} ({self.kind}): {self.reason}"


class Recording:
    """A recorded run's calls, read once from its run store (opened read-only).

    Args:
        entries: The recorded calls, in the order they were recorded.
        failures: The error of each step that failed in the recorded run, by step id.
    """

    def __init__(self, entries: Sequence[JournalEntry], failures: Mapping[str, str] | None = None) -> None:
        self.entries = {entry.call_id: entry for entry in entries}
        self.failures = dict(failures or {})
        """The error of each step that failed in the recorded run."""
        self.failed_as_recorded: list[str] = []
        """Model calls that failed again as they failed in the recorded run."""
        self.order = [entry.call_id for entry in entries]
        self.answered: set[str] = set()
        """Calls the replay was given."""
        self.divergence: Divergence | None = None
        """The first divergence, once there is one."""

    def answer(self, call_id: str, step_id: str, request: RequestDigest | None) -> Any:
        """The recorded result of `call_id`, if it was recorded with the same request.

        Raises:
            ReplayDiverged: The call is not in the recording, its request changed, or the
                replay has already diverged elsewhere (it stops everywhere at the first one).
        """
        if self.divergence is not None:
            raise ReplayDiverged(self.divergence)
        kind = CallId.parse(call_id).kind
        entry = self.entries.get(call_id)
        reason = None
        if entry is None and self._failed_here(call_id, step_id):
            # The recorded run's model failed on this call (so it was never recorded): fail it alike.
            self.failed_as_recorded.append(call_id)
            raise ModelError(self.failures[step_id])
        if entry is None:
            reason = "call not in the recording"
        elif changed := request_changes(entry.request, request):
            reason = describe_changes(changed)
        if reason is not None:
            self.divergence = Divergence(step_id, call_id, kind, reason)
            raise ReplayDiverged(self.divergence)
        assert entry is not None
        self.answered.add(call_id)
        return entry.result

    def _failed_here(self, call_id: str, step_id: str) -> bool:
        """Whether `call_id` is the model call a step that failed in the recorded run failed on.

        That is the first model call of its agent that is not recorded: the one after the
        agent's last recorded model call.
        """
        parsed = CallId.parse(call_id)
        if step_id not in self.failures or parsed.kind != "chat" or parsed.number is None:
            return False
        previous = parsed.previous_chat()
        return previous is None or previous in self.entries

    def unanswered(self) -> list[JournalEntry]:
        """Recorded calls the replay never asked for, in recording order."""
        return [self.entries[call_id] for call_id in self.order if call_id not in self.answered]


class ReplayJournal:
    """The journal an agent of a replay sees: answers from the recording, recorded in the replay's own store.

    Args:
        recording: The recorded run's calls.
        inner: The replay run's own journal (metered, recording into its run store).
        step_id: The step the agent works on.
    """

    def __init__(self, recording: Recording, inner: CallJournal, step_id: str) -> None:
        self.recording = recording
        self.inner = inner
        self.step_id = step_id

    def get(self, call_id: str, *, request: RequestDigest | None = None) -> Any | None:
        """The recorded result (never None: a call the recording cannot answer raises).

        Raises:
            ReplayDiverged: The call diverges from the recording.
            BudgetExceeded: The replay reached the run's budget where the recording did.
        """
        # Through the replay's journal as if the call were made: its budget stops the replay
        # where it stopped the recorded run (before the call, which was then never recorded),
        # its usage follows the recorded run's, and its run store holds the calls it replayed.
        self.inner.get(call_id, request=request)
        result = self.recording.answer(call_id, self.step_id, request)
        self.inner.put(call_id, result, request=request)
        return result

    def put(self, call_id: str, result: Any, *, request: RequestDigest | None = None) -> None:
        """Record a call in the replay's store (unused: `get` answers every call or raises)."""
        self.inner.put(call_id, result, request=request)


class ReplayModel(Model):
    """Stands in for a model string in a replay: loads nothing, and refuses to be called.

    Args:
        name: The model string it stands for.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] | None = None,
        output_schema: dict[str, Any] | None = None,
        settings: ModelSettings | None = None,
    ) -> Completion:
        """Never answers: a replay's calls come from its journal.

        Raises:
            ModelError: Always (an agent without a replay journal called it).
        """
        raise ModelError(f"model {self.name} is replaying a recording and cannot be called")


@dataclass
class ReplayReport:
    """How a replay compared with the run it replayed.

    Attributes:
        original: The replayed run's id.
        result: The replay run's result (its own id and folder).
        divergence: The first divergence; None for an identical replay.
        replayed_calls: Calls answered from the recording.
        recorded_calls: Calls in the recording.
    """

    original: str
    result: RunResult
    divergence: Divergence | None
    replayed_calls: int
    recorded_calls: int
    differing_steps: list[str] = field(default_factory=list)
    """Steps whose output differs from the recorded one."""
    failed_as_recorded: list[str] = field(default_factory=list)
    """Model calls that failed in the recorded run (a timeout, a provider error) and so failed again."""

    @property
    def status(self) -> Literal["identical", "diverged"]:
        """``identical`` or ``diverged``."""
        return "identical" if self.divergence is None else "diverged"

    def summary(self) -> dict[str, Any]:
        """The report as the CLI's ``--json`` object."""
        divergence = self.divergence
        return {
            "status": self.status,
            "original": self.original,
            "replay": self.result.run_id,
            "replay_status": self.result.status,
            "divergence": None
            if divergence is None
            else {
                "step_id": divergence.step_id,
                "call_id": divergence.call_id,
                "kind": divergence.kind,
                "reason": divergence.reason,
            },
            "replayed_calls": self.replayed_calls,
            "recorded_calls": self.recorded_calls,
            "differing_steps": self.differing_steps,
            "failed_as_recorded": self.failed_as_recorded,
        }


async def replay(
    run_dir: Path, *, sinks: Sequence[TraceSink] = (), on_step: StepListener | None = None
) -> ReplayReport:
    """Replay the run in `run_dir` against its workflow file as it is now, offline.

    Args:
        run_dir: The recorded run's folder (``$ROLEGRAPH_HOME/runs/<run_id>``).
        sinks: Extra trace sinks for the replay run.
        on_step: Called whenever a step of the replay changes status.

    Returns:
        The comparison; the replay run is in its own folder beside the recorded one.

    Raises:
        ReplayError: The folder holds no run store or run record, or its workflow file is
            gone (or the run was not started from a file).
        SpecError: The workflow file no longer loads, or the recorded inputs no longer fit it.
    """
    ready = _prepare(run_dir)
    recording = ready.recording
    hooks = InvokeHooks(
        models=lambda name, _base, _options: ReplayModel(name),
        journal=lambda inner, step_id: ReplayJournal(recording, inner, step_id),
        root_attributes={"rolegraph__replay__of": ready.original.run_id},
    )
    result = await run_durably(
        ready.workflow, ready.record, home=Home(ready.home), sinks=list(sinks), on_step=on_step, hooks=hooks
    )
    return _compare(ready.original, recording, ready.outputs, result)


@dataclass(frozen=True)
class _Prepared:
    original: RunInfo
    recording: Recording
    outputs: dict[str, Any]
    workflow: CompiledWorkflow
    record: RunInfo
    """The replay run's record."""
    home: Path


def _prepare(run_dir: Path) -> _Prepared:
    """What a replay needs: the recorded run (record, calls, outputs), the workflow now, and the new run's record."""
    run_dir = run_dir.absolute()
    original, recording, outputs = _read(run_dir)
    if original.workflow_file is None:
        raise ReplayError(f"run {original.run_id} was not started from a workflow file, so it cannot be replayed")
    file = Path(original.workflow_file)
    if not file.is_file():
        raise ReplayError(f"run {original.run_id}: its workflow file {file} is gone; restore it to replay the run")
    workflow = CompiledWorkflow.load(file)
    record = RunInfo(
        run_id=new_run_id(),
        workflow=workflow.spec.name,
        workflow_file=str(file),
        workflow_hash=file_hash(file),
        inputs=workflow.resolve_inputs(original.inputs),
        model=original.model,
        settings=original.settings,
        content=original.content,
        budget=original.budget,
        privacy=original.privacy,
        started=dt.datetime.now(dt.UTC).isoformat(),
    )
    return _Prepared(original, recording, outputs, workflow, record, run_dir.parent.parent)


def _read(run_dir: Path) -> tuple[RunInfo, Recording, dict[str, Any]]:
    """The recorded run's record, calls and completed steps' outputs, from its store opened read-only."""
    if not RunFolder(run_dir).store.is_file():
        raise ReplayError(f"{run_dir}: no run store ({STORE_FILE}); this run cannot be replayed")
    try:
        store = RunStore.open_existing(run_dir, read_only=True)
    except ResumeError as exc:  # another process is working on the run: its store is locked until it ends
        raise ReplayError(str(exc)) from None
    try:
        try:
            record = store.record()
        except RunError:
            raise ReplayError(f"{run_dir}: the run store holds no run record; the run never started") from None
        entries = list(store.entries())
        checkpoint = store.load()
    finally:
        store.close()
    states = checkpoint.states.values() if checkpoint is not None else ()
    recording = Recording(entries, {s.step_id: s.error or "" for s in states if s.status == "failed"})
    outputs = {state.step_id: state.output for state in states if state.status == "completed"}
    return record, recording, outputs


def _compare(original: RunInfo, recording: Recording, outputs: dict[str, Any], result: RunResult) -> ReplayReport:
    """The report: the first divergence, else a recorded call never asked for, else a changed output or status."""
    divergence = recording.divergence
    if divergence is None and (missed := recording.unanswered()):
        first = missed[0]
        divergence = Divergence(first.step_id, first.call_id, first.kind, "recorded call not made by the replay")
    replayed = result.step_outputs
    differing = sorted(step for step in set(outputs) | set(replayed) if outputs.get(step) != replayed.get(step))
    if divergence is None and differing:
        divergence = Divergence(differing[0], None, "output", "step output differs from the recorded one")
    if divergence is None and result.status != original.status:
        divergence = Divergence("", None, "status", f"run ended {result.status}, the recorded run {original.status}")
    return ReplayReport(
        original=original.run_id,
        result=result,
        divergence=divergence,
        replayed_calls=len(recording.answered),
        recorded_calls=len(recording.order),
        differing_steps=differing,
        failed_as_recorded=list(recording.failed_as_recorded),
    )
