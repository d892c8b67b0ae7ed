"""Tool and function steps: outputs, sources citable downstream, trace spans, budgets, failures, resume, replay."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

import rolegraph
from durable_projects import edit, outputs_of, run_in_process, trace_lines
from projects import isolated_home
from rolegraph.durability.replay import replay
from rolegraph.durability.store import RunStore
from rolegraph.layout import RunFolder
from rolegraph.runtime.result import RunResult
from rolegraph.traces.sinks import read_jsonl
from rolegraph.workflows.spec import Budget
from step_projects import STEP_CALLS, write_steps_project


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolated_home(tmp_path, monkeypatch)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_steps_project(tmp_path / "project")


@pytest.fixture
async def finished(project: Path) -> RunResult:
    result = await rolegraph.load(project).run()
    assert result.status == "completed", result.error
    return result


def calls_of(result: RunResult, step: str) -> list[Any]:
    """The execute_tool spans of one step, by item."""
    spans = [s for s in result.trace.walk() if s.kind == "execute_tool" and s.attributes["rolegraph.step.id"] == step]
    return sorted(spans, key=lambda s: s.attributes["rolegraph.step.item"] or 0)


class TestToolSteps:
    async def test_output_is_the_tools_result_and_sources(self, finished: RunResult) -> None:
        """A tool step's output holds its validated args, the observation, the structured data and source ids."""
        find = finished.step_outputs["find"]
        assert find["args"] == {"query": "adapters", "max_results": 2}
        assert [hit["id"] for hit in find["data"]] == find["sources"] == ["alpha2020"]
        assert find["content"].startswith("[alpha2020] Paper alpha2020")

    async def test_for_each_tool_step_gives_one_output_per_item(self, finished: RunResult) -> None:
        """A tool step fanned out over a list calls the tool once per item, each with its rendered args."""
        each = finished.step_outputs["each"]
        assert [(e["args"]["query"], e["sources"]) for e in each] == [
            ("low-rank update", ["beta2021"]),
            ("prefix vectors", ["gamma2022"]),
        ]

    async def test_sources_are_registered_and_citable_downstream(self, finished: RunResult) -> None:
        """Sources found by tool and function steps are in the run's registry; the writer cites them, all resolve."""
        assert [s.id for s in finished.sources] == ["alpha2020", "beta2021", "gamma2022", "note1"]
        assert (finished.citations.total, finished.citations.unresolved) == (3, 0)
        report = finished.outputs["report"].read_text()
        assert "`note1`" in report and "`beta2021`" in report

    async def test_each_call_is_an_execute_tool_span_of_its_step(self, finished: RunResult) -> None:
        """Each tool or function call is one execute_tool span carrying its step, item and call id; no model call."""
        each = calls_of(finished, "each")
        assert [(s.name, s.attributes["rolegraph.step.item"], s.attributes["rolegraph.call.id"]) for s in each] == [
            ("execute_tool library_search", 0, "each[0]#1/tool/0/0"),
            ("execute_tool library_search", 1, "each[1]#1/tool/0/0"),
        ]
        (tally,) = calls_of(finished, "tally")
        assert (tally.kind, tally.name, tally.attributes["rolegraph.step.kind"]) == (
            "execute_tool",
            "execute_tool function my_steps:count_hits",
            "function",
        )
        assert tally.attributes["rolegraph.tool.is_error"] is False
        agents = [s.attributes["rolegraph.step.id"] for s in finished.trace.walk() if s.kind == "invoke_agent"]
        assert agents == ["write"]  # only the writer called a model

    async def test_tool_calls_are_counted_per_step(self, finished: RunResult) -> None:
        """Each tool or function call counts as one tool call of its step (a for_each step: one per item)."""
        calls = {step: state.tool_calls for step, state in finished.steps.items()}
        assert calls == {"find": 1, "each": 2, "tally": 1, "remark": 1, "loud": 1, "write": 0}

    async def test_arguments_that_do_not_fit_fail_the_step(self, tmp_path: Path) -> None:
        """Args the tool does not take fail the step with a message naming the step, the tool and the field."""
        path = write_steps_project(tmp_path / "bad")
        edit(path, 'args: {query: "{{ inputs.topic }}", max_results: 2}', 'args: {query: "x", max_results: 99}')
        result = await rolegraph.load(path).run()
        assert result.status == "failed"
        error = result.steps["find"].error or ""
        assert "step 'find': the arguments do not fit library_search" in error and "args.max_results" in error


