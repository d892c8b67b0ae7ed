// The run's outputs: one tab per output file, a markdown report rendered (safely, see markdown.js)
// with clickable citations; the source panel beside it shows a cited source and its evidence.

import { append, clear, el, getJson } from "./dom.js";
import { renderTree } from "./markdown.js";
import { renderSourcePanel } from "./panel.js";

function preferred(names, outputs) {
  return names.find((n) => /\.(md|markdown)$/i.test(String(outputs[n]))) ?? names[0];
}

// Show the outputs of `view`; `nav` = {output, source, openOutput(name), openSource(id), openSpan(id)}.
export async function renderOutputs(view, nav) {
  const tabs = clear(document.getElementById("output-tabs"));
  const box = clear(document.getElementById("output"));
  const names = Object.keys(view.outputs || {});
  if (!names.length) {
    box.append(el("p", { class: "empty" }, view.live ? "No output written yet: outputs are written when the run ends." : "This run wrote no output files."));
    renderSourceList(view, nav);
    return;
  }
  const current = names.includes(nav.output) ? nav.output : preferred(names, view.outputs);
  for (const name of names) {
    tabs.append(el("button", {
      type: "button", class: `output-tab${name === current ? " current" : ""}`, "data-output": name,
      "aria-pressed": name === current ? "true" : "false", onclick: () => nav.openOutput(name),
    }, name, el("span", { class: "muted" }, ` ${String(view.outputs[name]).split("/").pop()}`)));
  }
  let detail;
  try {
    detail = await getJson(`/api/runs/${encodeURIComponent(view.run_id)}/outputs/${encodeURIComponent(current)}`);
  } catch (error) {
    box.append(el("p", { class: "empty" }, `The output ${current} cannot be read (moved or deleted?).`));
    return;
  }
  if (detail.kind === "markdown") {
    box.append(el("article", { class: "markdown", "data-output": current }, renderTree(detail.tree, (id) => nav.openSource(id))));
  } else {
    box.append(el("pre", { class: "output-text", "data-output": current }, detail.text));
  }
  if (detail.cut) box.append(el("p", { class: "muted" }, `Shown cut: the file has ${detail.size.toLocaleString()} bytes.`));
  if (nav.source) await showSource(view, nav.source, nav);
  else renderSourceList(view, nav);
}

// With no citation chosen: how to use the panel, and every source the run retrieved.
export function renderSourceList(view, nav) {
  const panel = clear(document.getElementById("source-panel"));
  delete panel.dataset.source;
  const sources = Object.entries(view.sources || {});
  append(panel, [
    el("p", { class: "hint-line" }, "Click a citation such as [1] to see its source and the evidence the run quoted from it."),
    sources.length
      ? el("section", { class: "field", "data-field": "sources" }, el("h3", {}, `sources retrieved (${sources.length})`),
        el("ul", { class: "sources" }, sources.map(([id, s]) => el("li", {},
          el("button", { type: "button", class: "linkish", "data-source": id, onclick: () => nav.openSource(id) }, id),
          s.title ? el("span", {}, ` ${s.title}`) : null, s.year ? el("span", { class: "muted" }, ` (${s.year})`) : null))))
      : el("p", { class: "muted" }, "The run retrieved no sources."),
  ]);
}

export async function showSource(view, id, nav) {
  const panel = document.getElementById("source-panel");
  for (const node of document.querySelectorAll(".cite.active")) node.classList.remove("active");
  for (const node of document.querySelectorAll(`.cite[data-source="${CSS.escape(id)}"]`)) node.classList.add("active");
  let detail = null;
  if (Object.hasOwn(view.sources ?? {}, id)) {
    try {
      detail = await getJson(`/api/runs/${encodeURIComponent(view.run_id)}/sources/${encodeURIComponent(id)}`);
    } catch (error) {
      console.warn(error);
    }
  }
  if (!detail) {
    clear(panel).append(
      el("div", { class: "panel-head" }, el("span", { class: "chip chip-source" }, "source"), el("h2", {}, id)),
      el("section", { class: "field error" }, el("pre", {}, `No source the run retrieved has the id ${id}: this citation is unresolved.`)));
    panel.dataset.source = id;
    return;
  }
  renderSourcePanel(panel, detail, nav.openSpan);
}
