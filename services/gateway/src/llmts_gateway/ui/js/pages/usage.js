// Usage vs quota: budget, items today, active jobs, and the reservations of jobs still running.
import * as api from "../api.js";
import { h, num, replace, table, usd, when } from "../dom.js";

function counter(name, c, fmt) {
  const pct = c.limit ? Math.min(100, Math.round((c.used / c.limit) * 100)) : 0;
  return h("tr", {}, h("th", { scope: "row" }, name), h("td", { class: "num" }, fmt(c.used)),
    h("td", { class: "num" }, fmt(c.limit)), h("td", { class: "num" }, fmt(c.remaining)),
    h("td", {}, h("progress", { max: 100, value: pct, "aria-label": `${name} used` }), ` ${pct} %`),
    h("td", {}, when(c.resets_at)));
}

export async function usagePage(main) {
  const u = await api.get("/me/usage");
  replace(main, h("h1", {}, "Usage"),
    table("Usage", ["", "Used", "Limit", "Remaining", "", "Resets"], [
      counter(`Budget (${u.budget.period})`, u.budget, usd),
      counter("Items today", u.items_today, num),
      counter("Active jobs", u.active_jobs, num),
    ]),
    h("p", {}, `Spent ${usd(u.budget.spent_usd)}, reserved by running jobs ${usd(u.budget.reserved_usd)}. `,
      `At most ${num(u.limits.max_items_per_job)} items per job.`),
    u.open_jobs.length ? [h("h2", {}, "Open reservations"),
      table("Open reservations", ["Job", "Reserved", "Items", "Since"], u.open_jobs.map((j) => h("tr", {},
        h("td", {}, h("a", { href: `#/jobs/${encodeURIComponent(j.job_id)}` }, j.job_id)),
        h("td", { class: "num" }, usd(j.reserved_usd)), h("td", { class: "num" }, num(j.items)),
        h("td", {}, when(j.reserved_at)))))] : null);
}
