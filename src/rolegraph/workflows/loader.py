"""Loading workflow files: safe YAML, every problem at once, each at its file:line:col.

The YAML is composed into nodes (no Python object is ever constructed) and
converted by hand, so that each field path keeps the position it came from and
the document's size, depth and alias expansion stay bounded. Then come the
pydantic schema (`rolegraph.workflows.spec`), the checks that need the whole
document (roles, models, templates and what they reference), and the graph
checks (`rolegraph.workflows.graph`). Every problem found is reported together
in one `SpecError`.

`parse_document` gives other YAML documents (eval sets) the same reading: a
`DocumentKind` names the schema and the words its messages use.
"""

from __future__ import annotations

import contextvars
import copy
import difflib
import posixpath
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypeVar, get_args, get_origin

import networkx as nx
import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import ReaderError

from rolegraph.agents.roles import BUILTIN_ROLE_NAMES, field_type
from rolegraph.errors import Problem, SpecError
from rolegraph.workflows import templates
from rolegraph.workflows.graph import dependency_graph, validate_graph
from rolegraph.workflows.spec import WorkflowSpec

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "Check",
    "DocumentKind",
    "load_document",
    "load_spec",
    "parse_document",
    "parse_spec",
]

MAX_BYTES = 1 << 20
"""Largest workflow file accepted (checked before parsing)."""
MAX_DEPTH = 50
"""Deepest nesting of mappings and lists accepted."""
MAX_NODES = 100_000
"""Most values a document may hold once its aliases are expanded (stops "billion laughs")."""
MAX_HINTS = 50
"""Did-you-mean hints per document, at most: each scans a list of names, and a hostile file
may hold thousands of unknown ones (loading must stay linear in the file's size)."""
_hints: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("rolegraph_loader_hints", default=None)

_YAML = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_YAML + t for t in ("str", "int", "float", "bool", "null"))
_SEQ, _MAP, _MERGE, _TIMESTAMP = (_YAML + t for t in ("seq", "map", "merge", "timestamp"))
_SCALARS = SafeConstructor()
_PLAIN_KEY = re.compile(r"[A-Za-z_][\w-]*")
_LAST_PART = re.compile(r"(?:\.[^.\[\]]+|\[[^\[\]]*\])$")
_BLOCK_STYLES = ("|", ">")

M = TypeVar("M", bound=BaseModel)

Check = Callable[[M], Iterable[tuple[str, str]]]
"""A check of a validated document: yields ``(field path, message)`` for each problem it finds."""


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


def load_document(path: Path, kind: DocumentKind[M], checks: Sequence[Check[M]] = ()) -> M:
    """Read at most `MAX_BYTES` of `path` and `parse_document` it.

    Raises:
        SpecError: The file cannot be read or is invalid; holds every problem found.
    """
    return parse_document(_read(path, kind.noun), kind, path, checks)


def _read(path: Path, noun: str) -> bytes:
    try:
        with path.open("rb") as stream:
            return stream.read(MAX_BYTES + 1)  # never read more than the limit, whatever the file's size
    except OSError as exc:
        raise SpecError([Problem(f"cannot read the {noun} file: {exc.strerror or exc}", file=path)]) from exc


def parse_document(
    text: str | bytes, kind: DocumentKind[M], file: Path | None = None, checks: Sequence[Check[M]] = ()
) -> M:
    """Parse a YAML document safely into `kind.model`, then run `checks` on it.

    The same bounded, position-keeping reading as workflows: every schema error and
    every problem a check yields is reported at its file:line:col.

    Raises:
        SpecError: Every problem found, each with file, line, column, field path and what to do.
    """
    token = _hints.set([MAX_HINTS])
    try:
        return _parse_document(text, kind, file, checks)
    finally:
        _hints.reset(token)


def _parse_document(text: str | bytes, kind: DocumentKind[M], file: Path | None, checks: Sequence[Check[M]]) -> M:
    document, data = _compose(text, file, kind)
    try:
        value = kind.model.model_validate(data)
    except ValidationError as exc:
        document.add_validation_errors(exc.errors(include_url=False), data)
        raise SpecError(document.sorted_problems()) from None
    document.add_findings(_Finding(path, message) for check in checks for path, message in check(value))
    if document.problems:
        raise SpecError(document.sorted_problems())
    return value


