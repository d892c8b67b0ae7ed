"""A run's output files for the viewer: markdown parsed into a safe tree with its citations, and each
cited source with the evidence the run gave for it.

Output files hold model-written text, so they never reach the page as HTML. A
markdown file is parsed (CommonMark, raw HTML off) into a tree of plain data —
a whitelist of tags, text as strings, links only to ``http``, ``https`` and
``mailto`` — that the page builds into elements, text as text. Citation marks in
the text (``[1]``, ``[?id]``, ``[hu2021lora]``) become ``cite`` nodes naming the
source: numbers are resolved through the report's reference list (each line
``[n] ... `source_id```, as `render_report` writes it).

```python
tree, numbers = markdown_tree(text, known={"hu2021lora"})
# [{"t": "h1", "c": ["Low-rank adaptation"]}, {"t": "p", "c": ["LoRA trains few parameters. ",
#   {"t": "cite", "source": "hu2021lora", "resolved": True, "c": ["[1]"]}]}, ...]
```
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

__all__ = ["MAX_OUTPUT_BYTES", "evidence_for", "markdown_tree", "output_files", "read_output"]

MAX_OUTPUT_BYTES = 2_000_000
"""An output file larger than this is shown cut, with a note."""

Node = str | dict[str, Any]
"""A tree node: text, or ``{"t": tag, "c": [children], ...}``."""

_BLOCKS = {
    "bullet_list": "ul",
    "ordered_list": "ol",
    "list_item": "li",
    "blockquote": "blockquote",
    "em": "em",
    "strong": "strong",
    "s": "s",
    "table": "table",
    "thead": "thead",
    "tbody": "tbody",
    "tr": "tr",
    "th": "th",
    "td": "td",
}
_SAFE_LINK = re.compile(r"(?i)^(https?:|mailto:)")
_MARK = re.compile(r"\[(\?)?([^\[\]\s]{1,120})\]")
_REFERENCE = re.compile(r"^\[(\d+)\]\s.*`([^`\s]+)`\s*$", re.MULTILINE)
_MARKDOWN = {".md", ".markdown"}
_CONTEXT = 220
_SPACE = re.compile(r"\s+")


def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(["table", "strikethrough"])


def reference_numbers(text: str) -> dict[str, str]:
    """The report's reference list: citation number → source id."""
    return dict(_REFERENCE.findall(text))


def markdown_tree(text: str, known: Collection[str] = ()) -> tuple[list[Node], dict[str, str]]:
    """Parse markdown into the page's safe tree (see the module docstring).

    Args:
        text: The markdown.
        known: The run's source ids: a bracketed id among them is a citation.

    Returns:
        The block nodes, and the reference numbers found (number → source id).
    """
    numbers = reference_numbers(text)
    root = SyntaxTreeNode(_parser().parse(text))
    return [node for child in root.children for node in _convert(child, numbers, set(known))], numbers


def _convert(node: SyntaxTreeNode, numbers: Mapping[str, str], known: set[str]) -> Iterator[Node]:
    """The page nodes of one markdown-it node (raw HTML never occurs: the parser has it off)."""
    children = [out for child in node.children for out in _convert(child, numbers, known)]
    kind = node.type
    if kind == "text":
        yield from _cite(node.content, numbers, known)
    elif kind == "inline":
        yield from children
    elif kind == "paragraph":
        yield {"t": "p", "c": children}
    elif kind == "heading":
        yield {"t": node.tag if node.tag in {"h1", "h2", "h3", "h4", "h5", "h6"} else "h6", "c": children}
    elif kind in ("softbreak", "hardbreak"):
        # Reports put one reference per line without blank lines between: keep the lines.
        yield {"t": "br"}
    elif kind == "code_inline":
        yield {"t": "code", "c": [node.content]}
    elif kind in ("fence", "code_block"):
        yield {"t": "pre", "c": [{"t": "code", "c": [node.content]}]}
    elif kind == "hr":
        yield {"t": "hr"}
    elif kind == "link":
        href = str(node.attrs.get("href", ""))
        yield {"t": "a", "href": href, "c": children} if _SAFE_LINK.match(href) else {"t": "span", "c": children}
    elif kind == "image":
        yield f"[image: {node.attrs.get('alt') or ''.join(c for c in children if isinstance(c, str))}]"
    elif kind == "ordered_list":
        start = node.attrs.get("start")
        yield {"t": "ol", "c": children, **({"start": int(start)} if isinstance(start, int | str) else {})}
    elif kind in _BLOCKS:
        yield {"t": _BLOCKS[kind], "c": children}
    else:  # anything else the parser may produce: its content as text
        yield from children or ([node.content] if node.content else [])


