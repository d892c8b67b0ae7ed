// The workflow graph as SVG: layers and rows come from the server (viewer/layout.py). Nodes are as wide
// as the card allows (never wider than needed, never scrolled sideways: below the narrowest node width
// the drawing scales down); names that do not fit are cut with "…" and shown whole in the tooltip.
// Route edges say what each route decided over the run: fired, blocked by its max_times, or not taken.

import { clear, el, fitText, statusClass, svg } from "./dom.js";

const NODE_MAX = 180;

const NODE_MIN = 104;

const NODE_H = 46;

const GAP_X = 36;

const GAP_Y = 18;

const PAD = 12;

const ROUTE_SPACE = 30;

export function routeState(decisions) {
  if (!decisions) return { state: "unused", label: "route: never evaluated" };
  const { fired, blocked, not_matched: notMatched, max_times: max } = decisions;
  const parts = [];
  if (fired) parts.push(`fired ×${fired}`);
  if (blocked) parts.push(`blocked ×${blocked}${max !== undefined && max !== null ? ` (max ${max})` : ""}`);
  if (!fired && !blocked && notMatched) parts.push("not taken");
  const state = fired ? "fired" : blocked ? "blocked" : "not-taken";
  return { state, label: parts.join(", ") || "not taken" };
}

export function renderGraph(view, onStep) {
  const box = clear(document.getElementById("graph"));
  const graph = view.graph;
  const note = document.getElementById("graph-note");
  note.textContent = graph.note ? `— ${graph.note}` : "";
  note.title = graph.note ?? "";
  if (!graph.nodes.length) {
    box.append(el("p", { class: "empty" }, "No steps recorded yet."));
    return;
  }
  const rows = Math.max(...graph.nodes.map((n) => n.rows));
  const layers = Math.max(...graph.nodes.map((n) => n.layer)) + 1;
  const routes = graph.edges.filter((e) => e.kind === "route");
  const top = PAD + (routes.length ? ROUTE_SPACE : 0);
  // A graph too wide for its half of the overview gets the whole width (the lanes go below it).
  const overview = box.closest(".overview");
  const needed = layers * NODE_MIN + (layers - 1) * GAP_X + 2 * PAD;
  overview?.classList.remove("stacked");
  if (overview && needed > box.clientWidth - 8) overview.classList.add("stacked");
  const available = Math.max(box.clientWidth - 8, 200);
  const nodeW = Math.max(NODE_MIN, Math.min(NODE_MAX, Math.floor((available - 2 * PAD - (layers - 1) * GAP_X) / layers)));
  const width = layers * nodeW + (layers - 1) * GAP_X + 2 * PAD;
  const height = top + rows * NODE_H + (rows - 1) * GAP_Y + PAD;
  const place = new Map();
  for (const node of graph.nodes) {
    const offset = ((rows - node.rows) * (NODE_H + GAP_Y)) / 2;
    place.set(node.id, { x: PAD + node.layer * (nodeW + GAP_X), y: top + offset + node.row * (NODE_H + GAP_Y) });
  }
  // Drawn at its natural size when it fits; scaled down (never scrolled) when it does not.
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "graph-svg", role: "img", "aria-label": "workflow graph" });
  root.style.width = `${Math.min(width, available)}px`;
  root.append(svg("defs", {},
    marker("arrow", "arrow-head"), marker("arrow-fired", "arrow-head fired"), marker("arrow-quiet", "arrow-head quiet")));
  for (const edge of graph.edges) {
    const a = place.get(edge.source);
    const b = place.get(edge.target);
    if (a && b) root.append(...drawEdge(edge, a, b, nodeW));
  }
  const texts = [];
  for (const node of graph.nodes) {
    const { x, y } = place.get(node.id);
    const items = node.items ? `${node.items} items` : null;
    const skipped = node.skipped ? `${node.skipped} skipped` : null;
    const detail = [node.role, items, skipped, node.status].filter(Boolean).join(" · ");
    const name = svg("text", { x: 10, y: 19, class: "node-name" }, node.id);
    const sub = svg("text", { x: 10, y: 36, class: "node-detail" }, detail);
    root.append(svg("g", {
      class: `node ${statusClass(node.status)}${node.skipped ? " has-skipped" : ""}`,
      "data-step": node.id,
      "data-status": node.status,
      "data-skipped": String(node.skipped ?? 0),
      transform: `translate(${x},${y})`,
      onclick: () => onStep(node.id),
    },
    svg("title", {}, `${node.id}: ${detail}`),
    svg("rect", { width: nodeW, height: NODE_H, rx: 6 }),
    name, sub));
    // The status is the node's colour too: drop it, then the role, before cutting letters.
    texts.push([name, [node.id]], [sub, [detail, [node.role, items, skipped].filter(Boolean).join(" · "),
      [items, skipped].filter(Boolean).join(" · "), node.role ?? ""]]);
  }
  box.append(root);
  for (const [text, variants] of texts) {
    const fits = variants.find((v) => { text.textContent = v; return text.getComputedTextLength() <= nodeW - 18; });
    if (fits === undefined) fitText(text, nodeW - 18);
  }
}

function marker(id, cls) {
  return svg("marker", { id, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
    svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: cls }));
}

function drawEdge(edge, a, b, nodeW) {
  if (edge.kind !== "route") {
    const x1 = a.x + nodeW, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2;
    const mid = (x1 + x2) / 2;
    return [svg("path", { d: `M ${x1} ${y1} C ${mid} ${y1}, ${mid} ${y2}, ${x2 - 2} ${y2}`, class: "edge edge-data", "marker-end": "url(#arrow)" })];
  }
  const { state, label } = routeState(edge.decisions);
  const x1 = a.x + nodeW / 2, y1 = a.y, x2 = b.x + nodeW / 2, y2 = b.y;
  const lift = Math.min(a.y, b.y) - ROUTE_SPACE + 6;
  const arrow = state === "fired" ? "url(#arrow-fired)" : "url(#arrow-quiet)";
  const when = edge.decisions?.when ? ` when ${edge.decisions.when}` : "";
  return [
    svg("path", {
      d: `M ${x1} ${y1} C ${x1} ${lift}, ${x2} ${lift}, ${x2} ${y2}`,
      class: `edge edge-route route-${state}`,
      "data-route": `${edge.source}->${edge.target}`,
      "data-state": state,
      "marker-end": arrow,
    }, svg("title", {}, `route ${edge.source} → ${edge.target}${when}: ${label}`)),
    svg("text", {
      x: (x1 + x2) / 2, y: lift + 4, class: `route-label route-${state}`, "text-anchor": "middle", "data-route": `${edge.source}->${edge.target}`,
    }, label),
  ];
}