def _compose(text: str | bytes, file: Path | None, kind: DocumentKind[Any]) -> tuple[_Document, dict[str, Any]]:
    """Decode and compose `text` into plain data, remembering where each field path came from."""
    text = _decode(text, file, kind.noun)
    document = _Document(text, file, kind)
    loader = type("_Loader", (_BoundedLoader,), {"noun": kind.noun})
    try:
        root = yaml.compose(text, Loader=loader)
        data = document.convert_root(root)
    except _Fatal as fatal:
        raise SpecError([replace(fatal.problem, file=file)]) from None
    except yaml.MarkedYAMLError as exc:
        raise SpecError([document.syntax_problem(exc)]) from None
    except ReaderError as exc:
        line, column = _line_col(text, exc.position)
        message = f"the file contains a character YAML does not allow (#x{exc.character:04x}); remove it"
        raise SpecError([Problem(message, "", file, line, column)]) from None
    return document, data


def load_spec(path: Path) -> WorkflowSpec:
    """Load and validate a workflow file.

    Raises:
        SpecError: The file cannot be read or is invalid; holds every problem found.
    """
    return parse_spec(_read(path, "workflow"), path)


def parse_spec(text: str | bytes, file: Path | None = None) -> WorkflowSpec:
    """Parse and validate a workflow document.

    Args:
        text: The YAML, as text or UTF-8 bytes.
        file: Where it came from, for the positions of problems.

    Raises:
        SpecError: Every problem found, each with file, line, column, field path and what to do.
    """
    token = _hints.set([MAX_HINTS])
    try:
        return _parse_spec(text, file)
    finally:
        _hints.reset(token)


def _parse_spec(text: str | bytes, file: Path | None) -> WorkflowSpec:
    document, data = _compose(text, file, WORKFLOW)
    try:
        spec = WorkflowSpec.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        document.add_validation_errors(errors, data)
        pruned, partial = _without_bad_keys(data, errors)
        if partial is not None:  # check the rest of the document too, so that one run shows every problem
            document.add_findings(_document_findings(partial), hide=[*pruned, *document.replaced])
        raise SpecError(document.sorted_problems()) from None
    document.add_findings(_document_findings(spec))
    if document.problems:
        raise SpecError(document.sorted_problems())
    return spec


def _document_findings(spec: WorkflowSpec) -> list[_Finding]:
    findings = [*_role_findings(spec), *_model_findings(spec), *_template_findings(spec), *_output_findings(spec)]
    return findings + [_Finding(p.path, p.message) for p in validate_graph(spec)]


def _without_bad_keys(data: dict[str, Any], errors: Sequence[ErrorDetails]) -> tuple[list[str], WorkflowSpec | None]:
    """The document validated again without the optional keys that failed: their paths, and the spec if valid."""
    pruned = copy.deepcopy(data)
    paths: list[str] = []
    for error in errors:
        where = _walk(error["loc"], data, error["type"] == "missing")
        if error["type"] == "missing" or where.is_key or not where.parts or not isinstance(where.parts[-1], str):
            continue
        parent = _get(pruned, where.parts[:-1])
        if isinstance(parent, dict):
            parent.pop(where.parts[-1], None)
            paths.append(_path(where.parts))
    try:
        return paths, WorkflowSpec.model_validate(pruned)
    except ValidationError:
        return paths, None


def _decode(text: str | bytes, file: Path | None, noun: str = "workflow") -> str:
    if len(text) > MAX_BYTES or (isinstance(text, str) and len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES):
        raise SpecError(
            [
                Problem(
                    f"the file is larger than {MAX_BYTES >> 20} MiB; {_a(noun)} is far smaller — is it the right file?",
                    "",
                    file,
                )
            ]
        )
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


def _a(noun: str) -> str:
    """`noun` with its indefinite article ("a workflow", "an eval set")."""
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


