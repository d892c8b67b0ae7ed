// rolegraph's run viewer. Plain DOM, no framework, no build step.
// Trace content is untrusted (it holds web page text): every value reaches the page
// through text nodes (el(), textContent), never through innerHTML.

const SVG = "http://www.w3.org/2000/svg";
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

// ---------- small helpers ----------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "style") Object.assign(node.style, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, String(value));
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function clear(node) {
  node.replaceChildren();
  return node;
}

async function getJson(url) {
  const response = await fetch(url, { headers: { accept: "application/json" } });
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.json();
}

function seconds(value) {
  if (value === null || value === undefined) return "–";
  if (value === 0) return "0";
  if (value < 0.001) return `${(value * 1e6).toFixed(0)} µs`;
  if (value < 1) return `${(value * 1000).toFixed(value < 0.01 ? 2 : 0)} ms`;
  if (value < 120) return `${value.toFixed(2)} s`;
  return `${Math.floor(value / 60)}m ${Math.round(value % 60)}s`;
}

function tokens(input, output) {
  return input || output ? `${input.toLocaleString()} → ${output.toLocaleString()}` : "";
}

function compact(n) {
  return n >= 10000 ? `${(n / 1000).toFixed(n >= 100000 ? 0 : 1)}k` : n.toLocaleString();
}

function shortTokens(input, output) {
  return input || output ? `${compact(input)} → ${compact(output)}` : "";
}

function cost(value) {
  if (value === null || value === undefined) return "?";
  return value === 0 ? "$0" : `$${value.toFixed(value < 0.01 ? 5 : 4)}`;
}

function when(iso) {
  if (!iso) return "–";
  const date = new Date(iso);
  return date.toISOString().replace("T", " ").slice(0, 19);
}

function pretty(value) {
  if (typeof value === "string") {
    const trimmed = value.trim();
    if ((trimmed.startsWith("{") && trimmed.endsWith("}")) || (trimmed.startsWith("[") && trimmed.endsWith("]"))) {
      try {
        return JSON.stringify(JSON.parse(trimmed), null, 2);
      } catch {
        return value;
      }
    }
    return value;
  }
  return JSON.stringify(value, null, 2);
}

function stepLabel(span) {
  if (!span.step) return null;
  return span.item === null || span.item === undefined ? span.step : `${span.step}[${span.item}]`;
}

function statusClass(status) {
  return `status-${String(status).replace(/[^a-z_]/g, "")}`;
}

// ---------- routing (#run=<id>&span=<id>) ----------

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

// ---------- runs list ----------

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

// ---------- one run ----------

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
  renderGraph(view);
  renderLanes(view);
  renderWaterfall(view);
  if (!state.selected) renderRunPanel(view);
}

