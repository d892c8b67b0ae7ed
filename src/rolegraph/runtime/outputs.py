"""Writing a run's output files: cited markdown reports, JSON, source lists, BibTeX, templates."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rolegraph.tools.sources import Source, SourceRegistry
from rolegraph.workflows.context import output_context
from rolegraph.workflows.spec import OutputSpec
from rolegraph.workflows.templates import referenced_names, render

__all__ = ["INLINE_CITATION", "render_bibtex", "render_report", "render_sources", "write_outputs"]


def _reference(number: int, source: Source) -> str:
    parts = [f"[{number}] {', '.join(source.authors) or 'Unknown author'}"]
    if source.year:
        parts.append(f"({source.year}).")
    parts.append(f"*{source.title}*.")
    if source.venue:
        parts.append(f"{source.venue}.")
    if source.arxiv:
        parts.append(f"arXiv:{source.arxiv}.")
    elif source.url:
        parts.append(source.url)
    return " ".join(parts) + f" `{source.document_id}`"


def _placed(marks: Mapping[str, str], match: re.Match[str]) -> str:
    return marks[match.group(1)]


INLINE_CITATION = re.compile(r"\[@([^\]\s]+)\]")
"""A citation placed inside a paragraph's text, ``[@hu2021lora]``: rendered as its number where it stands."""


def render_report(output: Mapping[str, Any], sources: SourceRegistry) -> tuple[str, int, int]:
    """Render a writer's output (title, paragraphs with citations) as markdown with numbered references.

    A paragraph's citations are marked at its end, except those its text places itself with
    `INLINE_CITATION` markers (an extractive writer cites each sentence where it ends). References
    are numbered in order of first citation.

    Returns:
        The markdown, the number of citations, and how many of them name no retrieved source.
    """
    numbers: dict[str, int] = {}
    cited: dict[str, Source] = {}
    counts = {"total": 0, "unresolved": 0}

    def mark(source_id: str) -> str:
        counts["total"] += 1
        source = sources.get(source_id)
        if source is None:
            counts["unresolved"] += 1
            return f"[?{source_id}]"
        # Pages of one PDF share its reference number: [3, p. 4].
        number = numbers.setdefault(source.document_id, len(numbers) + 1)
        cited.setdefault(source.document_id, source)
        return f"[{number}]" if source.page is None else f"[{number}, p. {source.page}]"

    lines = [f"# {output.get('title', 'Report')}", ""]
    for paragraph in output.get("paragraphs", []):
        text = str(paragraph.get("text", "")).strip()
        inline = list(dict.fromkeys(INLINE_CITATION.findall(text)))
        marks = {source_id: mark(source_id) for source_id in inline}
        text = INLINE_CITATION.sub(functools.partial(_placed, marks), text)
        rest = [mark(source_id) for source_id in paragraph.get("citations", []) if source_id not in marks]
        lines += [f"{text} {''.join(dict.fromkeys(rest))}".strip(), ""]
    lines += ["## References", ""]
    for document_id, number in numbers.items():
        lines.append(_reference(number, cited[document_id]))
    return "\n".join(lines).rstrip() + "\n", counts["total"], counts["unresolved"]


def render_sources(sources: SourceRegistry) -> str:
    """The run's sources as a JSON array (without their full text)."""
    return json.dumps([s.model_dump(exclude={"text"}) for s in sources], indent=2, ensure_ascii=False) + "\n"


_BIBTEX_WORDS = {"\\": r"\textbackslash{}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _bibtex_escape(text: str) -> str:
    # One pass, so the braces of a replacement are never escaped again; a bare backslash would start a command.
    return re.sub(r"[\\&%$#_{}~^]", lambda m: _BIBTEX_WORDS.get(m[0], "\\" + m[0]), text)


_VENUE_FIELD = {"article": "journal", "inproceedings": "booktitle", "misc": "howpublished"}


def render_bibtex(sources: SourceRegistry) -> str:
    """The run's sources as BibTeX entries keyed by source id (one entry per document, not per page of a PDF).

    A source's `kind` picks the entry type: ``@article`` (venue as ``journal``),
    ``@inproceedings`` (venue as ``booktitle``) or ``@misc`` (venue as ``howpublished``).
    """
    entries = []
    documents: dict[str, Source] = {}
    for source in sources:  # pages of a PDF share one entry: the document's
        documents.setdefault(source.document_id, source)
    for document_id, source in documents.items():
        key = re.sub(r"[^A-Za-z0-9_:-]", "_", document_id)
        fields = {"title": "{" + _bibtex_escape(source.title) + "}"}
        if source.authors:
            fields["author"] = " and ".join(_bibtex_escape(a) for a in source.authors)
        if source.year:
            fields["year"] = str(source.year)
        if source.venue:
            fields[_VENUE_FIELD[source.kind]] = _bibtex_escape(source.venue)
        if source.arxiv:
            fields["eprint"] = source.arxiv
            fields["archiveprefix"] = "arXiv"
        if source.doi:
            fields["doi"] = source.doi
        if source.url:
            fields["url"] = source.url
        body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields.items())
        entries.append(f"@{source.kind}{{{key},\n{body}\n}}")
    return "\n\n".join(entries) + "\n"


def write_outputs(
    outputs: Mapping[str, OutputSpec],
    run_dir: Path,
    *,
    step_outputs: Mapping[str, Any],
    inputs: Mapping[str, Any],
    sources: SourceRegistry,
) -> tuple[dict[str, Path], dict[str, int]]:
    """Write every output whose data exists; skip those whose step (or a step a template reads) did not finish.

    Returns:
        The paths written by output name, and citation counts ``{"total": n, "unresolved": m}``.
    """
    written: dict[str, Path] = {}
    citations = {"total": 0, "unresolved": 0}
    for name, out in outputs.items():
        if out.from_ is not None and step_outputs.get(out.from_) is None:
            continue
        if out.render == "template" and any(
            kind == "steps" and step_outputs.get(step) is None
            for kind, step in referenced_names(out.template or "", expression=False)
        ):
            continue
        if out.render == "report":
            text, total, unresolved = render_report(step_outputs[out.from_ or ""], sources)
            citations["total"] += total
            citations["unresolved"] += unresolved
        elif out.render == "json":
            text = json.dumps(step_outputs[out.from_ or ""], indent=2, ensure_ascii=False) + "\n"
        elif out.render == "sources":
            text = render_sources(sources)
        elif out.render == "bibtex":
            text = render_bibtex(sources)
        else:
            text = render(out.template or "", output_context(inputs, step_outputs, list(sources)))
        path = (run_dir / out.path).resolve()
        if not path.is_relative_to(run_dir.resolve()):
            raise ValueError(f"output {name!r}: path {out.path!r} leaves the run folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written[name] = path
    return written, citations
