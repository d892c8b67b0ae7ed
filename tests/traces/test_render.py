"""Traces and runs in notebooks (escaped, well-formed HTML) and terminals (rich renderables)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from rich.console import Console

from rolegraph.models.model import Usage
from rolegraph.runtime.result import CitationCount, RunResult
from rolegraph.traces.render import MAX_SPANS, run_html, run_rich, skipped_lines, step_rows
from rolegraph.traces.trace import Trace

PAYLOAD = '<img src=x onerror="alert(1)"><script>alert(2)</script>'


def poisoned(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records with HTML in a react step's thought and a tool span's error, as a web page could put there."""
    out = []
    for record in records:
        record = json.loads(json.dumps(record))
        if record["kind"] == "react_step" and record["event"] == "span_end":
            record["attributes"]["rolegraph.thought"] = PAYLOAD
        if record["kind"] == "execute_tool" and record["event"] == "span_end":
            record["status"], record["error"] = "error", f"ToolError: {PAYLOAD}"
        out.append(record)
    return out


def rendered(html: str) -> ET.Element:
    """The HTML parsed as XML: it must be well formed (every tag closed, every & escaped)."""
    return ET.fromstring(html)


def texts(element: ET.Element) -> str:
    return "".join(element.itertext())


class TestTraceHtml:
    def test_structure(self, records: list[dict[str, Any]]) -> None:
        """The HTML has the status, a row per step and one nested list item per span, parents around children."""
        trace = Trace(records)
        root = rendered(trace._repr_html_())
        assert "completed" in texts(root.find("div"))  # type: ignore[arg-type]
        steps = root.find(".//table[@class='steps']")
        assert steps is not None
        assert [texts(row.findall("td")[0]) for row in steps.findall("tr")[1:]] == ["a", "b", "write"]
        items = root.findall(".//ul[@class='spans']//li")
        assert len(items) == len(trace.spans)
        top = root.find("./ul[@class='spans']/li")
        assert top is not None and "invoke_workflow demo" in texts(top.find("details/summary"))  # type: ignore[arg-type]
        nested = top.findall("./details/ul/li")
        assert len(nested) == len(trace.roots[0].children)
        assert "1000→100 tok" in texts(root)

    def test_untrusted_text_is_escaped(self, records: list[dict[str, Any]]) -> None:
        """HTML in thoughts and errors comes out as text: no img or script element, the characters escaped."""
        html = Trace(poisoned(records))._repr_html_()
        assert "<script>" not in html and "<img" not in html
        assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html
        root = rendered(html)
        assert root.findall(".//img") == [] and root.findall(".//script") == []
        assert PAYLOAD in texts(root)
        assert "error" in [texts(b) for b in root.iter("span") if b.get("class") == "badge"]

    def test_long_traces_are_cut(self, records: list[dict[str, Any]]) -> None:
        """At most MAX_SPANS spans are listed; the rest are counted."""
        many = []
        for n in range(MAX_SPANS + 5):
            base = {"run_id": "r", "span_id": f"s{n}", "parent_id": None, "kind": "chat", "name": f"chat {n}"}
            many.append({**base, "event": "span_end", "start_time": float(n), "status": "ok", "attributes": {}})
        root = rendered(Trace(many)._repr_html_())
        assert len(root.findall(".//ul[@class='spans']/li")) == MAX_SPANS
        assert "… and 5 more spans" in texts(root)

    def test_rich(self, records: list[dict[str, Any]]) -> None:
        """`rich.print(trace)` prints the span tree."""
        console = Console(width=200, record=True)
        console.print(Trace(records))
        printed = console.export_text()
        assert "invoke_workflow demo" in printed and "chat openai:gpt-4o-mini" in printed

    def test_step_rows(self, records: list[dict[str, Any]]) -> None:
        """Each step's row has its worst status, agents and the tokens below its agents."""
        rows = {row["step"]: row for row in step_rows(Trace(records))}
        assert (rows["a"]["status"], rows["a"]["agents"], rows["a"]["input_tokens"]) == ("completed", 1, 1000)
        assert rows["write"]["output_tokens"] == 300