function renderRunPanel(view) {
  const panel = clear(document.getElementById("panel"));
  delete panel.dataset.span;
  const usage = view.usage;
  const table = (title, rows) => {
    const entries = Object.entries(rows);
    if (!entries.length) return null;
    return el("section", { class: "field", "data-field": `usage by ${title}` }, el("h3", {}, `usage by ${title}`),
      el("table", { class: "usage" },
        el("tr", {}, el("th", {}, title), el("th", {}, "calls"), el("th", {}, "in"), el("th", {}, "out"), el("th", {}, "cost")),
        entries.map(([key, total]) => el("tr", {},
          el("td", {}, key), el("td", {}, String(total.calls)), el("td", {}, total.input_tokens.toLocaleString()),
          el("td", {}, total.output_tokens.toLocaleString()), el("td", {}, cost(total.cost_usd))))));
  };
  const outputs = Object.entries(view.outputs || {});
  append(panel, [
    el("p", { class: "hint-line" }, "Click a span (or a step in the graph) to see its thought, messages, tool calls, sources, tokens and cost. ↑/↓ move through the spans."),
    table("step", usage.by_step),
    table("role", usage.by_role),
    table("model", usage.by_model),
    outputs.length
      ? el("section", { class: "field", "data-field": "outputs" }, el("h3", {}, "outputs"),
        el("ul", { class: "sources" }, outputs.map(([name, path]) => el("li", {}, el("b", {}, name), " ", el("code", {}, String(path).split("/").pop())))))
      : null,
  ]);
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

function fact(label, value) {
  return el("div", {}, el("dt", {}, label), el("dd", {}, value));
}

// ---------- workflow graph (SVG; layout from the server) ----------

const NODE_W = 150;
const NODE_H = 46;
const GAP_X = 40;
const GAP_Y = 18;

function renderGraph(view) {
  const box = clear(document.getElementById("graph"));
  const graph = view.graph;
  document.getElementById("graph-note").textContent = graph.note ? `— ${graph.note}` : "";
  if (!graph.nodes.length) {
    box.append(el("p", { class: "empty" }, "No steps recorded yet."));
    return;
  }
  const rows = Math.max(...graph.nodes.map((n) => n.rows));
  const layers = Math.max(...graph.nodes.map((n) => n.layer)) + 1;
  const height = rows * NODE_H + (rows - 1) * GAP_Y + 24;
  const width = layers * NODE_W + (layers - 1) * GAP_X + 24;
  const place = new Map();
  for (const node of graph.nodes) {
    const offset = ((rows - node.rows) * (NODE_H + GAP_Y)) / 2;
    place.set(node.id, { x: 12 + node.layer * (NODE_W + GAP_X), y: 12 + offset + node.row * (NODE_H + GAP_Y) });
  }
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "graph-svg", role: "img", "aria-label": "workflow graph" });
  root.style.maxWidth = `${width}px`;
  root.style.minWidth = `${Math.round(width * 0.8)}px`; // below that, scroll rather than shrink the text
  root.style.maxHeight = `${Math.max(height, 140)}px`;
  root.append(svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
    svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrow-head" }))));
  for (const edge of graph.edges) {
    const a = place.get(edge.source);
    const b = place.get(edge.target);
    if (!a || !b) continue;
    let d;
    if (edge.kind === "route") {
      const x1 = a.x + NODE_W / 2, y1 = a.y, x2 = b.x + NODE_W / 2, y2 = b.y;
      const lift = Math.min(a.y, b.y) - 10;
      d = `M ${x1} ${y1} C ${x1} ${lift}, ${x2} ${lift}, ${x2} ${y2}`;
    } else {
      const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2;
      const mid = (x1 + x2) / 2;
      d = `M ${x1} ${y1} C ${mid} ${y1}, ${mid} ${y2}, ${x2 - 2} ${y2}`;
    }
    root.append(svg("path", { d, class: `edge edge-${edge.kind === "route" ? "route" : "data"}`, "marker-end": "url(#arrow)" }));
  }
  for (const node of graph.nodes) {
    const { x, y } = place.get(node.id);
    const detail = [node.role, node.items ? `${node.items} items` : null, node.status].filter(Boolean).join(" · ");
    const group = svg("g", {
      class: `node ${statusClass(node.status)}`,
      "data-step": node.id,
      "data-status": node.status,
      transform: `translate(${x},${y})`,
      onclick: () => selectStep(node.id),
    },
    svg("title", {}, `${node.id}: ${node.status}`),
    svg("rect", { width: NODE_W, height: NODE_H, rx: 6 }),
    svg("text", { x: 10, y: 19, class: "node-name" }, clip(node.id, 17)),
    svg("text", { x: 10, y: 36, class: "node-detail" }, clip(detail, 24)));
    root.append(group);
  }
  box.append(root);
}

function clip(text, n) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

function selectStep(step) {
  const span = state.view.spans.find((s) => s.kind === "invoke_agent" && s.step === step)
    ?? state.view.spans.find((s) => s.step === step);
  if (span) selectSpan(span.id, { scroll: true });
}

// ---------- step lanes ----------

function timeScale(view) {
  return Math.max(view.elapsed_s, 1e-6);
}

function renderLanes(view) {
  const box = clear(document.getElementById("lanes"));
  if (!view.lanes.length) {
    box.append(el("p", { class: "empty" }, "No agent has started yet."));
    return;
  }
  const total = timeScale(view);
  const byId = new Map(view.spans.map((s) => [s.id, s]));
  const count = Math.max(...view.lanes.map((l) => l.lane)) + 1;
  const lanes = Array.from({ length: count }, (_, i) => el("div", { class: "lane", "data-lane": i }));
  for (const entry of view.lanes) {
    const span = byId.get(entry.span);
    const left = (span.start / total) * 100;
    const width = Math.max(((entry.end - span.start) / total) * 100, 0.4);
    const status = span.status === "unfinished" ? "running" : span.status === "ok" ? "completed" : span.status;
    const label = stepLabel(span) ?? span.name;
    lanes[entry.lane].append(el("div", {
      class: `lane-bar ${statusClass(status)}${span.id === state.selected ? " selected" : ""}`,
      "data-span": span.id,
      "data-step": span.step ?? "",
      style: { left: `${left}%`, width: `${width}%` },
      title: `${label} · ${seconds(span.duration_s)} · ${span.status}`,
      onclick: () => selectSpan(span.id, { scroll: true }),
    }, el("span", {}, label)));
  }
  box.append(axis(total), ...lanes);
  const px = box.clientWidth - 20;
  for (const bar of box.querySelectorAll(".lane-bar")) {
    if ((parseFloat(bar.style.width) / 100) * px < 8 * bar.textContent.length + 8) {
      bar.classList.add("narrow");
      if (parseFloat(bar.style.left) > 75) bar.classList.add("at-end");
    }
  }
}

