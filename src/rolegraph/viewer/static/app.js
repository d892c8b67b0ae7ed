// rolegraph's run viewer: state, routing, the runs and evals lists, selection and live polling.
// Plain ES modules, no framework, no build step. Trace content is untrusted (it holds web page
// text): every value reaches the page as text (dom.js, markdown.js), never as HTML.
//
// Addresses (shareable): #run=ID[&span=S] the trace, #run=ID&tab=report[&output=O][&source=S] the
// outputs, #compare=A&with=B two runs side by side, #eval=ID an eval's report.

import { append, clear, compactTokens, cost, el, fact, getJson, seconds, shortWhen, statusClass, tokens, when } from "./dom.js";
import { renderCompare } from "./compare.js";
import { renderEval } from "./evalpage.js";
import { renderGraph } from "./graph.js";
import { renderPanel, renderRunPanel } from "./panel.js";
import { renderOutputs, showSource } from "./report.js";
import { renderLanes, renderWaterfall } from "./timeline.js";

const POLL_MS = 1000;

const RUNS_POLL_MS = 5000;

const SEARCH_DELAY_MS = 250;

const ERROR_STATUSES = new Set(["error", "tool_error", "failed", "cancelled"]);

const state = {
  runs: [],
  evals: [],
  side: "runs",
  page: null,
  runId: null,
  view: null,
  tab: "trace",
  output: null,
  source: null,
  selected: null,
  collapsed: new Set(),
  filter: null,
  stampTimer: null,
  searchTimer: null,
  spanSearch: 0,
};

// What the time views need to know of the selection, and how to change it.
function ui() {
  return { selected: state.selected, collapsed: state.collapsed, filter: state.filter, select: selectSpan, toggle: toggleSpan };
}

function readHash() {
  return Object.fromEntries(new URLSearchParams(location.hash.slice(1)));
}

function runHash() {
  const params = new URLSearchParams({ run: state.runId });
  if (state.tab === "report") {
    params.set("tab", "report");
    if (state.output) params.set("output", state.output);
    if (state.source) params.set("source", state.source);
  } else if (state.selected) params.set("span", state.selected);
  return `#${params}`;
}

function writeHash() {
  const hash = runHash();
  if (location.hash !== hash) history.replaceState(null, "", hash);
}

function showPage(page) {
  state.page = page;
  for (const id of ["run", "compare", "eval"]) document.getElementById(id).hidden = id !== page;
  document.getElementById("no-run").hidden = page !== null;
  if (page !== "run") document.getElementById("live-flag").hidden = true;
}

// Runs list

function runFilters() {
  const params = new URLSearchParams();
  const text = document.getElementById("run-filter").value.trim();
  const status = document.getElementById("status-filter").value;
  const days = document.getElementById("date-filter").value;
  if (text) params.set("q", text);
  if (status) params.set("status", status);
  if (days) params.set("since", String(Date.now() / 1000 - Number(days) * 86400));
  return params;
}

function filterKey() {
  return ["run-filter", "status-filter", "date-filter"].map((id) => document.getElementById(id).value.trim()).join("\n");
}

async function loadRuns() {
  const params = runFilters();
  const key = filterKey();
  let runs;
  try {
    runs = (await getJson(`/api/runs?${params}`)).runs;
  } catch (error) {
    console.error(error);
    return;
  }
  if (filterKey() !== key) return; // the filters changed while this was loading
  state.runs = runs;
  renderRuns(params);
}

function lineageMarks(lineage) {
  return [
    lineage?.replay_of ? el("span", { class: "mark mark-replay", title: `a replay of ${lineage.replay_of}` }, "replay") : null,
    lineage?.resumed ? el("span", { class: "mark mark-resumed", title: "resumed after an interruption" }, "resumed") : null,
  ];
}