def _line_col(text: str, index: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1


def _join(path: str, part: str | int) -> str:
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


def _suggest(name: str, choices: Iterable[str]) -> str:
    budget = _hints.get()
    if budget is not None:
        if budget[0] <= 0:
            return ""
        budget[0] -= 1
    match = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" — did you mean {match[0]!r}?" if match else ""


def _yaml_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(_YAML) if tag.startswith(_YAML) else tag


def _kind(value: Any) -> str:
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
    scalar: bool = True


@dataclass(frozen=True)
class _Finding:
    """A problem known by field path; `text_line` is a 1-based line inside that field's string."""

    path: str
    message: str
    text_line: int | None = None
    at_key: bool = False


class _BoundedLoader(yaml.SafeLoader):
    """The safe loader, refusing to compose deeper than `MAX_DEPTH` (PyYAML's composer recurses)
    or more than `MAX_NODES` nodes (so that a huge flat document stops early too)."""

    _depth = 0
    _nodes = 0
    noun = "workflow"

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        self._depth += 1
        self._nodes += 1
        try:
            if self._depth > MAX_DEPTH or self._nodes > MAX_NODES:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]  # untyped in types-pyyaml
                message = (
                    f"the document nests deeper than {MAX_DEPTH} levels; {_a(self.noun)} needs only a few"
                    if self._depth > MAX_DEPTH
                    else f"the document holds more than {MAX_NODES} values; {_a(self.noun)} needs far fewer"
                )
                raise _Fatal(Problem(message, "", None, mark.line + 1, mark.column + 1))
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _Document:
    """One document being loaded: its converted data, where each field path came from, and its problems."""

    def __init__(self, text: str, file: Path | None, kind: DocumentKind[Any]) -> None:
        self.text = text
        self.file = file
        self.kind = kind
        self.values: dict[str, _Pos] = {}
        self.keys: dict[str, _Pos] = {}
        self.problems: list[Problem] = []
        self.replaced: list[str] = []  # paths whose value was rejected while converting
        self.count = 0
        self._lines: list[str] | None = None

    # ----- positions

    def _problem(self, message: str, path: str, pos: _Pos | None) -> Problem:
        if pos is None:
            return Problem(message, path, self.file)
        return Problem(message, path, self.file, pos.line + 1, pos.column + 1)

    def _at(self, node: Node) -> _Pos:
        mark = node.start_mark
        return _Pos(mark.line, mark.column, getattr(node, "style", None), isinstance(node, ScalarNode))

    def locate(self, path: str, *, at_key: bool = False) -> _Pos | None:
        """The position of `path`, or of its nearest ancestor that has one; mappings point at their key."""
        current: str | None = path
        while current is not None:
            pos = self.values.get(current)
            if at_key or (pos is not None and not pos.scalar):
                pos = self.keys.get(current, pos)
            if pos is not None:
                return pos
            current = _parent(current)
        return None

    def syntax_problem(self, exc: yaml.MarkedYAMLError) -> Problem:
        mark = exc.problem_mark or exc.context_mark
        if exc.problem and "another document" in exc.problem:
            message = (
                f"the file holds more than one YAML document; {_a(self.kind.noun)} is one document — "
                "remove the '---' line"
            )
            return Problem(message, "", self.file, mark.line + 1 if mark else None, mark.column + 1 if mark else None)
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
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        return Problem(message, "", self.file, line, column)

    def sorted_problems(self) -> list[Problem]:
        return sorted(self.problems, key=lambda p: (p.line is None, p.line or 0, p.column or 0))

    def add_findings(self, findings: Iterable[_Finding], hide: Sequence[str] = ()) -> None:
        """Add findings as problems at their place in the file, except those about (or around) a path in `hide`."""
        for finding in findings:
            if any(_related(finding.path, path) for path in hide):
                continue
            pos = self.locate(finding.path, at_key=finding.at_key)
            if pos is not None and finding.text_line is not None:
                pos = self._inside(pos, finding.text_line)
            self.problems.append(self._problem(finding.message, finding.path, pos))

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

    # ----- conversion

    def convert_root(self, root: Node | None) -> dict[str, Any]:
        if root is None:
            message = f"the file is empty; {_a(self.kind.noun)} starts with '{self.kind.version_key}: 1'"
            raise _Fatal(Problem(message, "", self.file, 1, 1))
        data = self._convert(root, "", 1)
        if not isinstance(data, dict):
            raise _Fatal(
                self._problem(
                    f"{_a(self.kind.noun)} must be a mapping of keys ({self.kind.keys}), not {_kind(data)}",
                    "",
                    self._at(root),
                )
            )
        return data

    def _reject(self, message: str, path: str, node: Node) -> None:
        self.problems.append(self._problem(message, path, self._at(node)))
        self.replaced.append(path)

    def _convert(self, node: Node, path: str, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _Fatal(
                self._problem(
                    f"the document holds more than {MAX_NODES} values once its aliases (*name) are expanded; "
                    f"{_a(self.kind.noun)} needs far fewer — use fewer aliases",
                    _top(path),
                    self._at(node),
                )
            )
        if depth > MAX_DEPTH:
            raise _Fatal(
                self._problem(
                    f"the document nests deeper than {MAX_DEPTH} levels once its aliases are expanded",
                    _top(path),
                    self._at(node),
                )
            )
        self.values[path] = self._at(node)
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        if isinstance(node, SequenceNode) and node.tag == _SEQ:
            return [self._convert(item, _join(path, i), depth + 1) for i, item in enumerate(node.value)]
        if isinstance(node, MappingNode) and node.tag == _MAP:
            return self._mapping(node, path, depth)
        self._reject(self._tag_message(node.tag), path, node)
        return None

    def _tag_message(self, tag: str) -> str:
        return (
            f"unsupported YAML tag {_yaml_tag(tag)!r}: {_a(self.kind.noun)} holds plain data only (strings, numbers, "
            "booleans, lists, mappings); remove the tag"
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
                    self.problems.append(self._problem(message, path, self._at(key_node)))
                continue
            key = str(key_node.value)
            key_path = _join(path, key)
            if key in first:
                self.problems.append(
                    self._problem(
                        f"duplicate key {key!r} on lines {first[key] + 1} and {key_node.start_mark.line + 1}; "
                        "YAML keeps only one of them — remove or rename the other",
                        key_path,
                        self._at(key_node),
                    )
                )
            first.setdefault(key, key_node.start_mark.line)
            self.keys[key_path] = self._at(key_node)
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

    # ----- pydantic

    def add_validation_errors(self, errors: Sequence[ErrorDetails], data: Any) -> None:
        unions: set[str] = set()
        findings = [f for f in (_validation_finding(e, data, unions, self.kind) for e in errors) if f is not None]
        self.add_findings(findings, hide=self.replaced)


def _related(path: str, other: str) -> bool:
    """Whether one of the two paths is the other or inside it."""
    short, long = sorted((path, other), key=len)
    return long == short or not short or long.startswith((short + ".", short + "["))


@dataclass
class _Where:
    """Where a pydantic error is in the data."""

    parts: list[str | int] = field(default_factory=list)
    """The loc's parts that are keys and indexes of the data (or the missing key)."""
    member: str | None = None
    """The union member named in the loc (``ModelSpec``, ``str``), if any."""
    member_at: int = 0
    """How many of `parts` lead to the union's value."""
    is_key: bool = False
    """The error is about the mapping key, not its value."""


def _walk(loc: tuple[int | str, ...], data: Any, missing: bool) -> _Where:
    where = _Where()
    current = data
    for number, part in enumerate(loc):
        if part == "[key]":
            where.is_key = True
        elif isinstance(current, dict) and isinstance(part, str) and part in current:
            where.parts.append(part)
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            where.parts.append(part)
            current = current[part]
        elif missing and number == len(loc) - 1:
            where.parts.append(part)
        elif where.member is None:
            where.member, where.member_at = str(part), len(where.parts)
    return where


def _get(data: Any, parts: Sequence[str | int]) -> Any:
    for part in parts:
        data = data[part]
    return data


def _path(parts: Iterable[str | int]) -> str:
    path = ""
    for part in parts:
        path = _join(path, part)
    return path


def _unwrap(annotation: Any) -> Any:
    while get_origin(annotation) is not None and get_origin(annotation) not in (dict, list):
        args = [a for a in get_args(annotation) if a is not type(None)]
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        annotation = models[0] if models else args[0]
    return annotation


def _model_at(root: type[BaseModel], parts: Sequence[str | int]) -> type[BaseModel] | None:
    """The schema model describing the mapping at `parts` of a `root` document, if it is one."""
    current: Any = root
    for part in parts:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            fields = {info.alias or name: info for name, info in current.model_fields.items()}
            if part not in fields:
                return None
            current = fields[str(part)].annotation
        elif get_origin(current) in (dict, list):
            current = get_args(current)[-1]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


_MISSING_HINTS = {
    "rolegraph": "put 'rolegraph: 1' (the format version) at the top of the file",
    "name": "give the workflow a name, e.g. 'name: literature_review'",
    "steps": "add 'steps:' with at least one step",
    "role": "say which role does the step, e.g. 'role: researcher'",
    "task": "add 'task: ...', what the step should do (a Jinja template)",
    "max_times": "every route needs a bound: add 'max_times: <n>', how often it may fire",
    "goto": "add 'goto: <step>', the step to run again",
    "when": "add 'when: <condition>', e.g. when: output.verdict == 'revise'",
    "items": "add 'items: <expression giving a list>', e.g. items: steps.plan.questions",
    "model": "add 'model: <model string>', e.g. model: openai:gpt-4o-mini",
    "path": "add 'path: <file name>' inside the run folder",
    "render": "add 'render: report' (or json, sources, bibtex, template)",
}
WORKFLOW: DocumentKind[WorkflowSpec] = DocumentKind(
    "workflow", WorkflowSpec, "rolegraph", "rolegraph, name, steps, ...", _MISSING_HINTS
)
_LIMITS = {"greater_than": ">", "greater_than_equal": "≥", "less_than": "<", "less_than_equal": "≤"}
_NAME_RULE = "use letters, digits and underscores, starting with a letter or underscore (at most 64 characters)"


def _validation_finding(
    error: ErrorDetails, data: Any, unions: set[str], document: DocumentKind[Any]
) -> _Finding | None:
    kind = error["type"]
    where = _walk(error["loc"], data, kind == "missing")
    if where.member is not None and not where.is_key:
        union = where.parts[: where.member_at]
        at = _get(data, union)
        if isinstance(at, dict) and where.member == "str":
            return None  # the mapping branch of `ModelSpec | str` explains the problem
        if not isinstance(at, dict):
            if _path(union) in unions:
                return None
            unions.add(_path(union))
            message = (
                f"expected a model string such as 'openai:gpt-4o-mini' or a mapping with 'model:', got {_kind(at)}"
            )
            return _Finding(_path(union), message)
    message = _message(error, where.parts, error.get("input"), where.is_key, document)
    return _Finding(_path(where.parts), message, at_key=where.is_key or kind == "extra_forbidden")


def _message(error: ErrorDetails, parts: list[str | int], value: Any, is_key: bool, document: DocumentKind[Any]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    name = str(parts[-1]) if parts else ""
    if kind == "extra_forbidden":
        model = _model_at(document.model, parts[:-1])
        allowed = [info.alias or field for field, info in model.model_fields.items()] if model else []
        hint = _suggest(name, allowed) or (f"; allowed keys here: {', '.join(allowed)}" if allowed else "")
        return f"unknown key {name!r}{hint}"
    if kind == "missing":
        return f"missing required key {name!r}: {document.hints.get(name, f'add {name!r}')}"
    if kind == "literal_error":
        if parts == [document.version_key]:
            key = document.version_key
            return f"unsupported format version {value!r}: this version of rolegraph reads '{key}: 1'"
        expected = str(ctx.get("expected", ""))
        choices = re.findall(r"'(\w+)'", expected)
        return f"{value!r} is not allowed here; use {expected}{_suggest(str(value), choices)}"
    if kind == "string_pattern_mismatch":
        if len(parts) == 4 and parts[0] == "roles" and parts[2] == "output" and not is_key:
            try:
                field_type(str(value))
            except ValueError as exc:
                return str(exc)
        return f"{value!r} is not a valid name: {_NAME_RULE}"
    if kind == "string_too_long":
        return f"{value!r} is too long: {_NAME_RULE}"
    if kind == "string_type":
        quote = "; put it in quotes" if isinstance(value, bool | int | float) else ""
        return f"expected a string, got {_kind(value)}{quote}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"expected a whole number, got {_kind(value)}"
    if kind in ("float_type", "float_parsing"):
        return f"expected a number, got {_kind(value)}"
    if kind in ("bool_type", "bool_parsing"):
        return f"expected true or false, got {_kind(value)}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected a mapping (key: value lines), got {_kind(value)}"
    if kind == "list_type":
        return f"expected a list such as [a, b], got {_kind(value)}"
    if kind in _LIMITS:
        limit = next(iter(ctx.values()), "?")
        return f"{value!r} is out of range: it must be {_LIMITS[kind]} {limit}"
    if kind == "too_short" and parts == ["steps"]:
        return "a workflow needs at least one step under 'steps:'"
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])
    return error["msg"]


# ----- checks across the document


def _is_model_string(text: str) -> bool:
    return ":" in text or text == "local"


def _role_findings(spec: WorkflowSpec) -> list[_Finding]:
    findings: list[_Finding] = []
    known = BUILTIN_ROLE_NAMES | spec.roles.keys()
    builtins = ", ".join(sorted(BUILTIN_ROLE_NAMES))
    for step_id, step in spec.steps.items():
        if step.role not in known:
            findings.append(
                _Finding(
                    f"steps.{step_id}.role",
                    f"unknown role {step.role!r}; define it under 'roles:' or use a built-in role ({builtins})"
                    f"{_suggest(step.role, known)}",
                )
            )
    for name, role in spec.roles.items():
        if name not in BUILTIN_ROLE_NAMES:
            missing = [field for field in ("instructions", "output") if getattr(role, field) is None]
            if missing:
                close = difflib.get_close_matches(name, BUILTIN_ROLE_NAMES, n=1, cutoff=0.6)
                also = f" (to change the built-in role {close[0]!r}, use that name)" if close else ""
                findings.append(
                    _Finding(
                        f"roles.{name}",
                        f"role {name!r} is not built in, so it needs {' and '.join(repr(m) for m in missing)}{also}",
                        at_key=True,
                    )
                )
        for output_field, type_text in (role.output or {}).items():
            try:
                field_type(type_text)
            except ValueError as exc:
                findings.append(_Finding(f"roles.{name}.output.{output_field}", str(exc)))
    return findings


def _model_findings(spec: WorkflowSpec) -> list[_Finding]:
    findings: list[_Finding] = []
    if "default" not in spec.models:
        findings.append(
            _Finding(
                "models",
                "'models' has no 'default' entry, used by every role without its own model; "
                "add 'default: local' (or another model string)",
                at_key=True,
            )
        )
    for name, entry in spec.models.items():
        text, path = (entry, f"models.{name}") if isinstance(entry, str) else (entry.model, f"models.{name}.model")
        if not _is_model_string(text):
            findings.append(
                _Finding(
                    path,
                    f"{text!r} is not a model string; write '<provider>:<model>' "
                    "(e.g. 'openai:gpt-4o-mini', 'ollama:qwen2.5:7b') or 'local'",
                )
            )
    users = [(f"roles.{n}.model", r.model) for n, r in spec.roles.items()]
    users += [(f"steps.{n}.model", s.model) for n, s in spec.steps.items()]
    for path, model in users:
        if model is not None and model not in spec.models and not _is_model_string(model):
            findings.append(
                _Finding(
                    path,
                    f"unknown model {model!r}; name one defined under 'models:' or give a model string such as "
                    f"'openai:gpt-4o-mini'{_suggest(model, spec.models)}",
                )
            )
    return findings


class _Text(NamedTuple):
    """A template or expression of the workflow, and what it may use."""

    path: str
    text: str
    what: str
    expression: bool
    names: frozenset[str]
    step: str | None = None


_CONTEXT = frozenset({"inputs", "steps", "routed"})  # what the scheduler gives every step's templates


def _texts(spec: WorkflowSpec) -> Iterator[_Text]:
    for step_id, step in spec.steps.items():
        prefix = f"steps.{step_id}"
        item = frozenset({step.for_each.as_, "index"} if step.for_each else ())
        yield _Text(f"{prefix}.task", step.task, "task", False, _CONTEXT | item, step_id)
        if step.for_each is not None:
            yield _Text(f"{prefix}.for_each.items", step.for_each.items, "for_each.items", True, _CONTEXT, step_id)
        for number, route in enumerate(step.routes):
            when = f"{prefix}.routes[{number}].when"
            yield _Text(when, route.when, "route condition", True, _CONTEXT | {"output"}, step_id)
    for name, out in spec.outputs.items():
        if out.template is not None:
            names = frozenset({"inputs", "steps", "sources"})
            yield _Text(f"outputs.{name}.template", out.template, "output template", False, names)


class _Upstream:
    """The steps upstream of one step (all steps for an output), for ``in`` tests.

    Most references name a direct dependency, so the ancestors are computed only
    when one does not: computing them for every step made loading a chain of n
    steps take O(n²) time.
    """

    def __init__(self, data: nx.DiGraph[str], step: str | None) -> None:
        self._data = data
        self._step = step
        self._ancestors: set[str] | None = None

    def __contains__(self, name: str) -> bool:
        if self._step is None:
            return name in self._data
        if self._data.has_edge(name, self._step):
            return True
        if self._ancestors is None:
            self._ancestors = nx.ancestors(self._data, self._step)
        return name in self._ancestors


def _template_findings(spec: WorkflowSpec) -> list[_Finding]:
    data = dependency_graph(spec)
    findings: list[_Finding] = []
    upstream: dict[str | None, _Upstream] = {}
    for item in _texts(spec):
        check = templates.check_expression if item.expression else templates.check_template
        issue = check(item.text)
        if issue is not None:
            message = f"{item.what} is not valid Jinja: {issue.message}"
            findings.append(_Finding(item.path, message, text_line=issue.line))
        else:
            if item.step not in upstream:
                upstream[item.step] = _Upstream(data, item.step)
            findings += _reference_findings(spec, item, upstream[item.step])
    return findings


def _reference_findings(spec: WorkflowSpec, item: _Text, upstream: _Upstream) -> list[_Finding]:
    path, what, names = item.path, item.what, item.names
    findings = [
        _Finding(
            path,
            f"{what} uses {name!r}, which is not defined here (available: {', '.join(sorted(names))})"
            f"{_suggest(name, names)}",
        )
        for name in sorted(templates.undeclared_names(item.text, expression=item.expression) - names)
    ]
    for kind, name in sorted(templates.referenced_names(item.text, expression=item.expression)):
        message = None
        if kind == "inputs" and name not in spec.inputs:
            message = f"references inputs.{name} but the workflow declares no input {name!r}"
            message += f"; add it under 'inputs:'{_suggest(name, spec.inputs)}"
        elif kind == "steps" and name not in spec.steps:
            message = f"references steps.{name} but there is no step {name!r}{_suggest(name, spec.steps)}"
        elif kind == "steps" and name == item.step:
            message = f"references steps.{name}, its own step"
            message += "; use 'output' for this step's own output" if "output" in names else ""
        elif kind == "steps" and name not in upstream:
            message = (
                f"references steps.{name} but {name!r} is not in depends_on; add it to depends_on of {item.step!r}"
            )
        if message is not None:
            findings.append(_Finding(path, f"{what} {message}"))
    return findings


def _output_findings(spec: WorkflowSpec) -> list[_Finding]:
    findings = [
        _Finding(
            f"outputs.{name}.from", f"output comes from unknown step {out.from_!r}{_suggest(out.from_, spec.steps)}"
        )
        for name, out in spec.outputs.items()
        if out.from_ is not None and out.from_ not in spec.steps
    ]
    # Caught here, not only when the run writes its outputs: by then every step's work would be done.
    findings += [
        _Finding(f"outputs.{name}.path", f"path {out.path!r} leaves the run folder; use a relative path inside it")
        for name, out in spec.outputs.items()
        if posixpath.isabs(out.path) or posixpath.normpath(out.path).split("/")[0] == ".."
    ]
    return findings
