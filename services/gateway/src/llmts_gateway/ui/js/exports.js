// Exports of a job: one button per format; polls the export, then offers the file as a download link.
import * as api from "./api.js";
import { alertBox, h } from "./dom.js";

export const FORMATS = ["csv", "json", "jsonl", "xlsx", "parquet", "md", "html", "xml", "txt", "pdf"];
const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

export function exportsSection(jobId) {
  const error = alertBox();
  const links = h("ul", { "aria-label": "Downloads", "aria-live": "polite" });
  let alive = true;
  const run = async (format, button) => {
    button.disabled = true;
    error.textContent = "";
    const status = h("li", {}, `${format.toUpperCase()}: requested…`);
    links.append(status);
    try {
      let exp = await api.post("/exports", { job_id: jobId, format });
      while (alive && !["ready", "failed"].includes(exp.status)) {
        status.textContent = `${format.toUpperCase()}: ${exp.status}${exp.waiting ? ` (${exp.waiting})` : ""}…`;
        await sleep(1000);
        exp = await api.get(`/exports/${encodeURIComponent(exp.export_id)}`);
      }
      if (exp.status === "failed") throw new Error(`${format} export failed: ${exp.reason || "unknown reason"}`);
      const blob = await api.download(exp.links.download);
      status.replaceChildren(h("a", { href: URL.createObjectURL(blob), download: exp.filename || `${jobId}.${format}` },
        `Download ${format.toUpperCase()}`), ` (${exp.items ?? "?"} items, ${blob.size} bytes)`);
    } catch (e) {
      status.remove();
      error.textContent = e.message;
    } finally { button.disabled = false; }
  };
  const el = h("section", { "aria-label": "Exports" }, h("h2", {}, "Exports"),
    h("div", {}, FORMATS.map((format) => {
      const button = h("button", { type: "button", class: "secondary" }, `Export ${format.toUpperCase()}`);
      button.addEventListener("click", () => run(format, button));
      return button;
    })), error, links);
  return { el, close: () => { alive = false; } };
}
