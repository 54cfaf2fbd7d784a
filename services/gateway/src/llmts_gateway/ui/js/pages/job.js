// A job, live over the WebSocket: progress bar, counters, tokens, cost, ETA, items as they arrive, rejected items,
// cancel, exports. Falls back to polling when the stream ends before the job does.
import * as api from "../api.js";
import { alertBox, h, replace } from "../dom.js";
import { exportsSection } from "../exports.js";
import { JobTracker } from "../tracker.js";

function watch(jobId, tracker) {
  const path = `/generate/${encodeURIComponent(jobId)}`;
  let alive = true;
  let poller = null;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws${path}`);
  socket.addEventListener("open", () => socket.send(JSON.stringify({ token: api.accessToken() })));
  socket.addEventListener("message", (event) => tracker.on(JSON.parse(event.data)));
  socket.addEventListener("close", () => {  // network, a gateway restart, an expired token: poll until the end
    if (!alive || tracker.ended) return;
    poller = setInterval(async () => {
      try { tracker.snapshot(await api.get(path)); } catch { /* the next tick */ }
      if (tracker.ended) clearInterval(poller);
    }, 2000);
  });
  return () => { alive = false; clearInterval(poller); socket.close(); };
}

export async function jobPage(main, jobId) {
  const error = alertBox();
  const cancel = h("button", { type: "button", class: "secondary" }, "Cancel job");
  cancel.addEventListener("click", async () => {
    try {
      await api.request("DELETE", `/generate/${encodeURIComponent(jobId)}`);
    } catch (e) { error.textContent = e.message; }
  });
  const t = new JobTracker(jobId, error, cancel);
  const exportsPart = exportsSection(jobId);
  replace(main, h("h1", {}, "Job ", h("code", {}, jobId)),
    h("p", {}, "Status: ", t.s.status, " ", cancel), t.bar, t.label, t.counters, error,
    h("h2", {}, "Items"), t.itemsTable, h("h2", {}, "Rejected items"), t.rejectedTable, exportsPart.el);
  const job = await api.get(`/generate/${encodeURIComponent(jobId)}`);
  t.snapshot(job);  // a job that has ended loads its items here (setStatus)
  if (t.ended) return () => exportsPart.close();
  await t.loadItems().catch(() => {});
  const stop = watch(jobId, t);
  return () => { stop(); exportsPart.close(); };
}
