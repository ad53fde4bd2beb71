// Which routes this server has, read once from its OpenAPI document, so screens for
// features not deployed here can say so instead of failing.
import { get, NotAvailable } from "./api.js";
import { h } from "./dom.js";

let paths = null;

export async function loadRoutes() {
  if (paths) return;
  try {
    const doc = await get("/v1/openapi.json");
    paths = doc.paths || {};
  } catch {
    paths = null; // unknown: assume every route exists and let 404s speak
  }
}

export function has(method, path) {
  if (!paths) return true;
  const ops = paths[path];
  return Boolean(ops && ops[method.toLowerCase()]);
}

export function notAvailable(what) {
  return h("div", { class: "notice", "data-not-available": "" },
    h("strong", {}, "Not available on this server. "),
    `${what} needs an API route this server does not have yet.`);
}

// Runs `fn`, turning a missing route (its 404 NOT_FOUND) into the notice.
export async function ifAvailable(method, path, what, fn) {
  if (!has(method, path)) return notAvailable(what);
  try {
    return await fn();
  } catch (err) {
    if (err instanceof NotAvailable) {
      // The route exists (it is in the document) but has nothing under this id yet.
      return paths ? h("p", { class: "muted" }, `Nothing yet: ${err.message}.`) : notAvailable(what);
    }
    throw err;
  }
}
