"""Bounded YAML → plain data that remembers where each field path came from.

The YAML is composed into nodes (no Python object is ever constructed) and
converted by hand, so that each field path keeps its position in the file and the
document's size, depth and alias expansion stay bounded. Problems found later (by
the schema, by checks) are known by field path; a `PositionedDocument` turns
each into a `Problem` at its file:line:col.

Workflows and eval sets (`rolegraph.evals.loader`) are read the same way; a
`DocumentKind` names the schema and the words a document's messages use.

Where PyYAML has libyaml, its C scanner and parser produce the events and the
bounded composer (`rolegraph.workflows.composer`) builds the nodes (libyaml's own composer recurses in C
without a depth limit, so it is not used): the same nodes and marks, ten times
faster. A document libyaml refuses is read again by the pure-Python parser, so
that a syntax error is told in the same words whichever reader found it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
from pydantic import BaseModel
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import ReaderError
from yaml.resolver import Resolver

from rolegraph.errors import Problem, SpecError
from rolegraph.workflows.composer import MAX_DEPTH, MAX_NODES, BoundedComposer, LimitExceeded

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_PROBLEMS",
    "USE_LIBYAML",
    "DocumentKind",
    "Finding",
    "PositionedDocument",
    "compose",
    "describe_value",
    "join_path",
    "read_bytes",
    "with_article",
]

MAX_BYTES = 1 << 20
"""Largest document accepted (checked before parsing)."""
MAX_PROBLEMS = 200
"""Problems reported per document, at most; past it the rest are only counted (a file with
thousands of mistakes is fixed from the top, and reporting them all would cost more than reading it)."""

USE_LIBYAML: bool = yaml.__with_libyaml__
"""Read with libyaml's C parser when PyYAML has it (switched off to test the pure-Python fallback)."""

_YAML = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_YAML + t for t in ("str", "int", "float", "bool", "null"))
_SEQ, _MAP, _MERGE, _TIMESTAMP = (_YAML + t for t in ("seq", "map", "merge", "timestamp"))
_SCALARS = SafeConstructor()
_PLAIN_KEY = re.compile(r"[A-Za-z_][\w-]*")
_LAST_PART = re.compile(r"(?:\.[^.\[\]]+|\[[^\[\]]*\])$")
_BLOCK_STYLES = ("|", ">")

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class DocumentKind(Generic[M]):
    """A kind of YAML document rolegraph reads: its schema and the words its problems use."""

    noun: str
    """What the document is, in messages ("workflow", "eval set")."""
    model: type[M]
    """The pydantic schema of the whole document."""
    version_key: str
    """The key holding the format version (``rolegraph``), named when it is missing or wrong."""
    keys: str
    """Its top-level keys, for "must be a mapping of keys (...)"."""
    hints: Mapping[str, str] = field(default_factory=dict)
    """What to do about a missing required key, by key name."""
    stubs: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)
    """What stands in for a broken part, so that the rest of the document is still checked: by field
    path (``name``), or for every entry of a map by its path and ``[]`` (``steps[]``); given the broken value."""


@dataclass(frozen=True)
class Finding:
    """A problem known by field path, to be placed in the file by `PositionedDocument.add_findings`."""

    path: str
    """The field path, e.g. ``steps.plan.role``."""
    message: str
    """What is wrong and what to do."""
    text_line: int | None = None
    """A 1-based line inside that field's string (a template's syntax error), if known."""
    at_key: bool = False
    """Point at the field's key rather than at its value."""


def with_article(noun: str) -> str:
    """`noun` with its indefinite article ("a workflow", "an eval set")."""
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


