"""The bounded YAML composer: PyYAML's nodes and marks from a parser's events, never too deep or too many.

libyaml's own composer recurses in C without a depth limit, so `rolegraph.workflows.reader`
composes here instead, over the events of libyaml's C parser (or of PyYAML's pure-Python
one). `BoundedComposer.compose_node` builds the same nodes as PyYAML's `Composer` (same
tags, marks, styles, anchors and errors) in one method per node instead of four, each event
taken once: composing is most of the time a large workflow takes to load.
"""

from __future__ import annotations

from typing import Any

from yaml.composer import Composer, ComposerError
from yaml.events import AliasEvent, MappingEndEvent, MappingStartEvent, ScalarEvent, SequenceEndEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = ["MAX_DEPTH", "MAX_NODES", "BoundedComposer", "LimitExceeded"]

MAX_DEPTH = 50
"""Deepest nesting of mappings and lists accepted."""
MAX_NODES = 100_000
"""Most values a document may hold once its aliases are expanded (stops "billion laughs")."""


class LimitExceeded(Exception):
    """The document nests deeper than `MAX_DEPTH` or holds more than `MAX_NODES` values."""

    def __init__(self, message: str, line: int, column: int) -> None:
        self.message, self.line, self.column = message, line, column
        super().__init__(message)


class BoundedComposer(Composer):
    """PyYAML's composer, refusing to compose deeper than `MAX_DEPTH` (it recurses) or more than
    `MAX_NODES` nodes (so that a huge flat document stops early too).

    Mixed into a loader class with a parser (``get_event``/``peek_event``) and a resolver.
    """

    _depth = 0
    _nodes = 0
    subject = "a workflow"
    """What the document is, with its article, for the limits' messages."""

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        self._nodes += 1
        try:
            if self._depth > MAX_DEPTH or self._nodes > MAX_NODES:
                self._refuse()
            if self.yaml_path_resolvers:  # type: ignore[attr-defined]  # PyYAML's own path, which tracks them
                node: Node | None = super().compose_node(parent, index)
                return node
            return self._compose(self.get_event())  # type: ignore[attr-defined]  # the parser half has it
        finally:
            self._depth -= 1

    def _refuse(self) -> None:
        mark = self.peek_event().start_mark  # type: ignore[attr-defined]  # the loader's parser half has it
        message = (
            f"the document nests deeper than {MAX_DEPTH} levels; {self.subject} needs only a few"
            if self._depth > MAX_DEPTH
            else f"the document holds more than {MAX_NODES} values; {self.subject} needs far fewer"
        )
        raise LimitExceeded(message, mark.line + 1, mark.column + 1)

    def _compose(self, event: Any) -> Node:
        kind = type(event)
        if kind is AliasEvent:
            if event.anchor not in self.anchors:
                raise ComposerError(None, None, f"found undefined alias {event.anchor!r}", event.start_mark)
            return self.anchors[event.anchor]
        anchor = event.anchor
        if anchor is not None and anchor in self.anchors:
            raise ComposerError(
                f"found duplicate anchor {anchor!r}; first occurrence",
                self.anchors[anchor].start_mark,
                "second occurrence",
                event.start_mark,
            )
        tag = event.tag
        if kind is ScalarEvent:
            if tag is None or tag == "!":
                tag = self.resolve(ScalarNode, event.value, event.implicit)  # type: ignore[attr-defined]
            node: Node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
            if anchor is not None:
                self.anchors[anchor] = node
            return node
        mapping = kind is MappingStartEvent
        node_class: Any = MappingNode if mapping else SequenceNode
        if tag is None or tag == "!":
            tag = self.resolve(node_class, None, event.implicit)  # type: ignore[attr-defined]
        node = node_class(tag, [], event.start_mark, None, flow_style=event.flow_style)
        if anchor is not None:
            self.anchors[anchor] = node  # before the children: an alias inside may refer to it
        items = node.value
        if mapping:
            while type(self.peek_event()) is not MappingEndEvent:  # type: ignore[attr-defined]
                key = self.compose_node(node, None)
                items.append((key, self.compose_node(node, key)))
        else:
            number = 0
            while type(self.peek_event()) is not SequenceEndEvent:  # type: ignore[attr-defined]
                items.append(self.compose_node(node, number))
                number += 1
        node.end_mark = self.get_event().end_mark  # type: ignore[attr-defined]
        return node