function axis(total) {
  const ticks = el("div", { class: "axis" });
  const step = niceStep(total / 6);
  for (let t = 0; t <= total + 1e-9; t += step) {
    ticks.append(el("span", { class: "tick", style: { left: `${(t / total) * 100}%` } }, seconds(t)));
  }
  return ticks;
}

function niceStep(raw) {
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const factor of [1, 2, 5, 10]) if (factor * power >= raw) return factor * power;
  return 10 * power;
}

// ---------- waterfall ----------

function hiddenByCollapse(view) {
  const hidden = new Set();
  for (const span of view.spans) {
    if ((span.parent && hidden.has(span.parent)) || (span.parent && state.collapsed.has(span.parent))) hidden.add(span.id);
  }
  return hidden;
}

function renderWaterfall(view) {
  const box = clear(document.getElementById("waterfall"));
  const total = timeScale(view);
  const hidden = hiddenByCollapse(view);
  box.append(el("div", { class: "wf-row wf-header" },
    el("div", { class: "wf-name" }, "span"),
    el("div", { class: "wf-num" }, "duration"),
    el("div", { class: "wf-num" }, "tokens"),
    el("div", { class: "wf-track" }, axis(total))));
  for (const span of view.spans) {
    if (hidden.has(span.id)) continue;
    const end = span.end ?? view.elapsed_s;
    const left = (span.start / total) * 100;
    const width = Math.max(((end - span.start) / total) * 100, 0.15);
    const open = !state.collapsed.has(span.id);
    const toggle = span.children
      ? el("button", { type: "button", class: "toggle", "aria-label": open ? "collapse" : "expand", onclick: (event) => { event.stopPropagation(); toggleSpan(span.id); } }, open ? "▾" : "▸")
      : el("span", { class: "toggle" });
    const step = stepLabel(span);
    const showStep = step && (span.kind === "invoke_agent" || span.kind === "plan" || span.kind === "checkpoint" || span.kind === "route");
    box.append(el("div", {
      class: `wf-row kind-${span.kind}${span.id === state.selected ? " selected" : ""}${span.status !== "ok" ? ` ${statusClass(span.status)}` : ""}`,
      role: "treeitem",
      "data-span": span.id,
      "data-kind": span.kind,
      "data-step": span.step ?? "",
      onclick: () => selectSpan(span.id, { scroll: false }),
    },
    el("div", { class: "wf-name", style: { paddingLeft: `${6 + span.depth * 14}px` }, title: span.name },
      toggle,
      el("span", { class: `chip chip-${span.kind}` }, KIND_LABEL[span.kind] ?? span.kind),
      el("span", { class: "span-name" }, span.name.replace(/^(invoke_agent|invoke_workflow|execute_tool|chat) /, "")),
      showStep ? el("span", { class: "step-tag" }, step) : null,
      span.status !== "ok" && !(view.live && span.status === "unfinished")
        ? el("span", { class: `status-tag ${statusClass(span.status)}` }, span.status) : null,
      span.hint ? el("span", { class: "hint" }, span.hint) : null),
    el("div", { class: "wf-num", title: span.end === null ? "still open" : null },
      span.end === null ? `${seconds(view.elapsed_s - span.start)}…` : seconds(span.duration_s)),
    el("div", { class: "wf-num", title: tokens(span.input_tokens, span.output_tokens) || null },
      shortTokens(span.input_tokens, span.output_tokens)),
    el("div", { class: "wf-track" },
      el("div", { class: `bar bar-${span.kind}${span.end === null ? " open" : ""}`, style: { left: `${left}%`, width: `${width}%` } }))));
  }
}

const KIND_LABEL = {
  invoke_workflow: "run",
  invoke_agent: "agent",
  react_step: "step",
  chat: "model",
  execute_tool: "tool",
  run_guardrail: "check",
  checkpoint: "save",
  route: "route",
  plan: "fan-out",
};

function toggleSpan(id) {
  if (state.collapsed.has(id)) state.collapsed.delete(id);
  else state.collapsed.add(id);
  renderWaterfall(state.view);
}

function expandAll() {
  state.collapsed.clear();
  renderWaterfall(state.view);
}

function collapseToAgents() {
  state.collapsed = new Set(state.view.spans.filter((s) => s.kind === "invoke_agent").map((s) => s.id));
  renderWaterfall(state.view);
}

// ---------- span panel ----------

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
  if (expanded) renderWaterfall(view);
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

const SHOWN = new Set([
  "rolegraph.thought", "rolegraph.task", "rolegraph.input.last", "rolegraph.output.text", "rolegraph.output.tool_calls",
  "rolegraph.tool.arguments", "rolegraph.tool.result", "rolegraph.output", "rolegraph.problem", "rolegraph.tool.sources",
]);

