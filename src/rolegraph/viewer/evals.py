"""The evals under ``$ROLEGRAPH_HOME/evals`` for the viewer: a list, and each eval's report as JSON data.

An eval's folder holds its ``manifest.json`` from the start and its ``report.json``
once it finished (`rolegraph eval` writes both). A finished eval shows its report:
the metrics per column with what each means and which way is better, and every
run with its scores, its status and the start of its report, linked to the run.
Its plots are the eval HTML's own SVGs, served as images. An eval still going (or
interrupted) shows its plan: each run's question, column, status and id.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rolegraph.evals.guide import guide
from rolegraph.evals.html import report_plot
from rolegraph.evals.manifest import MANIFEST_FILE, REPORT_FILE, EvalManifest, ManifestError
from rolegraph.evals.runner import COUNTS, EvalReport

__all__ = ["EvalReader"]

_EVAL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def _started(eval_id: str) -> str | None:
    """The start time an eval id encodes (``YYYYmmdd-HHMMSS-...``), as ISO 8601 UTC."""
    try:
        return dt.datetime.strptime(eval_id[:15], "%Y%m%d-%H%M%S").replace(tzinfo=dt.UTC).isoformat()
    except ValueError:
        return None


class EvalReader:
    """Reads eval folders under `evals_dir` (``$ROLEGRAPH_HOME/evals``)."""

    def __init__(self, evals_dir: Path) -> None:
        self.evals_dir = evals_dir

    def folder(self, eval_id: str) -> Path | None:
        """The folder of `eval_id`, or None (ids with path syntax never match)."""
        if not _EVAL_ID.fullmatch(eval_id):
            return None
        folder = self.evals_dir / eval_id
        has = (folder / MANIFEST_FILE).is_file() or (folder / REPORT_FILE).is_file()
        return folder if has else None

    def list(self) -> list[dict[str, Any]]:
        """Every eval, newest first: id, start, workflow, eval set, runs and failures (None while unfinished)."""
        folders = sorted(self.evals_dir.iterdir(), reverse=True) if self.evals_dir.is_dir() else []
        listed = []
        for folder in folders:
            if self.folder(folder.name) is None:
                continue
            report = _report(folder)
            manifest = None if report is not None else _manifest(folder)
            if report is None and manifest is None:
                continue
            listed.append(
                {
                    "eval_id": folder.name,
                    "started": (report.started if report else None) or _started(folder.name),
                    "finished": report is not None,
                    "workflow": report.workflow if report else Path(manifest.workflow_file).stem if manifest else None,
                    "evalset": report.evalset if report else Path(manifest.evalset_file).stem if manifest else None,
                    "runs": len(report.runs) if report else len(manifest.runs) if manifest else 0,
                    "failed": report.failed if report else None,
                }
            )
        return listed

    def view(self, eval_id: str) -> dict[str, Any] | None:
        """One eval for its page, or None if there is no such eval."""
        folder = self.folder(eval_id)
        if folder is None:
            return None
        report = _report(folder)
        if report is not None:
            names = [*report.metrics, "completed"]
            return {
                "eval_id": eval_id,
                "finished": True,
                "started": report.started or _started(eval_id),
                "report": report.to_dict(),
                "columns": {label: report.column_name(label) for label in report.models},
                "metrics": [
                    {
                        "name": n,
                        "meaning": guide(n).meaning,
                        "better": guide(n).better,
                        "arrow": guide(n).arrow,
                        "whole": n in COUNTS,  # a count (tokens): shown as a whole number, as the CLI shows it
                    }
                    for n in names
                ],
            }
        manifest = _manifest(folder)
        if manifest is None:
            return None
        labels = [spec.column().label for spec in manifest.columns]
        return {
            "eval_id": eval_id,
            "finished": False,
            "started": _started(eval_id),
            "workflow_file": manifest.workflow_file,
            "evalset_file": manifest.evalset_file,
            "runs": [
                {
                    "question": run.question,
                    "model": labels[run.column] if run.column < len(labels) else str(run.column),
                    "repeat": run.repeat,
                    "run_id": run.run_id,
                    "status": run.status,
                }
                for run in manifest.runs
            ],
        }

    def plot(self, eval_id: str, metric: str) -> str | None:
        """A finished eval's plot of one metric, as an SVG document (the eval HTML's), or None."""
        folder = self.folder(eval_id)
        report = None if folder is None else _report(folder)
        if report is None or metric not in (*report.metrics, "completed"):
            return None
        return report_plot(report, metric)


def _report(folder: Path) -> EvalReport | None:
    try:
        return EvalReport.model_validate_json((folder / REPORT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValidationError, ValueError):
        return None


def _manifest(folder: Path) -> EvalManifest | None:
    try:
        return EvalManifest.load(folder)
    except ManifestError:
        return None
