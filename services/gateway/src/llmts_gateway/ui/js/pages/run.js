// Run a template: model (with its price), count, validation mode, cost estimate before the start.
import * as api from "../api.js";
import { alertBox, debounce, field, h, replace, select, usd } from "../dom.js";

const perM = (m) => (m.free ? "free" : `$${m.pricing.prompt ?? "?"} / $${m.pricing.completion ?? "?"} per 1M`);

// The catalog (hundreds of models) fills the picker when it arrives; the template's model is there at once.
async function fillModels(model, own) {
  const models = await api.get("/providers/models", { sort: "price", limit: 500, verbose: false });
  const chosen = model.value;
  const options = models.items.map((m) => [m.id, `${m.name} (${m.provider}) — ${perM(m)}`]);
  if (own && !models.items.some((m) => m.id === own)) options.unshift([own, `${own} (template's model)`]);
  model.replaceChildren(...select(options, chosen || options[0]?.[0]).children);
  model.value = chosen || options[0]?.[0] || "";
}

export async function runPage(main, templateId) {
  const template = await api.get(`/templates/${encodeURIComponent(templateId)}`);
  const own = template.model?.id;
  const model = select(own ? [[own, `${own} (template's model)`]] : [], own);
  const count = h("input", { type: "number", min: 1, value: 20, required: true });
  const mode = select([["", `Template's (${template.validation?.mode || "strict"})`], "strict", "custom", "none"], "");
  const estimate = h("output", { role: "status", "aria-label": "Estimated cost", "aria-live": "polite" }, "…");
  const error = alertBox();
  const start = h("button", { type: "submit" }, "Start job");
  const body = () => ({ template_id: templateId, count: Number(count.value), model: model.value || undefined,
    validation_mode: mode.value || undefined });
  const estimateNow = async () => {
    try {
      const p = await api.post("/generate/preview", body());
      const e = p.estimate || {};
      estimate.textContent = e.low && e.high
        ? `${usd(e.low.cost_usd)} – ${usd(e.high.cost_usd)} for ${p.count} items (${e.method || "estimate"})`
        : "no price known for this model";
    } catch (e) { estimate.textContent = `no estimate: ${e.message}`; }
  };
  const onChange = debounce(estimateNow, 300);
  for (const el of [model, count, mode]) el.addEventListener("input", onChange);
  const submit = async (event) => {
    event.preventDefault();
    start.disabled = true;
    error.textContent = "";
    try {
      const accepted = await api.post("/generate", body());
      location.hash = `#/jobs/${encodeURIComponent(accepted.job_id)}`;
    } catch (e) { error.textContent = e.message; start.disabled = false; }
  };
  replace(main, h("h1", {}, `Run: ${template.name}`),
    h("form", { onsubmit: submit, "aria-label": "Run" },
      field("Model", model), field("Count", count), field("Validation mode", mode),
      h("p", {}, h("span", { class: "muted" }, "Estimated cost: "), estimate), error, start));
  await Promise.all([estimateNow(), fillModels(model, own).then(estimateNow).catch((e) => {
    error.textContent = `model catalog: ${e.message}`;
  })]);
}
