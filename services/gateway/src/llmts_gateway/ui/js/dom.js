// Tiny DOM helpers: h() builds real nodes; no framework, no build step.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "value") el.value = value;
    else if (key === "checked") el.checked = Boolean(value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

let ids = 0;
// A labelled control: <label for=id>text</label> + control (the label is the control's accessible name).
export function field(text, control) {
  if (!control.id) control.id = `f${++ids}`;
  return h("div", { class: "field" }, h("label", { for: control.id }, text), control);
}

export function select(options, value, attrs = {}) {
  const el = h("select", attrs);
  for (const opt of options) {
    const [v, label] = Array.isArray(opt) ? opt : [opt, opt];
    el.append(h("option", { value: v, selected: String(v) === String(value ?? "") }, label));
  }
  return el;
}

export function table(name, headers, rows) {
  return h("table", { "aria-label": name },
    h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows));
}

export function alertBox(error) {
  return h("div", { role: "alert" }, error ? String(error.message || error) : "");
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

export const usd = (v) => (v === null || v === undefined ? "—" : `$${Number(v).toFixed(Number(v) < 1 ? 4 : 2)}`);
export const num = (v) => (v === null || v === undefined ? "—" : Number(v).toLocaleString());
export const when = (v) => (v ? new Date(v).toLocaleString() : "—");
