// Versions of a template: list, diff against the current version, rollback.
import * as api from "./api.js";
import { alertBox, h, replace, table, when } from "./dom.js";

function diffView(d) {
  const prompts = Object.entries(d.prompts || {}).filter(([, p]) => p.changed).map(([name, p]) =>
    h("div", {}, h("h4", {}, `Prompt: ${name}`), h("pre", {}, p.unified.map((line) =>
      h("span", { class: line.startsWith("+") ? "diff-add" : line.startsWith("-") ? "diff-del" : "" }, `${line}\n`)))));
  const changes = [...(d.schema || []), ...(d.model || []), ...(d.other || []),
    ...(d.rules?.mode ? [d.rules.mode] : [])];
  return h("section", { "aria-label": `Diff v${d.from_version} to v${d.to_version}`, class: "card" },
    h("h3", {}, `v${d.from_version} → v${d.to_version}`), d.changed ? null : h("p", {}, "No changes."), prompts,
    changes.length ? h("ul", {}, changes.map((ch) =>
      h("li", {}, `${ch.op} ${ch.path}: ${JSON.stringify(ch.from) ?? "—"} → ${JSON.stringify(ch.to) ?? "—"}`)))
      : null,
    d.rules?.added?.length ? h("p", {}, `Rules added: ${JSON.stringify(d.rules.added)}`) : null,
    d.rules?.removed?.length ? h("p", {}, `Rules removed: ${JSON.stringify(d.rules.removed)}`) : null);
}

export function versionsSection(id, current) {
  const base = `/templates/${encodeURIComponent(id)}`;
  const error = alertBox();
  const list = h("div", {});
  const diff = h("div", { "aria-live": "polite" });
  const el = h("section", { "aria-label": "Versions" }, h("h2", {}, "Versions"), error, list, diff);
  const act = async (fn) => {
    error.textContent = "";
    try { await fn(); } catch (e) { error.textContent = e.message; }
  };
  const reload = () => act(async () => {
    const page = await api.get(`${base}/versions`, { limit: 50 });
    replace(list, table("Versions", ["Version", "Created", "Note", ""], page.items.map((v) => h("tr", {},
      h("td", {}, `v${v.version}`), h("td", {}, when(v.created_at)), h("td", {}, v.note || ""),
      h("td", {}, v.version === current().version ? "current" : [
        h("button", { type: "button", class: "secondary", "aria-label": `Diff v${v.version}`,
          onclick: () => act(async () => replace(diff, diffView(await api.get(`${base}/diff`, { from: v.version })))) },
        "Diff"),
        h("button", { type: "button", class: "secondary", "aria-label": `Rollback to v${v.version}`,
          onclick: () => act(async () => {
            await api.post(`${base}/rollback/${v.version}`);
            window.dispatchEvent(new HashChangeEvent("hashchange"));
          }) }, "Rollback")])))));
  });
  return { el, reload };
}