class TestFunctionSteps:
    async def test_mapping_is_validated_against_output(self, finished: RunResult) -> None:
        """A function's mapping is the step's output, checked against `output:` (ids must be retrieved sources)."""
        assert finished.step_outputs["tally"] == {"counts": [1, 1, 1], "best": ["alpha2020", "beta2021", "gamma2022"]}

    async def test_other_values_are_wrapped_and_tool_results_register_sources(self, finished: RunResult) -> None:
        """A plain value becomes {"result": ...}; a ToolResult gives a tool step's output and registers its sources."""
        assert finished.step_outputs["loud"] == {"result": "PAPER ALPHA2020"}
        remark = finished.step_outputs["remark"]
        assert (remark["data"], remark["sources"]) == ({"words": 9}, ["note1"])

    @pytest.mark.parametrize(
        ("old", "new", "fragment"),
        [
            ("return text.upper()", "raise RuntimeError('disk full')", "my_steps:shout raised RuntimeError: disk full"),
            ("return text.upper()", "return {1, 2}", "returned data that is not JSON"),
            ('"best": [r["data"][0]["id"]', '"best": ["nowhere"] + [r["data"][0]["id"]', "never retrieved: nowhere"),
            ('"counts": [len(r["data"])', '"counts": ["many" for _ in [1]] + [len(r["data"])', "counts.0"),
        ],
    )
    async def test_failures_fail_the_step_with_the_reason(
        self, tmp_path: Path, old: str, new: str, fragment: str
    ) -> None:
        """A function that raises, returns non-JSON, cites an unknown source or breaks `output:` fails its step."""
        path = write_steps_project(tmp_path / "bad")
        edit(path.parent / "my_steps.py", old, new)
        result = await rolegraph.load(path).run()
        assert result.status == "failed"
        errors = " ".join(s.error or "" for s in result.steps.values())
        assert fragment in errors, errors

    async def test_text_that_is_not_utf8_is_kept(self, tmp_path: Path) -> None:
        """A function giving a lone surrogate (text that is not UTF-8, as an API's JSON escape or a page can give)
        completes: its output, the source it registers (with sources.jsonl) and a replay keep the same string."""
        path = write_steps_project(tmp_path / "odd")
        edit(path.parent / "my_steps.py", "return text.upper()", "return text.upper() + '\\ud800'")
        edit(path.parent / "my_steps.py", 'title="A note", text=text)', "title=\"A note\", text=text + '\\udfff')")
        result = await rolegraph.load(path).run()
        assert result.status == "completed", result.error
        assert result.step_outputs["loud"] == {"result": "PAPER ALPHA2020\ud800"}
        (note,) = [s for s in result.sources if s.id == "note1"]
        assert note.text is not None and note.text.endswith("\udfff")
        saved = [json.loads(line) for line in (result.run_dir / "sources.jsonl").read_text().splitlines()]
        assert [s["text"] for s in saved if s["id"] == "note1"] == [note.text]
        report = await replay(result.run_dir)
        assert report.status == "identical", report.divergence

    async def test_arguments_the_signature_lacks_fail_the_step(self, tmp_path: Path) -> None:
        """Args the function does not take fail the step before it is called, naming them."""
        path = write_steps_project(tmp_path / "bad")
        edit(path, 'args: {text: "{{ steps.find.data[0].title }}"}', 'args: {txt: "x"}')
        result = await rolegraph.load(path).run()
        assert "my_steps:shout cannot be called with args ['txt']" in (result.steps["loud"].error or "")


class TestBudgets:
    async def test_tool_steps_count_against_max_tool_calls(self, project: Path) -> None:
        """Tool and function steps spend the run's tool-call budget: with 3 allowed the run stops over budget."""
        result = await rolegraph.load(project).run(budget=Budget(max_tool_calls=3))
        assert result.status == "budget_exceeded"
        assert "max_tool_calls" in (result.error or "")


