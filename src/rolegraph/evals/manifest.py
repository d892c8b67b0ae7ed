"""An eval's manifest: what it runs and how far it got, so a killed or interrupted eval can be resumed.

Each eval has an id and a folder ``$ROLEGRAPH_HOME/evals/<eval_id>/`` holding
``manifest.json``, the judge's ``judge.jsonl`` and, once the eval finished, its
``report.json`` (the `EvalReport`, which ``rolegraph serve`` shows). The manifest names the
workflow and eval set files with their hashes, the columns, repeats, limit and
run budget, and one entry per planned run (question, column, repeat) with its
run id and status. It is rewritten atomically (a temporary file renamed over
it) whenever a run starts or finishes, so whatever kills the eval, the file on
disk is whole and at most one step behind.

```python
manifest = EvalManifest.load(eval_dir(home, "last"))
print([(r.question, r.status) for r in manifest.runs])
```
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, Field, PrivateAttr, ValidationError, field_validator

from rolegraph.errors import RolegraphError
from rolegraph.evals.matrix import Column
from rolegraph.layout import Home, is_run_id
from rolegraph.runtime.run_info import file_hash

__all__ = [
    "FINAL_STATUSES",
    "MANIFEST_FILE",
    "REPORT_FILE",
    "ColumnSpec",
    "EvalManifest",
    "Manifest",
    "ManifestError",
    "PlannedRun",
    "PlannedStatus",
    "RunEntry",
    "eval_dir",
    "find_eval",
    "find_manifest",
    "new_eval_id",
    "resume_manifest",
]

MANIFEST_FILE = "manifest.json"

REPORT_FILE = "report.json"
"""In an eval's folder: its finished report (`EvalReport` as JSON)."""

PlannedStatus = Literal["pending", "running", "completed", "failed", "cancelled", "budget_exceeded"]
"""``pending`` never started, ``running`` started (a crash or kill leaves it so), else the run's own status."""

FINAL_STATUSES = ("completed", "failed")
"""Statuses a resumed eval re-scores as they are; the others are continued or started."""


class ManifestError(RolegraphError):
    """An eval cannot be found or resumed (no such eval, unreadable manifest, changed files)."""


class RunEntry(BaseModel):
    """One run a manifest plans, and how far it got (an eval's runs, a batch's lines)."""

    run_id: str | None = None
    """The run's id once it started; it names the run's folder, so it must have a run id's shape."""
    status: PlannedStatus = "pending"

    @field_validator("run_id")
    @classmethod
    def _a_run_id(cls, value: str | None) -> str | None:
        if value is not None and not is_run_id(value):
            raise ValueError(f"{value[:80]!r} is not a run id")
        return value


class PlannedRun(RunEntry):
    """One planned run of an eval: a question in a column, one repeat, and how far it got."""

    question: str
    column: int
    """Index into `EvalManifest.columns`."""
    repeat: int
    """1-based."""


class ColumnSpec(BaseModel):
    """A column as the manifest keeps it: the model (None: the workflow's own) and its settings."""

    model: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)

    def column(self) -> Column:
        """The `Column` it describes."""
        return Column(model=self.model, settings=dict(self.settings))


class Manifest(BaseModel):
    """A file that plans many runs and records how far each got, rewritten atomically as they change:
    what lets a killed eval or batch be resumed."""

    FOLDER: ClassVar[str] = "an eval folder"
    """What holds such a manifest, for messages."""
    path: Path | None = Field(default=None, exclude=True)
    """Where the manifest is kept (None: it is not saved)."""

    # Saves one at a time: renames must land in the order their states were taken.
    _lock: asyncio.Lock = PrivateAttr(default_factory=asyncio.Lock)

    @property
    def ident(self) -> str:
        """The id of what the manifest plans (its folder's name)."""
        raise NotImplementedError

    @classmethod
    def load(cls, folder: Path) -> Self:
        """The manifest in `folder`.

        Raises:
            ManifestError: There is none, or it cannot be read.
        """
        file = folder / MANIFEST_FILE
        what = cls.FOLDER.split(" ", 1)[1].removesuffix(" folder")
        try:
            manifest = cls.model_validate_json(file.read_bytes())
        except OSError:
            raise ManifestError(f"{folder} holds no {what} manifest ({MANIFEST_FILE}); is it {cls.FOLDER}?") from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ManifestError(
                f"{file} is not a readable {what} manifest ({where + ': ' if where else ''}{first['msg']});"
                f" it is damaged: restore it, or start the {what} again"
            ) from None
        if manifest.ident != folder.name:
            raise ManifestError(
                f"{file} names {what} {manifest.ident[:80]!r}, not its folder's {folder.name!r};"
                f" it is damaged: restore it, or start the {what} again"
            )
        manifest.path = file
        return manifest

    def write(self) -> None:
        """Write the manifest now (atomically: a temporary file in the same folder renamed over it)."""
        if self.path is not None:
            _atomic_write(self.path, self.model_dump_json(indent=2))

    async def save(self) -> None:
        """`write`, off the event loop, one save at a time."""
        if self.path is None:
            return
        text = self.model_dump_json(indent=2)  # the state now, whatever changes while the file is written
        async with self._lock:
            await asyncio.to_thread(_atomic_write, self.path, text)


