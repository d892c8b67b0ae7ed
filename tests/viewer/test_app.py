"""The viewer's JSON API over recorded runs: runs list, a run's spans, lanes and graph, span details, live updates."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from rolegraph.runtime.result import RunResult
from rolegraph.viewer import create_app
from viewer.recording import PAYLOAD_THOUGHT, record_skipped

Recorded = tuple[Path, RunResult, RunResult]


@pytest.fixture
def client(recorded: Recorded) -> Iterator[TestClient]:
    """A client of the viewer over the two recorded runs (Host: 127.0.0.1)."""
    with TestClient(create_app(recorded[0]), base_url="http://127.0.0.1:8765") as client:
        yield client


def get(client: TestClient, url: str) -> Any:
    response = client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def copy_run(result: RunResult, home: Path) -> Path:
    """A copy of a recorded run's folder under another home; the copy's folder."""
    target = home / "runs" / result.run_id
    shutil.copytree(result.run_dir, target)
    return target


class TestRuns:
    def test_lists_runs_newest_first(self, client: TestClient, recorded: Recorded, failed_run: str) -> None:
        """`/api/runs` lists every run, newest first, with status, tokens and cost, and no local paths."""
        _, demo, untrusted = recorded
        runs = get(client, "/api/runs")["runs"]
        assert [(r["run_id"], r["status"]) for r in runs] == [
            (demo.run_id, "completed"),
            (untrusted.run_id, "completed"),
            (failed_run, "failed"),
        ]
        first = runs[0]
        assert (first["workflow"], first["status"], first["cost_usd"]) == ("lora_review", "completed", 0.0)
        assert first["input_tokens"] == demo.usage.input_tokens and first["output_tokens"] == demo.usage.output_tokens
        assert "run_dir" not in first
        assert [r["run_id"] for r in get(client, "/api/runs?workflow=untrusted")["runs"]] == [untrusted.run_id]
        assert client.get("/api/runs?limit=x").status_code == 400


class TestRunView:
    def test_spans_in_tree_order_with_steps(self, client: TestClient, recorded: Recorded) -> None:
        """A run's spans come depth first, each with its depth, inherited step, times from the start and tokens."""
        demo = recorded[1]
        view = get(client, f"/api/runs/{demo.run_id}")
        assert (view["status"], view["live"], view["workflow"]) == ("completed", False, "lora_review")
        spans = view["spans"]
        assert len(spans) == len(demo.trace.spans)
        assert [(s["depth"], s["kind"]) for s in spans[:4]] == [
            (0, "invoke_workflow"),
            (1, "invoke_agent"),
            (2, "react_step"),
            (3, "chat"),
        ]
        by_id = {s["id"]: s for s in spans}
        for span in spans[1:]:
            parent = by_id[span["parent"]]
            assert span["depth"] == parent["depth"] + 1
            assert spans.index(parent) < spans.index(span)
            assert 0 <= span["start"] <= span["end"] <= spans[0]["end"]
        skim = next(s for s in spans if s["name"] == "execute_tool skim" and s["step"] == "research_b")
        assert skim["hint"] == '{"source_id": "dettmers2023qlora", "seconds": 0.35}'
        assert skim["duration_s"] >= 0.35
        chats = [s for s in spans if s["kind"] == "chat"]
        assert (
            sum(s["input_tokens"] for s in chats) == view["usage"]["total"]["input_tokens"] == demo.usage.input_tokens
        )
        assert {k: v["status"] for k, v in view["steps"].items()} == {
            "plan": "completed",
            "research_a": "completed",
            "research_b": "completed",
            "write": "completed",
        }
        assert view["sources"]["hu2021lora"]["title"] == "Paper hu2021lora"

    def test_parallel_branches_get_their_own_lanes(self, client: TestClient, recorded: Recorded) -> None:
        """The two research agents overlap in time and sit in different lanes; the steps before and after share one."""
        view = get(client, f"/api/runs/{recorded[1].run_id}")
        by_id = {s["id"]: s for s in view["spans"]}
        lanes = {entry["step"]: entry for entry in view["lanes"]}
        assert list(lanes) == ["plan", "research_a", "research_b", "write"]
        a, b = by_id[lanes["research_a"]["span"]], by_id[lanes["research_b"]["span"]]
        assert a["start"] < b["end"] and b["start"] < a["end"]  # they ran at once
        assert lanes["research_a"]["lane"] != lanes["research_b"]["lane"]
        assert lanes["plan"]["lane"] == lanes["write"]["lane"] == 0

    def test_graph_from_the_workflow_file(self, client: TestClient, recorded: Recorded) -> None:
        """The graph has the workflow's steps in topological layers, its data edges and each step's status."""
        graph = get(client, f"/api/runs/{recorded[1].run_id}")["graph"]
        assert (graph["source"], graph["note"]) == ("workflow", None)
        assert [(n["id"], n["layer"], n["row"], n["status"], n["role"]) for n in graph["nodes"]] == [
            ("plan", 0, 0, "completed", "planner"),
            ("research_a", 1, 0, "completed", "researcher"),
            ("research_b", 1, 1, "completed", "researcher"),
            ("write", 2, 0, "completed", "writer"),
        ]
        assert sorted((e["source"], e["target"], e["kind"]) for e in graph["edges"]) == [
            ("plan", "research_a", "data"),
            ("plan", "research_b", "data"),
            ("research_a", "write", "data"),
            ("research_b", "write", "data"),
        ]

    def test_graph_falls_back_to_the_trace_when_the_workflow_moved(self, recorded: Recorded, tmp_path: Path) -> None:
        """A run whose workflow file is gone still gets a graph: the steps seen in the trace, in start order."""
        folder = copy_run(recorded[1], tmp_path)
        summary = json.loads((folder / "run.json").read_text())
        (folder / "run.json").write_text(json.dumps({**summary, "workflow_file": str(tmp_path / "moved.yaml")}))
        with TestClient(create_app(tmp_path), base_url="http://127.0.0.1") as client:
            graph = get(client, f"/api/runs/{folder.name}")["graph"]
        assert graph["source"] == "trace"
        assert "moved.yaml not found" in graph["note"]
        assert [(n["id"], n["layer"], n["status"]) for n in graph["nodes"]] == [
            ("plan", 0, "completed"),
            ("research_a", 1, "completed"),
            ("research_b", 2, "completed"),
            ("write", 3, "completed"),
        ]
        assert graph["edges"] == []

    def test_graph_falls_back_when_the_workflow_changed(self, recorded: Recorded, tmp_path: Path) -> None:
        """A workflow file that no longer has a step the run recorded is not trusted for the graph."""
        folder = copy_run(recorded[1], tmp_path)
        changed = tmp_path / "review.yaml"
        original = Path(json.loads((folder / "run.json").read_text())["workflow_file"])
        changed.write_text(original.read_text().replace("research_b", "research_c"))
        for name in ("library", "slow_tools.py"):
            (changed.parent / name).symlink_to(original.parent / name)
        summary = json.loads((folder / "run.json").read_text())
        (folder / "run.json").write_text(json.dumps({**summary, "workflow_file": str(changed)}))
        with TestClient(create_app(tmp_path), base_url="http://127.0.0.1") as client:
            graph = get(client, f"/api/runs/{folder.name}")["graph"]
        assert graph["source"] == "trace"
        assert "changed since the run (no step research_b)" in graph["note"]

    def test_failed_run(self, client: TestClient, failed_run: str) -> None:
        """A failed run says why; its failed step and the step skipped after it are coloured so in the graph."""
        view = get(client, f"/api/runs/{failed_run}")
        assert (view["status"], view["live"]) == ("failed", False)
        assert view["error"].startswith("step 'research' failed: researcher: no valid answer after 5 model calls")
        assert [(n["id"], n["status"]) for n in view["graph"]["nodes"]] == [
            ("research", "failed"),
            ("write", "skipped"),
        ]
        [agent] = [s for s in view["spans"] if s["kind"] == "invoke_agent"]
        assert agent["status"] == "error" and "AgentError" in agent["error"]


