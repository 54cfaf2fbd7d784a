// Hash router and the session bootstrap of the console.
import * as api from "./api.js";
import { alertBox, h, replace } from "./dom.js";

const PAGES = {
  login: () => import("./pages/auth.js").then((m) => m.loginPage),
  register: () => import("./pages/auth.js").then((m) => m.registerPage),
  models: () => import("./pages/models.js").then((m) => m.modelsPage),
  templates: () => import("./pages/templates.js").then((m) => m.templatesPage),
  template: () => import("./pages/editor.js").then((m) => m.editorPage),
  run: () => import("./pages/run.js").then((m) => m.runPage),
  jobs: () => import("./pages/job.js").then((m) => m.jobPage),
  exports: () => import("./pages/job.js").then((m) => m.jobPage),
  history: () => import("./pages/history.js").then((m) => m.historyPage),
  usage: () => import("./pages/usage.js").then((m) => m.usagePage),
};
const PUBLIC = new Set(["login", "register"]);
let cleanup = null;

function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  const [name = "templates", ...args] = parts;
  if (name === "templates" && args.length) return { name: "template", args };
  return { name: PAGES[name] ? name : "templates", args };
}

let renderId = 0;

// Each page renders into its own container: a page still loading when the route changes writes into a detached
// node, never over the next page.
async function render() {
  const mine = ++renderId;
  const main = document.getElementById("main");
  const route = parseRoute();
  if (!api.signedIn() && !PUBLIC.has(route.name)) { location.hash = "#/login"; return; }
  if (typeof cleanup === "function") cleanup();
  cleanup = null;
  document.getElementById("nav").hidden = !api.signedIn();
  document.getElementById("who").textContent = api.userEmail() || "";
  for (const a of document.querySelectorAll("#nav a")) {
    const current = location.hash.startsWith(a.getAttribute("href"));
    if (current) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  const view = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  main.replaceChildren(view);
  try {
    const page = await PAGES[route.name]();
    const done = await page(view, ...route.args);
    if (mine === renderId) {
      cleanup = done;
      const title = view.querySelector("h1");
      document.title = `${title ? `${title.textContent} — ` : ""}LLM Templates`;
    } else if (typeof done === "function") done();
  } catch (error) {
    replace(view, h("h1", {}, "Something went wrong"), alertBox(error));
  }
}

async function oauthFragment() {
  // An OAuth login redirects here with the token pair in the fragment: move it into the cookie, drop it from the URL.
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("refresh_token");
  if (!token) return false;
  history.replaceState(null, "", `${location.pathname}#/templates`);
  await api.adopt(token);
  return true;
}

async function start() {
  document.getElementById("signout").addEventListener("click", async () => {
    await api.logout();
    location.hash = "#/login";
    render();
  });
  try {
    if (!(await oauthFragment())) await api.refresh();
  } catch { /* no session: the login page */ }
  window.addEventListener("hashchange", render);
  await render();
}

start();
