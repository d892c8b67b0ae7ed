// Time views of a run: step lanes (parallel agents side by side) and the span waterfall.
// A lane bar too narrow for its label gets it beside the bar where there is room, else only as a
// tooltip: labels never overlap each other or another bar.

import { KIND_LABEL, axisTicks, clear, el, seconds, shortTokens, stepLabel, statusClass, textWidth, tokens } from "./dom.js";

const LANE_FONT = "11px system-ui, -apple-system, \"Segoe UI\", \"DejaVu Sans\", Roboto, sans-serif";

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
  const px = box.clientWidth - 20;
  const minimum = (3 / Math.max(px, 1)) * 100; // a bar is at least 3 px wide, but never over the next one
  const next = new Map();
  const starts = view.lanes.map((entry) => ({ entry, start: byId.get(entry.span).start }));
  for (const { entry } of starts) {
    const later = starts.filter((o) => o.entry.lane === entry.lane && o.start > byId.get(entry.span).start);
    next.set(entry.span, Math.min(total, ...later.map((o) => o.start)));
  }
  for (const entry of view.lanes) {
    const span = byId.get(entry.span);
    const left = (span.start / total) * 100;
    const real = ((entry.end - span.start) / total) * 100;
    const width = Math.max(real, Math.min(minimum, ((next.get(entry.span) - span.start) / total) * 100));
    const status = span.status === "unfinished" ? "running" : span.status === "ok" ? "completed" : span.status;
    const label = stepLabel(span) ?? span.name;
    lanes[entry.lane].append(el("div", {
      class: `lane-bar ${statusClass(status)}${span.id === ui.selected ? " selected" : ""}`,
      "data-span": span.id,
      "data-step": span.step ?? "",
      style: { left: `${left}%`, width: `${width}%` },
      title: `${label} · ${seconds(span.duration_s)} · ${span.status}${span.skipped ? " · item skipped" : ""}`,
      onclick: () => ui.select(span.id, { scroll: true }),
    }, el("span", {}, label)));
  }
  const body = el("div", { class: "lanes-body" }, lanes, resumeMarks(view, total));
  document.getElementById("lanes-note").textContent = view.resumes?.length
    ? "parallel branches in separate lanes; dashed line: resumed"
    : "parallel branches in separate lanes";
  box.append(axis(total, px), body);
  for (const lane of lanes) placeLabels(lane, px);
}

// A dashed line where the run was resumed (after a crash, a kill, a budget): the time before is the
// interrupted invocation's.
function resumeMarks(view, total) {
  return (view.resumes ?? []).map((resume) => el("div", {
    class: "resume-mark",
    style: { left: `${(resume.at / total) * 100}%` },
    title: `resumed (invocation ${resume.invocation ?? "?"}); restored from the checkpoint: ${(resume.restored ?? []).join(", ") || "nothing"}`,
  }));
}

// Each bar's label: inside if it fits, else right of the bar, else left of it, where nothing else is.
function placeLabels(lane, px) {
  const bars = [...lane.querySelectorAll(".lane-bar")].map((bar) => {
    const left = (parseFloat(bar.style.left) / 100) * px;
    return { bar, left, right: left + (parseFloat(bar.style.width) / 100) * px, label: textWidth(bar.textContent, LANE_FONT) + 8 };
  }).sort((a, b) => a.left - b.left);
  const taken = bars.map((b) => [b.left, b.right]);
  const free = (from, to) => from >= 0 && to <= px && taken.every(([l, r]) => r <= from || l >= to);
  for (const b of bars) {
    if (b.label <= b.right - b.left) continue;
    b.bar.classList.add("narrow");
    if (free(b.right + 1, b.right + 1 + b.label)) taken.push([b.right + 1, b.right + 1 + b.label]);
    else if (free(b.left - 1 - b.label, b.left - 1)) {
      b.bar.classList.add("at-end");
      taken.push([b.left - 1 - b.label, b.left - 1]);
    } else b.bar.classList.add("unlabelled");
  }
}

