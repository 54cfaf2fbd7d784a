// The API client: access token in memory only; the refresh token is an httpOnly cookie the script never sees.
let access = null;
let email = null;
let refreshing = null;

export class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.code = err.code || "http_error";
    this.details = err.details;
  }
}

const csrf = () => (document.cookie.match(/(?:^|;\s*)llmts_csrf=([^;]+)/) || [])[1] || "";

export const signedIn = () => access !== null;
export const userEmail = () => email;
export const accessToken = () => access;

async function parse(resp) {
  if (resp.status === 204) return null;
  const type = resp.headers.get("content-type") || "";
  const body = type.includes("json") ? await resp.json() : await resp.text();
  if (!resp.ok) throw new ApiError(resp.status, body);
  return body;
}

async function session(path, body, headers = {}) {
  const resp = await fetch(`/auth/session/${path}`, {
    method: "POST", credentials: "same-origin",
    headers: { "content-type": "application/json", "x-csrf-token": csrf(), ...headers },
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await parse(resp);
  access = data.access_token;
  const me = await request("GET", "/auth/session");
  email = me.email;
  return data;
}

export const login = (creds) => session("login", creds);
export const register = (creds) => session("register", creds);
// (crypto.randomUUID needs a secure context; getRandomValues works on plain http too)
const nonce = () => Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0"))
  .join("");
export const adopt = (refreshToken) => session("adopt", { refresh_token: refreshToken }, { "x-csrf-token": nonce() });

// A new access token from the cookie; one refresh at a time (concurrent 401s share it).
export function refresh() {
  if (!csrf()) return Promise.reject(new ApiError(401, null));  // never signed in here: no session cookie
  refreshing ??= session("refresh").finally(() => { refreshing = null; });
  return refreshing;
}

export async function logout() {
  const headers = { "x-csrf-token": csrf() };
  if (access) headers.authorization = `Bearer ${access}`;
  access = null;
  email = null;
  await fetch("/auth/session/logout", { method: "POST", credentials: "same-origin", headers });
}

export async function request(method, path, body, { retry = true } = {}) {
  const headers = {};
  if (access) headers.authorization = `Bearer ${access}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (resp.status === 401 && retry && access) {
    try { await refresh(); } catch { access = null; location.hash = "#/login"; throw new ApiError(401, null); }
    return request(method, path, body, { retry: false });
  }
  return parse(resp);
}

export const get = (path, params) => request("GET", params ? `${path}?${query(params)}` : path);
export const post = (path, body) => request("POST", path, body ?? {});

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === null || v === undefined || v === "") continue;
    for (const one of Array.isArray(v) ? v : [v]) q.append(k, String(one));
  }
  return q.toString();
}

// A file answer (exports): fetched with the bearer token, handed to the browser as a same-origin blob link.
export async function download(path) {
  let resp = await fetch(path, { headers: { authorization: `Bearer ${access}` } });
  if (resp.status === 401) {
    await refresh();
    resp = await fetch(path, { headers: { authorization: `Bearer ${access}` } });
  }
  if (!resp.ok) await parse(resp);
  return resp.blob();
}