function renderRuns(params) {
  const list = clear(document.getElementById("run-list"));
  const filtered = [...params.keys()].length > 0;
  const note = document.getElementById("runs-note");
  note.hidden = !filtered;
  note.textContent = params.get("q")
    ? `${state.runs.length} run${state.runs.length === 1 ? "" : "s"} matching “${params.get("q")}” (ids, workflows, span text)`
    : `${state.runs.length} run${state.runs.length === 1 ? "" : "s"} shown`;
  document.getElementById("runs-empty").hidden = state.runs.length > 0 || filtered;
  for (const run of state.runs) {
    const open = () => { location.hash = `#run=${encodeURIComponent(run.run_id)}`; };
    list.append(el("li", {
      class: `run-item${run.run_id === state.runId && state.page === "run" ? " current" : ""}`,
      "data-run": run.run_id,
      "data-status": run.status,
      tabindex: 0,
      onclick: open,
      onkeydown: (event) => event.key === "Enter" && open(),
    },
    el("div", { class: "run-line" }, el("span", { class: `dot ${statusClass(run.status)}`, title: run.status }),
      el("span", { class: "run-workflow", title: run.workflow ?? "" }, run.workflow ?? "–"),
      ...lineageMarks(run.lineage),
      el("span", { class: `run-status ${statusClass(run.status)}` }, run.status)),
    el("div", { class: "run-id", title: run.run_id }, run.run_id),
    run.problem ? el("div", { class: "run-problem" }, run.problem) : null,
    el("div", { class: "run-meta" },
      el("span", { title: when(run.started) }, shortWhen(run.started)),
      el("span", { class: "run-figures" },
        `${seconds(run.duration_s)} · ${compactTokens(run.input_tokens + run.output_tokens)} tok · ${cost(run.cost_usd)}`)),
    run.matches ? el("div", { class: "run-matches" }, `${run.matches} span${run.matches === 1 ? "" : "s"} match`) : null));
  }
}

// Evals list

async function loadEvals() {
  try {
    state.evals = (await getJson("/api/evals")).evals;
  } catch (error) {
    console.error(error);
    return;
  }
  const list = clear(document.getElementById("eval-list"));
  document.getElementById("evals-empty").hidden = state.evals.length > 0;
  for (const item of state.evals) {
    const open = () => { location.hash = `#eval=${encodeURIComponent(item.eval_id)}`; };
    list.append(el("li", {
      class: `run-item${state.page === "eval" && readHash().eval === item.eval_id ? " current" : ""}`,
      "data-eval": item.eval_id, tabindex: 0, onclick: open, onkeydown: (event) => event.key === "Enter" && open(),
    },
    el("div", { class: "run-line" },
      el("span", { class: `dot ${statusClass(item.finished ? (item.failed ? "failed" : "completed") : "unfinished")}` }),
      el("span", { class: "run-workflow", title: `${item.evalset ?? "eval"} on ${item.workflow ?? ""}` }, `${item.evalset ?? "eval"} · ${item.workflow ?? ""}`),
      el("span", { class: "run-status" }, item.finished ? `${item.runs} runs` : "unfinished")),
    el("div", { class: "run-id" }, item.eval_id),
    el("div", { class: "run-meta" }, el("span", {}, shortWhen(item.started)),
      item.finished ? el("span", {}, `${item.failed} failed`) : null)));
  }
}

function showSide(side) {
  state.side = side;
  document.getElementById("runs-pane").hidden = side !== "runs";
  document.getElementById("evals-pane").hidden = side !== "evals";
  for (const [id, name] of [["side-runs", "runs"], ["side-evals", "evals"]]) {
    document.getElementById(id).classList.toggle("current", side === name);
    document.getElementById(id).setAttribute("aria-pressed", String(side === name));
  }
  if (side === "evals") loadEvals();
}

// A run

