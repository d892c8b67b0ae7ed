"""The collector pause around reading and compiling: it ends with the work, however the work ends."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from rolegraph.errors import SpecError
from rolegraph.workflows import checks, graph
from rolegraph.workflows.graph import compile_graph
from rolegraph.workflows.loader import parse_spec

VALID = "rolegraph: 1\nname: wf\nsteps:\n  a: {role: writer, task: t}\n"


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


class TestPausedCollector:
    def test_paused_while_reading_and_compiling(self, collector_on: None, monkeypatch: pytest.MonkeyPatch) -> None:
        """The collector is off while the document is composed and while the graph is built, on afterwards."""
        seen: list[bool] = []
        real = graph.dependency_graph

        def spy(spec: object) -> object:
            seen.append(gc.isenabled())
            return real(spec)

        monkeypatch.setattr(graph, "dependency_graph", spy)
        monkeypatch.setattr(checks, "dependency_graph", spy)
        compile_graph(parse_spec(VALID))
        assert seen == [False, False]  # the loader's checks, then compile_graph
        assert gc.isenabled()

    def test_back_on_after_an_invalid_document(self, collector_on: None) -> None:
        """A document with problems raises, and the collector runs again."""
        with pytest.raises(SpecError):
            parse_spec(VALID + "bogus: 1\n")
        assert gc.isenabled()

    def test_left_off_if_the_caller_had_turned_it_off(self, collector_on: None) -> None:
        """Reading never turns on a collector its caller switched off."""
        gc.disable()
        parse_spec(VALID)
        assert not gc.isenabled()
        gc.enable()
