// A job, live over the WebSocket: progress bar, counters, tokens, cost, ETA, items as they arrive, rejected items,
// cancel, exports.
import * as api from "../api.js";
import { alertBox, h, num, replace, table, usd } from "../dom.js";
import { exportsSection } from "../exports.js";

const TERMINAL = new Set(["completed", "completed_with_errors", "stopped", "failed", "cancelled"]);
const ENDED = { "llmts.generation.completed": null, "llmts.generation.failed": "failed",
  "llmts.generation.cancelled": "cancelled" };
const show = (data) => (typeof data === "string" ? data : JSON.stringify(data));

function itemRow(item) {
  return h("tr", { "data-index": item.index }, h("td", { class: "num" }, item.index),
    h("td", {}, h("pre", {}, show(item.data))), h("td", { class: "num" }, item.attempts),
    h("td", {}, item.model?.id || ""));
}

function rejectedRow(r) {
  const reasons = (r.errors || []).map((e) => [e.path, e.message || e.msg || JSON.stringify(e)].filter(Boolean)
    .join(": ")).join("; ");
  return h("tr", {}, h("td", {}, r.reason || "rejected"), h("td", {}, reasons),
    h("td", {}, r.last_output ? h("pre", {}, r.last_output) : ""), h("td", { class: "num" }, r.attempts));
}

function view(jobId) {
  const stat = (key) => h("dd", { "data-testid": key }, "—");
  const s = { status: h("span", { "data-testid": "job-status" }, "…"), succeeded: stat("count-succeeded"),
    rejected: stat("count-rejected"), inflight: stat("count-inflight"), tokens: stat("tokens"), cost: stat("cost"),
    eta: stat("eta") };
  const bar = h("progress", { max: 100, value: 0, "aria-label": "Job progress" });
  const label = h("span", { "aria-hidden": "true" }, "0 %");
  const items = h("tbody", {});
  const rejected = h("tbody", {});
  const dl = h("dl", { class: "row" }, [["Succeeded", s.succeeded], ["Rejected", s.rejected],
    ["In flight", s.inflight], ["Tokens", s.tokens], ["Cost so far", s.cost], ["ETA", s.eta]]
    .map(([t, d]) => h("div", {}, h("dt", {}, t), d)));
  const wrap = (name, headers, body) => h("table", { "aria-label": name },
    h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))), body);
  return { s, bar, label, items, rejected, dl, itemsTable: wrap("Items", ["#", "Data", "Attempts", "Model"], items),
    rejectedTable: wrap("Rejected items", ["Reason", "Errors", "Last output", "Attempts"], rejected) };
}

