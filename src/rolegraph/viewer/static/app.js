// rolegraph's run viewer: state, routing, the runs list, selection and live polling.
// Plain ES modules, no framework, no build step. Trace content is untrusted (it holds
// web page text): every value reaches the page as text (dom.js), never as HTML.

import { append, clear, cost, el, fact, getJson, seconds, statusClass, tokens, when } from "./dom.js";
import { renderGraph } from "./graph.js";
import { renderPanel, renderRunPanel } from "./panel.js";
import { renderLanes, renderWaterfall } from "./timeline.js";

const POLL_MS = 1000;

const RUNS_POLL_MS = 5000;

const state = {
  runs: [],
  runId: null,
  view: null,
  selected: null,
  collapsed: new Set(),
  stampTimer: null,
};

// What the time views need to know of the selection, and how to change it.
function ui() {
  return { selected: state.selected, collapsed: state.collapsed, select: selectSpan, toggle: toggleSpan };
}

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  return { run: params.get("run"), span: params.get("span") };
}

function writeHash(run, span) {
  const params = new URLSearchParams();
  if (run) params.set("run", run);
  if (span) params.set("span", span);
  const hash = `#${params}`;
  if (location.hash !== hash) history.replaceState(null, "", hash);
}

async function loadRuns() {
  try {
    state.runs = (await getJson("/api/runs")).runs;
  } catch (error) {
    console.error(error);
    return;
  }
  renderRuns();
}

function renderRuns() {
  const list = clear(document.getElementById("run-list"));
  const filter = document.getElementById("run-filter").value.trim().toLowerCase();
  const shown = state.runs.filter(
    (run) => !filter || `${run.run_id} ${run.workflow ?? ""} ${run.status}`.toLowerCase().includes(filter),
  );
  document.getElementById("runs-empty").hidden = state.runs.length > 0;
  for (const run of shown) {
    const item = el(
      "li",
      {
        class: `run-item${run.run_id === state.runId ? " current" : ""}`,
        "data-run": run.run_id,
        tabindex: 0,
        onclick: () => openRun(run.run_id),
        onkeydown: (event) => event.key === "Enter" && openRun(run.run_id),
      },
      el("div", { class: "run-line" }, el("span", { class: `dot ${statusClass(run.status)}`, title: run.status }),
        el("span", { class: "run-workflow" }, run.workflow ?? "–"),
        el("span", { class: "run-status" }, run.status)),
      el("div", { class: "run-id" }, run.run_id),
      el("div", { class: "run-meta" },
        el("span", {}, when(run.started)),
        el("span", {}, seconds(run.duration_s)),
        el("span", {}, `${(run.input_tokens + run.output_tokens).toLocaleString()} tok`),
        el("span", {}, cost(run.cost_usd))),
    );
    list.append(item);
  }
}

async function openRun(runId, spanId = null) {
  if (state.runId !== runId) {
    state.selected = null;
    state.collapsed = new Set();
  }
  state.runId = runId;
  writeHash(runId, spanId);
  renderRuns();
  let view;
  try {
    view = await getJson(`/api/runs/${encodeURIComponent(runId)}`);
  } catch (error) {
    document.getElementById("no-run").hidden = false;
    document.getElementById("no-run").textContent = `Run ${runId} not found.`;
    document.getElementById("run").hidden = true;
    return;
  }
  if (state.runId !== runId) return;
  const first = state.view === null || state.view.run_id !== runId;
  state.view = view;
  if (first && view.spans.length > 400) {
    for (const span of view.spans) if (span.kind === "invoke_agent") state.collapsed.add(span.id);
  }
  renderRun();
  if (spanId) selectSpan(spanId, { scroll: true });
  else if (state.selected) selectSpan(state.selected, { scroll: false, refresh: view.live });
  schedulePoll();
}

function schedulePoll() {
  clearTimeout(state.stampTimer);
  const view = state.view;
  document.getElementById("live-flag").hidden = !(view && view.live);
  if (!view || !view.live) return;
  const runId = view.run_id;
  state.stampTimer = setTimeout(async () => {
    try {
      const now = await getJson(`/api/runs/${encodeURIComponent(runId)}/stamp`);
      if (state.runId !== runId) return;
      if (now.stamp !== state.view.stamp) {
        await openRun(runId, null);
        loadRuns();
        return;
      }
    } catch (error) {
      console.error(error);
    }
    schedulePoll();
  }, POLL_MS);
}

function renderRun() {
  const view = state.view;
  document.getElementById("no-run").hidden = true;
  document.getElementById("run").hidden = false;
  document.getElementById("crumb").textContent = `${view.workflow ?? "run"} · ${view.run_id}`;
  renderHead(view);
  renderGraph(view, selectStep);
  renderLanes(view, ui());
  renderWaterfall(view, ui());
  if (!state.selected) renderRunPanel(view);
}

