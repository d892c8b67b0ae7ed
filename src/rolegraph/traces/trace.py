"""A recorded trace, read back: spans rebuilt from their start/end records, as a tree."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.tree import Tree

from rolegraph.tokens import Usage
from rolegraph.traces.records import read_trace_records
from rolegraph.traces.render import trace_html, trace_tree

__all__ = ["SpanRecord", "Trace"]


@dataclass
class SpanRecord:
    """One span as recorded: the end record if it finished, else its start record (still open)."""

    span_id: str
    parent_id: str | None
    kind: str
    name: str
    start_time: float
    attributes: dict[str, Any]
    status: str = "unfinished"
    duration_s: float | None = None
    end_time: float | None = None
    error: str | None = None
    children: list[SpanRecord] = field(default_factory=list)

    @property
    def input_tokens(self) -> int:
        """Tokens read: the call's own on a chat span, the aggregate below it elsewhere."""
        a = self.attributes
        return int(a.get("gen_ai.usage.input_tokens", a.get("rolegraph.aggregated.input_tokens", 0)))

    @property
    def output_tokens(self) -> int:
        """Tokens written: the call's own on a chat span, the aggregate below it elsewhere."""
        a = self.attributes
        return int(a.get("gen_ai.usage.output_tokens", a.get("rolegraph.aggregated.output_tokens", 0)))


class Trace:
    """The spans of one run, as a forest (normally one `invoke_workflow` root)."""

    def __init__(self, records: list[dict[str, Any]], path: Path | None = None) -> None:
        self.path = path
        self.records = records
        spans: dict[str, SpanRecord] = {}
        for record in records:
            if record.get("event") not in ("span_start", "span_end"):
                continue
            span = SpanRecord(
                span_id=record["span_id"],
                parent_id=record.get("parent_id"),
                kind=record["kind"],
                name=record["name"],
                start_time=record["start_time"],
                attributes=record.get("attributes", {}),
            )
            if record["event"] == "span_end":
                span.status = record.get("status", "ok")
                span.duration_s = record.get("duration_s")
                span.end_time = record.get("end_time")
                span.error = record.get("error")
            previous = spans.get(span.span_id)
            if previous is not None:
                span.children = previous.children
            spans[span.span_id] = span
        self.spans = spans
        self.roots: list[SpanRecord] = []
        for span in sorted(spans.values(), key=lambda s: s.start_time):
            parent = spans.get(span.parent_id) if span.parent_id else None
            (parent.children if parent else self.roots).append(span)

    @classmethod
    def load(cls, path: Path) -> Trace:
        """Read a run's ``trace.jsonl`` (`rolegraph.traces.records` says what is skipped).

        Raises:
            DamagedFileError: The file is damaged (the error names the line and field).
        """
        return cls(read_trace_records(path), path)

    def walk(self, roots: list[SpanRecord] | None = None) -> Iterator[SpanRecord]:
        """Every span (or every span under `roots`), depth first, in start order."""
        stack = list(reversed(self.roots if roots is None else roots))
        while stack:
            span = stack.pop()
            yield span
            stack.extend(reversed(span.children))

    def usage(self) -> Usage:
        """Total tokens, like `RunResult.usage`: the sum over `chat` spans, each counted once."""
        chats = [s for s in self.walk() if s.kind == "chat"]
        return Usage(input_tokens=sum(s.input_tokens for s in chats), output_tokens=sum(s.output_tokens for s in chats))

    def step_roots(self, step: str) -> list[SpanRecord]:
        """The outermost spans of one step (its agents, fan-out, checkpoint and routes), in start order."""
        found: list[SpanRecord] = []

        def visit(span: SpanRecord) -> None:
            if span.attributes.get("rolegraph.step.id") == step:
                found.append(span)
                return
            for child in span.children:
                visit(child)

        for root in self.roots:
            visit(root)
        return found

    def tree(
        self,
        *,
        show_thoughts: bool = False,
        show_messages: bool = False,
        show_tools: bool = False,
        step: str | None = None,
    ) -> Tree:
        """The trace as a rich tree: names, durations, tokens, status and errors (see `rolegraph.traces.render`).

        Args:
            show_thoughts: Add each react step's thought.
            show_messages: Add each model call's last input message and its output.
            show_tools: Add each tool call's arguments and result.
            step: Show only this step's spans (see `step_roots`).
        """
        spans = self.roots if step is None else self.step_roots(step)
        label = f"trace {self.path or ''}".strip()
        return trace_tree(label, spans, thoughts=show_thoughts, messages=show_messages, tools=show_tools)

    def __rich__(self) -> Tree:
        """The trace in a terminal (``rich.print(trace)``): `tree` with its defaults."""
        return self.tree()

    def _repr_html_(self) -> str:
        """The trace in Jupyter: escaped HTML with its status, steps and nested spans."""
        return trace_html(self)
