"""Runs on a two-node Ray cluster on 127.0.0.1: both nodes used, the local run's outputs and trace,
loopback ports only, a lost worker node survived, and a Ray run resumed and replayed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ray_nodes import listeners, off_loopback
from test_ray_executor import rolegraph, trace_shape, write_project

from eval_projects import GOOD, THIN, write_eval_project
from rolegraph.distributed.local_nodes import LocalNodes
from rolegraph.layout import RunFolder
from rolegraph.traces.sinks import read_jsonl

PLAN_LOCAL = """\
rolegraph: 1
name: plan_local
models:
  default: {model: local, max_tokens: 160}
steps:
  plan: {role: planner, task: "Write 2 short research questions about LoRA."}
"""

REPO = Path(__file__).resolve().parents[2]
DEMO = "examples/literature_review.yaml"
"""The demo workflow, as the README's first command names it (from the repository's root)."""

PAUSE_S = 6
"""How long each of the two function steps takes: the window in which the worker node is killed."""


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalNodes]:
    """A head and a worker node on 127.0.0.1, one CPU each; stopped at the end whatever happened."""
    # Ray's socket paths must stay short: a temp folder of its own rather than pytest's deep one.
    folder = Path(tempfile.mkdtemp(prefix="rg-ray-", dir="/tmp"))
    nodes = LocalNodes(folder, count=2)
    try:
        yield nodes
    finally:
        nodes.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scripted review with two overlapping function steps of `PAUSE_S` seconds."""
    path = write_project(tmp_path_factory.mktemp("two-nodes") / "project")
    (path.parent / "ray_steps.py").write_text(
        (path.parent / "ray_steps.py").read_text().replace("asyncio.sleep(2)", f"asyncio.sleep({PAUSE_S})")
    )
    return path


