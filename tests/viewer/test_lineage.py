"""Replays and resumed runs marked in the runs list and the run view, route decisions on the graph, and the
runs list's search and filters."""

from __future__ import annotations

import time
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


def get(client: TestClient, url: str) -> Any:
    response = client.get(url)
    assert response.status_code == 200, response.text
    return response.json()


def listed(client: TestClient, query: str = "") -> dict[str, dict[str, Any]]:
    """The runs list (with `query`), by run id."""
    return {run["run_id"]: run for run in get(client, f"/api/runs?{query}")["runs"]}


class TestLineage:
    def test_runs_list_marks_replays_and_resumes(self, client: TestClient, gallery: Gallery) -> None:
        """The list says which runs are replays (of what) and resumed; a diverged replay is `diverged`, not failed."""
        runs = listed(client)
        resumed, same, changed = gallery.resumed.run_id, gallery.same.result.run_id, gallery.changed.result.run_id
        assert (runs[resumed]["status"], runs[resumed]["lineage"]) == (
            "completed",
            {"replay_of": None, "resumed": True, "divergence": None},
        )
        assert (runs[same]["status"], runs[same]["lineage"]["replay_of"]) == ("completed", resumed)
        assert (runs[changed]["status"], runs[changed]["lineage"]) == (
            "diverged",
            {
                "replay_of": resumed,
                "resumed": False,
                "divergence": "step write, call write#1/chat/1 (chat): prompt changed",
            },
        )
        assert runs[gallery.failed.run_id]["status"] == "failed"  # a real failure stays one
        assert runs[gallery.demo.run_id]["lineage"] == {"replay_of": None, "resumed": False, "divergence": None}

    def test_run_view_of_a_resumed_run(self, client: TestClient, gallery: Gallery) -> None:
        """A resumed run's view counts its invocations and says when it resumed and what it restored; its clock
        starts with the first invocation, so no span starts before zero."""
        view = get(client, f"/api/runs/{gallery.resumed.run_id}")
        assert (view["status"], view["live"], view["lineage"]["resumed"], view["lineage"]["invocations"]) == (
            "completed",
            False,
            True,
            2,
        )
        [resume] = view["resumes"]
        assert resume["invocation"] == 2 and resume["restored"] == ["plan"]
        assert 0 < resume["at"] < view["elapsed_s"]
        assert min(span["start"] for span in view["spans"]) == 0
        root = view["spans"][0]
        assert (root["kind"], root["start"], root["end"]) == ("invoke_workflow", 0, view["elapsed_s"])

    def test_run_view_of_a_diverged_replay(self, client: TestClient, gallery: Gallery) -> None:
        """A diverged replay reads `diverged` with where it stopped; the status it recorded stays available."""
        view = get(client, f"/api/runs/{gallery.changed.result.run_id}")
        assert (view["status"], view["recorded_status"]) == ("diverged", "failed")
        assert view["lineage"]["replay_of"] == gallery.resumed.run_id
        assert view["lineage"]["divergence"] == "step write, call write#1/chat/1 (chat): prompt changed"


class TestRoutes:
    def test_route_decisions_on_the_graph(self, client: TestClient, gallery: Gallery) -> None:
        """The loop's route edge says it fired once and was then blocked by its max_times once."""
        view = get(client, f"/api/runs/{gallery.resumed.run_id}")
        [route] = [e for e in view["graph"]["edges"] if e["kind"] == "route"]
        assert (route["source"], route["target"]) == ("review", "research")
        assert route["decisions"] == {
            "fired": 1,
            "blocked": 1,
            "not_matched": 0,
            "when": "output.verdict == 'revise'",
            "error": None,
            "max_times": 1,
        }
        hints = [s["hint"] for s in view["spans"] if s["kind"] == "route"]
        assert hints == ["fired (1 of at most 1)", "blocked: its condition held, but it already fired 1 times"]


class TestRunsFilters:
    def test_search_in_span_content(self, client: TestClient, gallery: Gallery) -> None:
        """`q` finds runs by text in their spans (a tool result here), with the number of spans holding it."""
        runs = listed(client, "q=skimmed dettmers2023qlora")
        assert gallery.demo.run_id in runs and gallery.variant.run_id in runs
        assert gallery.failed.run_id not in runs and gallery.resumed.run_id not in runs
        assert runs[gallery.demo.run_id]["matches"] >= 1
        by_name = listed(client, "q=revise_loop")  # the workflow's name: runs match with no span needed
        assert set(by_name) == {gallery.resumed.run_id, gallery.same.result.run_id, gallery.changed.result.run_id}

    def test_search_text_is_matched_literally(self, client: TestClient) -> None:
        """LIKE wildcards and JSON-escaped characters in the query are plain text."""
        assert listed(client, "q=%25") == {}
        assert listed(client, "q=no_such_thing_anywhere") == {}
        assert listed(client, 'q="query": "low-rank trainable') != {}  # quotes as JSON stores them, escaped

    @pytest.mark.parametrize(
        ("status", "expected"),
        [
            ("failed", {"failed"}),
            ("diverged", {"changed"}),
            ("replay", {"same", "changed"}),
            ("resumed", {"resumed"}),
        ],
    )
    def test_status_filter(self, client: TestClient, gallery: Gallery, status: str, expected: set[str]) -> None:
        """`status` keeps runs of that status; ``replay`` and ``resumed`` select by where runs come from."""
        ids = {
            "failed": gallery.failed.run_id,
            "changed": gallery.changed.result.run_id,
            "same": gallery.same.result.run_id,
            "resumed": gallery.resumed.run_id,
        }
        assert set(listed(client, f"status={status}")) == {ids[name] for name in expected}

    def test_date_filter(self, client: TestClient, gallery: Gallery) -> None:
        """`since` and `until` (Unix time) keep runs started in that window; a bad value is a 400."""
        now = time.time()
        assert len(listed(client, f"since={now - 3600}")) == len(listed(client))
        assert listed(client, f"since={now + 3600}") == {}
        assert listed(client, f"until={now - 24 * 3600}") == {}
        assert client.get("/api/runs?since=yesterday").status_code == 400


class TestSpanSearch:
    def test_spans_holding_text(self, client: TestClient, gallery: Gallery) -> None:
        """A run's spans holding the text, case-insensitively, each with the field and a snippet around it."""
        found = get(client, f"/api/runs/{gallery.demo.run_id}/search?q=SKIMMED DETTMERS")
        assert found["more"] is False
        assert all("skimmed dettmers2023qlora" in h["snippet"] for h in found["hits"])  # the tool, the next prompt
        [hit] = [h for h in found["hits"] if h["field"] == "rolegraph.tool.result"]
        assert hit["snippet"] == "skimmed dettmers2023qlora"
        view = get(client, f"/api/runs/{gallery.demo.run_id}")
        span = next(s for s in view["spans"] if s["id"] == hit["id"])
        assert (span["name"], span["step"]) == ("execute_tool skim", "research_b")
        assert get(client, f"/api/runs/{gallery.demo.run_id}/search?q=")["hits"] == []
        assert client.get("/api/runs/nope/search?q=x").status_code == 404
