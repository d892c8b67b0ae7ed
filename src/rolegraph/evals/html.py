"""An eval report as one self-contained HTML page: the eval's id and date, the metrics table with what
each metric means and which way is better, a plot per metric, every run (linked to its page in the
viewer) and, question by question, the start of each run's report.

The plots are inline SVG drawn here (no plotting library, no script, no
external asset): per column, each run's value as a dot, the mean as a bar
and ± one standard deviation as a whisker. Everything shown that comes from
a run or an eval set (labels, questions, errors, verdicts) is escaped: reports
and questions are untrusted text.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from rolegraph.evals.guide import guide
from rolegraph.evals.runner import COUNTS, EvalReport, MetricSummary

__all__ = ["VIEWER_URL", "metric_plot", "render_html", "report_plot"]

_RATIOS = {
    "citation_validity",
    "source_recall",
    "source_precision",
    "retrieval_recall",
    "fact_coverage",
    "fact_coverage_judge",
    "claim_support",
    "completed",
}
_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 84em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; }
figcaption { font-weight: 600; }
.failed { color: #b00; }
.muted { color: #666; }
.dir { color: #1565c0; font-weight: 700; }
td.meaning { color: #333; max-width: 36em; }
blockquote { margin: .3em 0 .8em; padding: .3em .8em; border-left: 3px solid #ccc; color: #333; }
.question ul { list-style: none; padding-left: 0; }
"""
_COLUMN_WIDTH = 104
_HEIGHT = 170
_TOP, _BOTTOM, _LEFT = 12, 40, 46


