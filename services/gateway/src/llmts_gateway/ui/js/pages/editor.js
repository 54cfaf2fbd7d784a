// Template editor: prompts, JSON Schema, rules and tasks, inline problems, live preview of items 0..k-1, versions.
import * as api from "../api.js";
import { alertBox, debounce, field, h, replace, select } from "../dom.js";
import * as problems from "../problems.js";
import { versionsSection } from "../versions.js";

const SERVER_FIELDS = ["id", "owner_id", "version", "created_at", "updated_at"];
const NEW_DOC = { name: "Untitled", prompts: { system: "", user: "Write one item about {{ topic }}." },
  variables: { topic: "tides" }, output: { format: "text" }, validation: { mode: "none", rules: [] } };
const pretty = (v) => (v === undefined || v === null ? "" : JSON.stringify(v, null, 2));

function controls(doc) {
  return {
    name: h("input", { value: doc.name, required: true }),
    category: h("input", { value: doc.category || "" }),
    tags: h("input", { value: (doc.tags || []).join(", "), "aria-describedby": "tags-hint" }),
    format: select(["json", "text"], doc.output?.format || "json"),
    mode: select(["strict", "custom", "none"], doc.validation?.mode || "strict"),
    system: h("textarea", { rows: 4, value: doc.prompts?.system || "" }),
    user: h("textarea", { rows: 6, value: doc.prompts?.user || "" }),
    schema: h("textarea", { rows: 10, value: pretty(doc.schema) }),
    rules: h("textarea", { rows: 5, value: pretty(doc.validation?.rules || []) }),
    tasks: h("textarea", { rows: 5, value: pretty(doc.tasks || []) }),
    variables: h("textarea", { rows: 3, value: pretty(doc.variables || {}) }),
    description: h("input", { value: doc.description || "" }),
    k: h("input", { type: "number", min: 1, max: 5, value: 3 }),
  };
}

// The document as edited, or the JSON syntax problems that keep it from being one.
function read(base, c) {
  const parsed = { schema: problems.parseJson(c.schema.value, "schema"),
    rules: problems.parseJson(c.rules.value, "validation.rules"), tasks: problems.parseJson(c.tasks.value, "tasks"),
    variables: problems.parseJson(c.variables.value, "variables") };
  const bad = Object.values(parsed).filter((p) => p.problem).map((p) => p.problem);
  if (bad.length) return { bad };
  const doc = { ...base, name: c.name.value, category: c.category.value.trim() || null,
    tags: c.tags.value.split(",").map((t) => t.trim()).filter(Boolean),
    output: { ...(base.output || {}), format: c.format.value },
    prompts: { system: c.system.value, user: c.user.value },
    validation: { ...(base.validation || {}), mode: c.mode.value, rules: parsed.rules.value || [] },
    tasks: parsed.tasks.value || [], variables: parsed.variables.value || {}, description: c.description.value };
  if (parsed.schema.value === undefined) delete doc.schema; else doc.schema = parsed.schema.value;
  return { doc };
}