function renderHead(view) {
  const head = clear(document.getElementById("run-head"));
  const total = view.usage.total;
  const inputs = Object.entries(view.inputs || {});
  append(head, [
    el("div", { class: "run-title" },
      el("h1", {}, view.workflow ?? view.run_id),
      el("span", { class: `badge ${statusClass(view.status)}`, id: "run-status" }, view.live ? "running / unfinished" : view.status),
      el("code", { class: "muted" }, view.run_id)),
    el("dl", { class: "facts" },
      fact("started (UTC)", when(view.started)),
      fact("duration", view.live ? `${seconds(view.elapsed_s)} so far` : seconds(view.duration_s)),
      fact("steps", String(Object.keys(view.steps).length)),
      fact("spans", String(view.spans.length)),
      fact("model calls", String(total.calls)),
      fact("tokens in → out", tokens(total.input_tokens, total.output_tokens) || "0"),
      fact("cost", cost(total.cost_usd)),
      !view.live && view.citations && view.citations.total !== undefined
        ? fact("citations", `${view.citations.total} (${view.citations.unresolved} unresolved)`) : null),
    inputs.length
      ? el("div", { class: "inputs" }, el("span", { class: "muted" }, "inputs "),
        inputs.map(([key, value]) => el("span", { class: "input" }, el("b", {}, key), " = ", typeof value === "string" ? value : JSON.stringify(value))))
      : null,
    view.error ? el("pre", { class: "error" }, view.error) : null,
  ]);
}

function selectStep(step) {
  const span = state.view.spans.find((s) => s.kind === "invoke_agent" && s.step === step)
    ?? state.view.spans.find((s) => s.step === step);
  if (span) selectSpan(span.id, { scroll: true });
}

function toggleSpan(id) {
  if (state.collapsed.has(id)) state.collapsed.delete(id);
  else state.collapsed.add(id);
  renderWaterfall(state.view, ui());
}

function expandAll() {
  state.collapsed.clear();
  renderWaterfall(state.view, ui());
}

function collapseToAgents() {
  state.collapsed = new Set(state.view.spans.filter((s) => s.kind === "invoke_agent").map((s) => s.id));
  renderWaterfall(state.view, ui());
}

async function selectSpan(id, { scroll = false, refresh = true } = {}) {
  const view = state.view;
  const span = view.spans.find((s) => s.id === id);
  if (!span) return;
  state.selected = id;
  // Make the row visible: expand its ancestors.
  let parent = span.parent;
  let expanded = false;
  while (parent) {
    if (state.collapsed.delete(parent)) expanded = true;
    parent = view.spans.find((s) => s.id === parent)?.parent ?? null;
  }
  if (expanded) renderWaterfall(view, ui());
  for (const node of document.querySelectorAll(".selected")) node.classList.remove("selected");
  for (const node of document.querySelectorAll(`[data-span="${CSS.escape(id)}"]`)) node.classList.add("selected");
  if (scroll) document.querySelector(`.wf-row[data-span="${CSS.escape(id)}"]`)?.scrollIntoView({ block: "nearest" });
  writeHash(state.runId, id);
  if (!refresh && document.getElementById("panel").dataset.span === id) return;
  let detail;
  try {
    detail = await getJson(`/api/runs/${encodeURIComponent(state.runId)}/spans/${encodeURIComponent(id)}`);
  } catch (error) {
    console.error(error);
    return;
  }
  if (state.selected === id) renderPanel(detail, span);
}

function moveSelection(step) {
  const rows = [...document.querySelectorAll(".wf-row[data-span]")];
  if (!rows.length) return;
  const at = rows.findIndex((row) => row.dataset.span === state.selected);
  const next = rows[Math.min(Math.max(at === -1 ? 0 : at + step, 0), rows.length - 1)];
  selectSpan(next.dataset.span, { scroll: true });
}

function start() {
  document.addEventListener("keydown", (event) => {
    if (!state.view || event.target instanceof HTMLInputElement) return;
    if (event.key === "ArrowDown" || event.key === "j") moveSelection(1);
    else if (event.key === "ArrowUp" || event.key === "k") moveSelection(-1);
    else if ((event.key === "ArrowLeft" || event.key === "ArrowRight") && state.selected) {
      const span = state.view.spans.find((s) => s.id === state.selected);
      if (span && span.children && (event.key === "ArrowLeft") !== state.collapsed.has(span.id)) toggleSpan(span.id);
    } else return;
    event.preventDefault();
  });
  document.getElementById("run-filter").addEventListener("input", renderRuns);
  document.getElementById("expand-all").addEventListener("click", expandAll);
  document.getElementById("collapse-agents").addEventListener("click", collapseToAgents);
  window.addEventListener("hashchange", () => {
    const { run, span } = readHash();
    if (run && run !== state.runId) openRun(run, span);
    else if (span && span !== state.selected) selectSpan(span, { scroll: true });
  });
  loadRuns().then(() => {
    const { run, span } = readHash();
    if (run) openRun(run, span);
    else if (state.runs.length) openRun(state.runs[0].run_id);
  });
  setInterval(loadRuns, RUNS_POLL_MS);
}

start();
