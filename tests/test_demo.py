"""The README's main job, end to end: the literature review on the embedded model, offline."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.local_model
class TestDemo:
    def test_literature_review_runs_offline_and_cites_only_retrieved_sources(self, tmp_path: Path) -> None:
        """`rolegraph run examples/literature_review.yaml --json` completes; every citation resolves."""
        env = {**os.environ, "ROLEGRAPH_HOME": str(tmp_path)}
        env.pop("OPENAI_API_KEY", None)
        proc = subprocess.run(
            [sys.executable, "-m", "rolegraph", "run", "examples/literature_review.yaml", "--json"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        summary = json.loads(proc.stdout)
        assert summary["status"] == "completed"
        assert summary["citations"]["unresolved"] == 0
        assert summary["usage"]["input_tokens"] > 0 and summary["usage"]["output_tokens"] > 0
        assert set(summary["outputs"]) == {"report", "sources", "bibliography"}

        report = Path(summary["outputs"]["report"]).read_text()
        sources = json.loads(Path(summary["outputs"]["sources"]).read_text())
        retrieved = {s["id"] for s in sources}
        cited_ids = re.findall(r"`([a-z0-9_]+)`$", report, flags=re.MULTILINE)
        # At least two distinct sources: the tiny model's choice of how many to cite depends on
        # llama.cpp's numerics (it changed with the portable AVX2 build); that it cites only
        # retrieved ones does not.
        assert len(set(cited_ids)) >= 2, report
        assert set(cited_ids) <= retrieved
        numbers_used = set(re.findall(r"\[(\d+)\]", report.split("## References")[0]))
        assert numbers_used == {str(n) for n in range(1, len(cited_ids) + 1)}
        bib = Path(summary["outputs"]["bibliography"]).read_text()
        assert all(f"@misc{{{sid}," in bib for sid in retrieved)

        trace = Path(summary["trace"]).read_text().splitlines()
        kinds = {json.loads(line)["kind"] for line in trace if '"kind"' in line}
        assert {
            "invoke_workflow",
            "invoke_agent",
            "react_step",
            "chat",
            "execute_tool",
            "run_guardrail",
            "plan",
            "route",
            "checkpoint",
        } <= kinds
