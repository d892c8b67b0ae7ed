// Output files on the page: a markdown tree from the server (viewer/outputs.py) built into elements.
// The tree is plain data — whitelisted tags, text leaves — and text always becomes text nodes, so a
// report holding "<script>" shows those characters. Citation nodes become buttons that open the source.

const TAGS = new Set([
  "h1", "h2", "h3", "h4", "h5", "h6", "p", "ul", "ol", "li", "blockquote", "pre", "code", "em", "strong", "s",
  "a", "hr", "br", "table", "thead", "tbody", "tr", "th", "td", "span",
]);
const SAFE_LINK = /^(https?:|mailto:)/i;

// `nodes` built into a fragment; `onCite(sourceId, button)` is called when a citation is clicked.
export function renderTree(nodes, onCite) {
  const fragment = document.createDocumentFragment();
  for (const node of nodes) fragment.append(build(node, onCite));
  return fragment;
}

function build(node, onCite) {
  if (typeof node === "string") return document.createTextNode(node);
  if (!node || typeof node !== "object") return document.createTextNode("");
  if (node.t === "cite") {
    const button = document.createElement("button");
    button.type = "button";
    button.className = `cite${node.resolved ? "" : " unresolved"}`;
    button.dataset.source = String(node.source);
    button.title = node.resolved ? `source ${node.source}` : `${node.source}: no retrieved source has this id`;
    for (const child of node.c ?? []) button.append(build(child, onCite));
    button.addEventListener("click", () => onCite(String(node.source), button));
    return button;
  }
  const tag = TAGS.has(node.t) ? node.t : "span";
  const element = document.createElement(tag);
  if (tag === "a") {
    const href = String(node.href ?? "");
    if (SAFE_LINK.test(href)) {
      element.href = href;
      element.rel = "noopener noreferrer";
      element.target = "_blank";
    }
  }
  if (tag === "ol" && Number.isInteger(node.start)) element.start = node.start;
  for (const child of node.c ?? []) element.append(build(child, onCite));
  return element;
}