// The time axis over `px` pixels: a tick every 60 px or so.
function axis(total, px) {
  const ticks = el("div", { class: "axis" });
  if (total <= 1e-6) return ticks; // nothing has taken time yet
  const all = axisTicks(total, Math.max(2, Math.min(8, Math.floor(px / 56))));
  for (const [i, { t, label }] of all.entries()) {
    const at = (t / total) * 100;
    // The first tick starts at the axis, the last ends inside it: no label sticks out of the card.
    const edge = i === 0 ? " first" : at > 92 ? " last" : "";
    ticks.append(el("span", { class: `tick${edge}`, style: { left: `${at}%` } }, label));
  }
  return ticks;
}

function hiddenByCollapse(view, ui) {
  const hidden = new Set();
  for (const span of view.spans) {
    if ((span.parent && hidden.has(span.parent)) || (span.parent && ui.collapsed.has(span.parent))) hidden.add(span.id);
  }
  return hidden;
}

// `ui.filter`, when set, is {shown: Set of span ids (the matches and their ancestors), matched: Set of
// span ids, hits: Map id -> {field, snippet} of a text search}.
export function renderWaterfall(view, ui) {
  const box = clear(document.getElementById("waterfall"));
  const total = timeScale(view);
  const filter = ui.filter;
  const hidden = filter ? new Set(view.spans.filter((s) => !filter.shown.has(s.id)).map((s) => s.id)) : hiddenByCollapse(view, ui);
  const track = el("div", { class: "wf-track" });
  box.append(el("div", { class: "wf-row wf-header" },
    el("div", { class: "wf-name" }, "span"),
    el("div", { class: "wf-num" }, "duration"),
    el("div", { class: "wf-num" }, "tokens"),
    track));
  track.append(axis(total, track.clientWidth));
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
    const hit = filter?.hits.get(span.id);
    const isMatch = filter?.matched.has(span.id);
    const showStep = step && (span.kind === "invoke_agent" || span.kind === "plan" || span.kind === "checkpoint" || span.kind === "route");
    box.append(el("div", {
      class: `wf-row kind-${span.kind}${span.id === ui.selected ? " selected" : ""}${span.status !== "ok" ? ` ${statusClass(span.status)}` : ""}${isMatch ? " match" : ""}`,
      role: "treeitem",
      "data-span": span.id,
      "data-kind": span.kind,
      "data-step": span.step ?? "",
      onclick: () => ui.select(span.id, { scroll: false }),
    },
    el("div", { class: "wf-name", style: { paddingLeft: `${4 + span.depth * 12}px` }, title: [span.name, step, span.status, span.hint].filter(Boolean).join(" · ") },
      toggle,
      el("span", { class: `chip chip-${span.kind}` }, KIND_LABEL[span.kind] ?? span.kind),
      el("span", { class: "span-name" }, span.name.replace(/^(invoke_agent|invoke_workflow|execute_tool|chat) /, "")),
      showStep ? el("span", { class: "step-tag" }, step) : null,
      span.skipped ? el("span", { class: "status-tag status-skipped", title: "failed; its step went on without it" }, "skipped")
        : span.status !== "ok" && !(view.live && span.status === "unfinished")
          ? el("span", { class: `status-tag ${statusClass(span.status)}` }, span.status) : null,
      hit ? el("span", { class: "hint hit", title: `${hit.field}: ${hit.snippet}` }, `${hit.field}: ${hit.snippet}`)
        : span.hint ? el("span", { class: "hint" }, span.hint) : null),
    el("div", { class: "wf-num", title: span.end === null ? "still open" : null },
      span.end === null ? `${seconds(view.elapsed_s - span.start)}…` : seconds(span.duration_s)),
    el("div", { class: "wf-num", title: tokens(span.input_tokens, span.output_tokens) || null },
      shortTokens(span.input_tokens, span.output_tokens)),
    el("div", { class: "wf-track" },
      el("div", { class: `bar bar-${span.kind}${span.end === null ? " open" : ""}`, style: { left: `${left}%`, width: `${width}%` } }))));
  }
}
