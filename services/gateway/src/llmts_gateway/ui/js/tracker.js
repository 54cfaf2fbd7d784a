// The live state of one job on the page: counters, bar, items and rejected items, fed by the WebSocket's events,
// snapshots and the result page. Counts only grow (events of several kinds may arrive out of order).
import * as api from "./api.js";
import { h, num, usd } from "./dom.js";

export const TERMINAL = new Set(["completed", "completed_with_errors", "stopped", "failed", "cancelled"]);
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

function tableOf(name, headers, body) {
  return h("table", { "aria-label": name },
    h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))), body);
}

export class JobTracker {
  constructor(jobId, error, cancel) {
    this.jobId = jobId;
    this.error = error;
    this.cancel = cancel;
    this.seen = new Set();
    this.state = { requested: null, succeeded: 0, rejected: 0 };
    const stat = (key) => h("dd", { "data-testid": key }, "—");
    this.s = { status: h("span", { "data-testid": "job-status" }, "…"), succeeded: stat("count-succeeded"),
      rejected: stat("count-rejected"), inflight: stat("count-inflight"), tokens: stat("tokens"), cost: stat("cost"),
      eta: stat("eta") };
    this.bar = h("progress", { max: 100, value: 0, "aria-label": "Job progress" });
    this.label = h("span", { "aria-hidden": "true" }, "0 %");
    this.items = h("tbody", {});
    this.rejected = h("tbody", {});
    this.counters = h("dl", { class: "row" }, [["Succeeded", this.s.succeeded], ["Rejected", this.s.rejected],
      ["In flight", this.s.inflight], ["Tokens", this.s.tokens], ["Cost so far", this.s.cost], ["ETA", this.s.eta]]
      .map(([t, d]) => h("div", {}, h("dt", {}, t), d)));
    this.itemsTable = tableOf("Items", ["#", "Data", "Attempts", "Model"], this.items);
    this.rejectedTable = tableOf("Rejected items", ["Reason", "Errors", "Last output", "Attempts"], this.rejected);
  }

  get status() { return this.s.status.textContent; }

  get ended() { return TERMINAL.has(this.status); }

  setStatus(status) {
    const ends = TERMINAL.has(status) && !this.ended;
    this.s.status.textContent = status;
    this.cancel.disabled = TERMINAL.has(status);
    if (ends) this.loadItems().catch((e) => { this.error.textContent = e.message; });  // what the stream missed
  }

  progress(d) {
    const st = this.state;
    st.requested = d.requested ?? st.requested;
    st.succeeded = Math.max(st.succeeded, d.succeeded ?? 0);
    st.rejected = Math.max(st.rejected, d.rejected ?? 0);
    this.s.succeeded.textContent = num(st.succeeded);
    this.s.rejected.textContent = num(st.rejected);
    if (d.in_flight !== undefined) this.s.inflight.textContent = num(d.in_flight);
    if (d.usage) {
      this.s.tokens.textContent = num((d.usage.prompt_tokens || 0) + (d.usage.completion_tokens || 0));
      this.s.cost.textContent = usd(d.usage.cost_usd);
    }
    if (d.eta_seconds !== undefined) {
      this.s.eta.textContent = d.eta_seconds === null ? "—" : `${Math.round(d.eta_seconds)} s`;
    }
    this.setPercent(st.requested ? Math.round((st.succeeded / st.requested) * 100) : 0);
  }

  setPercent(pct) {
    const value = Math.max(Number(this.bar.value) || 0, Math.min(100, pct));
    this.bar.value = value;
    this.label.textContent = `${value} %`;
  }

  addItem(item) {  // in index order, once each (events and the result page may both bring it)
    if (item.index === null || item.index === undefined || this.seen.has(item.index)) return;
    this.seen.add(item.index);
    const after = [...this.items.children].find((tr) => Number(tr.dataset.index) > item.index);
    this.items.insertBefore(itemRow(item), after || null);
  }

  snapshot(job) {
    this.setStatus(job.status);
    this.progress({ requested: job.requested ?? job.counts.requested, succeeded: job.counts.succeeded,
      rejected: job.counts.rejected, in_flight: job.counts.in_flight ?? 0, usage: job.usage,
      eta_seconds: job.progress?.eta_seconds ?? null });
    if (job.error) this.error.textContent = `${job.error.code}: ${job.error.reason}`;
  }

  async loadItems() {
    const page = await api.get(`/generate/${encodeURIComponent(this.jobId)}/result`,
      { limit: 1000, include: "rejected" });
    this.rejected.replaceChildren();
    for (const item of page.items) {
      if (item.index === null) this.rejected.append(rejectedRow(item));
      else this.addItem(item);
    }
  }

  on(msg) {  // one WebSocket message
    const d = msg.data || {};
    if (msg.type === "snapshot") this.snapshot(d);
    else if (msg.type === "llmts.generation.started") {
      this.setStatus("running");
      this.progress({ requested: d.requested });
    } else if (msg.type === "llmts.generation.item_generated") {
      this.addItem(d);
      this.progress({ succeeded: this.seen.size });
    } else if (msg.type === "llmts.generation.item_rejected") this.rejected.append(rejectedRow(d));
    else if (msg.type === "llmts.generation.progress") this.progress(d);
    else if (msg.type in ENDED) {
      this.progress(d);
      this.setStatus(ENDED[msg.type] || d.status);
      if (msg.type === "llmts.generation.failed") this.error.textContent = `${d.code}: ${d.reason}`;
    } else if (msg.type === "error") this.error.textContent = msg.error?.message || "stream error";
  }
}