def describe_value(value: Any) -> str:
    """A value as a message names it: "the number 3", "the string 'x'", "a list"."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {shown!r}"
    return "a list" if isinstance(value, list) else "a mapping"


def join_path(path: str, part: str | int) -> str:
    """The field path of `part` inside `path`: ``steps.plan``, ``routes[0]``, ``inputs['a b']``."""
    if isinstance(part, int):
        return f"{path}[{part}]"
    if _PLAIN_KEY.fullmatch(part):
        return f"{path}.{part}" if path else part
    return f"{path}[{part!r}]"


def _top(path: str) -> str:
    return re.split(r"[.\[]", path, maxsplit=1)[0]


def _parent(path: str) -> str | None:
    if not path:
        return None
    return _LAST_PART.sub("", path) if _LAST_PART.search(path) else ""


def _line_col(text: str, index: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1


def _yaml_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(_YAML) if tag.startswith(_YAML) else tag


def read_bytes(path: Path, noun: str) -> bytes:
    """At most `MAX_BYTES` + 1 bytes of `path` (enough to tell it is too large).

    Raises:
        SpecError: The file cannot be read.
    """
    try:
        with path.open("rb") as stream:
            return stream.read(MAX_BYTES + 1)  # never read more than the limit, whatever the file's size
    except OSError as exc:
        raise SpecError([Problem(f"cannot read the {noun} file: {exc.strerror or exc}", file=path)]) from exc


def _decode(text: str | bytes, file: Path | None, noun: str) -> str:
    if len(text) > MAX_BYTES or (isinstance(text, str) and len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES):
        size = f"{MAX_BYTES >> 20} MiB"
        message = f"the file is larger than {size}; {with_article(noun)} is far smaller — is it the right file?"
        raise SpecError([Problem(message, "", file)])
    if isinstance(text, str):
        return text.removeprefix("\ufeff")
    if text.startswith((b"\xff\xfe", b"\xfe\xff")):
        message = "the file is UTF-16 (it starts with a UTF-16 byte-order mark); save it as UTF-8"
        raise SpecError([Problem(message, "", file, 1, 1)])
    try:
        return text.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = text.count(b"\n", 0, exc.start) + 1
        column = exc.start - (text.rfind(b"\n", 0, exc.start) + 1) + 1
        message = (
            f"the file is not UTF-8: byte 0x{text[exc.start]:02x} at offset {exc.start} cannot be decoded; "
            "save the file as UTF-8"
        )
        raise SpecError([Problem(message, "", file, line, column)]) from None


def compose(text: str | bytes, file: Path | None, kind: DocumentKind[Any]) -> tuple[PositionedDocument, dict[str, Any]]:
    """Decode and compose `text` into plain data, remembering where each field path came from.

    Problems that leave the data readable (an unsupported tag, a duplicate key) are kept
    in the returned document, their values replaced by None.

    Raises:
        SpecError: The text cannot be read as a mapping at all (not UTF-8, a syntax error,
            too large, too deep, too many values).
    """
    text = _decode(text, file, kind.noun)
    document = PositionedDocument(text, file, kind)
    try:
        root = _compose_root(text, kind.noun)
        data = document.convert_root(root)
    except _Fatal as fatal:
        raise SpecError([replace(fatal.problem, file=file)]) from None
    except LimitExceeded as limit:
        raise SpecError([Problem(limit.message, "", file, limit.line, limit.column)]) from None
    except yaml.MarkedYAMLError as exc:
        raise SpecError([document.syntax_problem(exc)]) from None
    except ReaderError as exc:
        line, column = _line_col(text, exc.position)
        message = f"the file contains a character YAML does not allow (#x{exc.character:04x}); remove it"
        raise SpecError([Problem(message, "", file, line, column)]) from None
    return document, data


def _compose_root(text: str, noun: str) -> Node | None:
    """The document's root node: through libyaml's parser if there is one, and again without it if it fails."""
    if USE_LIBYAML:
        try:
            return _compose_with(_fast_loader(noun), text)
        except (yaml.YAMLError, UnicodeError):  # a lone surrogate in a str cannot even be given to libyaml
            pass  # told below, in the pure-Python reader's words (a limit crossed is told the same by both)
    return _compose_with(type("_Loader", (_BoundedLoader,), {"subject": with_article(noun)}), text)


def _compose_with(loader_class: type[BoundedComposer], text: str) -> Node | None:
    loader: Any = loader_class(text)  # type: ignore[call-arg]  # the loader's parser half takes the stream
    try:
        root: Node | None = loader.get_single_node()
        return root
    finally:
        loader.dispose()


class _Fatal(Exception):
    """A problem after which the document cannot be read further."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        super().__init__(problem.message)


@dataclass(frozen=True)
class _Pos:
    line: int  # 0-based, as in yaml marks
    column: int
    style: str | None = None


class _BoundedLoader(BoundedComposer, yaml.SafeLoader):
    """The pure-Python safe loader with the bounded composer."""


@functools.cache
def _fast_loader(noun: str) -> type[BoundedComposer]:
    """A loader class reading events with libyaml's C parser into the bounded composer."""
    from yaml._yaml import CParser  # PyYAML's optional C extension: imported only where it exists

    def init(self: Any, stream: str) -> None:
        CParser.__init__(self, stream)
        BoundedComposer.__init__(self)
        Resolver.__init__(self)

    # The composer first: CParser's own get_single_node would compose in C, unbounded.
    bases = (BoundedComposer, CParser, Resolver)
    loader: type[BoundedComposer] = type("_FastLoader", bases, {"subject": with_article(noun), "__init__": init})
    return loader


