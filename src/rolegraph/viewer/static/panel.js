// The side panels: one span's details, or the run's usage when no span is selected; one source's
// record and the evidence the run quoted from it (from a citation in a report).

import { KIND_LABEL, append, clear, cost, el, fact, pretty, seconds, stepLabel, statusClass, tokens } from "./dom.js";

const SHOWN = new Set([
  "rolegraph.thought", "rolegraph.task", "rolegraph.input.last", "rolegraph.output.text", "rolegraph.output.tool_calls",
  "rolegraph.tool.arguments", "rolegraph.tool.result", "rolegraph.output", "rolegraph.problem", "rolegraph.tool.sources",
]);

export function renderRunPanel(view, openOutput) {
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
  const saved = usage.saved;
  append(panel, [
    el("p", { class: "hint-line" }, "Click a span (or a step in the graph) to see its thought, messages, tool calls, sources, tokens and cost. ↑/↓ move through the spans."),
    table("step", usage.by_step),
    table("role", usage.by_role),
    table("model", usage.by_model),
    saved && saved.calls
      ? el("section", { class: "field", "data-field": "cache" }, el("h3", {}, "model-call cache"),
        el("p", {}, `${saved.calls} calls answered from the cache saved ${saved.input_tokens.toLocaleString()} in + `
          + `${saved.output_tokens.toLocaleString()} out tokens (${cost(saved.cost_usd)})`))
      : null,
    outputs.length
      ? el("section", { class: "field", "data-field": "outputs" }, el("h3", {}, "outputs"),
        el("ul", { class: "sources" }, outputs.map(([name, path]) => el("li", {},
          el("button", { type: "button", class: "linkish", "data-output": name, onclick: () => openOutput(name) }, name), " ",
          el("code", {}, String(path).split("/").pop())))))
      : null,
  ]);
}

export function renderPanel(detail, span) {
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
    span.skipped
      ? section("item skipped", "This item failed, and its step went on without it (on_item_error: skip): it is left out of the step's output and listed in run.json under skipped_items.", "skipped")
      : null,
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

// A source: its record, where the run's steps quoted it (each quote in its context in the source's text,
// or flagged when the text does not hold it), and the tool calls that returned it.
export function renderSourcePanel(panel, detail, openSpan) {
  clear(panel);
  panel.dataset.source = detail.id;
  const authors = (detail.authors ?? []).join(", ");
  const url = typeof detail.url === "string" && /^https?:/i.test(detail.url) ? detail.url : null;
  append(panel, [
    el("div", { class: "panel-head" }, el("span", { class: "chip chip-source" }, "source"), el("h2", {}, detail.title || detail.id)),
    el("dl", { class: "facts compact" },
      fact("id", el("code", {}, detail.id)),
      authors ? fact("authors", authors) : null,
      detail.year ? fact("year", String(detail.year)) : null,
      detail.venue ? fact("venue", detail.venue) : null,
      detail.arxiv ? fact("arXiv", detail.arxiv) : null,
      detail.doi ? fact("DOI", detail.doi) : null,
      detail.tool ? fact("found by", detail.tool) : null),
    url ? el("p", { class: "url" }, el("a", { href: url, rel: "noopener noreferrer", target: "_blank" }, url)) : null,
    el("section", { class: "field", "data-field": "evidence" }, el("h3", {}, `evidence (${detail.evidence.length})`),
      detail.evidence.length
        ? detail.evidence.map(evidence)
        : el("p", { class: "muted" }, "No step quoted this source (it may be cited without a quote).")),
    detail.returned_by.length
      ? el("section", { class: "field", "data-field": "returned by" }, el("h3", {}, "returned by"),
        el("ul", { class: "sources" }, detail.returned_by.map((call) => el("li", {},
          el("button", { type: "button", class: "linkish", "data-span": call.span, onclick: () => openSpan(call.span) },
            `${call.name.replace(/^execute_tool /, "")}${call.step ? ` in ${call.item === null || call.item === undefined ? call.step : `${call.step}[${call.item}]`}` : ""}`),
          call.hint ? el("span", { class: "muted" }, ` ${call.hint}`) : null))))
      : null,
  ]);
}

function evidence(entry) {
  const where = el("div", { class: "muted evidence-step" }, `step ${entry.step}`);
  const claim = entry.claim ? el("p", { class: "claim" }, entry.claim) : null;
  if (entry.quote === undefined) return el("div", { class: "evidence" }, where, claim);
  const quote = entry.found
    ? el("blockquote", { class: "in-context" }, entry.before ?? "", el("mark", {}, entry.quote), entry.after ?? "")
    : el("blockquote", { class: "not-found" }, entry.quote, el("div", { class: "warn-line" }, "not found in the source's text"));
  return el("div", { class: "evidence" }, where, claim, quote);
}
