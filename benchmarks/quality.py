"""``uv run python -m benchmarks.quality``: the README's quality table, generated from real eval runs.

```bash
uv run python -m benchmarks.quality run before            # the bundled eval set on the demo workflow; keeps its JSON
uv run python -m benchmarks.quality run after --limit 6   # the first 6 questions only
uv run python -m benchmarks.quality run prose --limit 6 --writing abstractive   # the writer writes prose
uv run python -m benchmarks.quality rescore before        # score its run folders again with today's metrics
uv run python -m benchmarks.quality render                # README block and docs/quality.md from the kept JSON
uv run python -m benchmarks.quality check                 # exit 1 if they differ from what the JSON gives
```

``run NAME`` evaluates a workflow (default ``examples/literature_review.yaml``) on an
eval set (default ``examples/evals/library_questions.yaml``) with `rolegraph.evals.evaluate`
and keeps the whole report — what ``rolegraph eval --json`` prints, every run's scores and
the details behind them — as ``benchmarks/results/quality/NAME.json``, with a ``meta``
block: the command, when it ran, how long, the machine and its load, the commit. Then it
renders. ``render`` writes the README's block between ``<!-- quality:begin -->`` and
``<!-- quality:end -->`` (a column per kept eval, oldest first) and ``docs/quality.md``
(the same, then every eval's per-question table). Nothing in either is typed by hand:
``tests/test_quality.py`` checks that both equal what the kept JSON gives.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rolegraph
from rolegraph.agents.roles import ReportOutput, Writing
from rolegraph.evals.loader import load_evalset
from rolegraph.evals.metrics import CHECKS, QUALITY, USAGE
from rolegraph.evals.relevance import TOPIC_MATCHES
from rolegraph.evals.runner import EvalReport, EvalRun, MetricSummary, evaluate, rescore
from rolegraph.evals.support import SUPPORT_THRESHOLD
from rolegraph.layout import home_dir
from rolegraph.runtime.executor import resolve_roles
from rolegraph.workflow import Workflow
from rolegraph.workflows.spec import RoleSpec

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "quality"
README = ROOT / "README.md"
DOCS = ROOT / "docs" / "quality.md"
WORKFLOW = ROOT / "examples" / "literature_review.yaml"
EVALSET = ROOT / "examples" / "evals" / "library_questions.yaml"
BEGIN, END = "<!-- quality:begin -->", "<!-- quality:end -->"
_GROUPS = (("quality", QUALITY), ("checks (1.00 and 0 forbidden unless something is broken)", CHECKS), ("usage", USAGE))
_QUESTION_COLUMNS = (
    "source_recall",
    "source_precision",
    "topic_relevance",
    "fact_coverage",
    "claim_support",
    "claims",
    "quote_validity",
    "tokens",
    "wall_time_s",
)


@dataclass(frozen=True)
class Kept:
    """One kept eval: its name (the file's stem), the report, and how it was made."""

    name: str
    report: EvalReport
    meta: dict[str, Any]


def load_kept(folder: Path = RESULTS) -> list[Kept]:
    """Every kept eval in `folder`, oldest first (by when it finished)."""
    kept = []
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        kept.append(Kept(path.stem, EvalReport.model_validate(data), dict(data.get("meta") or {})))
    return sorted(kept, key=lambda k: (str(k.meta.get("finished", "")), k.name))


def _label(kept: Kept, model: str) -> str:
    return f"`{kept.name}`" if len(kept.report.models) == 1 else f"`{kept.name}` {model}"


def _cell(summary: MetricSummary, name: str) -> str:
    if summary.mean is None:
        return "n/a"
    digits = 0 if name == "tokens" else 2
    spread = f" ± {summary.sd:.{digits}f}" if summary.sd is not None else ""
    return f"{summary.mean:.{digits}f}{spread} ({summary.n})"


def _counted(kept: Kept, model: str) -> str:
    """How many of a column's claims `claim_support` counted, of all its claims (the rest only quote)."""
    runs = [r for r in kept.report.runs if r.model == model]
    counts = [r.scores.claims_counted for r in runs]
    if any(c is None for c in counts):
        return "not recorded"  # scored before claims that only quote were told apart
    return f"{sum(c or 0 for c in counts)} of {sum(len(r.scores.claims) for r in runs)}"


def summary_table(evals: Sequence[Kept]) -> list[str]:
    """One table: a row per metric (grouped), a column per kept eval and model."""
    columns = [(k, m, k.report.summary()[m]) for k in evals for m in k.report.models]
    lines = [
        "| metric | " + " | ".join(_label(k, m) for k, m, _ in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for group, names in _GROUPS:
        lines.append(f"| *{group}* |" + " |" * len(columns))
        for name in names:
            lines.append(f"| {name} | " + " | ".join(_cell(s[name], name) for _, _, s in columns) + " |")
            if name == "claim_support":
                lines.append("| claims counted (of all) | " + " | ".join(_counted(k, m) for k, m, _ in columns) + " |")
    lines.append("| completed | " + " | ".join(_cell(s["completed"], "completed") for _, _, s in columns) + " |")
    return lines


def provenance(kept: Kept) -> str:
    """How an eval was made, in one line."""
    meta, report = kept.meta, kept.report
    questions = len({r.question for r in report.runs})
    parts = [
        f"`{kept.name}`: `{meta.get('command', '?')}`",
        f"{questions} question(s) of `{report.evalset}` on workflow `{report.workflow}`, {len(report.runs)} run(s)"
        f" ({report.failed} failed)",
    ]
    if meta.get("writing"):
        parts.append(f"writer writing `{meta['writing']}`")
    if meta.get("finished"):
        parts.append(f"finished {meta['finished']}")
    if meta.get("commit"):
        parts.append(f"commit `{meta['commit']}`")
    if meta.get("rescored"):
        parts.append(f"re-scored {meta['rescored']}")
    if meta.get("seconds") is not None:
        parts.append(f"{meta['seconds'] / 60:.1f} min in all")
    if meta.get("cpu_count"):
        load = meta.get("load_average")
        parts.append(f"{meta['cpu_count']} cores" + (f", load average {load:.1f} at the start" if load else ""))
    return "; ".join(parts) + "."


def readme_block(evals: Sequence[Kept]) -> str:
    """What goes between the README's markers."""
    if not evals:
        return "No eval kept yet: run `uv run python -m benchmarks.quality run before`."
    lines = [
        "Generated by `uv run python -m benchmarks.quality render` from the eval reports kept in "
        "`benchmarks/results/quality/` (never typed; per-question tables in [docs/quality.md](docs/quality.md)):",
        "",
        *[f"- {provenance(k)}" for k in evals],
        "",
        *summary_table(evals),
    ]
    return "\n".join(lines)


def _run_value(run: EvalRun, name: str) -> str:
    if name == "claims":
        counted = run.scores.claims_counted
        return "n/a" if counted is None else f"{counted}/{len(run.scores.claims)}"
    value = getattr(run.scores, name)
    if value is None:
        return "n/a"
    return f"{value:.0f}" if name == "tokens" else f"{value:.2f}"


def question_table(report: EvalReport) -> list[str]:
    """A row per run: its question, status and main figures."""
    lines = [
        "| question | status | " + " | ".join(_QUESTION_COLUMNS) + " |",
        "|---|---|" + "---|" * len(_QUESTION_COLUMNS),
    ]
    for run in report.runs:
        label = run.question if len(report.models) == 1 else f"{run.question} ({run.model})"
        values = " | ".join(_run_value(run, name) for name in _QUESTION_COLUMNS)
        lines.append(f"| {label} | {run.status} | {values} |")
    return lines


def failures(report: EvalReport) -> list[str]:
    """One line per run that did not complete: its question and why."""
    return [
        f"- `{run.question}` ({run.model}) {run.status}: {' '.join((run.error or 'no error recorded').split())[:300]}"
        for run in report.runs
        if run.status != "completed"
    ]


def docs_page(evals: Sequence[Kept]) -> str:
    """The whole of docs/quality.md."""
    lines = [
        "# Research quality, measured",
        "",
        "<!-- Generated by `uv run python -m benchmarks.quality render`; do not edit. -->",
        "",
        "Every figure here comes from an eval report kept in `benchmarks/results/quality/` "
        "(`uv run python -m benchmarks.quality run NAME` makes one). The metrics are defined in "
        "`rolegraph.evals.metrics` and the README's *Evaluating a workflow* section: `claim_support` "
        "scores the claims with words of their own (a claim's text; each cited sentence of the report, against "
        "the best-matching sentence of the sources it cites) and needs the evidence to be a sentence of the "
        f"cited source holding at least {SUPPORT_THRESHOLD:.0%} of the claim's content words beyond its topic "
        "(or a judge's yes); a claim that only quotes its source (a gatherer's evidence, an extractive "
        "writer's sentence) is not counted (`claims counted`, and the `claims` column: counted/all), so "
        "`claim_support` is n/a for a report made only of quotes. `fact_coverage` reads the report's body "
        "only, and `topic_relevance` compares the cited sources with the question's gold sources (or, "
        f"without gold, the library's {TOPIC_MATCHES} best matches for the topic).",
        "",
        "## Summary",
        "",
        readme_block(evals),
    ]
    for kept in evals:
        lines += ["", f"## `{kept.name}`, question by question", "", provenance(kept), "", *question_table(kept.report)]
        if failed := failures(kept.report):
            lines += ["", "Runs that did not complete:", "", *failed]
    return "\n".join(lines) + "\n"


def replace_block(text: str, block: str) -> str:
    """`text` with what lies between the markers replaced by `block`.

    Raises:
        ValueError: The markers are missing or out of order.
    """
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the README needs the markers {BEGIN} and {END}, in that order")
    return text[: start + len(BEGIN)] + "\n" + block + "\n" + text[end:]


def render(folder: Path = RESULTS, readme: Path = README, docs: Path = DOCS) -> list[Path]:
    """Write the README block and docs page from the kept evals; return the files that changed."""
    evals = load_kept(folder)
    changed = []
    for path, text in (
        (readme, replace_block(readme.read_text("utf-8"), readme_block(evals))),
        (docs, docs_page(evals)),
    ):
        if not path.is_file() or path.read_text("utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


def stale(folder: Path = RESULTS, readme: Path = README, docs: Path = DOCS) -> list[Path]:
    """The files that differ from what the kept evals give (nothing written)."""
    evals = load_kept(folder)
    wanted = {readme: replace_block(readme.read_text("utf-8"), readme_block(evals)), docs: docs_page(evals)}
    return [p for p, text in wanted.items() if not p.is_file() or p.read_text("utf-8") != text]


def _commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip() or None


def _progress(run: EvalRun) -> None:
    scores = run.scores
    print(
        f"[{run.question}] {run.status} in {scores.wall_time_s:.0f} s: recall {scores.source_recall}, "
        f"facts {scores.fact_coverage}, support {scores.claim_support}",
        file=sys.stderr,
        flush=True,
    )


def _relative(path: Path) -> str:
    resolved = path.resolve()
    return str(resolved.relative_to(ROOT) if resolved.is_relative_to(ROOT) else path)


def with_writing(flow: Workflow, writing: Writing) -> Workflow:
    """`flow` with each of its writers (roles answering `ReportOutput`) writing `writing`."""
    writers = [name for name, role in resolve_roles(flow.spec).items() if issubclass(role.output_model, ReportOutput)]
    roles = dict(flow.spec.roles)
    for name in writers:
        roles[name] = (roles.get(name) or RoleSpec()).model_copy(update={"writing": writing})
    return Workflow(flow.spec.model_copy(update={"roles": roles}), flow.path, flow.warnings, file_hash=flow.file_hash)


def run_eval(
    name: str,
    *,
    workflow: Path = WORKFLOW,
    evalset: Path = EVALSET,
    limit: int | None = None,
    models: Sequence[str | None] = (None,),
    folder: Path = RESULTS,
    command: str = "",
    writing: Writing | None = None,
) -> Path:
    """Evaluate `workflow` on `evalset` and keep the report as ``folder/name.json``; return its path.

    With `writing`, every writer of the workflow writes that way (`with_writing`).
    """
    flow = rolegraph.load(workflow)
    if writing is not None:
        flow = with_writing(flow, writing)
    questions = load_evalset(evalset, flow)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    started = dt.datetime.now(dt.UTC)
    clock = time.perf_counter()
    report = asyncio.run(evaluate(flow, questions, models=models, limit=limit, on_run=_progress))
    data = report.to_dict()
    data["meta"] = {
        "command": command or f"python -m benchmarks.quality run {name}",
        "workflow": _relative(workflow),
        "evalset": _relative(evalset),
        "limit": limit,
        "writing": writing,
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - clock, 1),
        "cpu_count": os.cpu_count(),
        "load_average": round(load, 2) if load is not None else None,
        "commit": _commit(),
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path


def rescore_kept(name: str, *, folder: Path = RESULTS, home: Path | None = None) -> Path:
    """Score a kept report's runs again from their run folders (under `home`), keeping how they were made.

    Raises:
        RunFolderError: A run's folder is gone or cannot be scored.
    """
    path = folder / f"{name}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    meta = dict(data.get("meta") or {})
    flow = rolegraph.load(ROOT / meta.get("workflow", _relative(WORKFLOW)))
    questions = load_evalset(ROOT / meta.get("evalset", _relative(EVALSET)), flow)
    runs = home_dir() / "runs" if home is None else home / "runs"
    report = asyncio.run(rescore(flow, questions, [runs / r["run_id"] for r in data["runs"]], on_run=_progress))
    rescored = report.to_dict()
    rescored["meta"] = {**meta, "rescored": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    path.write_text(json.dumps(rescored, indent=2) + "\n", encoding="utf-8")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: ``run NAME [--limit N] [--model M]``, ``render`` or ``check``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quality", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run an eval and keep its report, then render")
    run.add_argument("name", help="the kept report's name, e.g. before or after")
    run.add_argument("--limit", type=int, default=None, help="only the first N questions")
    run.add_argument("--model", action="append", default=None, help="a model replacing the workflow's default")
    run.add_argument("--workflow", type=Path, default=WORKFLOW)
    run.add_argument("--evalset", type=Path, default=EVALSET)
    run.add_argument(
        "--writing", choices=("extractive", "abstractive"), default=None, help="how the workflow's writers write"
    )
    again = commands.add_parser("rescore", help="score a kept report's run folders again, then render")
    again.add_argument("name", help="the kept report's name")
    commands.add_parser("render", help="write the README block and docs/quality.md from the kept reports")
    commands.add_parser("check", help="exit 1 if the README block or docs/quality.md is not what the reports give")
    args = parser.parse_args(argv)
    if args.command == "run":
        command = "python -m benchmarks.quality " + " ".join(argv if argv is not None else sys.argv[1:])
        path = run_eval(
            args.name,
            workflow=args.workflow,
            evalset=args.evalset,
            limit=args.limit,
            models=args.model or [None],
            command=command,
            writing=args.writing,
        )
        print(f"kept {path}", file=sys.stderr)
    if args.command == "rescore":
        print(f"rescored {rescore_kept(args.name)}", file=sys.stderr)
    if args.command in ("run", "rescore", "render"):
        for path in render():
            print(f"wrote {path}", file=sys.stderr)
        return 0
    outdated = stale()
    for path in outdated:
        print(f"{path} is not what the kept reports give: run python -m benchmarks.quality render", file=sys.stderr)
    return 1 if outdated else 0


if __name__ == "__main__":
    raise SystemExit(main())