class _Hidden:
    """Field paths whose problems are already told: a finding at, inside or around one is not told again.

    One set lookup per ancestor of a finding's path, so hiding stays linear in the
    number of findings however many paths are hidden.
    """

    def __init__(self, paths: Iterable[str]) -> None:
        self._paths: set[str] = set()
        self._around: set[str] = set()  # the proper ancestors of every hidden path
        for path in paths:
            self._paths.add(path)
            parent = _parent(path)
            while parent is not None and parent not in self._around:
                self._around.add(parent)
                parent = _parent(parent)

    def __contains__(self, path: str) -> bool:
        if not self._paths or path in self._around:
            return bool(self._paths)
        current: str | None = path
        while current is not None:
            if current in self._paths:
                return True
            current = _parent(current)
        return False


class PositionedDocument:
    """One document being read: where each field path came from, and the problems found so far.

    Args:
        text: The decoded YAML.
        file: Where it came from (named in problems).
        kind: What kind of document it is (named in messages).
    """

    def __init__(self, text: str, file: Path | None, kind: DocumentKind[Any]) -> None:
        self.text = text
        self.file = file
        self.kind = kind
        # The node each field path's value (and key) came from; made into a position only when a problem needs it.
        self.values: dict[str, Node] = {}
        self.keys: dict[str, Node] = {}
        self.problems: list[Problem] = []
        self.replaced: list[str] = []
        """Paths whose value was rejected while converting (already reported)."""
        self.untold = 0
        """Problems found past `MAX_PROBLEMS`: counted, not reported one by one."""
        self.count = 0
        self._lines: list[str] | None = None

    # ----- problems

    def _problem(self, message: str, path: str, pos: _Pos | None) -> Problem:
        if pos is None:
            return Problem(message, path, self.file)
        return Problem(message, path, self.file, pos.line + 1, pos.column + 1)

    def _add(self, problem: Problem) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)
        else:
            self.untold += 1

    def has_problems(self) -> bool:
        """Whether any problem was found."""
        return bool(self.problems)

    def sorted_problems(self) -> list[Problem]:
        """The problems in file order, with a last one counting those past `MAX_PROBLEMS`."""
        problems = sorted(self.problems, key=lambda p: (p.line is None, p.line or 0, p.column or 0))
        if self.untold:
            message = (
                f"and {self.untold} more problems not listed (only the first {MAX_PROBLEMS} are); "
                "fix these and validate again"
            )
            problems.append(Problem(message, "", self.file))
        return problems

    def add_findings(self, findings: Iterable[Finding], hide: Iterable[str] = ()) -> None:
        """Add findings as problems at their place in the file, except those about (or around) a path in `hide`."""
        hidden = _Hidden(hide)
        for finding in findings:
            if finding.path in hidden:
                continue
            if len(self.problems) >= MAX_PROBLEMS:
                self.untold += 1
                continue
            self.problems.append(self.place(finding))

    def place(self, finding: Finding) -> Problem:
        """`finding` as a problem at its place in the file."""
        pos = self.locate(finding.path, at_key=finding.at_key)
        if pos is not None and finding.text_line is not None:
            pos = self._inside(pos, finding.text_line)
        return self._problem(finding.message, finding.path, pos)

    # ----- positions

    def _at(self, node: Node) -> _Pos:
        mark = node.start_mark
        return _Pos(mark.line, mark.column, getattr(node, "style", None))

    def locate(self, path: str, *, at_key: bool = False) -> _Pos | None:
        """The position of `path`, or of its nearest ancestor that has one; mappings point at their key."""
        current: str | None = path
        while current is not None:
            node = self.values.get(current)
            if at_key or (node is not None and not isinstance(node, ScalarNode)):
                node = self.keys.get(current, node)
            if node is not None:
                return self._at(node)
            current = _parent(current)
        return None

    def _inside(self, pos: _Pos, text_line: int) -> _Pos:
        """The position of line `text_line` of a string field (exact for block scalars `|` and `>`)."""
        if pos.style not in _BLOCK_STYLES:
            return pos
        line = pos.line + text_line
        if self._lines is None:
            self._lines = self.text.split("\n")  # once: a document may hold thousands of such findings
        lines = self._lines
        source = lines[line] if line < len(lines) else ""
        return _Pos(line, len(source) - len(source.lstrip(" ")), pos.style)

    def syntax_problem(self, exc: yaml.MarkedYAMLError) -> Problem:
        """A YAML syntax error as a problem at its place, with what to do."""
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        if exc.problem and "another document" in exc.problem:
            message = (
                f"the file holds more than one YAML document; {with_article(self.kind.noun)} is one document — "
                "remove the '---' line"
            )
            return Problem(message, "", self.file, line, column)
        message = f"YAML syntax error: {exc.problem or exc.context}"
        if exc.context and exc.problem:
            where = f" on line {exc.context_mark.line + 1}" if exc.context_mark else ""
            message += f" ({exc.context}{where})"
        if exc.problem and "\\t" in exc.problem:
            message += "; indent with spaces, YAML does not allow tabs"
        elif exc.context and "flow" in exc.context:
            message += "; inside { } or [ ], quote values that contain [ ] { } or commas, e.g. 'list[string]'"
        else:
            message += "; check the indentation, and quote values that start with { [ * & ! | > % @ or contain ': '"
        return Problem(message, "", self.file, line, column)

    # ----- conversion

    def convert_root(self, root: Node | None) -> dict[str, Any]:
        """The document's data (a mapping), converted from its root node."""
        noun = with_article(self.kind.noun)
        if root is None:
            message = f"the file is empty; {noun} starts with '{self.kind.version_key}: 1'"
            raise _Fatal(Problem(message, "", self.file, 1, 1))
        data = self._convert(root, "", 1)
        if not isinstance(data, dict):
            message = f"{noun} must be a mapping of keys ({self.kind.keys}), not {describe_value(data)}"
            raise _Fatal(self._problem(message, "", self._at(root)))
        return data

    def _reject(self, message: str, path: str, node: Node) -> None:
        self._add(self._problem(message, path, self._at(node)))
        self.replaced.append(path)

    def _convert(self, node: Node, path: str, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            message = (
                f"the document holds more than {MAX_NODES} values once its aliases (*name) are expanded; "
                f"{with_article(self.kind.noun)} needs far fewer — use fewer aliases"
            )
            raise _Fatal(self._problem(message, _top(path), self._at(node)))
        if depth > MAX_DEPTH:
            message = f"the document nests deeper than {MAX_DEPTH} levels once its aliases are expanded"
            raise _Fatal(self._problem(message, _top(path), self._at(node)))
        self.values[path] = node
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        if isinstance(node, SequenceNode) and node.tag == _SEQ:
            return [self._convert(item, join_path(path, i), depth + 1) for i, item in enumerate(node.value)]
        if isinstance(node, MappingNode) and node.tag == _MAP:
            return self._mapping(node, path, depth)
        self._reject(self._tag_message(node.tag), path, node)
        return None

    def _tag_message(self, tag: str) -> str:
        return (
            f"unsupported YAML tag {_yaml_tag(tag)!r}: {with_article(self.kind.noun)} holds plain data only "
            "(strings, numbers, booleans, lists, mappings); remove the tag"
        )

    def _scalar(self, node: ScalarNode, path: str) -> Any:
        tag = node.tag
        if tag in (_STR, _TIMESTAMP):  # dates stay text: no field of a workflow is a date
            return str(node.value)
        try:
            if tag == _INT:
                return _SCALARS.construct_yaml_int(node)
            if tag == _FLOAT:
                return _SCALARS.construct_yaml_float(node)
        except ValueError:
            self._reject("this number is too long to read; write a shorter one, or quote it", path, node)
            return None
        if tag == _BOOL:
            return _SCALARS.construct_yaml_bool(node)
        if tag == _NULL:
            return None
        self._reject(self._tag_message(tag), path, node)
        return None

    def _mapping(self, node: MappingNode, path: str, depth: int) -> dict[str, Any]:
        own = self.values[path]
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                self._merge(value_node, path, depth, result)
        self.values[path] = own
        first: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                continue
            if not isinstance(key_node, ScalarNode):
                if path and isinstance(key_node, MappingNode) and node.flow_style:
                    message = "this looks like a Jinja '{{ ... }}' read as a YAML mapping: put the value in quotes"
                    self._reject(message, path, node)
                else:
                    message = "a key must be a plain string, not a list or mapping"
                    self._add(self._problem(message, path, self._at(key_node)))
                continue
            key = str(key_node.value)
            key_path = join_path(path, key)
            if key in first:
                message = (
                    f"duplicate key {key!r} on lines {first[key] + 1} and {key_node.start_mark.line + 1}; "
                    "YAML keeps only one of them — remove or rename the other"
                )
                self._add(self._problem(message, key_path, self._at(key_node)))
            first.setdefault(key, key_node.start_mark.line)
            self.keys[key_path] = key_node
            result[key] = self._convert(value_node, key_path, depth + 1)
        return result

    def _merge(self, value: Node, path: str, depth: int, into: dict[str, Any]) -> None:
        """YAML merge keys (``<<: *defaults``): earlier sources win, the mapping's own keys win over all."""
        sources = value.value if isinstance(value, SequenceNode) else [value]
        for source in sources:
            if not isinstance(source, MappingNode):
                self._reject("'<<' merges mappings only: give it an alias of a mapping (<<: *name)", path, source)
                continue
            merged = self._convert(source, path, depth)
            for key, item in (merged or {}).items():
                into.setdefault(key, item)
