// DOM building and formatting for the viewer. Values become text nodes, never markup:
// trace content is untrusted (it holds web page text).

export const SVG = "http://www.w3.org/2000/svg";

export function el(tag, attrs = {}, ...children) {
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

export function append(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, String(value));
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

export function clear(node) {
  node.replaceChildren();
  return node;
}

export async function getJson(url) {
  const response = await fetch(url, { headers: { accept: "application/json" } });
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.json();
}

export function seconds(value) {
  if (value === null || value === undefined) return "–";
  if (value === 0) return "0";
  if (value < 0.001) return `${(value * 1e6).toFixed(0)} µs`;
  if (value < 1) return `${(value * 1000).toFixed(value < 0.01 ? 2 : 0)} ms`;
  if (value < 120) return `${value.toFixed(2)} s`;
  return `${Math.floor(value / 60)}m ${Math.round(value % 60)}s`;
}

export function tokens(input, output) {
  return input || output ? `${input.toLocaleString()} → ${output.toLocaleString()}` : "";
}

export function compact(n) {
  return n >= 10000 ? `${(n / 1000).toFixed(n >= 100000 ? 0 : 1)}k` : n.toLocaleString();
}

export function shortTokens(input, output) {
  return input || output ? `${compact(input)} → ${compact(output)}` : "";
}

export function cost(value) {
  if (value === null || value === undefined) return "?";
  return value === 0 ? "$0" : `$${value.toFixed(value < 0.01 ? 5 : 4)}`;
}

export function when(iso) {
  if (!iso) return "–";
  const date = new Date(iso);
  return date.toISOString().replace("T", " ").slice(0, 19);
}

export function pretty(value) {
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

export function stepLabel(span) {
  if (!span.step) return null;
  return span.item === null || span.item === undefined ? span.step : `${span.step}[${span.item}]`;
}

export function statusClass(status) {
  return `status-${String(status).replace(/[^a-z_]/g, "")}`;
}

export function clip(text, n) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

export function fact(label, value) {
  return el("div", {}, el("dt", {}, label), el("dd", {}, value));
}

export const KIND_LABEL = {
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
