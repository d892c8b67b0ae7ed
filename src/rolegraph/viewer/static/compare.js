// Two runs side by side (#compare=A&with=B, a link that can be shared): both summaries, the first
// divergence, every step's status, visits, tool calls, output, tokens, cost and time, and the output
// files, differing markdown reports rendered next to each other. The diff is the server's
// (traces/diff.py, as `rolegraph trace diff` prints it).

import { append, badgeFor, clear, cost, el, fact, getJson, pretty, runLink, seconds, tokens, when } from "./dom.js";
import { renderTree } from "./markdown.js";

export async function renderCompare(a, b) {
  const box = clear(document.getElementById("compare"));
  box.append(el("p", { class: "empty" }, "Comparing…"));
  let data;
  try {
    data = await getJson(`/api/compare?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`);
  } catch (error) {
    clear(box).append(el("p", { class: "empty" }, `Cannot compare ${a} with ${b}: one of them is not a run here.`));
    return;
  }
  clear(box);
  document.getElementById("crumb").textContent = `compare ${a} · ${b}`;
  const diff = data.diff;
  const first = diff.first_divergence;
  append(box, [
    el("div", { class: "run-title" }, el("h1", {}, "Compare runs"),
      el("a", { class: "linkish", href: `#compare=${encodeURIComponent(b)}&with=${encodeURIComponent(a)}`, id: "swap" }, "swap A and B"),
      el("a", { class: "linkish muted", href: location.hash, id: "permalink", title: "this comparison's address: share it" }, "link to this comparison")),
    el("div", { class: "compare-pair" }, summary("A", data.a), summary("B", data.b)),
    diff.workflow[0] !== diff.workflow[1]
      ? el("p", { class: "note-line" }, `Different workflows: ${diff.workflow[0]} and ${diff.workflow[1]}.`) : null,
    el("div", { class: `divergence card${first ? "" : " none"}`, id: "first-divergence" },
      el("h2", {}, first ? "First divergence" : "No divergence"),
      first
        ? el("p", {}, first.step_id ? el("button", { type: "button", class: "linkish", onclick: () => reveal(first.step_id) }, `step ${first.step_id}`) : "the run",
          first.call_index !== null && first.call_index !== undefined ? `, tool call ${first.call_index + 1}` : first.kind === "run_status" ? "" : `, ${first.kind.replace("_", " ")}`,
          ": ", el("code", {}, first.detail))
        : el("p", {}, "The runs agree step by step: same statuses, visits, tool calls and outputs (tokens and time aside)."),
      ...[["A", data.a], ["B", data.b]].filter(([, run]) => run.lineage?.divergence).map(([side, run]) =>
        el("p", { class: "muted" }, `${side} is a replay of ${run.lineage.replay_of}; it stopped at `, el("code", {}, run.lineage.divergence)))),
    stepsTable(data, first),
    outputs(data),
  ]);
  await renderReports(data);
}

function summary(label, run) {
  const lineage = run.lineage ?? {};
  return el("div", { class: "card compare-run", "data-side": label },
    el("div", { class: "compare-run-head" }, el("span", { class: "side-label" }, label),
      el("a", { href: runLink(run.run_id), class: "run-link" }, run.workflow ?? run.run_id), badgeFor(run.status),
      lineage.replay_of ? el("span", { class: "badge mark-replay", title: `a replay of ${lineage.replay_of}` }, "replay") : null,
      lineage.resumed ? el("span", { class: "badge mark-resumed" }, "resumed") : null),
    el("div", { class: "muted compare-run-id" }, el("code", {}, run.run_id), ` · started ${when(run.started)} UTC`),
    el("dl", { class: "facts" },
      fact("duration", run.live ? "running" : seconds(run.duration_s)),
      fact("model calls", String(run.calls)),
      fact("tokens in → out", tokens(run.input_tokens, run.output_tokens) || "0"),
      fact("cost", cost(run.cost_usd))),
    lineage.divergence
      ? el("p", { class: "divergence-line" }, "Replay stopped at: ", el("code", {}, lineage.divergence))
      : run.error ? el("pre", { class: "error" }, run.error) : null);
}

function reveal(step) {
  const row = document.querySelector(`#compare-steps tr[data-step="${CSS.escape(step)}"]`);
  if (!row) return;
  row.scrollIntoView({ block: "center" });
  const details = row.nextElementSibling?.querySelector("details");
  if (details) details.open = true;
}

function pair(values, format = String) {
  const [a, b] = values.map((v) => (v === null || v === undefined ? "–" : format(v)));
  return a === b ? el("span", {}, a) : el("span", { class: "changed" }, a, el("span", { class: "muted" }, " → "), b);
}

