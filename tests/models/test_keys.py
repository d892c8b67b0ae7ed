"""Keys like the course: asked for once in a terminal or notebook, kept in memory only; else a named error, exit 2."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from rolegraph.models import keys
from rolegraph.models.keys import NO_PROMPT_ENV_VAR, MissingKeyError, api_key, can_prompt
from rolegraph.models.registry import resolve_model
from rolegraph.testing import FaultRequest, FaultServer, Status
from rolegraph.traces.redact import REDACTED, Redactor

TYPED = "sk-typed-canary-5e6f7a8b9c0d1e2f3a4b5c6d"

WORKFLOW = """
rolegraph: 1
name: keyed
models: {default: "openai:gpt-4o-mini"}
roles:
  noter:
    instructions: Take a note.
    output: {note: string}
steps:
  note: {role: noter, task: "Note the key."}
outputs:
  note: {path: note.json, render: json, from: note}
"""


@pytest.fixture(autouse=True)
def no_keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No key in the environment and none typed before; what a test types is forgotten after it."""
    for name in ("OPENAI_API_KEY", "HF_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(NO_PROMPT_ENV_VAR, raising=False)
    keys.forget_keys()
    yield
    keys.forget_keys()


def answer_with_the_key(request: FaultRequest) -> Status:
    """A Responses answer whose note repeats the key the request carried (a model leaking it)."""
    key = request.headers.get("authorization", "").removeprefix("Bearer ")
    final = json.dumps({"thought": "noted", "answer": {"note": f"the key is {key}"}})
    message = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": final}]}
    return Status(200, body={"status": "completed", "model": "gpt-4o-mini", "output": [message]})


class TestWithoutATerminal:
    def test_a_missing_key_names_the_variable(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """No terminal (or prompting switched off): MissingKeyError naming OPENAI_API_KEY, nothing asked."""
        monkeypatch.setattr(keys, "can_prompt", lambda: False)
        with pytest.raises(MissingKeyError, match="set the OPENAI_API_KEY environment variable") as caught:
            resolve_model("openai:gpt-4o-mini")
        assert caught.value.variable == "OPENAI_API_KEY"

    def test_the_cli_exits_2_naming_the_variable(self, tmp_path: Path) -> None:
        """`rolegraph run` with stdin not a terminal and no key: exit 2, OPENAI_API_KEY named, no run folder."""
        (tmp_path / "wf.yaml").write_text(WORKFLOW, encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", NO_PROMPT_ENV_VAR)}
        env["ROLEGRAPH_HOME"] = str(tmp_path / "home")
        done = subprocess.run(
            [sys.executable, "-m", "rolegraph", "run", "wf.yaml"],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 2, done.stderr
        assert "OPENAI_API_KEY" in done.stderr
        assert not (tmp_path / "home" / "runs").exists()

    def test_prompting_can_be_switched_off(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """ROLEGRAPH_NO_PROMPT=1 means no prompt even where one could be shown (a notebook here)."""
        monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
        monkeypatch.delenv(NO_PROMPT_ENV_VAR, raising=False)
        assert can_prompt()
        monkeypatch.setenv(NO_PROMPT_ENV_VAR, "1")
        assert not can_prompt()


class TestAsked:
    def test_asked_once_per_process_and_redacted_everywhere(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Two models needing the key ask once; the key stays out of os.environ and every redactor hides it."""
        asked: list[str] = []

        def typing(prompt: str) -> str:
            asked.append(prompt)
            return TYPED

        earlier = Redactor.from_env()  # made before the key was typed, as a run's tracer is
        monkeypatch.setattr(keys, "can_prompt", lambda: True)
        monkeypatch.setattr(keys.getpass, "getpass", typing)
        assert api_key("OPENAI_API_KEY", required=True, purpose="model openai:a") == TYPED
        assert api_key("OPENAI_API_KEY", required=True, purpose="model openai:b") == TYPED
        assert len(asked) == 1 and "OPENAI_API_KEY" in asked[0] and "memory" in asked[0]
        assert "OPENAI_API_KEY" not in os.environ
        assert earlier.text(f"key={TYPED}") == f"key={REDACTED}"
        assert Redactor.from_env().text(TYPED) == REDACTED

    def test_an_empty_answer_is_a_missing_key(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Pressing Enter at the prompt gives the same named error as no terminal."""
        monkeypatch.setattr(keys, "can_prompt", lambda: True)
        monkeypatch.setattr(keys.getpass, "getpass", lambda _prompt: "  ")
        with pytest.raises(MissingKeyError, match="OPENAI_API_KEY"):
            api_key("OPENAI_API_KEY", required=True, purpose="model openai:a")

    def test_a_notebook_can_be_asked(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """In a Jupyter kernel (ipykernel loaded) a key can be asked for though stdin is no terminal."""
        monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
        monkeypatch.delenv(NO_PROMPT_ENV_VAR, raising=False)
        assert not sys.stdin.isatty() and can_prompt()


def run_in_a_terminal(command: list[str], cwd: Path, env: dict[str, str], answer: str) -> tuple[int, str]:
    """Run `command` with a pseudo-terminal as stdin, stdout and stderr; type `answer` at the key prompt."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdin=terminal, stdout=terminal, stderr=terminal, start_new_session=True
    )
    os.close(terminal)
    screen = b""
    typed = False
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 1.0)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the child closed the terminal: it has ended
                break
            if not chunk:
                break
            screen += chunk
            if not typed and b"OPENAI_API_KEY" in screen and b"memory" in screen:
                os.write(controller, answer.encode() + b"\n")
                typed = True
    finally:
        code = process.wait(timeout=60)
        os.close(controller)
    return code, screen.decode("utf-8", "replace")


class TestInATerminal:
    def test_the_prompted_key_is_used_and_leaves_no_trace(self, tmp_path: Path) -> None:
        """In a pty, `rolegraph run` asks for the key, sends it, and no file of the run home nor the screen has it."""
        (tmp_path / "wf.yaml").write_text(WORKFLOW, encoding="utf-8")
        home = tmp_path / "home"
        with FaultServer([answer_with_the_key]) as server:
            env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", NO_PROMPT_ENV_VAR)}
            env |= {"ROLEGRAPH_HOME": str(home), "OPENAI_BASE_URL": server.url, "COLUMNS": "200"}
            code, screen = run_in_a_terminal(
                [sys.executable, "-m", "rolegraph", "run", "wf.yaml", "--json"], tmp_path, env, TYPED
            )
        assert code == 0, screen
        assert "OPENAI_API_KEY for model openai:gpt-4o-mini" in screen
        assert server.requests[0].headers["authorization"] == f"Bearer {TYPED}"  # the typed key went out
        (run_dir,) = (home / "runs").iterdir()
        assert json.loads((run_dir / "note.json").read_text())["note"] == f"the key is {REDACTED}"
        leaks = [str(p.relative_to(home)) for p in home.rglob("*") if p.is_file() and TYPED.encode() in p.read_bytes()]
        assert leaks == []
        assert TYPED not in screen  # getpass does not echo it, and nothing printed it
        assert screen.count("OPENAI_API_KEY for") == 1