async function openRun(runId, { span = null, tab = "trace", output = null, source = null } = {}) {
  if (state.runId !== runId) {
    state.selected = null;
    state.collapsed = new Set();
    state.filter = null;
    document.getElementById("span-search").value = "";
    document.getElementById("span-status").value = "";
  }
  state.runId = runId;
  state.tab = tab === "report" ? "report" : "trace";
  state.output = output;
  state.source = source;
  if (span) state.selected = span;
  showPage("run");
  renderRuns(runFilters());
  let view;
  try {
    view = await getJson(`/api/runs/${encodeURIComponent(runId)}`);
  } catch (error) {
    showPage(null);
    const damaged = state.runs.find((run) => run.run_id === runId && run.problem);
    document.getElementById("no-run").textContent = damaged
      ? `Run ${runId} is damaged: ${damaged.problem}`
      : `Run ${runId} not found.`;
    return;
  }
  if (state.runId !== runId) return;
  const first = state.view === null || state.view.run_id !== runId;
  state.view = view;
  if (first && view.spans.length > 400) {
    for (const s of view.spans) if (s.kind === "invoke_agent") state.collapsed.add(s.id);
  }
  writeHash();
  renderRun();
  if (span) selectSpan(span, { scroll: true });
  else if (state.selected) selectSpan(state.selected, { scroll: false, refresh: view.live });
  schedulePoll();
}

