// Templates: my templates and public ones (categories, tags, search), import an example or an llm-data-gen file.
import * as api from "../api.js";
import { alertBox, debounce, field, h, replace, select, table, when } from "../dom.js";

function row(t) {
  return h("tr", {},
    h("td", {}, h("a", { href: `#/templates/${encodeURIComponent(t.id)}` }, t.name),
      t.description ? h("div", { class: "muted" }, t.description) : null),
    h("td", {}, t.category || "—"),
    h("td", {}, t.tags.map((tag) => h("span", { class: "tag" }, tag))),
    h("td", {}, t.output_format),
    h("td", {}, t.model_id || "—"),
    h("td", { class: "num" }, `v${t.version}`),
    h("td", {}, when(t.updated_at)),
    h("td", {}, h("a", { href: `#/run/${encodeURIComponent(t.id)}`, "aria-label": `Run ${t.name}` }, "Run")));
}

const facet = (items, label) => [["", label], ...items.map((f) => [f.name, `${f.name} (${f.count})`])];

async function importsSection(error) {
  const examples = await api.get("/templates/examples");
  const example = select(examples.items.map((e) => [e.id, `${e.name} — ${e.description}`]), "");
  const file = h("input", { type: "file", accept: ".json,application/json" });
  const go = (t) => { location.hash = `#/templates/${encodeURIComponent(t.template.id)}`; };
  const run = async (button, action) => {
    button.disabled = true;
    error.textContent = "";
    try { go(await action()); } catch (e) { error.textContent = e.message; button.disabled = false; }
  };
  const importExample = h("button", { type: "button", onclick: () =>
    run(importExample, () => api.post(`/templates/examples/${encodeURIComponent(example.value)}/import`)) },
  "Import example");
  const importFile = h("button", { type: "button", onclick: () => run(importFile, async () => {
    if (!file.files.length) throw new Error("choose an llm-data-gen JSON file first");
    let config;
    try { config = JSON.parse(await file.files[0].text()); } catch { throw new Error("the file is not JSON"); }
    return api.post("/templates/import/llm-data-gen", config);
  }) }, "Import file");
  return h("section", { "aria-label": "Import", class: "cols" },
    h("div", {}, field("Example", example), importExample),
    h("div", {}, field("llm-data-gen file", file), importFile));
}

export async function templatesPage(main) {
  const error = alertBox();
  const [categories, tags, imports] = await Promise.all([api.get("/templates/categories"),
    api.get("/templates/tags"), importsSection(error)]);
  const q = h("input", { type: "search" });
  const category = select(facet(categories.items, "All categories"), "");
  const tag = select(facet(tags.items, "All tags"), "");
  const mine = select([["", "Mine and public"], ["me", "Only mine"]], "");
  const list = h("div", { "aria-live": "polite" });
  const load = async () => {
    try {
      const page = await api.get("/templates", {
        q: q.value.trim(), category: category.value, tag: tag.value, owner: mine.value, limit: 100,
      });
      replace(list, h("p", {}, `${page.total} templates`),
        table("Templates", ["Name", "Category", "Tags", "Output", "Model", "Version", "Updated", ""],
          page.items.map(row)));
    } catch (e) { error.textContent = e.message; }
  };
  q.addEventListener("input", debounce(load, 300));
  for (const el of [category, tag, mine]) el.addEventListener("change", load);
  replace(main, h("h1", {}, "Templates"), error, imports,
    h("p", {}, h("a", { href: "#/templates/new" }, "New template")),
    h("div", { class: "row" }, field("Search", q), field("Category", category), field("Tag", tag),
      field("Owner", mine)),
    list);
  await load();
}