export async function jobPage(main, jobId) {
  const v = view(jobId);
  const error = alertBox();
  const seen = new Set();
  const state = { requested: null, succeeded: 0, rejected: 0 };
  const cancel = h("button", { type: "button", class: "secondary", onclick: async () => {
    try { await api.request("DELETE", `/generate/${encodeURIComponent(jobId)}`); } catch (e) { error.textContent = e.message; }
  } }, "Cancel job");
  let loadItems = async () => {};
  const setStatus = (status) => {
    const ended = TERMINAL.has(status) && !TERMINAL.has(v.s.status.textContent);
    v.s.status.textContent = status;
    cancel.disabled = TERMINAL.has(status);
    if (ended) loadItems().catch((e) => { error.textContent = e.message; });  // whatever the stream did not bring
  };
  const progress = (d) => {
    state.requested = d.requested ?? state.requested;
    // counts only grow: events of several kinds (and a snapshot) may arrive out of order
    state.succeeded = Math.max(state.succeeded, d.succeeded ?? 0);
    v.s.succeeded.textContent = num(state.succeeded);
    if (d.rejected !== undefined) state.rejected = Math.max(state.rejected, d.rejected);
    v.s.rejected.textContent = num(state.rejected);
    if (d.in_flight !== undefined) v.s.inflight.textContent = num(d.in_flight);
    if (d.usage) {
      v.s.tokens.textContent = num((d.usage.prompt_tokens || 0) + (d.usage.completion_tokens || 0));
      v.s.cost.textContent = usd(d.usage.cost_usd);
    }
    if (d.eta_seconds !== undefined) v.s.eta.textContent = d.eta_seconds === null ? "—" : `${Math.round(d.eta_seconds)} s`;
    const pct = state.requested ? Math.min(100, Math.round((state.succeeded / state.requested) * 100)) : 0;
    v.bar.value = pct;
    v.label.textContent = `${pct} %`;
  };
  const addItem = (item) => {  // in index order, once each (events and the result page may both bring it)
    if (item.index === null || item.index === undefined || seen.has(item.index)) return;
    seen.add(item.index);
    const after = [...v.items.children].find((tr) => Number(tr.dataset.index) > item.index);
    v.items.insertBefore(itemRow(item), after || null);
  };
  const snapshot = (job) => {
    setStatus(job.status);
    progress({ requested: job.requested ?? job.counts.requested, succeeded: job.counts.succeeded,
      rejected: job.counts.rejected, in_flight: job.counts.in_flight ?? 0, usage: job.usage,
      eta_seconds: job.progress?.eta_seconds ?? null });
    if (TERMINAL.has(job.status) && job.counts.succeeded && job.status !== "failed") { v.bar.value = 100; v.label.textContent = "100 %"; }
    if (job.error) error.textContent = `${job.error.code}: ${job.error.reason}`;
  };
  loadItems = async () => {
    const page = await api.get(`/generate/${encodeURIComponent(jobId)}/result`, { limit: 1000, include: "rejected" });
    v.rejected.replaceChildren();
    for (const item of page.items) {
      if (item.index === null) v.rejected.append(rejectedRow(item));
      else addItem(item);
    }
  };
  const on = (msg) => {
    const d = msg.data || {};
    if (msg.type === "snapshot") snapshot(d);
    else if (msg.type === "llmts.generation.started") { setStatus("running"); progress({ requested: d.requested }); }
    else if (msg.type === "llmts.generation.item_generated") { addItem(d); progress({ succeeded: Math.max(state.succeeded, seen.size) }); }
    else if (msg.type === "llmts.generation.item_rejected") v.rejected.append(rejectedRow(d));
    else if (msg.type === "llmts.generation.progress") progress(d);
    else if (msg.type in ENDED) {
      progress(d);
      setStatus(ENDED[msg.type] || d.status);
      if (msg.type === "llmts.generation.failed") error.textContent = `${d.code}: ${d.reason}`;
      else if (d.status !== "failed" && state.succeeded >= (state.requested || 0)) { v.bar.value = 100; v.label.textContent = "100 %"; }
    } else if (msg.type === "error") error.textContent = msg.error?.message || "stream error";
  };
  const exportsPart = exportsSection(jobId);
  replace(main, h("h1", {}, "Job ", h("code", {}, jobId)),
    h("p", {}, "Status: ", v.s.status, " ", cancel), v.bar, v.label, v.dl, error,
    h("h2", {}, "Items"), v.itemsTable, h("h2", {}, "Rejected items"), v.rejectedTable, exportsPart.el);
  const job = await api.get(`/generate/${encodeURIComponent(jobId)}`);
  snapshot(job);
  if (!TERMINAL.has(job.status)) await loadItems().catch(() => {});
  let socket = null;
  let poller = null;
  let alive = true;
  if (!TERMINAL.has(job.status)) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/ws/generate/${encodeURIComponent(jobId)}`);
    socket.addEventListener("open", () => socket.send(JSON.stringify({ token: api.accessToken() })));
    socket.addEventListener("message", (event) => on(JSON.parse(event.data)));
    socket.addEventListener("close", () => {  // the stream ended early (network, restart): poll until the job ends
      if (!alive || TERMINAL.has(v.s.status.textContent)) return;
      poller = setInterval(async () => {
        try { snapshot(await api.get(`/generate/${encodeURIComponent(jobId)}`)); } catch { /* next tick */ }
        if (TERMINAL.has(v.s.status.textContent)) clearInterval(poller);
      }, 2000);
    });
  }
  return () => { alive = false; clearInterval(poller); exportsPart.close(); if (socket) socket.close(); };
}
