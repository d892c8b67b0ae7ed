"""The Ray executor on a real local Ray cluster: one trace, the same outputs as a local run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from durable_projects import LOOP, write_loop_project
from moderation_wire import moderation_body
from rolegraph.durability.store import RunStore
from rolegraph.runtime.executor import LocalExecutor
from rolegraph.testing import FaultServer, Status
from rolegraph.traces.sinks import read_jsonl
from rolegraph.workflow import Workflow

PLACEMENT = {"rolegraph.node", "rolegraph.host", "rolegraph.worker"}

PAUSE = '''\
"""A function step that takes a moment, so that two of them overlap and need both nodes."""

import asyncio


async def pause(n: int) -> dict:
    await asyncio.sleep(2)
    return {"n": n}
'''

PAUSE_STEP = """\
  pause:
    function: ray_steps:pause
    for_each: {items: inputs.pauses, as: n, max_concurrency: 2}
    args: {n: "{{ n }}"}
"""


def write_project(folder: Path) -> Path:
    """The looping scripted review, plus two overlapping function steps; returns the workflow file."""
    path = write_loop_project(folder)
    text = LOOP.replace("settings: {max_concurrency: 1}", "settings: {max_concurrency: 2}")
    text = text.replace("outputs:", PAUSE_STEP + "outputs:")
    text = text.replace("name: durable\n", "name: durable\ninputs:\n  pauses: {type: list, default: [1, 2]}\n")
    path.write_text(text)
    (folder / "ray_steps.py").write_text(PAUSE)
    return path


def rolegraph(args: list[str], home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a subprocess with its own home."""
    environ = {**os.environ, "ROLEGRAPH_HOME": str(home), "RAY_USAGE_STATS_ENABLED": "0", **env}
    environ.pop("RAY_ADDRESS", None)
    return subprocess.run(
        [sys.executable, "-m", "rolegraph", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def trace_shape(path: Path) -> list[str]:
    """A trace's finished spans as comparable rows: the chain of kinds and names up to the root, the
    status and the attributes (ids, times and placement left out)."""
    ended = [r for r in read_jsonl(path) if r.get("event") == "span_end"]
    by_id = {r["span_id"]: r for r in ended}

    def chain(record: dict[str, Any] | None) -> str:
        names: list[str] = []
        while record is not None:
            names.append(f"{record['kind']}:{record['name']}")
            record = by_id.get(record["parent_id"]) if record["parent_id"] else None
        return "/".join(reversed(names))

    rows = []
    for record in ended:
        attributes = {k: v for k, v in record["attributes"].items() if k not in PLACEMENT}
        rows.append(json.dumps([chain(record), record["status"], attributes], sort_keys=True, default=str))
    return sorted(rows)


class TestRayExecutor:
    def test_a_run_on_ray_has_one_trace_and_the_local_outputs(self, tmp_path: Path) -> None:
        """The same workflow run locally and with --executor ray (a local cluster the run starts): equal
        outputs, sources and trace (parents included); the workers' spans name their node and worker."""
        path = write_project(tmp_path / "project")
        local = rolegraph(["run", str(path), "--json", "--quiet"], tmp_path / "local")
        assert local.returncode == 0, local.stderr[-3000:]
        on_ray = rolegraph(["run", str(path), "--json", "--quiet", "--executor", "ray"], tmp_path / "ray")
        assert on_ray.returncode == 0, on_ray.stderr[-3000:]
        a, b = json.loads(local.stdout), json.loads(on_ray.stdout)
        for name in ("report", "sources"):
            assert Path(a["outputs"][name]).read_text() == Path(b["outputs"][name]).read_text()
        assert a["usage"] == b["usage"]
        assert trace_shape(Path(a["trace"])) == trace_shape(Path(b["trace"]))

        records = read_jsonl(Path(b["trace"]))
        remote = [r for r in records if "rolegraph.node" in r.get("attributes", {})]
        assert {r["kind"] for r in remote} >= {"invoke_agent", "chat", "execute_tool"}
        assert all(r["attributes"]["rolegraph.worker"] for r in remote)
        pauses = {r["attributes"]["rolegraph.worker"] for r in remote if "ray_steps:pause" in r["name"]}
        assert len(pauses) == 2, pauses  # the two overlapping pauses ran in two worker processes

    def test_a_local_cluster_listens_on_loopback_only(self, tmp_path: Path) -> None:
        """The local cluster `--executor ray` starts: every port its processes open, as `ss -ltnp` lists
        them, is on 127.0.0.1 (nothing of Ray's patched to get there)."""
        script = (
            "import json, os, sys; sys.path.insert(0, sys.argv[1]);"
            "from ray_nodes import descendants, listeners, off_loopback;"
            "from rolegraph.distributed.cluster import connect; connect();"
            "pids = descendants(os.getpid());"
            "print(json.dumps([len(listeners(pids)), off_loopback(pids)]));"
            "import ray; ray.shutdown()"
        )
        environ = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        proc = subprocess.run(
            [sys.executable, "-c", script, str(Path(__file__).parent)],
            env={**environ, "ROLEGRAPH_HOME": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        count, outside = json.loads(proc.stdout.strip().splitlines()[-1])
        assert count >= 3  # the GCS and the raylet's two servers at least: the check saw them
        assert outside == []


class TestChoosingTheExecutor:
    def test_ray_missing_says_how_to_install_it(self, tmp_path: Path) -> None:
        """Without Ray, --executor ray exits 2 with the pip command and no traceback."""
        path = write_loop_project(tmp_path / "project")
        script = "import sys; sys.modules['ray'] = None; from rolegraph.cli import main; main()"
        proc = subprocess.run(
            [sys.executable, "-c", script, "run", str(path), "--executor", "ray"],
            env={**os.environ, "ROLEGRAPH_HOME": str(tmp_path / "home"), "COLUMNS": "250"},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 2, proc.stderr
        assert "pip install 'rolegraph[ray]'" in proc.stderr
        assert "Traceback" not in proc.stderr

    def test_settings_executor_ray_without_ray_says_how_to_install_it(self, tmp_path: Path) -> None:
        """`settings.executor: ray` is honoured: without Ray the run exits 2 with the pip command."""
        path = write_loop_project(tmp_path / "project")
        path.write_text(path.read_text().replace("{max_concurrency: 1}", "{max_concurrency: 1, executor: ray}"))
        script = "import sys; sys.modules['ray'] = None; from rolegraph.cli import main; main()"
        proc = subprocess.run(
            [sys.executable, "-c", script, "run", str(path)],
            env={**os.environ, "ROLEGRAPH_HOME": str(tmp_path / "home"), "COLUMNS": "250"},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 2, proc.stderr
        assert "pip install 'rolegraph[ray]'" in proc.stderr

    def test_the_command_line_replaces_settings_executor(self, tmp_path: Path) -> None:
        """`--executor local` runs a workflow whose settings say ray in this process: no span names a node."""
        path = write_loop_project(tmp_path / "project")
        path.write_text(path.read_text().replace("{max_concurrency: 1}", "{max_concurrency: 1, executor: ray}"))
        proc = rolegraph(["run", str(path), "--json", "--quiet", "--executor", "local"], tmp_path / "home")
        assert proc.returncode == 0, proc.stderr[-3000:]
        records = read_jsonl(Path(json.loads(proc.stdout)["trace"]))
        assert [r for r in records if "rolegraph.node" in r.get("attributes", {})] == []
        assert {r["kind"] for r in records if r.get("event") == "span_end"} >= {"invoke_agent", "chat"}

    def test_a_bad_settings_executor_is_named_at_its_line(self, tmp_path: Path) -> None:
        """`settings.executor: spark` exits 2 naming the file, line and field and the executors there are."""
        path = write_loop_project(tmp_path / "project")
        text = path.read_text().replace("{max_concurrency: 1}", "{max_concurrency: 1, executor: spark}")
        path.write_text(text)
        line = text.splitlines().index("settings: {max_concurrency: 1, executor: spark}") + 1
        proc = rolegraph(["run", str(path)], tmp_path / "home", COLUMNS="250")
        assert proc.returncode == 2, proc.stderr
        assert f"{path.name}:{line}:" in proc.stderr
        assert "settings.executor" in proc.stderr
        assert "local, ray or ray://host:port" in proc.stderr

    def test_the_python_api_takes_a_name_a_factory_or_the_settings(self, tmp_path: Path) -> None:
        """`Workflow.executor`: None gives settings.executor's, a name its own, a factory itself; a bad name raises."""
        wf = Workflow.load(write_loop_project(tmp_path / "project"))
        assert wf.executor() == LocalExecutor.for_run
        assert wf.executor("local") == LocalExecutor.for_run
        assert wf.executor(LocalExecutor.for_run) == LocalExecutor.for_run
        with pytest.raises(ValueError, match="local, ray or ray://host:port"):
            wf.executor("ray:/head")

    def test_an_unknown_executor_is_refused(self, tmp_path: Path) -> None:
        """--executor spark exits 2 naming the executors there are."""
        path = write_loop_project(tmp_path / "project")
        proc = rolegraph(["run", str(path), "--executor", "spark"], tmp_path / "home", COLUMNS="250")
        assert proc.returncode == 2
        assert "local, ray or ray://host:port" in proc.stderr


JUDGED = """\
rolegraph: 1
name: judged
models: {default: 'scripted:model.yaml', judge: 'scripted:judge.yaml'}
roles:
  scout:
    instructions: Answer.
    output: {notes: string}
steps:
  a: {role: scout, task: t, max_steps: 1}
"""


def journal(run_dir: Path) -> list[tuple[str, str, str | None, int]]:
    store = RunStore.open_existing(run_dir, read_only=True)
    try:
        return [(e.call_id, e.kind, e.model, e.input_tokens) for e in store.entries()]
    finally:
        store.close()


class TestChecksOnRay:
    def test_a_checks_calls_are_journaled_from_the_workers(self, tmp_path: Path) -> None:
        """A judge's and moderation's (on loopback) calls made on Ray workers are recorded in the run's journal as
        a local run records them (same ids, models and tokens), and the run's usage counts them alike."""
        import yaml

        folder = tmp_path / "project"
        folder.mkdir()
        (folder / "model.yaml").write_text(
            yaml.safe_dump([{"final": {"notes": "Old people hate phones."}}, {"final": {"notes": "Fine."}}])
        )
        verdicts = [{"text": '{"verdict": "fail", "reason": "age"}'}, {"text": '{"verdict": "pass", "reason": "ok"}'}]
        (folder / "judge.yaml").write_text(yaml.safe_dump(verdicts))
        with FaultServer([Status(200, body=moderation_body(False))] * 4) as server:
            spec = yaml.safe_load(JUDGED)
            spec["roles"]["scout"]["checks"] = [
                {"judge": {"model": "judge", "prompt": "No stereotypes."}},
                {"moderation": {"base_url": server.url}},
            ]
            path = folder / "wf.yaml"
            path.write_text(yaml.safe_dump(spec, sort_keys=False))
            local = rolegraph(["run", str(path), "--json", "--quiet"], tmp_path / "local")
            assert local.returncode == 0, local.stderr[-3000:]
            on_ray = rolegraph(["run", str(path), "--json", "--quiet", "--executor", "ray"], tmp_path / "ray")
            assert on_ray.returncode == 0, on_ray.stderr[-3000:]
        a, b = json.loads(local.stdout), json.loads(on_ray.stdout)
        assert a["usage"] == b["usage"]
        recorded = journal(Path(b["trace"]).parent)
        assert recorded == journal(Path(a["trace"]).parent)
        assert [(c, k) for c, k, _, _ in recorded if k == "check"] == [
            ("a#1/check/1/0", "check"),
            ("a#1/check/1/1", "check"),
            ("a#1/check/2/0", "check"),
            ("a#1/check/2/1", "check"),
        ]
        assert len(server.requests) == 4