class EvalManifest(Manifest):
    """Everything needed to resume an eval, and the state of each of its runs."""

    eval_id: str = ""
    workflow_file: str = ""
    workflow_hash: str = ""
    evalset_file: str = ""
    evalset_hash: str = ""
    columns: list[ColumnSpec] = Field(default_factory=list)
    grid: dict[str, list[int | float]] = Field(default_factory=dict)
    repeat: int = 1
    limit: int | None = None
    concurrency: int = 1
    budget: dict[str, float] = Field(default_factory=dict)
    """The run budget's limits (`Budget.limits`), applied to every run."""
    judge: str | None = None
    """The judge's model string, if any."""
    runs: list[PlannedRun] = Field(default_factory=list)

    @property
    def ident(self) -> str:
        """The eval's id."""
        return self.eval_id

    @classmethod
    def start(
        cls,
        workflow_file: Path,
        evalset_file: Path,
        *,
        grid: dict[str, list[int | float]],
        repeat: int,
        limit: int | None,
        concurrency: int,
        budget: dict[str, float],
        judge: str | None,
    ) -> EvalManifest:
        """A new eval's manifest (a fresh id; the files named absolutely, with their hashes; no run yet)."""
        return cls(
            eval_id=new_eval_id(),
            workflow_file=str(workflow_file.resolve()),
            workflow_hash=file_hash(workflow_file),
            evalset_file=str(evalset_file.resolve()),
            evalset_hash=file_hash(evalset_file),
            grid=grid,
            repeat=repeat,
            limit=limit,
            concurrency=concurrency,
            budget=budget,
            judge=judge,
        )


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def new_eval_id() -> str:
    """A fresh eval id: a UTC timestamp and 48 random bits (sorts by start time)."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{secrets.token_hex(6)}"


def eval_dir(home: Path, eval_id: str) -> Path:
    """The folder of eval `eval_id` under `home` (``evals/<eval_id>``)."""
    return Home(home).evals / eval_id


def find_eval(home: Path, ref: str) -> Path:
    """The folder of the eval `ref` names: an id, a unique id prefix, or ``last`` (the newest with a manifest).

    Raises:
        ManifestError: No eval (or several) matches.
    """
    return find_manifest(Home(home).evals, ref, "eval", "rolegraph eval")


def find_manifest(root: Path, ref: str, what: str, command: str) -> Path:
    """The folder under `root` holding the manifest `ref` names: an id, a unique id prefix, or ``last``
    (the newest); `what` and `command` name the kind in messages (``eval``, ``rolegraph eval``).

    Raises:
        ManifestError: None (or several) matches.
    """
    # Ids have a run id's shape; a folder named otherwise is not one rolegraph made.
    found = (
        sorted(p for p in root.glob("*") if is_run_id(p.name) and (p / MANIFEST_FILE).is_file())
        if root.is_dir()
        else []
    )
    if ref == "last":
        if not found:
            raise ManifestError(f"no {what} to resume under {root}")
        return found[-1]
    exact = [p for p in found if p.name == ref]
    matches = exact or [p for p in found if p.name.startswith(ref)]
    if len(matches) != 1:
        which = f"no {what}" if not matches else f"{len(matches)} {what}s"
        raise ManifestError(f"{which} under {root} match {ref!r}; give the {what} id `{command}` printed")
    return matches[0]


def resume_manifest(
    home: Path, ref: str, *, workflow_file: Path | None, evalset_file: Path | None, force: bool
) -> EvalManifest:
    """The manifest of the eval `ref` names, its files checked against those it started with.

    Args:
        home: The rolegraph home.
        ref: An eval id, a unique prefix, or ``last``.
        workflow_file: The workflow file given again, if any (it must be the eval's own).
        evalset_file: The eval set file given again, if any (it must be the eval's own).
        force: Resume although a file changed since the eval started.

    Raises:
        ManifestError: No such eval; a file given is not the eval's; a file is gone or (without `force`) changed.
    """
    manifest = EvalManifest.load(find_eval(home, ref))
    for given, kept, digest, what in (
        (workflow_file, manifest.workflow_file, manifest.workflow_hash, "workflow"),
        (evalset_file, manifest.evalset_file, manifest.evalset_hash, "eval set"),
    ):
        if given is not None and given.resolve() != Path(kept):
            raise ManifestError(
                f"eval {manifest.eval_id} ran {what} {kept}, not {given}; leave the file out to resume it"
            )
        if not Path(kept).is_file():
            raise ManifestError(
                f"eval {manifest.eval_id}: its {what} file {kept} is gone; restore it to resume the eval"
            )
        if file_hash(Path(kept)) != digest and not force:
            raise ManifestError(
                f"eval {manifest.eval_id}: {kept} changed since the eval started, so its finished runs may not "
                "fit it; start a new eval, or resume anyway with --force"
            )
    return manifest
