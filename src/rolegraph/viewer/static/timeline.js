// Time views of a run: step lanes (parallel agents side by side) and the span waterfall.

import { KIND_LABEL, clear, el, seconds, shortTokens, stepLabel, statusClass, tokens } from "./dom.js";

function timeScale(view) {
  return Math.max(view.elapsed_s, 1e-6);
}

export function renderLanes(view, ui) {
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
      class: `lane-bar ${statusClass(status)}${span.id === ui.selected ? " selected" : ""}`,
      "data-span": span.id,
      "data-step": span.step ?? "",
      style: { left: `${left}%`, width: `${width}%` },
      title: `${label} · ${seconds(span.duration_s)} · ${span.status}`,
      onclick: () => ui.select(span.id, { scroll: true }),
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

function hiddenByCollapse(view, ui) {
  const hidden = new Set();
  for (const span of view.spans) {
    if ((span.parent && hidden.has(span.parent)) || (span.parent && ui.collapsed.has(span.parent))) hidden.add(span.id);
  }
  return hidden;
}

export function renderWaterfall(view, ui) {
  const box = clear(document.getElementById("waterfall"));
  const total = timeScale(view);
  const hidden = hiddenByCollapse(view, ui);
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
    const open = !ui.collapsed.has(span.id);
    const toggle = span.children
      ? el("button", { type: "button", class: "toggle", "aria-label": open ? "collapse" : "expand", onclick: (event) => { event.stopPropagation(); ui.toggle(span.id); } }, open ? "▾" : "▸")
      : el("span", { class: "toggle" });
    const step = stepLabel(span);
    const showStep = step && (span.kind === "invoke_agent" || span.kind === "plan" || span.kind === "checkpoint" || span.kind === "route");
    box.append(el("div", {
      class: `wf-row kind-${span.kind}${span.id === ui.selected ? " selected" : ""}${span.status !== "ok" ? ` ${statusClass(span.status)}` : ""}`,
      role: "treeitem",
      "data-span": span.id,
      "data-kind": span.kind,
      "data-step": span.step ?? "",
      onclick: () => ui.select(span.id, { scroll: false }),
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