class TestRunResult:
    def result(self, tmp_path: Path, records: list[dict[str, Any]]) -> RunResult:
        (tmp_path / "trace.jsonl").write_text("".join(json.dumps(r) + "\n" for r in poisoned(records)))
        return RunResult(
            run_id="20261101-120000-aaaaaa",
            status="failed",
            run_dir=tmp_path,
            outputs={"report": tmp_path / "report.md"},
            usage=Usage(input_tokens=6000, output_tokens=600),
            citations=CitationCount(total=3, unresolved=0),
            error=f"step 'a' failed: {PAYLOAD}",
            duration_s=1.25,
        )

    def test_html(self, tmp_path: Path, records: list[dict[str, Any]]) -> None:
        """A run result in Jupyter: id, status, usage, citations, escaped error, outputs, steps and spans."""
        root = rendered(self.result(tmp_path, records)._repr_html_())
        head = texts(root.find("div"))  # type: ignore[arg-type]
        assert "run 20261101-120000-aaaaaa" in head and "failed" in head
        assert "6000 input + 600 output tokens" in head and "3 citations (0 unresolved)" in head
        assert texts(root.find("pre")) == f"step 'a' failed: {PAYLOAD}"  # type: ignore[arg-type]
        assert root.findall(".//script") == [] and root.findall(".//img") == []
        assert "report.md" in texts(root.find(".//ul[@class='outputs']"))  # type: ignore[arg-type]
        assert len(root.findall(".//ul[@class='spans']//li")) == len(Trace(records).spans)

    def test_html_without_a_trace(self, tmp_path: Path, records: list[dict[str, Any]]) -> None:
        """A result whose trace file is gone still renders, from its summary."""
        result = self.result(tmp_path, records)
        (tmp_path / "trace.jsonl").unlink()
        root = rendered(result._repr_html_())
        assert root.find(".//ul[@class='spans']") is None and "failed" in texts(root)

    def test_rich(self, tmp_path: Path, records: list[dict[str, Any]]) -> None:
        """`rich.print(result)` prints the summary line, the steps table and the span tree."""
        console = Console(width=200, record=True)
        console.print(self.result(tmp_path, records))
        printed = console.export_text()
        assert printed.splitlines()[0].startswith("run 20261101-120000-aaaaaa  failed  1.25 s, 6000 input")
        assert "write" in printed and "invoke_workflow demo" in printed


SKIPPED_SUMMARY: dict[str, Any] = {
    "run_id": "r",
    "status": "completed",
    "skipped_items": {"each": [{"index": 1, "item": {"word": "b2"}, "error": f"bad {PAYLOAD}"}], "x": "damaged"},
}


class TestSkippedItems:
    def test_lines(self) -> None:
        """Each skipped item is one line, step[index] item: error; a damaged entry is left out."""
        assert skipped_lines(SKIPPED_SUMMARY) == [f'skipped each[1] {{"word": "b2"}}: bad {PAYLOAD}']
        assert skipped_lines({"skipped_items": ["x"]}) == []

    def test_html_and_rich(self) -> None:
        """A run's notebook and terminal views name the skipped item (escaped in HTML)."""
        root = rendered(run_html(SKIPPED_SUMMARY, None))
        [line] = [texts(d) for d in root.iter("div") if d.get("class") == "skipped"]
        assert line.startswith("skipped each[1]") and root.findall(".//script") == []
        console = Console(width=200, record=True)
        console.print(run_rich(SKIPPED_SUMMARY, None))
        assert "skipped each[1]" in console.export_text()

    def test_plan_line_in_the_tree(self) -> None:
        """A `plan` span that skipped items says how many and which in the trace tree."""
        start = {"run_id": "r", "span_id": "p", "parent_id": None, "kind": "plan", "name": "plan each"}
        records = [
            {**start, "event": "span_start", "start_time": 0.0, "attributes": {"rolegraph.step.id": "each"}},
            {
                **start,
                "event": "span_end",
                "start_time": 0.0,
                "end_time": 1.0,
                "status": "ok",
                "attributes": {"rolegraph.items_skipped": [{"index": 1, "error": "x"}, {"index": 4, "error": "y"}]},
            },
        ]
        console = Console(width=200, record=True)
        console.print(Trace(records).tree())
        [line] = [line for line in console.export_text().splitlines() if "plan each" in line]
        assert line.endswith("plan each  2 item(s) skipped: 1, 4")
