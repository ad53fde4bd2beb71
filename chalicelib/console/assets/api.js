// The console's only way to the backend: the public HTTP API, with the admin token its
// user gave. The token lives in this tab's sessionStorage and in request headers only.
const TOKEN_KEY = "loyalty.console.token";
let base = "";

export class ApiError extends Error {
  constructor(status, error) {
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || "HTTP_" + status;
    this.details = error.details || {};
  }

  get fields() {
    return Array.isArray(this.details.fields) ? this.details.fields : [];
  }
}

// The route itself does not exist on this server (a feature not deployed yet).
export class NotAvailable extends ApiError {}

export function configure(config) {
  base = (config && config.api_base) || "";
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function signIn(value) {
  sessionStorage.setItem(TOKEN_KEY, value.trim().replace(/^Bearer\s+/i, ""));
}

export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json", Authorization: `Bearer ${token() || ""}` };
  const init = { method, headers, cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(base + path, init);
  } catch (err) {
    throw new ApiError(0, { code: "NETWORK", message: "the API did not answer: " + err.message });
  }
  const text = await response.text();
  let payload = null;
  try { payload = text ? JSON.parse(text) : null; } catch { payload = null; }
  if (response.ok) return { status: response.status, body: payload };
  const error = (payload && payload.error) || { message: text.slice(0, 200) || response.statusText };
  if (response.status === 404 && error.code === "NOT_FOUND") throw new NotAvailable(404, error);
  if (response.status === 401) window.dispatchEvent(new CustomEvent("console:unauthenticated"));
  throw new ApiError(response.status, error);
}

export const get = (path) => api("GET", path).then((r) => r.body);
export const post = (path, body = {}) => api("POST", path, body);
export const put = (path, body) => api("PUT", path, body);
export const patch = (path, body) => api("PATCH", path, body);

export const enc = encodeURIComponent;
