// An eval's page (#eval=ID): what `rolegraph eval -o eval.html` shows — the metrics per column with
// what each means and which way is better, every run with its scores — with each run a link to its
// page here, and per question the start of each run's report. An unfinished eval shows its plan.

import { append, badgeFor, clear, el, getJson, runLink, when } from "./dom.js";

const SHOWN_SCORES = { fact_coverage: "facts", source_recall: "recall", claim_support: "support", citation_validity: "valid cites" };

export async function renderEval(evalId) {
  const box = clear(document.getElementById("eval"));
  let data;
  try {
    data = await getJson(`/api/evals/${encodeURIComponent(evalId)}`);
  } catch (error) {
    box.append(el("p", { class: "empty" }, `No eval ${evalId} here.`));
    return;
  }
  document.getElementById("crumb").textContent = `eval · ${evalId}`;
  if (!data.finished) {
    renderPlan(box, data);
    return;
  }
  const report = data.report;
  const column = (label) => data.columns[label] ?? label;
  append(box, [
    el("div", { class: "run-title" }, el("h1", {}, `Eval ${report.evalset} on workflow ${report.workflow}`)),
    el("dl", { class: "facts" },
      el("div", {}, el("dt", {}, "eval"), el("dd", {}, el("code", {}, data.eval_id))),
      el("div", {}, el("dt", {}, "started (UTC)"), el("dd", {}, when(data.started))),
      el("div", {}, el("dt", {}, "runs"), el("dd", {}, String(report.runs.length))),
      el("div", {}, el("dt", {}, "failed"), el("dd", {}, String(report.runs.filter((r) => r.status !== "completed").length))),
      el("div", {}, el("dt", {}, "repeats"), el("dd", {}, String(report.repeat))),
      report.default_model ? el("div", {}, el("dt", {}, "workflow default model"), el("dd", {}, el("code", {}, report.default_model))) : null,
      report.judge ? el("div", {}, el("dt", {}, "judge"), el("dd", {}, el("code", {}, report.judge))) : null),
    metricsTable(data, column),
    plots(data),
    el("div", { class: "card" }, el("div", { class: "card-head" }, "Runs"), el("div", { class: "table-wrap" }, runsTable(report, column))),
    excerpts(report, column),
  ]);
}

function metricsTable(data, column) {
  const report = data.report;
  return el("div", { class: "card" }, el("div", { class: "card-head" }, "Metrics ",
    el("span", { class: "note" }, "mean ± sample sd (runs measured); n/a: nothing to measure")),
  el("div", { class: "table-wrap" }, el("table", { class: "metrics", id: "eval-metrics" },
    el("thead", {}, el("tr", {}, el("th", {}, "metric"),
      report.models.map((m) => el("th", { class: "num", title: m }, column(m),
        column(m) !== m ? el("div", { class: "muted" }, "workflow default") : null)),
      el("th", {}, "what it measures"))),
    el("tbody", {}, data.metrics.map((metric) => el("tr", { "data-metric": metric.name },
      el("th", {}, metric.name, metric.arrow ? el("span", { class: "dir", title: `${metric.better} is better` }, ` ${metric.arrow}`) : null),
      report.models.map((m) => el("td", { class: "num" }, cell(report.summary[m][metric.name], metric.whole))),
      el("td", { class: "meaning" }, metric.meaning, metric.better ? el("span", { class: "muted" }, ` ${metric.better} is better.`) : null)))))));
}

// The eval HTML's plots, drawn on the server: each run a dot, the mean a bar, ± one sd a whisker.
function plots(data) {
  return el("div", { class: "card" }, el("div", { class: "card-head" }, "Plots ",
    el("span", { class: "note" }, "each run a grey dot, the mean a blue bar, ± one standard deviation a whisker")),
  el("div", { class: "eval-plots" }, data.metrics.map((metric) => el("figure", { "data-metric": metric.name },
    el("figcaption", {}, metric.name, metric.arrow ? el("span", { class: "dir" }, ` ${metric.arrow}`) : null),
    el("img", {
      src: `/api/evals/${encodeURIComponent(data.eval_id)}/plots/${encodeURIComponent(metric.name)}.svg`,
      alt: `${metric.name} per column`,
    })))));
}

// mean ± sd (n), as the CLI's table: a count (tokens) in whole numbers, a score with two decimals.
function cell(summary, whole = false) {
  if (!summary || summary.mean === null) return "n/a";
  const digits = whole ? 0 : 2;
  const spread = summary.sd === null ? "" : ` ± ${summary.sd.toFixed(digits)}`;
  return `${summary.mean.toFixed(digits)}${spread} (${summary.n})`;
}

function score(value) {
  return value === null || value === undefined ? "n/a" : Number(value).toFixed(2);
}

function runsTable(report, column) {
  return el("table", { class: "metrics", id: "eval-runs" },
    el("thead", {}, el("tr", {},
      ["question", "column", "#", "status", "run"].map((h) => el("th", {}, h)),
      Object.entries(SHOWN_SCORES).map(([name, short]) => el("th", { class: "num", title: name }, short)),
      el("th", {}, "missing facts"))),
    el("tbody", {}, report.runs.map((run) => el("tr", { "data-run": run.run_id },
      el("td", {}, run.question), el("td", {}, column(run.model)), el("td", {}, String(run.repeat)),
      el("td", {}, badgeFor(run.status), run.error ? el("div", { class: "error-line" }, run.error) : null),
      el("td", { class: "nowrap" }, el("a", { href: runLink(run.run_id), class: "run-link" }, el("code", {}, run.run_id))),
      Object.keys(SHOWN_SCORES).map((name) => el("td", { class: "num" }, score(run.scores[name]))),
      el("td", {}, (run.scores.missing_facts ?? []).join(", "))))));
}

function excerpts(report, column) {
  const questions = [...new Set(report.runs.map((r) => r.question))];
  return el("div", { class: "card" }, el("div", { class: "card-head" }, "Reports, question by question"),
    questions.map((q) => el("section", { class: "question", "data-question": q }, el("h3", {}, q),
      report.runs.filter((r) => r.question === q).map((run) => el("div", { class: "excerpt" },
        el("div", {}, el("b", {}, column(run.model)), ` #${run.repeat} `,
          el("a", { href: runLink(run.run_id, { tab: "report" }), class: "run-link" }, "read the report")),
        run.excerpt ? el("blockquote", {}, run.excerpt) : el("p", { class: "muted" }, `no report (${run.status})`))))));
}

function renderPlan(box, data) {
  append(box, [
    el("div", { class: "run-title" }, el("h1", {}, `Eval ${data.eval_id}`), badgeFor("unfinished")),
    el("p", { class: "muted" }, `Not finished (still running, or interrupted: rolegraph eval --resume ${data.eval_id}). `
      + `Workflow ${data.workflow_file}, eval set ${data.evalset_file}.`),
    el("div", { class: "card" }, el("div", { class: "table-wrap" }, el("table", { class: "metrics", id: "eval-plan" },
      el("thead", {}, el("tr", {}, ["question", "column", "#", "status", "run"].map((h) => el("th", {}, h)))),
      el("tbody", {}, data.runs.map((run) => el("tr", {},
        el("td", {}, run.question), el("td", {}, run.model), el("td", {}, String(run.repeat)), el("td", {}, badgeFor(run.status)),
        el("td", {}, run.run_id ? el("a", { href: runLink(run.run_id), class: "run-link" }, el("code", {}, run.run_id)) : "–"))))))),
  ]);
}
