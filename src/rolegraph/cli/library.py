"""``rolegraph library index`` and ``rolegraph library search``: build a library's index, search it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from rolegraph.cli._common import EXIT_BAD_INPUT, app, err, out, report_spec_error
from rolegraph.errors import LibraryError
from rolegraph.tools.library import IndexEvent, IndexReport, Library

library_app = typer.Typer(
    name="library",
    help="Index a folder of papers (PDF, markdown, text, HTML; *.bib for their records) and search it.",
    no_args_is_help=True,
)
app.add_typer(library_app, name="library")

PAGE_STEP = 50
"""A long PDF reports its progress every this many pages."""

FolderArgument = Annotated[
    Path, typer.Argument(help="The library folder.", exists=False, file_okay=False, dir_okay=True)
]
IndexOption = Annotated[
    Path | None,
    typer.Option("--index", help="Keep the index in this file (default: under $ROLEGRAPH_HOME/libraries/)."),
]


def _show_progress(event: IndexEvent) -> None:
    """One line when a file starts, then one every `PAGE_STEP` pages of a long PDF (on stderr)."""
    name = escape(event.file.name)
    if event.page == 0:
        pages = f" ({event.pages} page{'s' if event.pages > 1 else ''})" if event.pages else ""
        err.print(f"reading {name}{pages}", highlight=False)
    elif event.pages and event.pages >= PAGE_STEP and (event.page % PAGE_STEP == 0 or event.page == event.pages):
        err.print(f"  {name}: page {event.page}/{event.pages}", highlight=False)


def _open(folder: Path, index: Path | None) -> Library:
    try:
        return Library.from_dir(folder, index=index, progress=_show_progress)
    except LibraryError as exc:
        raise report_spec_error(exc) from None


def _report_problems(report: IndexReport) -> None:
    for skipped in report.skipped:
        err.print(f"[yellow]skipped[/] {escape(str(skipped.file))}: {escape(skipped.reason)}", highlight=False)
    for note in report.notes:
        err.print(f"[yellow]note[/] {escape(note)}", highlight=False)


@library_app.command("index")
def index_command(folder: FolderArgument, index: IndexOption = None) -> None:
    """Index a library folder (only new and changed files are read); print what changed. Exit 2 on bad notes."""
    library = _open(folder, index)
    report = library.report
    library.close()
    assert report is not None
    _report_problems(report)
    out.print(
        f"{report.documents} documents, {report.chunks} chunks: {report.added} added, {report.changed} changed, "
        f"{report.removed} removed, {report.unchanged} unchanged, {len(report.skipped)} skipped",
        highlight=False,
    )
    out.print(f"index: {escape(str(report.index) if report.index else 'in memory (not stored)')}", highlight=False)


@library_app.command("search")
def search_command(
    folder: FolderArgument,
    query: Annotated[str, typer.Argument(help="Keywords, e.g. 'low-rank adaptation'.")],
    limit: Annotated[int, typer.Option("--limit", min=1, max=100, help="How many passages to show.")] = 5,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the passages as JSON (id, document, title, page, score, text).")
    ] = False,
    index: IndexOption = None,
) -> None:
    """Search a library (indexing it first if files changed): the best passages, best first."""
    if not query.strip():
        err.print("[red]error[/] the query is empty; give keywords, e.g. 'low-rank adaptation'")
        raise typer.Exit(EXIT_BAD_INPUT)
    library = _open(folder, index)
    try:
        hits = library.search(query, limit)
    finally:
        library.close()
    if as_json:
        rows = [
            {
                "id": hit.source_id,
                "document": hit.document.key,
                "title": hit.document.title,
                "authors": list(hit.document.authors),
                "year": hit.document.year,
                "page": hit.page,
                "score": round(hit.score, 4),
                "text": hit.text,
            }
            for hit in hits
        ]
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not hits:
        err.print(f"No passages match {escape(repr(query))}.")
        return
    for rank, hit in enumerate(hits, 1):
        out.print(
            f"{rank}. {escape(hit.document.cite_line(hit.page))}  [dim]score {hit.score:.2f}[/]",
            highlight=False,
            soft_wrap=True,
        )
        out.print(f"   {escape(hit.snippet)}", highlight=False, soft_wrap=True)
