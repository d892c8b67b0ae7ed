"""The HTML report: the metrics table, an inline SVG plot per metric, every run, all text escaped."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from rolegraph.evals.html import metric_plot, render_html
from rolegraph.evals.metrics import METRICS, RunScores
from rolegraph.evals.runner import EvalReport, EvalRun, MetricSummary

EVIL = '<script>alert("x")</script>'


def scores(**changes: object) -> RunScores:
    base = RunScores(
        citation_validity=1.0,
        source_recall=0.5,
        source_precision=1.0,
        retrieval_recall=1.0,
        fact_coverage=0.5,
        forbidden_facts=0,
        claim_support=None,
        tokens=100,
        cost_usd=0.0,
        wall_time_s=2.0,
    )
    return base.model_copy(update=changes)


def report() -> EvalReport:
    runs = [
        EvalRun(question=EVIL, model="default t=0", repeat=1, run_id="r1", status="completed", scores=scores()),
        EvalRun(
            question=EVIL,
            model="default t=0",
            repeat=2,
            run_id="r2",
            status="failed",
            error=f"step 'write' failed: {EVIL}",
            scores=scores(source_recall=1.0, missing_facts=[EVIL]),
        ),
        EvalRun(question=EVIL, model="default t=0.7", repeat=1, run_id="r3", status="completed", scores=scores()),
    ]
    return EvalReport(evalset="s", workflow="w", models=["default t=0", "default t=0.7"], repeat=2, runs=runs)


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)


class TestRenderHtml:
    def test_table_plots_and_runs(self) -> None:
        """A row per metric with the markdown's cells, one SVG per metric (and completed), a row per run."""
        page = render_html(report())
        assert page.startswith("<!DOCTYPE html>")
        assert (
            '<tr><th>source_recall</th><td class="num">0.75 ± 0.35 (2)</td><td class="num">0.50 (1)</td></tr>' in page
        )
        parser = Elements()
        parser.feed(page)
        assert parser.tags.count("svg") == len(METRICS) + 1
        assert parser.tags.count("figure") == len(METRICS) + 1
        assert "script" not in parser.tags  # self-contained, nothing executable
        assert page.count("<code>r") == 3

    def test_untrusted_text_is_escaped(self) -> None:
        """Questions, errors and facts from runs are escaped wherever they appear."""
        page = render_html(report())
        assert EVIL not in page
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page

    def test_judge_prompt_and_trace_shown(self) -> None:
        """With a judge, the page names it, its trace file and its prompt, and has the judge's metric."""
        judged = report().model_copy(
            update={"judge": "openai:gpt-4o-mini", "judge_prompt": "P <b>", "judge_trace": "/t/judge.jsonl"}
        )
        page = render_html(judged)
        assert "<code>openai:gpt-4o-mini</code>" in page and "<code>/t/judge.jsonl</code>" in page
        assert "<pre>P &lt;b&gt;</pre>" in page
        assert "<figcaption>fact_coverage_judge</figcaption>" in page


class TestMetricPlot:
    def test_dots_mean_and_spread(self) -> None:
        """Each run a dot; each measured column a mean bar, with a whisker only when there is a spread."""
        svg = metric_plot(
            "fact_coverage",
            ["a", "b", "c"],
            [[0.0, 1.0], [0.5], []],
            [MetricSummary.of([0.0, 1.0]), MetricSummary.of([0.5]), MetricSummary.of([])],
        )
        assert svg.count("<circle") == 3
        assert svg.count('stroke-width="3"') == 2  # no mean for the empty column
        assert svg.count("<path") == 1
        # a ratio's axis runs from 0 to 1: both means (0.5) sit halfway down the plot area
        means = re.findall(
            r'<line x1="[\d.]+" y1="([\d.]+)" x2="[\d.]+" y2="\1" stroke="#1565c0" stroke-width="3">', svg
        )
        assert [float(y) for y in means] == [12 + (170 - 12 - 40) * 0.5] * 2