// The textarea a problem's path points into ("$.prompts.user" → User prompt, "schema.properties.x" → JSON Schema).
function fieldOf(c, path) {
  const parts = path.replace(/^\$\./, "").split(/[.[]/);
  const fields = { "prompts.system": c.system, "prompts.user": c.user, "validation.rules": c.rules,
    schema: c.schema, tasks: c.tasks, variables: c.variables };
  return fields[parts.slice(0, 2).join(".")] || fields[parts[0]] || null;
}

function previewItem(i, p) {
  return h("div", { class: "card" }, h("h3", {}, `Item ${i}`),
    p.rendered.system ? [h("div", { class: "muted" }, "System"),
      h("pre", { "data-testid": `preview-system-${i}` }, p.rendered.system)] : null,
    h("div", { class: "muted" }, "User"), h("pre", { "data-testid": `preview-user-${i}` }, p.rendered.user),
    h("div", { class: "muted" }, `≈ ${p.token_estimate.prompt_tokens} prompt tokens · ${p.model.id}`));
}

export async function editorPage(main, id) {
  const isNew = id === "new";
  let current = isNew ? null : await api.get(`/templates/${encodeURIComponent(id)}`);
  const base = { ...(current || NEW_DOC) };
  for (const k of SERVER_FIELDS) delete base[k];
  const c = controls(base);
  const error = alertBox();
  const problemList = h("ul", { "aria-label": "Problems" });
  const preview = h("section", { "aria-label": "Preview", "aria-live": "polite", "aria-busy": "false" });
  const saved = h("p", { role: "status" });
  const versionText = h("span", { "data-testid": "template-version" }, current ? current.version : "");
  let generation = 0;
  const byPath = (path) => fieldOf(c, path);

  const refresh = async () => {
    const mine = ++generation;
    const { doc, bad } = read(base, c);
    if (bad) { problems.render(problemList, bad, [], byPath); return; }
    preview.setAttribute("aria-busy", "true");
    const k = Math.min(5, Math.max(1, Number(c.k.value) || 1));
    const [report, ...items] = await Promise.allSettled([api.post("/templates/validate", doc),
      ...Array.from({ length: k }, (_, i) => api.post("/templates/preview", { template: doc, index: i }))]);
    if (mine !== generation) return;  // a newer keystroke's preview wins
    const r = report.status === "fulfilled" ? report.value
      : { errors: problems.fromError(report.reason), warnings: [] };
    problems.render(problemList, r.errors, r.warnings, byPath);
    replace(preview, h("h2", {}, "Preview"), items.map((it, i) => (it.status === "fulfilled"
      ? previewItem(i, it.value) : h("div", { role: "alert" }, `Item ${i}: ${it.reason.message}`))));
    preview.setAttribute("aria-busy", "false");
  };
  const onEdit = debounce(refresh, 300);
  for (const el of Object.values(c)) el.addEventListener("input", onEdit);

  const save = async () => {
    const { doc, bad } = read(base, c);
    if (bad) { problems.render(problemList, bad, [], byPath); return; }
    error.textContent = "";
    try {
      current = isNew ? await api.post("/templates", doc) : await api.request("PUT",
        `/templates/${encodeURIComponent(id)}?expected_version=${current.version}`, doc);
      if (isNew) { location.hash = `#/templates/${encodeURIComponent(current.id)}`; return; }
      saved.textContent = `Saved as version ${current.version}`;
      versionText.textContent = current.version;
      await versions.reload();
    } catch (e) {
      error.textContent = e.message;
      problems.render(problemList, problems.fromError(e), [], byPath);
    }
  };
  const versions = isNew ? null : versionsSection(id, () => current);
  replace(main, h("h1", {}, isNew ? "New template" : `Template: ${base.name}`),
    isNew ? null : h("p", {}, h("a", { href: `#/run/${encodeURIComponent(id)}` }, "Run"),
      " · version ", versionText),
    error,
    h("div", { class: "cols" },
      h("form", { "aria-label": "Template", onsubmit: (e) => { e.preventDefault(); save(); } },
        h("div", { class: "row" }, field("Name", c.name), field("Category", c.category), field("Tags", c.tags)),
        h("p", { id: "tags-hint", class: "muted" }, "Tags: comma-separated."), field("Description", c.description),
        h("div", { class: "row" }, field("Output format", c.format), field("Validation mode", c.mode)),
        field("System prompt", c.system), field("User prompt", c.user),
        field("JSON Schema", c.schema), field("Rules", c.rules), field("Tasks", c.tasks),
        field("Variables", c.variables),
        problemList, h("button", { type: "submit" }, "Save"), saved),
      h("div", {}, field("Preview items", c.k), preview)),
    versions ? versions.el : null);
  if (versions) await versions.reload();
  refresh();
}
