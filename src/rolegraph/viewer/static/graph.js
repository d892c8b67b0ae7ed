// The workflow graph as SVG: layers and rows come from the server (viewer/layout.py).

import { clear, clip, el, statusClass, svg } from "./dom.js";

const NODE_W = 150;

const NODE_H = 46;

const GAP_X = 40;

const GAP_Y = 18;

export function renderGraph(view, onStep) {
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
      onclick: () => onStep(node.id),
    },
    svg("title", {}, `${node.id}: ${node.status}`),
    svg("rect", { width: NODE_W, height: NODE_H, rx: 6 }),
    svg("text", { x: 10, y: 19, class: "node-name" }, clip(node.id, 17)),
    svg("text", { x: 10, y: 36, class: "node-detail" }, clip(detail, 24)));
    root.append(group);
  }
  box.append(root);
}