function renderPanel(detail, span) {
  const panel = clear(document.getElementById("panel"));
  panel.dataset.span = detail.id;
  const a = detail.attributes;
  const step = stepLabel(span);
  append(panel, [
    el("div", { class: "panel-head" },
      el("span", { class: `chip chip-${detail.kind}` }, KIND_LABEL[detail.kind] ?? detail.kind),
      el("h2", {}, detail.name),
      el("span", { class: `badge ${statusClass(detail.status)}` }, detail.status)),
    el("dl", { class: "facts compact" },
      step ? fact("step", step) : null,
      a["gen_ai.agent.name"] ? fact("role", a["gen_ai.agent.name"]) : null,
      a["gen_ai.request.model"] ? fact("model", a["gen_ai.request.model"]) : null,
      a["gen_ai.tool.name"] ? fact("tool", a["gen_ai.tool.name"]) : null,
      fact("starts at", `+${seconds(span.start)}`),
      fact("duration", detail.duration_s === null ? "unfinished" : seconds(detail.duration_s)),
      detail.input_tokens || detail.output_tokens ? fact(detail.kind === "chat" ? "tokens in → out" : "tokens below", tokens(detail.input_tokens, detail.output_tokens)) : null,
      detail.input_tokens || detail.output_tokens ? fact("cost", cost(detail.cost_usd)) : null,
      a["rolegraph.action"] ? fact("action", a["rolegraph.action"]) : null,
      a["rolegraph.input.messages"] !== undefined ? fact("messages sent", String(a["rolegraph.input.messages"])) : null,
      a["gen_ai.response.finish_reasons"] ? fact("finish", String(a["gen_ai.response.finish_reasons"])) : null),
    detail.error ? section("error", detail.error, "error") : null,
    a["rolegraph.thought"] ? section("thought", a["rolegraph.thought"], "thought") : null,
    a["rolegraph.task"] ? section("task", a["rolegraph.task"]) : null,
    a["rolegraph.input.last"] ? section("last message sent", a["rolegraph.input.last"]) : null,
    a["rolegraph.output.text"] ? section("model output", a["rolegraph.output.text"]) : null,
    toolCalls(a["rolegraph.output.tool_calls"]),
    a["rolegraph.tool.arguments"] !== undefined ? section("tool arguments", pretty(a["rolegraph.tool.arguments"]), "code") : null,
    a["rolegraph.tool.result"] !== undefined ? section(a["rolegraph.tool.is_error"] ? "tool result (error)" : "tool result", pretty(a["rolegraph.tool.result"]), a["rolegraph.tool.is_error"] ? "error" : "") : null,
    sources(detail.sources),
    a["rolegraph.problem"] ? section("problem", a["rolegraph.problem"], "error") : null,
    a["rolegraph.output"] !== undefined ? section("answer", pretty(a["rolegraph.output"]), "code") : null,
    attributes(a),
  ]);
}

function section(title, text, kind = "") {
  return el("section", { class: `field ${kind}`, "data-field": title },
    el("h3", {}, title),
    el("pre", {}, typeof text === "string" ? text : pretty(text)));
}

function toolCalls(calls) {
  if (!Array.isArray(calls) || !calls.length) return null;
  return el("section", { class: "field", "data-field": "tool calls" }, el("h3", {}, "tool calls"),
    calls.map((call) => el("div", { class: "call" }, el("b", {}, String(call?.name ?? "?")), el("pre", {}, pretty(call?.arguments ?? "")))));
}

function sources(list) {
  if (!list || !list.length) return null;
  return el("section", { class: "field", "data-field": "sources" }, el("h3", {}, `sources (${list.length})`),
    el("ul", { class: "sources" }, list.map((s) => el("li", {},
      el("code", {}, s.id),
      s.title ? el("span", {}, ` ${s.title}`) : null,
      s.year ? el("span", { class: "muted" }, ` (${s.year})`) : null,
      s.url ? el("div", { class: "muted url" }, s.url) : null))));
}

function attributes(a) {
  const rest = Object.entries(a).filter(([key]) => !SHOWN.has(key));
  if (!rest.length) return null;
  return el("details", { class: "field attrs" }, el("summary", {}, `all attributes (${rest.length})`),
    el("table", {}, rest.map(([key, value]) => el("tr", {}, el("th", {}, key), el("td", {}, el("pre", {}, pretty(value)))))));
}

function moveSelection(step) {
  const rows = [...document.querySelectorAll(".wf-row[data-span]")];
  if (!rows.length) return;
  const at = rows.findIndex((row) => row.dataset.span === state.selected);
  const next = rows[Math.min(Math.max(at === -1 ? 0 : at + step, 0), rows.length - 1)];
  selectSpan(next.dataset.span, { scroll: true });
}

// ---------- start ----------

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
