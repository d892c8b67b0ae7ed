"""The bounded composer builds exactly the nodes PyYAML's own composer builds."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from yaml.nodes import Node

from rolegraph.workflows.composer import BoundedComposer

DOCUMENT = """\
defaults: &defaults {role: writer, retries: 2}
empty:
list: [1, 2.5, true, null, "quoted", 'single', ~, 2026-01-01]
block: |
  a literal
  block
steps:
  a:
    <<: *defaults
    task: !!str 12
  b: {<<: *defaults, depends_on: [a], when: "x == 1"}
  c:
    - &item one
    - *item
    - ? complex key
      : value
"""


class _Bounded(BoundedComposer, yaml.SafeLoader):
    """The pure-Python safe loader with the bounded composer."""


def _shape(node: Node | None, seen: dict[int, int] | None = None) -> Any:
    """Everything a node holds that the reader reads: tag, value, marks, style; aliases as back references."""
    seen = {} if seen is None else seen
    if node is None:
        return None
    if id(node) in seen:
        return ("alias-of", seen[id(node)])
    seen[id(node)] = len(seen)
    marks = (node.start_mark.line, node.start_mark.column, node.end_mark.line, node.end_mark.column)
    if isinstance(node, yaml.ScalarNode):
        return (node.tag, node.value, marks, node.style)
    items = [
        (_shape(k, seen), _shape(v, seen)) if isinstance(node, yaml.MappingNode) else _shape(k, seen)
        for k, v in ((item if isinstance(item, tuple) else (item, None)) for item in node.value)
    ]
    return (type(node).__name__, node.tag, marks, node.flow_style, items)


def _compose(loader_class: type[Any], text: str) -> Node | None:
    loader = loader_class(text)
    try:
        root: Node | None = loader.get_single_node()
        return root
    finally:
        loader.dispose()


def test_nodes_equal_pyyamls() -> None:
    """Tags, values, marks, styles and shared (aliased) nodes are PyYAML's, node for node."""
    assert _shape(_compose(_Bounded, DOCUMENT)) == _shape(_compose(yaml.SafeLoader, DOCUMENT))


@pytest.mark.parametrize(
    "text",
    ["a: *missing\n", "a: &x 1\nb: &x 2\n"],
    ids=["undefined alias", "duplicate anchor"],
)
def test_alias_errors_equal_pyyamls(text: str) -> None:
    """An undefined alias or a duplicate anchor is refused with PyYAML's own error and marks."""
    with pytest.raises(yaml.MarkedYAMLError) as ours:
        _compose(_Bounded, text)
    with pytest.raises(yaml.MarkedYAMLError) as theirs:
        _compose(yaml.SafeLoader, text)
    assert str(ours.value) == str(theirs.value)
