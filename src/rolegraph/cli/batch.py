"""``rolegraph batch``: a workflow run once per line of a JSON Lines or CSV file, resumable like an eval."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rolegraph.cli._common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    CacheOption,
    ExecutorOption,
    app,
    err,
    executor_factory,
    load_workflow,
    out,
    report_spec_error,
    run_async,
)
from rolegraph.errors import SpecError
from rolegraph.evals.batch import (
    BatchLine,
    BatchManifest,
    batch_dir,
    check_unchanged,
    find_batch,
    read_inputs,
    run_batch,
)
from rolegraph.evals.manifest import MANIFEST_FILE, ManifestError
from rolegraph.layout import Home, home_dir

DEFAULT_CONCURRENCY = 4


@app.command()
def batch(
    file: Annotated[Path | None, typer.Argument(metavar="WORKFLOW", help="Workflow YAML file.")] = None,
    inputs: Annotated[
        Path | None, typer.Argument(metavar="INPUTS", help="One run per line: .jsonl (JSON objects) or .csv.")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(min=1, help=f"Lines run at once (default {DEFAULT_CONCURRENCY}).")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model string replacing the workflow's default model.")] = None,
    executor: ExecutorOption = None,
    cache: CacheOption = None,
    resume_batch: Annotated[
        str | None,
        typer.Option("--resume", metavar="BATCH", help="Finish the batch with this id (or `last`) after a crash."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="With --resume: go on although the workflow or inputs file changed.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the lines' runs as JSON on stdout.")] = False,
) -> None:
    """Run a workflow once per line of an inputs file, each run in its own folder.

    Each batch prints its id: `rolegraph batch --resume ID` finishes it after a crash, a kill or Ctrl-C
    (finished lines are kept, interrupted runs continued). Exit 0 when every line's run completed, 1 if
    any did not, 2 on bad input.
    """
    home = home_dir()
    manifest = _manifest(home, file, inputs, resume_batch, force, concurrency, cache)
    workflow = load_workflow(Path(manifest.workflow_file))
    factory = executor_factory(executor, workflow)
    manifest.path = batch_dir(home, manifest.batch_id) / MANIFEST_FILE
    verb = "resumed" if resume_batch else "resume it with"
    err.print(f"batch {manifest.batch_id} ({verb}: rolegraph batch --resume {manifest.batch_id})", soft_wrap=True)
    with Progress(
        TextColumn("batch"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} not completed"),
        TimeElapsedColumn(),
        console=err,
        disable=quiet,
        transient=False,
    ) as progress:
        done = sum(entry.status == "completed" for entry in manifest.runs)
        task = progress.add_task("batch", total=len(manifest.runs), completed=done, failed=0)

        def on_line(entry: BatchLine) -> None:
            failed = sum(e.status not in ("completed", "pending", "running") for e in manifest.runs)
            progress.update(task, completed=sum(e.status not in ("pending", "running") for e in manifest.runs))
            progress.update(task, failed=failed)

        lines = run_async(
            run_batch(workflow, manifest, home=home, executor=factory, model=model, force=force, on_line=on_line),
            error_exit=EXIT_BAD_INPUT,
        )
    _report(home, lines, as_json)
    if any(entry.status != "completed" for entry in lines):
        raise typer.Exit(EXIT_FAILED)


def _manifest(
    home: Path,
    file: Path | None,
    inputs: Path | None,
    ref: str | None,
    force: bool,
    concurrency: int | None,
    cache: bool | None,
) -> BatchManifest:
    """The batch to run: a new one from the files, or the one `--resume` names (its files checked; `--cache`
    or `--no-cache` there replaces the batch's choice)."""
    try:
        if ref is not None:
            if file is not None or inputs is not None:
                raise ManifestError("--resume goes on with the batch's own workflow and inputs files: leave them out")
            manifest = BatchManifest.load(find_batch(home, ref))
            check_unchanged(manifest, force=force)
            manifest.concurrency = concurrency or manifest.concurrency
            manifest.cache = manifest.cache if cache is None else cache
            return manifest
    except ManifestError as exc:
        err.print(f"[red]error[/] {escape(str(exc))}", soft_wrap=True, highlight=False)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    if file is None or inputs is None:
        err.print("[red]error[/] give a WORKFLOW and an INPUTS file, or --resume BATCH")
        raise typer.Exit(EXIT_BAD_INPUT)
    load_workflow(file)  # its problems first, at their lines
    try:
        lines = read_inputs(inputs)
    except SpecError as exc:
        raise report_spec_error(exc) from None
    return BatchManifest.start(file, inputs, lines, concurrency=concurrency or DEFAULT_CONCURRENCY, cache=cache)


def _report(home: Path, lines: list[BatchLine], as_json: bool) -> None:
    """The summary table (or JSON): each line's status, run, time and tokens."""
    rows = []
    for entry in lines:
        summary = Home(home).run(entry.run_id).read_summary() if entry.run_id else {}
        usage = summary.get("usage") or {}
        tokens = int(usage.get("input_tokens", 0)) + int(usage.get("output_tokens", 0))
        rows.append({**entry.model_dump(), "duration_s": summary.get("duration_s"), "tokens": tokens})
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("line", "inputs", "status")
    table.add_column("run", no_wrap=True)
    table.add_column("time", justify="right")
    table.add_column("tokens", justify="right")
    for row in rows:
        shown = json.dumps(row["inputs"], ensure_ascii=False)
        colour = "green" if row["status"] == "completed" else "red"
        seconds = f"{row['duration_s']:.1f}s" if isinstance(row["duration_s"], int | float) else "-"
        table.add_row(
            str(row["line"]),
            escape(shown if len(shown) <= 40 else shown[:39] + "…"),
            f"[{colour}]{row['status']}[/]",
            row["run_id"] or "-",
            seconds,
            str(row["tokens"]),
        )
    out.print(table)
    completed = sum(row["status"] == "completed" for row in rows)
    out.print(f"{completed} of {len(rows)} lines completed")