class TestDurability:
    async def test_resume_after_a_stop_does_not_call_again(self, project: Path) -> None:
        """A run stopped by its budget resumes: recorded tool and function calls are replayed, not made again."""
        # One step at a time: a budget stop cancels the steps in flight, and a call cancelled before it
        # returned is not recorded, so with parallel steps the recorded count would depend on timing.
        edit(project, "name: steps_demo\n", "name: steps_demo\nsettings: {max_concurrency: 1}\n")
        stopped = await rolegraph.load(project).run(budget=Budget(max_tool_calls=4))
        assert stopped.status == "budget_exceeded"
        store = RunStore.open_existing(stopped.run_dir)
        recorded = {entry.call_id for entry in store.entries()}
        store.close()
        assert len(recorded) == 4
        before = trace_lines(stopped.run_dir)
        resumed = await rolegraph.resume(stopped.run_dir, budget=Budget(max_tool_calls=100))
        assert resumed.status == "completed", resumed.error
        new = read_jsonl(stopped.run_dir / "trace.jsonl")[before:]
        ended = [r["attributes"] for r in new if r.get("event") == "span_end" and r["kind"] == "execute_tool"]
        made_again = [a["rolegraph.call.id"] for a in ended if not a.get("rolegraph.replayed")]
        assert made_again and not set(made_again) & recorded
        store = RunStore.open_existing(stopped.run_dir)
        assert len(list(store.entries())) == STEP_CALLS
        store.close()

    async def test_resumed_run_equals_an_uninterrupted_one(self, project: Path, tmp_path: Path) -> None:
        """After a stop and a resume, outputs, step outputs and sources equal those of an uninterrupted run."""
        baseline = await rolegraph.load(project).run(home=tmp_path / "baseline")
        stopped = await rolegraph.load(project).run(budget=Budget(max_tool_calls=2))
        resumed = await rolegraph.resume(stopped.run_dir, budget=Budget(max_tool_calls=100))
        assert outputs_of(resumed.run_dir) == outputs_of(baseline.run_dir)
        assert [s.id for s in resumed.sources] == [s.id for s in baseline.sources]

    async def test_replay_is_identical(self, finished: RunResult) -> None:
        """A replay answers every tool and function call from the recording: identical, no call made."""
        report = await replay(finished.run_dir)
        assert report.status == "identical", report.divergence
        assert report.replayed_calls == report.recorded_calls == STEP_CALLS

    async def test_replay_after_changed_args_diverges_at_the_call(self, finished: RunResult, project: Path) -> None:
        """Editing a tool step's args makes the replay diverge at that step's call: tool arguments changed."""
        edit(project, "max_results: 1}", "max_results: 3}")
        report = await replay(finished.run_dir)
        assert report.divergence is not None
        assert (report.divergence.step_id, report.divergence.reason) == ("each", "tool arguments changed")
        assert report.divergence.call_id in ("each[0]#1/tool/0/0", "each[1]#1/tool/0/0")


class TestStepLog:
    async def test_the_step_log_holds_tool_outputs(self, finished: RunResult) -> None:
        """A tool step's line in the step log holds its output like any step's."""
        saved = RunFolder(finished.run_dir).step_states()["find"]
        assert (saved["status"], saved["output"]["sources"], saved["tool_calls"]) == ("completed", ["alpha2020"], 1)


class TestKilled:
    @pytest.mark.parametrize("point", ["journal:1", "journal:3", "journal:5", "item:1", "checkpoint:2"])
    async def test_a_killed_run_resumes_without_calling_again(self, point: str, project: Path, tmp_path: Path) -> None:
        """SIGKILL after a tool or function call was recorded, then resume: the same outputs as an uninterrupted
        run, and no recorded call is made again."""
        baseline = await rolegraph.load(project).run(home=tmp_path / "baseline")
        home = tmp_path / "killed"
        env = {**os.environ, "ROLEGRAPH_HOME": str(home), "ROLEGRAPH_KILL_AT": point}
        proc = await run_in_process(project, env)
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        (run_dir,) = (home / "runs").iterdir()
        store = RunStore.open_existing(run_dir)
        recorded = {entry.call_id for entry in store.entries()}
        store.close()
        before = trace_lines(run_dir)
        result = await rolegraph.resume(run_dir)
        assert result.status == "completed", result.error
        assert outputs_of(run_dir) == outputs_of(baseline.run_dir)
        new = read_jsonl(run_dir / "trace.jsonl")[before:]
        ended = [r["attributes"] for r in new if r.get("event") == "span_end" and r["kind"] == "execute_tool"]
        assert not {a["rolegraph.call.id"] for a in ended if not a.get("rolegraph.replayed")} & recorded


class TestSharedFunctions:
    async def test_steps_calling_one_function_each_keep_their_own_output(self, tmp_path: Path) -> None:
        """Steps calling the same function (imported once) each check its value against their own `output:`."""
        folder = tmp_path / "shared"
        folder.mkdir()
        (folder / "shared_steps.py").write_text("def same(n):\n    return {'n': n}\n", encoding="utf-8")
        path = folder / "wf.yaml"
        path.write_text(
            "rolegraph: 1\nname: shared\nsettings: {fail_fast: false}\nsteps:\n"
            "  free: {function: 'shared_steps:same', args: {n: 1}}\n"
            "  typed: {function: 'shared_steps:same', args: {n: 2}, output: {n: integer}}\n"
            "  text: {function: 'shared_steps:same', args: {n: 3}, output: {n: string}}\n",
            encoding="utf-8",
        )
        result = await rolegraph.load(path).run()
        assert result.step_outputs["free"] == {"n": 1}
        assert result.step_outputs["typed"] == {"n": 2}
        assert result.steps["text"].status == "failed"
        assert "does not fit 'output:'" in (result.steps["text"].error or "")
