"""Extractive writing: a report assembled from the quoted evidence, the model choosing order and joining words.

A model that cannot write prose reliably still has judgement to offer: in which
order a paragraph's sentences read best, and which word joins each to the one
before. An extractive writer is shown its evidence grouped by question, one group
per paragraph, each sentence numbered within its group, and answers only that::

    {"paragraphs": [{"order": [2, 1], "links": ["Moreover"]}, {"order": [1], "links": []}]}

The engine then writes each paragraph from the group's sentences, verbatim, in
that order, joined by those words, each sentence citing its source where it ends
(``[@id]``). Nothing in the report's body is a word the evidence does not hold,
apart from the joining words. A paragraph opens with a sentence that stands on its own where it has
one (not ``It ...``, ``The authors ...``, ``However, ...``: `leans_on_context`); a joining word is
used once per paragraph (a repeat is dropped), and a sentence that opens with a connective of its own
gets none.

Where the evidence comes from (`evidence_groups`): the steps the writer reads. A
step output with ``groups`` (a list of ``{question, evidence: [...]}``) gives one
group each, and only those (a step that groups evidence decides what is left
out); otherwise each item of a ``for_each`` step's output that holds evidence is
a group; otherwise all the evidence is one group. A piece of evidence is any
object with a ``source_id`` and an ``evidence`` sentence (a gatherer's evidence,
a researcher's claim).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from rolegraph.agents.evidence import leans_on_context, opens_with_connective

__all__ = [
    "LINKS",
    "MAX_GROUPS",
    "MAX_SENTENCES",
    "Group",
    "arrangement_model",
    "compose_report",
    "evidence_groups",
    "groups_evidence",
    "numbered_groups",
    "report_title",
]

LINKS = ("", "Also", "In addition", "Moreover", "Furthermore")
"""The words a model may join two sentences with (``""``: none). Each only adds: a word of likeness
(``Similarly``), contrast or cause would claim a relation between two quotes the evidence may not hold."""
MAX_GROUPS = 6
"""Paragraphs of a report at most (`ReportOutput`)."""
MAX_SENTENCES = 4
"""Sentences of a paragraph at most."""


@dataclass(frozen=True)
class Group:
    """The evidence of one paragraph: the question it answers and its ``(source id, sentence)`` pairs."""

    question: str
    evidence: tuple[tuple[str, str], ...]


def _evidence_in(value: Any) -> Iterator[tuple[str, str]]:
    if isinstance(value, Mapping):
        source_id, sentence = value.get("source_id"), value.get("evidence")
        if isinstance(source_id, str) and isinstance(sentence, str) and sentence.strip():
            yield source_id, sentence
            return
        for inner in value.values():
            yield from _evidence_in(inner)
    elif isinstance(value, list | tuple):
        for inner in value:
            yield from _evidence_in(inner)


def _group(question: Any, value: Any) -> Group:
    pairs = tuple(dict.fromkeys(_evidence_in(value)))[:MAX_SENTENCES]
    return Group(question if isinstance(question, str) else "", pairs)


def groups_evidence(upstream: Mapping[str, Any]) -> bool:
    """Whether a step among `upstream` groups evidence (its output has ``groups``)."""
    return any(isinstance(o, Mapping) and isinstance(o.get("groups"), list) for o in upstream.values())


def evidence_groups(upstream: Mapping[str, Any]) -> list[Group]:
    """The evidence of the steps a writer reads, grouped one paragraph per question (see the module docstring).

    Steps are taken in the order of their ids, so the grouping never depends on dictionary order.
    """
    steps = [upstream[k] for k in sorted(upstream)]
    grouped = [o for o in steps if isinstance(o, Mapping) and isinstance(o.get("groups"), list)]
    groups: list[Group] = []
    for output in grouped:  # a step that groups evidence decides, even when it kept none
        groups += [_group(g.get("question"), g) for g in output["groups"] if isinstance(g, Mapping)]
    if not grouped:
        for output in steps:
            if isinstance(output, list):
                groups += [_group(o.get("question") if isinstance(o, Mapping) else None, o) for o in output]
    if not grouped and not groups:
        groups = [_group(None, steps)]
    return [g for g in groups if g.evidence][:MAX_GROUPS]


def numbered_groups(groups: Sequence[Group], titles: Mapping[str, str] | None = None) -> str:
    """The groups as the model sees them: a heading per paragraph, its sentences numbered from 1."""
    titles = titles or {}
    blocks = []
    for number, group in enumerate(groups, start=1):
        heading = f"Paragraph {number}" + (f" (question: {group.question})" if group.question else "")
        lines = [f"{heading}:"]
        for index, (source_id, sentence) in enumerate(group.evidence, start=1):
            lines.append(f"  [{index}] ({titles.get(source_id, source_id)}) {sentence}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


@functools.lru_cache(maxsize=64)
def arrangement_model(sizes: tuple[int, ...]) -> type[BaseModel]:
    """The answer of an extractive writer for groups of these sizes: per paragraph, the order of its
    sentences (each number of the group, once) and one joining word per sentence after the first."""
    links: Any = list[Literal[LINKS]]  # type: ignore[valid-type]  # a Literal of the joining words
    paragraphs = []
    for number, size in enumerate(sizes, start=1):
        order: Any = list[Literal[tuple(range(1, size + 1))]]  # type: ignore[misc]  # the group's numbers, built at runtime
        paragraphs.append(
            create_model(
                f"Paragraph{number}",
                __base__=_Answer,
                order=(order, Field(min_length=size, max_length=size)),
                links=(links, Field(min_length=size - 1, max_length=size - 1)),
            )
        )
    each: Any = tuple.__class_getitem__(tuple(paragraphs))  # tuple[Paragraph1, Paragraph2, ...]
    return create_model("Arrangement", __base__=_Answer, paragraphs=(each, ...))


_HEADING = re.compile(r"^\s*#+\s*")


def report_title(task: str) -> str:
    """An extractive report's title: the first line of the writer's task (without a markdown ``#`` or a
    final colon), at most 150 characters."""
    first = next((line for line in task.splitlines() if line.strip()), "Report")
    return _HEADING.sub("", first).strip().rstrip(":").strip()[:150] or "Report"


def _joined(link: str, sentence: str) -> str:
    """`sentence` after a joining word: its first word lowercased if it is an ordinary capitalised word.
    Without a word (``""``), or when the sentence opens with a connective of its own, the sentence as it is."""
    if not link or opens_with_connective(sentence):
        return sentence
    first, _, rest = sentence.partition(" ")
    plain = first.replace("-", "").replace(",", "")
    if plain.isalpha() and first[:1].isupper() and first[1:] == first[1:].lower() and len(plain) > 1:
        first = first[:1].lower() + first[1:]
    return f"{link}, {first}{' ' + rest if rest else ''}"


def _order(evidence: Sequence[tuple[str, str]], chosen: Sequence[int]) -> list[int]:
    """The model's order of the group's numbers, repeats and strays dropped, numbers it left out appended in
    their order; then the first sentence that stands on its own moved to the front (a paragraph does not
    open with "It ..." or "However, ..." when it has a sentence that names its subject)."""
    size = len(evidence)
    order = [n for n in dict.fromkeys(chosen) if 1 <= n <= size]
    order += [n for n in range(1, size + 1) if n not in order]
    opening = next((n for n in order if not leans_on_context(evidence[n - 1][1])), order[0])
    return [opening, *(n for n in order if n != opening)]


def compose_report(title: str, groups: Sequence[Group], arrangement: Mapping[str, Any]) -> dict[str, Any]:
    """The report (`ReportOutput` data) the arrangement describes: one paragraph per group, its sentences
    verbatim in the chosen order, each after the first joined by its chosen word (once per paragraph),
    each followed by its source's inline citation (``[@id]``, rendered as the source's number)."""
    chosen = list(arrangement.get("paragraphs", []))
    paragraphs = []
    for index, group in enumerate(groups):
        plan = chosen[index] if index < len(chosen) and isinstance(chosen[index], Mapping) else {}
        order = _order(group.evidence, [int(n) for n in plan.get("order", [])])
        links = [str(word) for word in plan.get("links", [])]
        parts, cited, used = [], [], set()
        for position, number in enumerate(order):
            source_id, sentence = group.evidence[number - 1]
            link = links[position - 1] if 0 < position <= len(links) else ""
            link = "" if link in used else link  # "Also, ... Also, ..." reads as a list: a word joins once
            used.add(link)
            parts.append(f"{sentence if position == 0 else _joined(link, sentence)} [@{source_id}]")
            cited.append(source_id)
        paragraphs.append({"citations": list(dict.fromkeys(cited)), "text": " ".join(parts)})
    return {"title": title, "paragraphs": paragraphs}
