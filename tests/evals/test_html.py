"""The HTML report: eval id and date, the metrics table with each metric's meaning and better direction, an
inline SVG plot per metric, every run linked to the viewer, each run's report excerpt, all text escaped."""

from __future__ import annotations

import re
from html import escape
from html.parser import HTMLParser

from rolegraph.evals.guide import METRIC_GUIDE, guide
from rolegraph.evals.html import metric_plot, render_html
from rolegraph.evals.metrics import METRICS, RunScores, metric_names
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
        EvalRun(
            question=EVIL,
            model="default t=0",
            repeat=1,
            run_id="r1",
            status="completed",
            scores=scores(),
            excerpt=f"Adapters train few weights. {EVIL}",
        ),
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
    return EvalReport(
        evalset="s",
        workflow="w",
        models=["default t=0", "default t=0.7"],
        repeat=2,
        runs=runs,
        eval_id="20261201-214512-3f9a0c1d2e4b",
        started="2026-12-01T21:45:12+00:00",
        default_model="ollama:qwen2.5:7b",
    )


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
            '<th title="Share of the question&#x27;s gold sources the report cites.">source_recall'
            ' <span class="dir" title="higher is better">↑</span></th>'
            '<td class="num">0.75 ± 0.35 (2)</td><td class="num">0.50 (1)</td>'
            '<td class="meaning">Share of the question&#x27;s gold sources the report cites.'
            ' <span class="muted">higher is better.</span></td></tr>' in page
        )
        parser = Elements()
        parser.feed(page)
        assert parser.tags.count("svg") == len(METRICS) + 1
        assert parser.tags.count("figure") == len(METRICS) + 1
        assert "script" not in parser.tags  # self-contained, nothing executable
        assert page.count('<a href="http://127.0.0.1:8765/#run=r') == 2 * 3  # in the runs table and the excerpts

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
        assert '<figcaption>fact_coverage_judge <span class="muted">↑ higher is better</span></figcaption>' in page


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


class TestReportContext:
    def test_eval_id_date_and_default_model(self) -> None:
        """The page says which eval it is, when it started, and which model the workflow's default is."""
        page = render_html(report())
        assert (
            '<p class="muted">eval <code>20261201-214512-3f9a0c1d2e4b</code> · started 2026-12-01 21:45:12 UTC'
            " · workflow default model <code>ollama:qwen2.5:7b</code></p>" in page
        )

    def test_columns_named_by_their_model(self) -> None:
        """A `default` column is headed by the model it ran, with its label kept as a note; so are its runs."""
        page = render_html(report())
        assert '<th>ollama:qwen2.5:7b t=0<br><small class="muted">workflow default (default t=0)</small></th>' in page
        assert "<td>ollama:qwen2.5:7b t=0.7</td>" in page
        assert "<th>default t=0</th>" not in page and "<td>default t=0</td>" not in page

    def test_metric_definitions_with_direction(self) -> None:
        """Every metric's row says what it measures and which way is better."""
        page = render_html(report())
        assert "<tr><th>metric</th>" in page and "<th>what it measures</th></tr>" in page
        assert (
            '<td class="meaning">Tokens the run&#x27;s model calls read and wrote.'
            ' <span class="muted">lower is better.</span></td>' in page
        )
        for name in (*METRICS, "completed"):
            assert f'<td class="meaning">{escape(guide(name).meaning)}' in page

    def test_run_ids_link_to_the_viewer(self) -> None:
        """Run ids link to their page in `rolegraph serve` (at the URL given; plain ids with none)."""
        page = render_html(report(), viewer_url="http://127.0.0.1:9000/")
        assert '<a href="http://127.0.0.1:9000/#run=r2"><code>r2</code></a>' in page
        plain = render_html(report(), viewer_url=None)
        assert "<a href" not in plain and plain.count("<code>r2</code>") == 2

    def test_report_excerpt_per_question(self) -> None:
        """Per question, each run's report excerpt (escaped), or why there is none."""
        page = render_html(report())
        section = page[page.index("<h2>Reports, question by question</h2>") :]
        assert section.count('<section class="question">') == 1
        assert "<blockquote>Adapters train few weights. &lt;script&gt;" in section
        assert '<p class="muted">no report (failed)</p>' in section


class TestGuide:
    def test_every_metric_is_explained(self) -> None:
        """Each metric a report can show (the judge's and ``completed`` included) has a meaning and a direction."""
        for name in (*metric_names(judged=True), "completed"):
            assert name in METRIC_GUIDE, f"explain {name} in rolegraph/evals/guide.py"
        assert (guide("forbidden_facts").better, guide("claim_support").better) == ("lower", "higher")

    def test_an_unknown_metric_points_to_the_metrics_module(self) -> None:
        """A metric the guide does not know still gets an entry, with no direction claimed."""
        assert (guide("brand_new").meaning, guide("brand_new").better) == (
            "See rolegraph.evals.metrics for brand_new.",
            None,
        )
