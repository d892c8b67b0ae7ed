"""Two runs side by side through the viewer's API: summaries, the step diff, the first divergence, outputs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from rolegraph.viewer import create_app
from viewer.conftest import Gallery


@pytest.fixture
def client(gallery: Gallery) -> Iterator[TestClient]:
    """The viewer over the gallery (Host: 127.0.0.1)."""
    with TestClient(create_app(gallery.home), base_url="http://127.0.0.1") as client:
        yield client


def compare(client: TestClient, a: str, b: str) -> Any:
    response = client.get(f"/api/compare?a={a}&b={b}")
    assert response.status_code == 200, response.text
    return response.json()


class TestCompare:
    def test_two_runs_of_one_workflow(self, client: TestClient, gallery: Gallery) -> None:
        """The demo and its variant first differ at research_a's first tool call; their reports differ."""
        data = compare(client, gallery.demo.run_id, gallery.variant.run_id)
        assert (data["a"]["run_id"], data["b"]["run_id"]) == (gallery.demo.run_id, gallery.variant.run_id)
        assert data["a"]["input_tokens"] == gallery.demo.usage.input_tokens
        assert data["diff"]["first_divergence"] == {
            "step_id": "research_a",
            "kind": "tool_call",
            "detail": 'library_search {"query": "low-rank trainable parameters"} vs '
            'library_search {"query": "parameter-efficient fine-tuning"}',
            "call_index": 0,
            "text": 'step research_a, tool call 1: library_search {"query": "low-rank trainable parameters"} vs '
            'library_search {"query": "parameter-efficient fine-tuning"}',
        }
        assert data["diff"]["totals"]["steps_differing"] == ["research_a", "write"]
        assert data["diff"]["steps"]["research_b"]["differs"] is False
        report = next(o for o in data["outputs"] if o["name"] == "report")
        assert report == {"name": "report", "a": True, "b": True, "same": False}

    def test_a_resumed_run_and_its_identical_replay_agree(self, client: TestClient, gallery: Gallery) -> None:
        """The calls of the visit a budget cut short and the resume redid count once: no divergence."""
        data = compare(client, gallery.resumed.run_id, gallery.same.result.run_id)
        assert data["diff"]["first_divergence"] is None
        assert data["diff"]["steps"]["research"]["tool_calls"]["same"] is True
        assert len(data["diff"]["steps"]["research"]["tool_calls"]["a"]) == 2  # one search per visit

    def test_a_diverged_replay(self, client: TestClient, gallery: Gallery) -> None:
        """Against its diverged replay, the recorded run first differs at the step whose prompt changed."""
        data = compare(client, gallery.resumed.run_id, gallery.changed.result.run_id)
        first = data["diff"]["first_divergence"]
        assert (first["step_id"], first["kind"], first["detail"]) == ("write", "status", "completed vs failed")
        assert data["b"]["status"] == "diverged"
        assert data["b"]["lineage"]["divergence"] == "step write, call write#1/chat/1 (chat): prompt changed"
        assert data["outputs"] == [{"name": "report", "a": True, "b": False, "same": None}]

    def test_bad_requests(self, client: TestClient, gallery: Gallery) -> None:
        """Both runs are needed (400), and must exist (404)."""
        assert client.get(f"/api/compare?a={gallery.demo.run_id}").status_code == 400
        assert client.get(f"/api/compare?a={gallery.demo.run_id}&b=nope").status_code == 404
