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

export function compactTokens(n) {
  return n >= 1000 ? `${(n / 1000).toFixed(n >= 100000 ? 0 : 1)}k` : String(n);
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

// "12-01 20:38" (UTC), with the year only when it is not this year's: for the narrow runs list.
export function shortWhen(iso) {
  if (!iso) return "–";
  const text = new Date(iso).toISOString();
  const year = text.slice(0, 4) === String(new Date().getUTCFullYear()) ? "" : `${text.slice(0, 4)}-`;
  return `${year}${text.slice(5, 10)} ${text.slice(11, 16)}`;
}

// Ticks of a time axis from 0 to `total` seconds: a round step, and one format for every tick
// (ms below 2 s, seconds below 2 min, m:ss beyond), so "50.00 s" never sits next to "2m 30s".
const MINUTE_STEPS = [1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200];

export function axisTicks(total, count = 6) {
  const raw = Math.max(total / count, 1e-9);
  let step;
  if (total >= 120) step = MINUTE_STEPS.find((s) => s >= raw) ?? Math.ceil(raw / 3600) * 3600;
  else {
    const power = 10 ** Math.floor(Math.log10(raw));
    step = [1, 2, 5, 10].map((f) => f * power).find((s) => s >= raw);
  }
  const format = tickFormat(total, step);
  const ticks = [];
  for (let i = 0; i * step <= total + 1e-9; i++) ticks.push({ t: i * step, label: format(i * step) });
  return ticks;
}

function tickFormat(total, step) {
  if (total < 2) {
    const digits = step * 1000 < 1 ? 2 : step * 1000 < 10 ? 1 : 0;
    return (t) => `${(t * 1000).toFixed(digits)} ms`;
  }
  if (total < 120) {
    const digits = step < 1 ? Math.min(3, Math.ceil(-Math.log10(step) - 1e-9)) : 0;
    return (t) => `${t.toFixed(digits)} s`;
  }
  const hours = total >= 3600; // h:mm:ss on every tick of an axis that reaches an hour
  return (t) => {
    const whole = Math.round(t);
    const h = Math.floor(whole / 3600), m = Math.floor((whole % 3600) / 60), s = whole % 60;
    const mm = hours ? String(m).padStart(2, "0") : String(m + 60 * h);
    return `${hours ? `${h}:` : ""}${mm}:${String(s).padStart(2, "0")}`;
  };
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

// Cut an SVG text element's content (with "…") until it is at most `width` pixels wide (it must be in the page).
export function fitText(node, width) {
  const full = node.textContent;
  if (node.getComputedTextLength() <= width) return;
  let low = 0, high = full.length;
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    node.textContent = `${full.slice(0, mid)}…`;
    if (node.getComputedTextLength() <= width) low = mid;
    else high = mid - 1;
  }
  node.textContent = low ? `${full.slice(0, low)}…` : "…";
}

const canvas = document.createElement("canvas");

// The width in pixels of `text` in `font` (a CSS font shorthand).
export function textWidth(text, font) {
  const context = canvas.getContext("2d");
  context.font = font;
  return context.measureText(text).width;
}

export function runLink(runId, extra = {}) {
  const params = new URLSearchParams({ run: runId, ...extra });
  return `#${params}`;
}

export function badgeFor(status) {
  return el("span", { class: `badge ${statusClass(status)}` }, status);
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