def _cut(text: str, limit: int = 17) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _number(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def metric_plot(
    name: str, labels: Sequence[str], values: Sequence[Sequence[float]], summary: Sequence[MetricSummary]
) -> str:
    """One metric as an SVG: per column (`labels`), each run's value, the mean and ± sd."""
    top = 1.0 if name in _RATIOS else max((v for column in values for v in column), default=0.0) * 1.1 or 1.0
    width = _LEFT + _COLUMN_WIDTH * len(labels) + 10
    plot_h = _HEIGHT - _TOP - _BOTTOM

    def y(value: float) -> float:
        return _TOP + plot_h * (1 - min(max(value / top, 0.0), 1.0))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{_HEIGHT}" role="img" '
        'font-family="system-ui, -apple-system, Segoe UI, DejaVu Sans, sans-serif" '
        f'aria-label="{escape(name)} per column">',
        f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_TOP + plot_h}" stroke="#999"/>',
        f'<line x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{width - 10}" y2="{_TOP + plot_h}" stroke="#999"/>',
    ]
    for tick in (0.0, top / 2, top):
        parts.append(
            f'<text x="{_LEFT - 4}" y="{y(tick) + 4:.1f}" font-size="10" text-anchor="end">{_number(tick)}</text>'
        )
    for i, (label, runs, stats) in enumerate(zip(labels, values, summary, strict=True)):
        centre = _LEFT + _COLUMN_WIDTH * (i + 0.5)
        for j, value in enumerate(runs):
            offset = (j - (len(runs) - 1) / 2) * 4  # spread repeats sideways so equal values stay visible
            parts.append(
                f'<circle cx="{centre + offset:.1f}" cy="{y(value):.1f}" r="3" fill="#888" fill-opacity="0.6">'
                f"<title>{escape(_number(value))}</title></circle>"
            )
        if stats.mean is not None:
            parts.append(
                f'<line x1="{centre - 22}" y1="{y(stats.mean):.1f}" x2="{centre + 22}" y2="{y(stats.mean):.1f}" '
                f'stroke="#1565c0" stroke-width="3"><title>mean {escape(stats.cell())}</title></line>'
            )
            if stats.sd is not None:
                low, high = y(stats.mean - stats.sd), y(stats.mean + stats.sd)
                parts.append(
                    f'<path d="M{centre - 8} {low:.1f}H{centre + 8}M{centre} {low:.1f}V{high:.1f}'
                    f'M{centre - 8} {high:.1f}H{centre + 8}" stroke="#1565c0" fill="none"/>'
                )
        # Two lines: the model, then its settings (the part that tells grid columns apart).
        model, _, settings = label.partition(" ")
        lines = [_cut(model), _cut(settings)] if settings else [_cut(model)]
        parts.append(
            f'<text x="{centre:.1f}" y="{_HEIGHT - _BOTTOM + 15}" font-size="11" text-anchor="middle">'
            f"<title>{escape(label)}</title>"
            + "".join(
                f'<tspan x="{centre:.1f}" dy="{0 if n == 0 else 13}">{escape(line)}</tspan>'
                for n, line in enumerate(lines)
            )
            + "</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _values(report: EvalReport, label: str, name: str) -> list[float]:
    runs = [r for r in report.runs if r.model == label]
    if name == "completed":
        return [1.0 if r.status == "completed" else 0.0 for r in runs]
    return [float(v) for r in runs if (v := getattr(r.scores, name)) is not None]


def report_plot(report: EvalReport, name: str) -> str:
    """Metric `name` of an eval as an SVG (`metric_plot`), a column per model and settings, named by its model."""
    summary = report.summary()
    return metric_plot(
        name,
        [report.column_name(m) for m in report.models],
        [_values(report, m, name) for m in report.models],
        [summary[m][name] for m in report.models],
    )


VIEWER_URL = "http://127.0.0.1:8765/"
"""Where ``rolegraph serve`` listens by default: run ids link to their page there."""


def _column_head(report: EvalReport, label: str) -> str:
    name = report.column_name(label)
    note = f'<br><small class="muted">workflow default ({escape(label)})</small>' if name != label else ""
    return f"<th>{escape(name)}{note}</th>"


def _metric_head(name: str) -> str:
    about = guide(name)
    arrow = f' <span class="dir" title="{escape(about.direction)}">{about.arrow}</span>' if about.arrow else ""
    return f'<th title="{escape(about.meaning)}">{escape(name)}{arrow}</th>'


def _meaning(name: str) -> str:
    about = guide(name)
    better = f' <span class="muted">{escape(about.direction)}.</span>' if about.better else ""
    return f'<td class="meaning">{escape(about.meaning)}{better}</td>'


def _run_link(run_id: str, viewer_url: str | None) -> str:
    if not viewer_url:
        return f"<code>{escape(run_id)}</code>"
    return f'<a href="{escape(viewer_url)}#run={escape(run_id)}"><code>{escape(run_id)}</code></a>'


def render_html(report: EvalReport, *, viewer_url: str | None = VIEWER_URL) -> str:
    """The whole report as one HTML page.

    Args:
        report: The eval's report.
        viewer_url: Where ``rolegraph serve`` runs: each run id links to its page there (None: no links).
    """
    summary = report.summary()
    names = (*report.metrics, "completed")
    title = f"Eval {report.evalset} on workflow {report.workflow}"
    head = "".join(_column_head(report, m) for m in report.models)
    rows = "".join(
        f"<tr>{_metric_head(name)}"
        + "".join(f'<td class="num">{escape(summary[m][name].cell(whole=name in COUNTS))}</td>' for m in report.models)
        + _meaning(name)
        + "</tr>"
        for name in names
    )
    plots = "".join(
        f"<figure><figcaption>{escape(name)}"
        + (
            f' <span class="muted">{guide(name).arrow} {escape(guide(name).direction)}</span>'
            if guide(name).better
            else ""
        )
        + "</figcaption>"
        + report_plot(report, name)
        + "</figure>"
        for name in names
    )
    runs = "".join(_run_row(report, index, viewer_url) for index in range(len(report.runs)))
    judge = (
        f"<p>Fact coverage also judged by <code>{escape(report.judge)}</code>"
        + (f"; its calls are traced in <code>{escape(report.judge_trace)}</code>" if report.judge_trace else "")
        + f".</p><details><summary>Judge prompt</summary><pre>{escape(report.judge_prompt or '')}</pre></details>"
        if report.judge
        else ""
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1>"
        f"{_identity(report)}"
        f"<p>{len(report.runs)} run(s), {report.failed} failed; {report.repeat} repeat(s) per question and column. "
        "Cells: mean ± sample standard deviation (runs measured); n/a: nothing to measure. Plots: each run a grey "
        "dot, the mean a blue bar, ± one standard deviation a whisker.</p>"
        f"{judge}"
        f"<table><tr><th>metric</th>{head}<th>what it measures</th></tr>{rows}</table>"
        f'<div class="plots">{plots}</div>'
        "<h2>Runs</h2><table><tr><th>question</th><th>column</th><th>#</th><th>status</th><th>run</th>"
        "<th>missing sources</th><th>missing facts</th><th>judge verdicts</th></tr>"
        f"{runs}</table>"
        f"{_excerpts(report, viewer_url)}</body></html>\n"
    )


def _identity(report: EvalReport) -> str:
    parts = []
    if report.eval_id:
        parts.append(f"eval <code>{escape(report.eval_id)}</code>")
    if report.started:
        parts.append(f"started {escape(report.started.replace('T', ' ').replace('+00:00', ' UTC'))}")
    if report.default_model:
        parts.append(f"workflow default model <code>{escape(report.default_model)}</code>")
    return f'<p class="muted">{" · ".join(parts)}</p>' if parts else ""


def _run_row(report: EvalReport, index: int, viewer_url: str | None) -> str:
    run = report.runs[index]
    scores = run.scores
    status = escape(run.status) + (f": {escape(run.error)}" if run.error else "")
    verdicts = "<br>".join(
        f"{escape(v.fact)}: <b>{escape(v.verdict)}</b> {escape(v.reason)}" for v in scores.fact_verdicts
    )
    cells = [
        escape(run.question),
        escape(report.column_name(run.model)),
        str(run.repeat),
        f'<span class="{"" if run.status == "completed" else "failed"}">{status}</span>',
        _run_link(run.run_id, viewer_url),
        escape(", ".join(scores.missing_sources)),
        escape(", ".join(scores.missing_facts)),
        verdicts,
    ]
    return "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


def _excerpts(report: EvalReport, viewer_url: str | None) -> str:
    """Per question, the start of each run's report: what the scores are about."""
    sections = []
    for question in dict.fromkeys(r.question for r in report.runs):
        entries = "".join(
            f"<li><b>{escape(report.column_name(run.model))}</b> #{run.repeat} {_run_link(run.run_id, viewer_url)}"
            + (
                f"<blockquote>{escape(run.excerpt)}</blockquote>"
                if run.excerpt
                else f'<p class="muted">no report ({escape(run.status)})</p>'
            )
            + "</li>"
            for run in report.runs
            if run.question == question
        )
        sections.append(f'<section class="question"><h3>{escape(question)}</h3><ul>{entries}</ul></section>')
    return "<h2>Reports, question by question</h2>" + "".join(sections) if sections else ""