function stepsTable(data, first) {
  const diff = data.diff;
  const rows = [];
  for (const [step, s] of Object.entries(diff.steps)) {
    const costs = [data.a.step_cost?.[step], data.b.step_cost?.[step]];
    const isFirst = first && first.step_id === step;
    rows.push(el("tr", { "data-step": step, class: `${s.differs ? "differs" : ""}${isFirst ? " first" : ""}` },
      el("th", {}, s.differs ? "≠ " : "= ", step, isFirst ? el("span", { class: "badge status-diverged" }, "first divergence") : null),
      el("td", {}, pair(s.status)),
      el("td", {}, pair(s.visits)),
      el("td", {}, s.tool_calls.same ? `${s.tool_calls.a.length} same` : el("span", { class: "changed" }, `${s.tool_calls.a.length} vs ${s.tool_calls.b.length}, differ`)),
      el("td", {}, s.output_same === null ? "–" : s.output_same ? "same" : el("span", { class: "changed" }, "differs")),
      el("td", { class: "num" }, pair(s.tokens, (v) => v.toLocaleString())),
      el("td", { class: "num" }, pair(costs, cost)),
      el("td", { class: "num" }, pair(s.duration_s, seconds))));
    if (!s.tool_calls.same || (isFirst && s.tool_calls.a.length)) rows.push(el("tr", { class: "calls-row" }, el("td", { colspan: 8 }, calls(s, isFirst ? first : s.difference))));
  }
  const t = diff.totals;
  rows.push(el("tr", { class: "totals" }, el("th", {}, "run"), el("td", {}, pair(t.status)), el("td", {}, ""),
    el("td", {}, pair(t.tool_calls)), el("td", {}, `${t.steps_differing.length} of ${Object.keys(diff.steps).length} steps differ`),
    el("td", { class: "num" }, pair([t.input_tokens[0] + t.output_tokens[0], t.input_tokens[1] + t.output_tokens[1]], (v) => v.toLocaleString())),
    el("td", { class: "num" }, pair(t.cost_usd, cost)), el("td", { class: "num" }, pair(t.duration_s, seconds))));
  return el("div", { class: "card compare-card" }, el("div", { class: "card-head" }, "Steps"),
    el("div", { class: "table-wrap" }, el("table", { class: "compare-table", id: "compare-steps" },
      el("thead", {}, el("tr", {}, ["step", "status A → B", "visits", "tool calls", "output", "tokens", "cost", "time"].map((h) => el("th", {}, h)))),
      el("tbody", {}, rows))));
}

function callText(call) {
  if (!call) return "—";
  const item = call.item === null || call.item === undefined ? "" : `[${call.item}]`;
  return `${call.name}${item} ${pretty(call.arguments).replace(/\s+/g, " ")}`;
}

// The step's tool calls, A and B in two columns, call by call; identical pairs dimmed, the first difference marked.
function calls(step, difference) {
  const a = step.tool_calls.a, b = step.tool_calls.b;
  const n = Math.max(a.length, b.length);
  const lines = [];
  for (let i = 0; i < n; i++) {
    const same = JSON.stringify(a[i]) === JSON.stringify(b[i]);
    const mark = difference && difference.call_index === i;
    lines.push(el("div", { class: `call-pair${same ? " same" : " changed"}${mark ? " first" : ""}`, "data-call": i },
      el("span", { class: "call-n" }, String(i + 1)), el("code", {}, callText(a[i])), el("code", {}, callText(b[i]))));
  }
  return el("details", { open: Boolean(difference) },
    el("summary", {}, difference ? difference.text : "tool calls"),
    n ? el("div", { class: "call-pairs" }, el("div", { class: "call-pair head" }, el("span", {}, "#"), el("span", {}, "A"), el("span", {}, "B")), lines)
      : el("p", { class: "muted" }, "no tool calls"));
}

function outputs(data) {
  if (!data.outputs.length) return el("p", { class: "muted" }, "Neither run wrote output files.");
  return el("div", { class: "card compare-card" }, el("div", { class: "card-head" }, "Outputs"),
    el("ul", { class: "compare-outputs" }, data.outputs.map((o) => el("li", { "data-output": o.name },
      el("b", {}, o.name), " ",
      !o.a || !o.b ? el("span", { class: "changed" }, `only in ${o.a ? "A" : "B"}`)
        : o.same ? el("span", { class: "muted" }, "identical") : el("span", { class: "changed" }, "differs")))),
    el("div", { id: "compare-reports" }));
}

// Markdown outputs that differ, A beside B.
async function renderReports(data) {
  const box = document.getElementById("compare-reports");
  for (const o of data.outputs) {
    if (!o.a || !o.b || o.same) continue;
    const [a, b] = await Promise.all([data.a.run_id, data.b.run_id].map((id) =>
      getJson(`/api/runs/${encodeURIComponent(id)}/outputs/${encodeURIComponent(o.name)}`).catch(() => null)));
    if (!a || !b) continue;
    const column = (side, run, detail) => el("div", { class: "compare-report", "data-side": side },
      el("div", { class: "muted" }, `${side} · ${o.name}`),
      detail.kind === "markdown"
        ? el("article", { class: "markdown" }, renderTree(detail.tree, (id) => { location.hash = runLink(run, { tab: "report", output: o.name, source: id }); }))
        : el("pre", { class: "output-text" }, detail.text));
    box.append(el("div", { class: "report-pair", "data-output": o.name }, column("A", data.a.run_id, a), column("B", data.b.run_id, b)));
  }
}