def _cite(text: str, numbers: Mapping[str, str], known: set[str]) -> Iterator[Node]:
    """Text with its citation marks as ``cite`` nodes."""
    at = 0
    for mark in _MARK.finditer(text):
        unresolved, key = mark.group(1) is not None, mark.group(2)
        source = key if unresolved or key in known else numbers.get(key)
        if source is None:
            continue
        if mark.start() > at:
            yield text[at : mark.start()]
        yield {"t": "cite", "source": source, "resolved": not unresolved and source in known, "c": [mark.group(0)]}
        at = mark.end()
    if at < len(text):
        yield text[at:]


def output_files(run_dir: Path, outputs: Mapping[str, Any]) -> dict[str, Path]:
    """The run's output files by name, only those inside its folder (``run.json`` is not trusted to point there).

    ``run.json`` records absolute paths: a run folder that was moved or copied (another home, another
    machine) finds its files by their path below the folder named for the run.
    """
    inside = run_dir.resolve()
    found = {}
    for name, where in outputs.items():
        recorded = Path(str(where))
        candidates = [recorded if recorded.is_absolute() else run_dir / recorded]
        if recorded.is_absolute() and run_dir.name in recorded.parts:
            below = recorded.parts[len(recorded.parts) - recorded.parts[::-1].index(run_dir.name) :]
            candidates.append(run_dir.joinpath(*below))
        for candidate in candidates:
            path = candidate.resolve()
            if path.is_relative_to(inside) and path.is_file():
                found[str(name)] = path
                break
    return found


def read_output(name: str, path: Path, known: Collection[str]) -> dict[str, Any]:
    """One output for the page: ``markdown`` (a tree), ``json`` (indented text) or ``text``."""
    data = path.read_bytes()
    cut = len(data) > MAX_OUTPUT_BYTES
    text = data[:MAX_OUTPUT_BYTES].decode("utf-8", errors="replace")
    shown: dict[str, Any] = {"name": name, "file": path.name, "size": len(data), "cut": cut}
    if path.suffix.lower() in _MARKDOWN:
        tree, numbers = markdown_tree(text, known)
        return {**shown, "kind": "markdown", "tree": tree, "references": numbers}
    if path.suffix.lower() == ".json" and not cut:
        try:
            return {**shown, "kind": "json", "text": json.dumps(json.loads(text), indent=2, ensure_ascii=False)}
        except ValueError:
            pass
    return {**shown, "kind": "text", "text": text}


def _normalise(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def _citing(node: Any, source_id: str) -> Iterator[dict[str, Any]]:
    """Objects in a step output that cite `source_id`: a field holding the id, or a list of ids holding it."""
    if isinstance(node, dict):
        if any(v == source_id or (isinstance(v, list) and source_id in v) for v in node.values()):
            yield node
        for value in node.values():
            yield from _citing(value, source_id)
    elif isinstance(node, list):
        for value in node:
            yield from _citing(value, source_id)


def _text_field(node: Mapping[str, Any], names: tuple[str, ...]) -> str | None:
    return next((str(node[k]) for k in names if isinstance(node.get(k), str) and node[k].strip()), None)


def evidence_for(source_id: str, source_text: str, step_outputs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What the run's steps said with `source_id` as their source: each claim, its quote, and where the quote
    stands in the source's text (``found`` False for a quote that is not there)."""
    flat = _normalise(source_text)
    found: list[dict[str, Any]] = []
    for step, output in step_outputs.items():
        for node in _citing(output, source_id):
            quote = _text_field(node, ("evidence", "quote"))
            entry: dict[str, Any] = {"step": step, "claim": _text_field(node, ("claim", "text", "statement"))}
            if quote is not None:
                at = flat.find(_normalise(quote))
                entry["quote"] = quote
                entry["found"] = at >= 0
                if at >= 0:
                    end = at + len(_normalise(quote))
                    entry["before"] = _clip_left(flat[max(0, at - _CONTEXT) : at], at > _CONTEXT)
                    entry["after"] = _clip_right(flat[end : end + _CONTEXT], end + _CONTEXT < len(flat))
            found.append(entry)
    return found


def _clip_left(text: str, cut: bool) -> str:
    return "…" + text.split(" ", 1)[-1] if cut and " " in text else text


def _clip_right(text: str, cut: bool) -> str:
    return text.rsplit(" ", 1)[0] + "…" if cut and " " in text else text