@pytest.fixture(scope="module")
def local_run(project: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The run in this machine's one process: what every cluster run must equal."""
    proc = rolegraph(["run", str(project), "--json", "--quiet"], tmp_path_factory.mktemp("local"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary: dict[str, Any] = json.loads(proc.stdout)
    return summary


def on_cluster(
    args: list[str], home: Path, cluster: LocalNodes | None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The CLI, joined to the cluster (RAY_ADDRESS; None: in one process), with its own home."""
    environ = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return subprocess.run(
        [sys.executable, "-m", "rolegraph", *args],
        env={**environ, "ROLEGRAPH_HOME": str(home), **(cluster.env() if cluster else {})},
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
        cwd=cwd,
    )


def start(args: list[str], home: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """The CLI in the background, with its own home and the cluster's environment."""
    environ = {**os.environ, "ROLEGRAPH_HOME": str(home), **env}
    return subprocess.Popen(
        [sys.executable, "-m", "rolegraph", *args],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for_span(home: Path, found: Callable[[dict[str, Any]], bool], process: subprocess.Popen[str]) -> str:
    """Wait until the run's trace holds a record `found` accepts; the run's id."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1][-3000:]
        for trace in (home / "runs").glob("*/trace.jsonl"):
            if any(found(r) for r in read_jsonl(trace)):
                return trace.parent.name
        time.sleep(0.5)
    raise AssertionError("the run never got there")


def same_outputs(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Two run summaries have equal report, sources file and usage."""
    for name in ("report", "sources"):
        assert Path(a["outputs"][name]).read_text() == Path(b["outputs"][name]).read_text()
    assert a["usage"] == b["usage"]


def nodes_of(trace: Path) -> set[str]:
    """The nodes the run's steps ran on, as their spans say."""
    return {r["attributes"]["rolegraph.node"] for r in read_jsonl(trace) if "rolegraph.node" in r.get("attributes", {})}


class TestTwoNodes:
    def test_every_port_of_both_nodes_is_on_loopback(self, cluster: LocalNodes) -> None:
        """`ss -ltnp` lists the cluster's listening ports, and every one is on 127.0.0.1."""
        pids = cluster.pids()
        assert len(listeners(pids)) >= 6  # a GCS, and two servers per raylet at least: the check saw them
        assert off_loopback(pids) == []

    def test_a_run_uses_both_nodes_and_equals_the_local_run(
        self, cluster: LocalNodes, project: Path, local_run: dict[str, Any], tmp_path: Path
    ) -> None:
        """A run joining the cluster (RAY_ADDRESS) ran steps on both nodes and has the local run's outputs,
        sources, usage and trace; replaying it offline is identical."""
        proc = on_cluster(["run", str(project), "--json", "--quiet", "--executor", "ray"], tmp_path, cluster)
        assert proc.returncode == 0, proc.stderr[-3000:]
        summary = json.loads(proc.stdout)
        same_outputs(local_run, summary)
        assert trace_shape(Path(local_run["trace"])) == trace_shape(Path(summary["trace"]))
        assert len(nodes_of(Path(summary["trace"]))) == 2
        assert cluster.workers[0] in nodes_of(Path(summary["trace"]))

        replayed = rolegraph(["replay", summary["run_id"], "--json"], tmp_path)
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr[-3000:]
        assert json.loads(replayed.stdout)["differing_steps"] == []

    def test_a_ray_run_killed_resumes_on_the_cluster(
        self, cluster: LocalNodes, project: Path, local_run: dict[str, Any], tmp_path: Path
    ) -> None:
        """A run on the cluster whose driver is killed mid-run resumes (`resume --executor ray`) to the
        local run's outputs, without running its finished steps again."""
        process = start(["run", str(project), "--quiet", "--executor", "ray"], tmp_path, cluster.env())
        try:
            run_id = wait_for_span(
                tmp_path, lambda r: r.get("event") == "span_end" and r.get("name") == "plan research", process
            )
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
        resumed = on_cluster(["resume", run_id, "--json", "--quiet", "--executor", "ray"], tmp_path, cluster)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        summary = json.loads(resumed.stdout)
        same_outputs(local_run, summary)
        assert summary["resumed_steps"]  # the steps finished before the kill were not run again

    def test_a_batch_runs_its_lines_on_the_cluster(self, cluster: LocalNodes, project: Path, tmp_path: Path) -> None:
        """`rolegraph batch ... --executor ray`: each line is a run whose steps ran on the cluster's nodes."""
        inputs = tmp_path / "lines.jsonl"
        inputs.write_text('{"pauses": [1]}\n{"pauses": [2]}\n')
        args = ["batch", str(project), str(inputs), "--executor", "ray", "--concurrency", "2", "--json", "--quiet"]
        proc = on_cluster(args, tmp_path, cluster)
        assert proc.returncode == 0, proc.stderr[-3000:]
        lines = json.loads(proc.stdout)
        assert [(row["line"], row["status"]) for row in lines] == [(1, "completed"), (2, "completed")]
        for row in lines:
            assert nodes_of(tmp_path / "runs" / row["run_id"] / "trace.jsonl")

    def test_the_call_cache_answers_steps_run_on_the_cluster(
        self, cluster: LocalNodes, project: Path, tmp_path: Path
    ) -> None:
        """`--cache` on the cluster: the workers' model calls are kept in, and answered from, the driver's home's
        cache; two runs in a row save what two runs in one process save (the second makes no call), with the
        same outputs; a batch with `--cache` answers its line's calls from it too."""
        runs: dict[str, list[dict[str, Any]]] = {}
        for where, nodes in (("local", None), ("ray", cluster)):
            args = ["run", str(project), "--json", "--quiet", "--cache", *(["--executor", "ray"] if nodes else [])]
            runs[where] = []
            for _ in range(2):
                proc = on_cluster(args, tmp_path / where, nodes)
                assert proc.returncode == 0, proc.stderr[-3000:]
                runs[where].append(json.loads(proc.stdout))
        assert [r["cache"] for r in runs["ray"]] == [r["cache"] for r in runs["local"]]
        first, second = runs["ray"]
        assert second["cache"]["hits"] > first["cache"]["hits"]
        assert second["usage"] == {"input_tokens": 0, "output_tokens": 0}  # every call answered by the cache
        for name in ("report", "sources"):
            assert Path(second["outputs"][name]).read_text() == Path(runs["local"][0]["outputs"][name]).read_text()
        assert nodes_of(Path(second["trace"]))  # the cached steps ran on the cluster's workers
        stats = [on_cluster(["cache", "stats", "--json"], tmp_path / where, None) for where in ("local", "ray")]
        assert json.loads(stats[1].stdout)["entries"] == json.loads(stats[0].stdout)["entries"] > 0

        inputs = tmp_path / "lines.jsonl"
        inputs.write_text('{"pauses": [1]}\n')
        batch = ["batch", str(project), str(inputs), "--executor", "ray", "--cache", "--json", "--quiet"]
        proc = on_cluster(batch, tmp_path / "ray", cluster)
        assert proc.returncode == 0, proc.stderr[-3000:]
        [line] = json.loads(proc.stdout)
        summary = json.loads((tmp_path / "ray" / "runs" / line["run_id"] / "run.json").read_text())
        assert summary["cache"]["hits"] > 0

    def test_an_eval_spreads_its_runs_over_the_cluster_with_the_local_scores(
        self, cluster: LocalNodes, tmp_path: Path
    ) -> None:
        """`rolegraph eval ... --executor ray`: two models, two repeats; the runs' steps ran on both nodes, and
        every run's scores and the summary (wall time aside) equal the eval's in one process."""
        project = write_eval_project(tmp_path / "eval", {"good": GOOD, "thin": THIN})
        args = ["eval", str(project / "review.yaml"), str(project / "set.yaml"), "--json", "--concurrency", "2"]
        args += ["--model", "scripted:good.yaml", "--model", "scripted:thin.yaml", "--repeat", "2"]
        local = on_cluster(args, tmp_path / "local", None)
        assert local.returncode == 0, local.stderr[-3000:]
        remote = on_cluster([*args, "--executor", "ray"], tmp_path / "ray", cluster)
        assert remote.returncode == 0, remote.stderr[-3000:]
        a, b = json.loads(local.stdout), json.loads(remote.stdout)
        assert len(b["runs"]) == 4

        def timeless(table: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in table.items() if k != "wall_time_s"}

        def scores(report: dict[str, Any]) -> list[str]:
            rows = [[run["model"], run["repeat"], timeless(run["scores"])] for run in report["runs"]]
            summary = {model: timeless(table) for model, table in report["summary"].items()}
            return [*sorted(json.dumps(row, sort_keys=True) for row in rows), json.dumps(summary, sort_keys=True)]

        assert scores(a) == scores(b)
        traces = list((tmp_path / "ray" / "runs").glob("*/trace.jsonl"))
        assert len(traces) == 4
        assert set().union(*(nodes_of(trace) for trace in traces)) == {cluster.head, *cluster.workers}

    @pytest.mark.local_model
    def test_the_embedded_model_answers_on_the_cluster_as_in_one_process(
        self, cluster: LocalNodes, tmp_path: Path
    ) -> None:
        """A short run on SmolLM2 (fixed seed): on the cluster, where a node's actor holds the model, the step's
        output and tokens equal those of the run in one process."""
        path = tmp_path / "plan.yaml"
        path.write_text(PLAN_LOCAL)
        local = rolegraph(["run", str(path), "--json", "--quiet"], tmp_path / "local")
        assert local.returncode == 0, local.stderr[-3000:]
        remote = on_cluster(["run", str(path), "--json", "--quiet", "--executor", "ray"], tmp_path / "ray", cluster)
        assert remote.returncode == 0, remote.stderr[-3000:]
        a, b = json.loads(local.stdout), json.loads(remote.stdout)
        plans = [RunFolder(Path(s["trace"]).parent).step_states()["plan"] for s in (a, b)]
        assert plans[0]["output"] == plans[1]["output"] and plans[0]["output"]["questions"]
        assert a["usage"] == b["usage"]
        assert nodes_of(Path(b["trace"]))  # the step ran on a node of the cluster

    @pytest.mark.local_model
    def test_the_demo_workflow_runs_unchanged_on_the_cluster(self, cluster: LocalNodes, tmp_path: Path) -> None:
        """`rolegraph run examples/literature_review.yaml` as the README's first command runs it (embedded
        model, bundled library, offline), with `--executor ray` on the cluster: one trace, every step on a
        node of the cluster, and the in-process run's outputs, sources, usage and trace. (Which nodes Ray
        picks is its scheduler's choice: in CI it once kept every step on the head node; steps spread over
        both nodes is what `test_a_run_uses_both_nodes_and_equals_the_local_run` pins, with overlapping steps.)"""
        local = on_cluster(["run", DEMO, "--json", "--quiet"], tmp_path / "local", None, cwd=REPO)
        assert local.returncode == 0, local.stderr[-3000:]
        args = ["run", DEMO, "--json", "--quiet", "--executor", "ray"]
        remote = on_cluster(args, tmp_path / "ray", cluster, cwd=REPO)
        assert remote.returncode == 0, remote.stderr[-3000:]
        a, b = json.loads(local.stdout), json.loads(remote.stdout)
        assert set(a["outputs"]) == set(b["outputs"]) and a["outputs"]
        for name in a["outputs"]:
            assert Path(a["outputs"][name]).read_text() == Path(b["outputs"][name]).read_text(), name
        assert a["usage"] == b["usage"] and a["steps"] == b["steps"]
        trace = Path(b["trace"])
        assert list((tmp_path / "ray" / "runs").glob("*/trace.jsonl")) == [trace]
        spans = [r for r in read_jsonl(trace) if r.get("event") == "span_end"]
        assert len({r["run_id"] for r in spans}) == 1
        assert [r["name"] for r in spans if not r["parent_id"]] == ["invoke_workflow literature_review"]
        assert trace_shape(Path(a["trace"])) == trace_shape(trace)
        assert nodes_of(trace) and nodes_of(trace) <= {*cluster.workers, cluster.head}

    def test_losing_the_worker_node_mid_run_keeps_the_outputs(
        self, cluster: LocalNodes, project: Path, local_run: dict[str, Any], tmp_path: Path
    ) -> None:
        """Killing the worker node while a step runs on it: Ray reruns the step on the head node and the
        run completes with the local run's outputs (this test ends the worker node: it runs last)."""
        process = start(["run", str(project), "--json", "--quiet", "--executor", "ray"], tmp_path, cluster.env())
        try:
            wait_for_span(
                tmp_path,
                lambda r: (
                    r.get("event") == "span_start"
                    and "ray_steps:pause" in r.get("name", "")
                    and r.get("attributes", {}).get("rolegraph.node") == cluster.workers[0]
                ),
                process,
            )
            cluster.kill_worker()
            stdout, stderr = process.communicate(timeout=900)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.communicate()
        assert process.returncode == 0, stderr[-3000:]
        summary = json.loads(stdout)
        same_outputs(local_run, summary)
        pauses = [
            r
            for r in read_jsonl(Path(summary["trace"]))
            if r.get("event") == "span_end" and "ray_steps:pause" in r.get("name", "")
        ]
        # Both pauses ended, on the head: the one killed on the worker was run again there.
        assert [r["attributes"]["rolegraph.node"] == cluster.workers[0] for r in pauses] == [False, False]
