"""The canary scan: with canary secrets in the environment, nothing a run leaves behind contains them.

Scripted workflows run through the CLI in a subprocess with ``OPENAI_API_KEY`` and
``HF_TOKEN`` set to canary values. The runs are built to leak: a tool returns the key
in its observation, a tool raises with both secrets in its message, a model repeats
the key in its answer (with the model-call cache on, so the answers are kept), and a
model server answers 401 and 500 echoing the ``Authorization`` header. Then every byte
under ``ROLEGRAPH_HOME`` (traces, run summaries, step checkpoints, outputs, the run
index, the model-call cache) and everything the commands printed is searched for the
canaries.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

from rolegraph.testing import FaultRequest, FaultServer, Status

OPENAI_CANARY = "sk-canary-7f3a9c1e5b2d4680aa11bb22cc33dd44"
HF_CANARY = "hf_canaryQ7w8e9r0t1y2u3i4o5p6a7s8d9"
CANARIES = (OPENAI_CANARY, HF_CANARY)

TOOLS = '''
import os

from rolegraph import tool


@tool
def read_config(name: str) -> str:
    """Read a configuration value."""
    return f"{name} = {os.environ['OPENAI_API_KEY']}"


@tool
def call_service(query: str) -> str:
    """Call the upstream service."""
    raise RuntimeError(
        f"upstream refused token {os.environ['HF_TOKEN']} "
        f"(Authorization: Bearer {os.environ['OPENAI_API_KEY']})"
    )
'''


def workflow(model: str, *, fail_fast: bool = False) -> str:
    return textwrap.dedent(
        f"""
        rolegraph: 1
        name: leaky
        models: {{default: {model}}}
        roles:
          worker:
            instructions: Work.
            tools: ["leaky_tools:read_config", "leaky_tools:call_service"]
            output: {{note: string}}
        steps:
          work: {{role: worker, task: "Configure the service."}}
          explain: {{role: worker, task: "Explain {{{{ steps.work.note }}}}.", depends_on: [work]}}
        outputs:
          note: {{path: note.json, render: json, from: work}}
          text: {{path: note.md, render: template, template: "{{{{ steps.work.note }}}}"}}
        settings: {{fail_fast: {str(fail_fast).lower()}}}
        """
    )


def project(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "leaky_tools.py").write_text(TOOLS)
    script = [
        {"tool": "read_config", "args": {"name": "api_key"}, "thought": "look at the config"},
        {"tool": "call_service", "args": {"query": "status"}, "thought": "call it"},
        {"final": {"note": f"the key is {OPENAI_CANARY} and the token {HF_CANARY}"}, "thought": "report"},
        # explain: an invalid answer, twice, so the step fails with AgentError after its repair
        {"text": f"not JSON, but the key {OPENAI_CANARY}"},
        {"text": f"still not JSON {HF_CANARY}"},
        {"text": f"never JSON {OPENAI_CANARY}"},
        {"text": "and again"},
        {"text": "and again"},
        {"text": "and again"},
    ]
    (folder / "script.yaml").write_text(yaml.safe_dump(script, sort_keys=False))
    (folder / "scripted.yaml").write_text(workflow('"scripted:script.yaml"'))
    return folder


def cli(home: Path, cwd: Path, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ROLEGRAPH_HOME": str(home),
        "OPENAI_API_KEY": OPENAI_CANARY,
        "HF_TOKEN": HF_CANARY,
        "COLUMNS": "250",
        **extra_env,
    }
    command = [sys.executable, "-m", "rolegraph", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


def hits(home: Path, outputs: list[str]) -> list[str]:
    """Where a canary appears: files under `home` (as bytes, so binary files count) and command outputs."""
    found = []
    for path in sorted(p for p in home.rglob("*") if p.is_file()):
        data = path.read_bytes()
        found += [f"{path.relative_to(home)}: {c[:12]}..." for c in CANARIES if c.encode() in data]
    for number, text in enumerate(outputs):
        found += [f"command output {number}: {c[:12]}..." for c in CANARIES if c in text]
    return found


def echo_authorization(status: int) -> object:
    def answer(request: FaultRequest) -> Status:
        header = request.headers.get("authorization", "")
        return Status(status, body={"error": {"message": f"invalid credentials in header Authorization: {header}"}})

    return answer


class TestCanaryScan:
    def test_no_secret_survives_a_leaky_run(self, tmp_path: Path) -> None:
        """Runs that leak on purpose (tools, model output, a 401 and a 500 echoing the header) leave no canary."""
        home = tmp_path / "home"
        folder = project(tmp_path / "project")
        outputs: list[str] = []

        scripted = cli(home, folder, "run", "scripted.yaml", "--json", "--cache")
        outputs += [scripted.stdout, scripted.stderr]
        assert scripted.returncode == 1, scripted.stderr  # `explain` fails after its repairs
        summary = json.loads(scripted.stdout[: scripted.stdout.rindex("}") + 1])
        assert summary["steps"] == {"work": "completed", "explain": "failed"}
        stats = cli(home, folder, "cache", "stats", "--json")
        outputs += [stats.stdout, stats.stderr]
        assert json.loads(stats.stdout)["entries"] >= 5  # the answers that repeat the key were kept, redacted

        for status, variable_named in ((401, True), (500, False)):
            with FaultServer([echo_authorization(status)] * 8) as server:
                model = f'"openai-compatible:m@{server.url}"'
                (folder / "refused.yaml").write_text(workflow(model))
                refused = cli(home, folder, "run", "refused.yaml")
                outputs += [refused.stdout, refused.stderr]
            assert refused.returncode == 1
            assert server.requests[0].headers["authorization"] == f"Bearer {OPENAI_CANARY}"  # the key went out
            assert f"HTTP {status}" in refused.stderr
            assert ("OPENAI_API_KEY" in refused.stderr) is variable_named
            assert "[REDACTED]" in refused.stderr or variable_named

        run_ids = sorted(p.name for p in (home / "runs").iterdir())
        assert len(run_ids) == 3
        for run_id in run_ids:
            for command in (
                ["trace", "show", run_id, "--tools", "--messages", "--thoughts", "--json"],
                ["trace", "show", run_id, "--tools", "--messages", "--thoughts"],
                ["trace", "export", run_id],
            ):
                shown = cli(home, folder, *command)
                assert shown.returncode == 0, shown.stderr
                outputs += [shown.stdout, shown.stderr]
        listed = cli(home, folder, "runs")
        outputs += [listed.stdout, listed.stderr]

        checkpoints = list(home.rglob("steps.jsonl"))
        assert checkpoints and any(c.stat().st_size for c in checkpoints), "the completed step left a line to scan"
        assert (home / "runs" / run_ids[0] / "note.json").exists() or (
            home / "runs" / run_ids[1] / "note.json"
        ).exists()
        assert hits(home, outputs) == []

    def test_no_secret_survives_a_kill_and_resumes(self, tmp_path: Path) -> None:
        """Killed after its second recorded call, then resumed twice, the leaky run leaves no canary anywhere."""
        home = tmp_path / "home"
        folder = project(tmp_path / "project")
        outputs: list[str] = []

        killed = cli(home, folder, "run", "scripted.yaml", ROLEGRAPH_KILL_AT="journal:2")
        outputs += [killed.stdout, killed.stderr]
        assert killed.returncode == -9, killed.stderr  # SIGKILL: the journal holds the key-bearing tool result
        (run_id,) = [p.name for p in (home / "runs").iterdir()]

        resumed = cli(home, folder, "resume", run_id, "--json")
        outputs += [resumed.stdout, resumed.stderr]
        assert resumed.returncode == 1, resumed.stderr  # `explain` still fails after its repairs
        summary = json.loads(resumed.stdout[: resumed.stdout.rindex("}") + 1])
        assert summary["steps"] == {"work": "completed", "explain": "failed"}
        assert "work" in summary["executed_steps"]  # cut off mid-step: finished from its recorded calls

        again = cli(home, folder, "resume", run_id)  # a failed run: its failed step runs again
        outputs += [again.stdout, again.stderr]
        shown = cli(home, folder, "trace", "show", run_id, "--tools", "--messages", "--thoughts", "--json")
        outputs += [shown.stdout, shown.stderr]
        assert (home / "runs" / run_id / "run.sqlite").is_file()
        assert hits(home, outputs) == []

    def test_no_secret_survives_a_resume_after_an_edit(self, tmp_path: Path) -> None:
        """The failed step's task edited, resume --force sends its calls again (the answers that leaked the key
        become superseded records): it completes, reports the calls sent again, and no canary is left anywhere."""
        home = tmp_path / "home"
        folder = project(tmp_path / "project")
        script = yaml.safe_load((folder / "script.yaml").read_text())  # explain fails on its invalid answers
        script.append({"final": {"note": f"explained, with {OPENAI_CANARY}"}, "thought": f"token {HF_CANARY}"})
        (folder / "script.yaml").write_text(yaml.safe_dump(script, sort_keys=False))
        outputs: list[str] = []

        failed = cli(home, folder, "run", "scripted.yaml", "--json")
        outputs += [failed.stdout, failed.stderr]
        assert failed.returncode == 1, failed.stderr
        run_id = json.loads(failed.stdout[: failed.stdout.rindex("}") + 1])["run_id"]
        text = (folder / "scripted.yaml").read_text()
        (folder / "scripted.yaml").write_text(text.replace('task: "Explain ', 'task: "Explain briefly '))

        resumed = cli(home, folder, "resume", run_id, "--force", "--json")
        outputs += [resumed.stdout, resumed.stderr]
        assert resumed.returncode == 0, resumed.stderr
        summary = json.loads(resumed.stdout[: resumed.stdout.rindex("}") + 1])
        assert summary["steps"] == {"work": "completed", "explain": "completed"}
        assert (summary["replayed_calls"], summary["resent_calls"]) == (0, 1)
        assert re.search(r"calls +0 replayed, 1 re-sent \(request changed\)", resumed.stderr), resumed.stderr
        for command in (["trace", "show", run_id, "--messages", "--json"], ["trace", "export", run_id], ["runs"]):
            shown = cli(home, folder, *command)
            assert shown.returncode == 0, shown.stderr
            outputs += [shown.stdout, shown.stderr]
        assert hits(home, outputs) == []
