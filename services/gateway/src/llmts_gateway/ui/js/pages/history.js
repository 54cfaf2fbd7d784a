// History: the user's jobs with filters (status, template, model, text, dates) and the totals over all matches.
import * as api from "../api.js";
import { alertBox, debounce, field, h, num, replace, select, table, usd, when } from "../dom.js";

const STATUSES = ["queued", "running", "completed", "completed_with_errors", "stopped", "failed", "cancelled"];

function row(j) {
  return h("tr", {},
    h("td", {}, h("a", { href: `#/jobs/${encodeURIComponent(j.job_id)}` }, j.job_id)),
    h("td", {}, j.status), h("td", {}, j.template?.name || j.template?.id || "—"), h("td", {}, j.model?.id || "—"),
    h("td", { class: "num" }, `${num(j.counts.succeeded)} / ${num(j.requested ?? j.counts.requested)}`),
    h("td", { class: "num" }, num(j.counts.rejected)), h("td", { class: "num" }, usd(j.usage.cost_usd)),
    h("td", {}, when(j.timings?.created_at || j.timings?.started_at)));
}

export async function historyPage(main) {
  const mine = await api.get("/templates", { owner: "me", limit: 100 }).catch(() => ({ items: [] }));
  const status = select([["", "Any"], ...STATUSES], "");
  const template = select([["", "Any"], ...mine.items.map((t) => [t.id, t.name])], "");
  const model = h("input", { type: "text" });
  const q = h("input", { type: "search" });
  const from = h("input", { type: "date" });
  const to = h("input", { type: "date" });
  const error = alertBox();
  const result = h("div", { "aria-live": "polite" });
  const load = async () => {
    error.textContent = "";
    try {
      const page = await api.get("/history", { status: status.value, template_id: template.value,
        model: model.value.trim(), q: q.value.trim(), limit: 100,
        from: from.value ? `${from.value}T00:00:00Z` : "", to: to.value ? `${to.value}T23:59:59Z` : "" });
      const t = page.totals;
      replace(result,
        h("p", { "data-testid": "history-totals" }, `${num(t.jobs)} jobs · ${num(t.items)} items · `,
          `${num(t.rejected)} rejected · ${num(t.attempts)} attempts · `,
          `${num(t.usage.prompt_tokens + t.usage.completion_tokens)} tokens · ${usd(t.usage.cost_usd)}`),
        table("Jobs", ["Job", "Status", "Template", "Model", "Items", "Rejected", "Cost", "Created"],
          page.items.map(row)));
    } catch (e) { error.textContent = e.message; }
  };
  const reload = debounce(load, 300);
  for (const el of [model, q]) el.addEventListener("input", reload);
  for (const el of [status, template, from, to]) el.addEventListener("change", load);
  replace(main, h("h1", {}, "History"),
    h("div", { class: "row" }, field("Status", status), field("Template", template), field("Model", model),
      field("Search", q), field("From", from), field("To", to)), error, result);
  await load();
}