@pytest.fixture(scope="module")
def skipped(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    """A run whose for_each step skipped its second item (see `record_skipped`)."""
    folder = tmp_path_factory.mktemp("skipped")
    return record_skipped(folder / "project", folder / "home")


class TestSkippedItems:
    ERROR = "researcher: no valid answer after 3 model calls: the answer is not valid JSON"

    def test_the_skipped_item_is_in_the_view(self, skipped: RunResult) -> None:
        """The run's view lists the skipped item (step, index, item, error, failed span); its step counts it in
        the graph; the item's failed agent span is marked skipped, with a hint saying the step went on."""
        with TestClient(create_app(skipped.folder.path.parents[1]), base_url="http://127.0.0.1:8765") as client:
            view = get(client, f"/api/runs/{skipped.run_id}")
        [entry] = view["skipped_items"]
        assert (entry["step"], entry["index"], entry["item"]) == ("screen", 1, "prompt tuning")
        assert entry["error"].startswith(self.ERROR)
        [failed] = [s for s in view["spans"] if s.get("skipped")]
        assert (failed["id"], failed["kind"], failed["item"], failed["status"]) == (
            entry["span"],
            "invoke_agent",
            "1",
            "error",
        )
        assert failed["hint"] == "item skipped: its step went on without it (on_item_error: skip)"
        assert (view["status"], view["steps"]["screen"]["status"], view["steps"]["screen"]["skipped"]) == (
            "completed",
            "completed",
            1,
        )
        [node] = view["graph"]["nodes"]
        assert (node["items"], node["skipped"], node["status"]) == (3, 1, "completed")

    @pytest.mark.parametrize("recorded", [None, "damaged"])
    def test_from_the_trace_without_run_json(self, skipped: RunResult, tmp_path: Path, recorded: str | None) -> None:
        """Without run.json's list (a live run) or with a damaged one, the skipped item comes from its step's
        plan span: index and error, no item value."""
        folder = copy_run(skipped, tmp_path / "home")
        summary = json.loads((folder / "run.json").read_text())
        if recorded is None:
            (folder / "run.json").unlink()
        else:
            (folder / "run.json").write_text(json.dumps({**summary, "skipped_items": {"screen": "x"}}))
        with TestClient(create_app(tmp_path / "home"), base_url="http://127.0.0.1:8765") as client:
            view = get(client, f"/api/runs/{skipped.run_id}")
        [entry] = view["skipped_items"]
        assert (entry["step"], entry["index"], "item" in entry) == ("screen", 1, False)
        assert entry["error"].startswith(self.ERROR) and entry["span"] is not None


class TestSpan:
    def test_tool_span_details(self, client: TestClient, recorded: Recorded) -> None:
        """A span's details have every attribute, its tokens and cost, and the sources it returned, with titles."""
        demo = recorded[1]
        view = get(client, f"/api/runs/{demo.run_id}")
        search = next(
            s for s in view["spans"] if s["name"] == "execute_tool library_search" and s["step"] == "research_a"
        )
        detail = get(client, f"/api/runs/{demo.run_id}/spans/{search['id']}")
        assert detail["attributes"]["rolegraph.tool.arguments"] == '{"query": "low-rank trainable parameters"}'
        assert "LoRA freezes the pretrained weights" in detail["attributes"]["rolegraph.tool.result"]
        assert detail["sources"][0] == {
            "id": "hu2021lora",
            "title": "Paper hu2021lora",
            "url": None,
            "authors": ["Ada Lovelace"],
            "year": 2020,
            "venue": "arXiv",
            "doi": None,
            "arxiv": None,
            "kind": "misc",
            "tool": "library_search",
        }
        chat = next(s for s in view["spans"] if s["kind"] == "chat")
        chat_detail = get(client, f"/api/runs/{demo.run_id}/spans/{chat['id']}")
        assert chat_detail["input_tokens"] == chat["input_tokens"] > 0
        assert chat_detail["cost_usd"] == 0.0  # scripted models are free

    def test_untrusted_text_is_served_as_json_data(self, client: TestClient, recorded: Recorded) -> None:
        """A thought holding HTML comes back verbatim inside JSON (the page renders it as text)."""
        untrusted = recorded[2]
        view = get(client, f"/api/runs/{untrusted.run_id}")
        step = next(s for s in view["spans"] if s["kind"] == "react_step")
        detail = get(client, f"/api/runs/{untrusted.run_id}/spans/{step['id']}")
        assert detail["attributes"]["rolegraph.thought"] == PAYLOAD_THOUGHT

    def test_unknown_ids_are_404(self, client: TestClient, recorded: Recorded) -> None:
        """Unknown runs and spans, and run ids with path syntax, are 404s."""
        demo = recorded[1]
        assert client.get("/api/runs/nope").status_code == 404
        assert client.get(f"/api/runs/{demo.run_id}/spans/zzz").status_code == 404
        assert client.get("/api/runs/..%2F..%2Fetc").status_code == 404
        assert client.get("/api/runs/.hidden/stamp").status_code == 404

    def test_a_folder_not_named_by_a_run_id_is_no_run(self, recorded: Recorded, tmp_path: Path) -> None:
        """Run routes answer only for folders named by a run id: a copy under another name is not served."""
        home = tmp_path / "home"
        shutil.copytree(recorded[1].run_dir, home / "runs" / "my-notes")
        with TestClient(create_app(home), base_url="http://127.0.0.1:8765") as client:
            assert get(client, "/api/runs")["runs"] == []
            assert client.get("/api/runs/my-notes").status_code == 404
            assert client.get("/api/runs/my-notes/stamp").status_code == 404


class TestDamagedRun:
    @pytest.mark.parametrize(
        "line",
        [b'{"x": "\xff"}', b"[1]", b'{"event": "span_start", "kind": "chat", "name": "x", "start_time": 1}'],
        ids=["invalid UTF-8", "not an object", "no span_id"],
    )
    def test_a_damaged_run_is_listed_with_why_and_the_others_as_usual(
        self, line: bytes, recorded: Recorded, tmp_path: Path
    ) -> None:
        """`/api/runs` lists a damaged run as damaged with its problem (no local path); its routes answer 422."""
        _, demo, untrusted = recorded
        home = tmp_path / "home"
        good, bad = copy_run(demo, home), copy_run(untrusted, home)
        with (bad / "trace.jsonl").open("ab") as f:
            f.write(line + b"\n")
        with TestClient(create_app(home), base_url="http://127.0.0.1:8765") as client:
            runs = {r["run_id"]: r for r in get(client, "/api/runs")["runs"]}
            assert {k: r["status"] for k, r in runs.items()} == {good.name: "completed", bad.name: "damaged"}
            assert runs[good.name]["problem"] is None
            problem = runs[bad.name]["problem"]
            assert problem.startswith("trace.jsonl, line ") and str(tmp_path) not in problem
            for url in (f"/api/runs/{bad.name}", f"/api/runs/{bad.name}/stamp", f"/api/runs/{bad.name}/spans/x"):
                response = client.get(url)
                assert response.status_code == 422, url
                assert response.json() == {"error": f"{bad.name}/{problem}", "damaged": True}
            assert get(client, f"/api/runs/{good.name}")["status"] == "completed"


class TestLive:
    def test_a_running_run_updates(self, recorded: Recorded, tmp_path: Path) -> None:
        """While a run is written, its view shows it as far as it got; the stamp changes as records arrive."""
        demo = recorded[1]
        folder = copy_run(demo, tmp_path)
        lines = (folder / "trace.jsonl").read_text().splitlines(keepends=True)
        # Cut the trace just after research_b's agent started: the run and research_b are open. The parallel
        # research_a may not have started yet, may be open, or may have run to its end (a branch that never
        # waits can finish before the next one starts): its state is read from the records before the cut.
        cut = next(
            i
            for i, line in enumerate(lines)
            if '"span_start"' in line and '"invoke_agent"' in line and '"research_b"' in line
        )
        other: str | None = None
        for line in lines[:cut]:
            record = json.loads(line)
            if record["kind"] == "invoke_agent" and record["attributes"].get("rolegraph.step.id") == "research_a":
                other = "completed" if record["event"] == "span_end" else "running"
        (folder / "trace.jsonl").write_text("".join(lines[: cut + 1]))
        summary = json.loads((folder / "run.json").read_text())
        (folder / "run.json").write_text(json.dumps({**summary, "status": "failed", "steps": {}, "duration_s": 0}))
        with TestClient(create_app(tmp_path), base_url="http://127.0.0.1") as client:
            view = get(client, f"/api/runs/{demo.run_id}")
            assert (view["status"], view["live"], view["duration_s"]) == ("unfinished", True, None)
            steps = {"plan": "completed", "research_b": "running"} | ({"research_a": other} if other else {})
            assert {k: v["status"] for k, v in view["steps"].items()} == steps
            nodes = ["completed", other or "pending", "running", "pending"]
            assert [n["status"] for n in view["graph"]["nodes"]] == nodes
            root = view["spans"][0]
            assert (root["status"], root["end"]) == ("unfinished", None)
            assert view["elapsed_s"] > 0
            stamp = get(client, f"/api/runs/{demo.run_id}/stamp")
            assert stamp["live"] is True
            assert get(client, "/api/runs")["runs"][0]["status"] == "unfinished"

            with (folder / "trace.jsonl").open("a") as trace:
                trace.write("".join(lines[cut + 1 :]))
            (folder / "run.json").write_text(json.dumps(summary))
            later = get(client, f"/api/runs/{demo.run_id}/stamp")
            assert later["stamp"] != stamp["stamp"] and later["live"] is False
            view = get(client, f"/api/runs/{demo.run_id}")
            assert (view["status"], view["live"]) == ("completed", False)
            assert view["steps"]["write"]["status"] == "completed"
            assert len(view["spans"]) == len(demo.trace.spans)

    def test_a_run_that_just_started(self, recorded: Recorded, tmp_path: Path) -> None:
        """A run folder with its first summary and an empty trace shows every step of its workflow pending."""
        demo = recorded[1]
        folder = copy_run(demo, tmp_path)
        (folder / "trace.jsonl").write_text("")
        (folder / "sources.json").unlink()
        summary = json.loads((folder / "run.json").read_text())
        (folder / "run.json").write_text(json.dumps({**summary, "status": "failed", "steps": {}, "outputs": {}}))
        with TestClient(create_app(tmp_path), base_url="http://127.0.0.1") as client:
            view = get(client, f"/api/runs/{demo.run_id}")
        assert (view["status"], view["live"], view["spans"], view["lanes"]) == ("unfinished", True, [], [])
        assert [(n["id"], n["status"]) for n in view["graph"]["nodes"]] == [
            ("plan", "pending"),
            ("research_a", "pending"),
            ("research_b", "pending"),
            ("write", "pending"),
        ]


class TestSecurity:
    def test_headers_and_page(self, client: TestClient) -> None:
        """The page and the API come with a CSP that allows no inline script; the page's files are served."""
        page = client.get("/")
        assert page.status_code == 200 and '<script type="module" src="/static/app.js">' in page.text
        for response in (page, client.get("/api/runs"), client.get("/static/app.js")):
            csp = response.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp
            assert response.headers["x-content-type-options"] == "nosniff"
        assert "javascript" in client.get("/static/app.js").headers["content-type"]

    def test_foreign_host_header_is_refused(self, recorded: Recorded) -> None:
        """A request naming another host (DNS rebinding) is refused when serving on loopback."""
        with TestClient(create_app(recorded[0]), base_url="http://attacker.example") as client:
            assert client.get("/api/runs").status_code == 400
        with TestClient(create_app(recorded[0], allowed_hosts=("*",)), base_url="http://attacker.example") as client:
            assert client.get("/api/runs").status_code == 200
