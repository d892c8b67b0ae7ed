"""``rolegraph init``: scaffold a project that runs as it is."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from rolegraph.cli._common import EXIT_BAD_INPUT, app, err, out
from rolegraph.scaffold import ScaffoldError, scaffold


@app.command()
def init(name: Annotated[Path, typer.Argument(metavar="NAME", help="The project folder to create.")]) -> None:
    """Create a project: a workflow, a small library of notes, an eval set, a test and a README.

    The workflow runs straight away on the embedded model: `rolegraph run NAME/workflow.yaml`.
    """
    try:
        written = scaffold(name)
    except ScaffoldError as exc:
        err.print(f"[red]error[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    for path in written:
        out.print(f"created {escape(str(path))}", highlight=False, soft_wrap=True)
    workflow = name / "workflow.yaml"
    err.print(
        f"next: rolegraph run {escape(str(workflow))}, then rolegraph serve (see {escape(str(name / 'README.md'))})",
        highlight=False,
        soft_wrap=True,
    )
