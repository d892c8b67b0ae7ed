"""The evals in the viewer: the list, a finished eval's report with its metric guide, an unfinished eval's plan."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from rolegraph.evals.manifest import REPORT_FILE
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


class TestEvals:
    def test_list(self, client: TestClient, gallery: Gallery) -> None:
        """`rolegraph eval` left its report where the viewer lists it: id, workflow, eval set, runs, failures."""
        [listed] = get(client, "/api/evals")["evals"]
        assert {k: listed[k] for k in ("eval_id", "finished", "workflow", "evalset", "runs", "failed")} == {
            "eval_id": gallery.eval_id,
            "finished": True,
            "workflow": "lora_review",
            "evalset": "lora_questions",
            "runs": 2,
            "failed": 0,
        }
        assert listed["started"].startswith(gallery.eval_id[:4])

    def test_report(self, client: TestClient, gallery: Gallery, tmp_path: Path) -> None:
        """A finished eval: its report, each column's model name for `default`, each metric's meaning and better
        direction; its runs are runs the viewer shows."""
        data = get(client, f"/api/evals/{gallery.eval_id}")
        report = data["report"]
        assert (data["finished"], report["eval_id"], report["default_model"]) == (
            True,
            gallery.eval_id,
            "scripted:planner.yaml",
        )
        assert data["columns"] == {"default": "scripted:planner.yaml"}
        metrics = {m["name"]: m for m in data["metrics"]}
        assert metrics["source_recall"] == {
            "name": "source_recall",
            "meaning": "Share of the question's gold sources the report cites.",
            "better": "higher",
            "arrow": "↑",
            "whole": False,
        }
        assert metrics["wall_time_s"]["better"] == "lower"
        assert [name for name, metric in metrics.items() if metric["whole"]] == ["tokens"]  # a count
        assert list(metrics)[-1] == "completed"
        for run in report["runs"]:
            assert (
                run["excerpt"] == "Low-rank adaptation LoRA trains few parameters. QLoRA fits large models on one GPU."
            )
            assert get(client, f"/api/runs/{run['run_id']}")["workflow"] == "lora_review"

    def test_plots_are_the_reports_svgs(self, client: TestClient, gallery: Gallery) -> None:
        """Each metric's plot is served as an SVG image, the eval HTML's own drawing, its column named by model."""
        response = client.get(f"/api/evals/{gallery.eval_id}/plots/source_recall.svg")
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/svg+xml"
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert response.text.startswith('<svg xmlns="http://www.w3.org/2000/svg"')
        assert "<title>scripted:planner.yaml</title>" in response.text
        assert client.get(f"/api/evals/{gallery.eval_id}/plots/nonsense.svg").status_code == 404

    def test_unfinished_eval_shows_its_plan(self, gallery: Gallery, tmp_path: Path) -> None:
        """An eval without a report (running, or interrupted) shows its planned runs with their status and ids."""
        folder = tmp_path / "evals" / gallery.eval_id
        shutil.copytree(gallery.home / "evals" / gallery.eval_id, folder)
        (folder / REPORT_FILE).unlink()
        with TestClient(create_app(tmp_path), base_url="http://127.0.0.1") as client:
            data = get(client, f"/api/evals/{gallery.eval_id}")
            [listed] = get(client, "/api/evals")["evals"]
        assert data["finished"] is False and listed["finished"] is False
        assert [(r["question"], r["model"], r["repeat"], r["status"]) for r in data["runs"]] == [
            ("lora_basics", "default", 1, "completed"),
            ("lora_basics", "default", 2, "completed"),
        ]
        assert all(r["run_id"] for r in data["runs"])

    def test_unknown_eval_is_404(self, client: TestClient) -> None:
        """An unknown eval, or an id with path syntax, is a 404."""
        assert client.get("/api/evals/nope").status_code == 404
        assert client.get("/api/evals/..%2F..%2Fetc").status_code == 404
