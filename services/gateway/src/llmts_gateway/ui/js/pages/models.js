// Models: filters (free/paid, online, structured output, provider), search, sort; prices per 1M tokens.
import * as api from "../api.js";
import { alertBox, debounce, field, h, num, replace, select, table } from "../dom.js";

const TRI = [["", "Any"], ["true", "Yes"], ["false", "No"]];
const price = (v) => (v === null || v === undefined ? "—" : `$${Number(v)}`);

export function modelRow(m) {
  return h("tr", {},
    h("td", {}, h("div", {}, m.name), h("code", {}, m.id)),
    h("td", {}, m.provider),
    h("td", { class: "num" }, price(m.pricing.prompt)),
    h("td", { class: "num" }, price(m.pricing.completion)),
    h("td", { class: "num" }, num(m.context_length)),
    h("td", {}, [m.free && "free", m.online && "online", m.structured_output && "structured", m.tools && "tools",
      m.stale && "stale"].filter(Boolean).map((t) => h("span", { class: "tag" }, t))));
}

export async function modelsPage(main) {
  const q = h("input", { type: "search" });
  const price_ = select([["", "Free and paid"], ["true", "Free"], ["false", "Paid"]], "");
  const online = select(TRI, "");
  const structured = select(TRI, "");
  const minContext = select([["", "Any"], ["8000", "≥ 8K"], ["32000", "≥ 32K"], ["128000", "≥ 128K"],
    ["1000000", "≥ 1M"]], "");
  const provider = select([["", "Any"], "openrouter", "ollama", "openai-compatible"], "");
  const sort = select([["name", "Name"], ["price", "Price"], ["context", "Context length"], ["created", "Newest"]],
    "price");
  const order = select([["asc", "Ascending"], ["desc", "Descending"]], "asc");
  const error = alertBox();
  const result = h("div", { "aria-live": "polite" });
  let offset = 0;
  const load = async () => {
    error.textContent = "";
    try {
      const page = await api.get("/providers/models", {
        q: q.value.trim(), free: price_.value, online: online.value, structured_output: structured.value,
        provider: provider.value, min_context: minContext.value, sort: sort.value, order: order.value, limit: 50,
        offset, verbose: false,
      });
      replace(result, h("p", {}, `${page.total} models`),
        table("Models", ["Model", "Provider", "Prompt $/1M", "Completion $/1M", "Context", ""],
          page.items.map(modelRow)),
        h("div", {},
          h("button", { type: "button", class: "secondary", disabled: offset === 0,
            onclick: () => { offset = Math.max(0, offset - 50); load(); } }, "Previous page"),
          h("button", { type: "button", class: "secondary", disabled: offset + 50 >= page.total,
            onclick: () => { offset += 50; load(); } }, "Next page")));
    } catch (e) { error.textContent = e.message; }
  };
  const reload = () => { offset = 0; load(); };
  q.addEventListener("input", debounce(reload, 300));
  for (const el of [price_, online, structured, minContext, provider, sort, order]) {
    el.addEventListener("change", reload);
  }
  replace(main, h("h1", {}, "Models"),
    h("div", { class: "row" }, field("Search", q), field("Price", price_), field("Online", online),
      field("Structured output", structured), field("Minimum context", minContext), field("Provider", provider),
      field("Sort by", sort), field("Order", order)),
    error, result);
  await load();
}