function schedulePoll() {
  clearTimeout(state.stampTimer);
  const view = state.view;
  document.getElementById("live-flag").hidden = !(view && view.live && state.page === "run");
  if (!view || !view.live || state.page !== "run") return;
  const runId = view.run_id;
  state.stampTimer = setTimeout(async () => {
    try {
      const now = await getJson(`/api/runs/${encodeURIComponent(runId)}/stamp`);
      if (state.runId !== runId || state.page !== "run") return;
      if (now.stamp !== state.view.stamp) {
        await openRun(runId, { tab: state.tab, output: state.output, source: state.source });
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
  document.getElementById("crumb").textContent = `${view.workflow ?? "run"} · ${view.run_id}`;
  renderHead(view);
  renderCompareChoice(view);
  showTab(state.tab);
}

function showTab(tab) {
  state.tab = tab;
  for (const name of ["trace", "report"]) {
    document.getElementById(`${name}-tab`).hidden = name !== tab;
    const button = document.getElementById(`tab-${name}`);
    button.classList.toggle("current", name === tab);
    button.setAttribute("aria-pressed", String(name === tab));
  }
  const view = state.view;
  if (tab === "trace") {
    // Drawn while visible: the graph and lanes size themselves to their cards.
    renderGraph(view, selectStep);
    renderLanes(view, ui());
    renderWaterfall(view, ui());
    updateSpanCount();
    if (!state.selected) renderRunPanel(view, openOutput);
    if (state.filter) applySpanFilter(); // the spans may have changed (a live run)
  } else {
    renderOutputs(view, navigation());
  }
  writeHash();
}

function navigation() {
  return {
    output: state.output,
    source: state.source,
    openOutput,
    openSource: (id) => {
      state.source = id;
      writeHash();
      showSource(state.view, id, navigation());
    },
    openSpan: (id) => {
      state.tab = "trace";
      state.source = null;
      showTab("trace");
      selectSpan(id, { scroll: true });
    },
  };
}

function openOutput(name) {
  state.output = name;
  state.source = null;
  if (state.tab !== "report") showTab("report");
  else {
    renderOutputs(state.view, navigation());
    writeHash();
  }
}

function renderHead(view) {
  const head = clear(document.getElementById("run-head"));
  const total = view.usage.total;
  const inputs = Object.entries(view.inputs || {});
  const lineage = view.lineage ?? {};
  append(head, [
    el("div", { class: "run-title" },
      el("h1", {}, view.workflow ?? view.run_id),
      el("span", { class: `badge ${statusClass(view.live ? "running" : view.status)}`, id: "run-status" }, view.live ? "running / unfinished" : view.status),
      lineage.replay_of
        ? el("span", { class: "badge mark-replay", id: "replay-of" }, "replay of ",
          el("a", { href: `#run=${encodeURIComponent(lineage.replay_of)}` }, lineage.replay_of), " · ",
          el("a", { href: `#compare=${encodeURIComponent(lineage.replay_of)}&with=${encodeURIComponent(view.run_id)}` }, "compare"))
        : null,
      lineage.resumed
        ? el("span", { class: "badge mark-resumed", id: "resumed", title: `${lineage.invocations} invocations` }, `resumed · ${lineage.invocations} invocations`)
        : null,
      el("code", { class: "muted run-id-code" }, view.run_id)),
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
    skippedLine(view.skipped_items ?? []),
    lineage.divergence
      ? el("p", { class: "divergence-line", id: "run-divergence" }, "This replay stopped at its first divergence from the recorded run: ", el("code", {}, lineage.divergence))
      : view.error ? el("pre", { class: "error" }, view.error) : null,
  ]);
}

// The for_each items the run went on without (on_item_error: skip), each leading to its failed attempt.
function skippedLine(skipped) {
  if (!skipped.length) return null;
  const label = (entry) => `${entry.step}[${entry.index}]${entry.item === undefined ? "" : ` ${typeof entry.item === "string" ? entry.item : JSON.stringify(entry.item)}`}`;
  return el("p", { class: "skipped-line", id: "run-skipped" },
    `${skipped.length} item${skipped.length === 1 ? "" : "s"} skipped (on_item_error: skip): `,
    skipped.flatMap((entry, n) => [n ? ", " : "", el("button", {
      type: "button", class: "linkish skipped-item", "data-step": entry.step, "data-index": String(entry.index),
      title: entry.error ?? "", disabled: entry.span ? null : "", onclick: () => entry.span && navigation().openSpan(entry.span),
    }, label(entry))]));
}

// The runs to compare with: the replayed run first, then the same workflow's runs, then the rest.
function renderCompareChoice(view) {
  const select = clear(document.getElementById("compare-select"));
  const others = state.runs.filter((r) => r.run_id !== view.run_id);
  const original = view.lineage?.replay_of;
  const rank = (r) => (r.run_id === original ? 0 : r.workflow === view.workflow ? 1 : 2);
  others.sort((x, y) => rank(x) - rank(y));
  if (original && !others.some((r) => r.run_id === original)) others.unshift({ run_id: original, workflow: view.workflow, started: null });
  for (const run of others) {
    select.append(el("option", { value: run.run_id }, `${run.run_id === original ? "original · " : ""}${run.workflow ?? ""} ${run.run_id}`));
  }
  document.getElementById("compare-go").disabled = !others.length;
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
  // Make the row visible: expand its ancestors, and drop a filter that hides it.
  let parent = span.parent;
  let expanded = false;
  while (parent) {
    if (state.collapsed.delete(parent)) expanded = true;
    parent = view.spans.find((s) => s.id === parent)?.parent ?? null;
  }
  if (state.filter && !state.filter.shown.has(id)) {
    state.filter = null;
    document.getElementById("span-search").value = "";
    document.getElementById("span-status").value = "";
    expanded = true;
    updateSpanCount();
  }
  if (expanded) renderWaterfall(view, ui());
  for (const node of document.querySelectorAll(".selected")) node.classList.remove("selected");
  for (const node of document.querySelectorAll(`[data-span="${CSS.escape(id)}"]`)) node.classList.add("selected");
  if (scroll) document.querySelector(`.wf-row[data-span="${CSS.escape(id)}"]`)?.scrollIntoView({ block: "nearest" });
  writeHash();
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

// Span search and status filter: matching spans and their ancestors stay, the rest hide.

async function applySpanFilter() {
  const view = state.view;
  const text = document.getElementById("span-search").value.trim();
  const status = document.getElementById("span-status").value;
  const ticket = ++state.spanSearch;
  if (!text && !status) {
    state.filter = null;
  } else {
    let hits = null;
    if (text) {
      try {
        const found = await getJson(`/api/runs/${encodeURIComponent(view.run_id)}/search?q=${encodeURIComponent(text)}`);
        hits = new Map(found.hits.map((h) => [h.id, h]));
      } catch (error) {
        console.error(error);
        return;
      }
    }
    if (ticket !== state.spanSearch || state.view !== view) return;
    const byId = new Map(view.spans.map((s) => [s.id, s]));
    const statusOk = (s) => !status || (status === "error" ? ERROR_STATUSES.has(s.status) : s.status === status);
    const matched = view.spans.filter((s) => (!hits || hits.has(s.id)) && statusOk(s)).map((s) => s.id);
    const shown = new Set();
    for (const id of matched) {
      for (let at = id; at && !shown.has(at); at = byId.get(at)?.parent ?? null) shown.add(at);
    }
    state.filter = { shown, matched: new Set(matched), hits: hits ?? new Map() };
  }
  renderWaterfall(view, ui());
  updateSpanCount();
}

function updateSpanCount() {
  const count = document.getElementById("span-count");
  count.textContent = state.filter ? `${state.filter.matched.size} of ${state.view.spans.length} spans match` : "";
}

function start() {
  document.addEventListener("keydown", (event) => {
    if (state.page !== "run" || state.tab !== "trace" || !state.view) return;
    if (event.target instanceof HTMLInputElement || event.target instanceof HTMLSelectElement) return;
    if (event.key === "ArrowDown" || event.key === "j") moveSelection(1);
    else if (event.key === "ArrowUp" || event.key === "k") moveSelection(-1);
    else if ((event.key === "ArrowLeft" || event.key === "ArrowRight") && state.selected) {
      const span = state.view.spans.find((s) => s.id === state.selected);
      if (span && span.children && (event.key === "ArrowLeft") !== state.collapsed.has(span.id)) toggleSpan(span.id);
    } else return;
    event.preventDefault();
  });
  const later = (fn) => () => {
    clearTimeout(state.searchTimer);
    state.searchTimer = setTimeout(fn, SEARCH_DELAY_MS);
  };
  document.getElementById("run-filter").addEventListener("input", later(loadRuns));
  document.getElementById("status-filter").addEventListener("change", loadRuns);
  document.getElementById("date-filter").addEventListener("change", loadRuns);
  document.getElementById("span-search").addEventListener("input", later(applySpanFilter));
  document.getElementById("span-status").addEventListener("change", applySpanFilter);
  document.getElementById("expand-all").addEventListener("click", expandAll);
  document.getElementById("collapse-agents").addEventListener("click", collapseToAgents);
  document.getElementById("side-runs").addEventListener("click", () => showSide("runs"));
  document.getElementById("side-evals").addEventListener("click", () => showSide("evals"));
  document.getElementById("tab-trace").addEventListener("click", () => { state.source = null; showTab("trace"); });
  document.getElementById("tab-report").addEventListener("click", () => showTab("report"));
  document.getElementById("compare-go").addEventListener("click", () => {
    const other = document.getElementById("compare-select").value;
    if (other) location.hash = `#compare=${encodeURIComponent(state.runId)}&with=${encodeURIComponent(other)}`;
  });
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      if (state.page === "run" && state.tab === "trace" && state.view) {
        renderGraph(state.view, selectStep);
        renderLanes(state.view, ui());
      }
    }, 150);
  });
  window.addEventListener("hashchange", route);
  loadRuns().then(() => {
    if (!location.hash && state.runs.length) location.hash = `#run=${encodeURIComponent(state.runs[0].run_id)}`;
    else route();
  });
  setInterval(loadRuns, RUNS_POLL_MS);
}

function route() {
  const hash = readHash();
  if (hash.compare && hash.with) {
    clearTimeout(state.stampTimer);
    showPage("compare");
    renderRuns(runFilters());
    renderCompare(hash.compare, hash.with);
  } else if (hash.eval) {
    clearTimeout(state.stampTimer);
    showSide("evals");
    showPage("eval");
    renderEval(hash.eval).then(loadEvals);
  } else if (hash.run) {
    if (hash.run === state.runId && state.page === "run" && state.view) {
      state.output = hash.output ?? null;
      state.source = hash.source ?? null;
      if (hash.tab === "report") showTab("report");
      else {
        if (state.tab !== "trace") showTab("trace");
        if (hash.span && hash.span !== state.selected) selectSpan(hash.span, { scroll: true });
      }
      return;
    }
    openRun(hash.run, { span: hash.span ?? null, tab: hash.tab, output: hash.output ?? null, source: hash.source ?? null });
  }
}

start();
