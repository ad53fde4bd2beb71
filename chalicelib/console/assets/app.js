// The console shell: sign-in, the hash router and the navigation. Each page is a module
// in pages/ exporting `render(root, params)`; adding a page is one file and one ROUTES line.
import { configure, get, signIn, signOut, token, ApiError } from "./api.js";
import { h, clear, field, card } from "./dom.js";
import { loadRoutes } from "./features.js";

const ROUTES = [
  [/^#\/overview$/, "overview"],
  [/^#\/members$/, "members"],
  [/^#\/members\/(.+)$/, "member"],
  [/^#\/coupons$/, "coupons"],
  [/^#\/coupons\/(.+)$/, "coupon"],
  [/^#\/messages$/, "messages"],
  [/^#\/messages\/(.+)$/, "message"],
  [/^#\/jobs$/, "jobs"],
  [/^#\/webhooks$/, "webhooks"],
  [/^#\/settings$/, "settings"],
  [/^#\/tiers$/, "tiers"],
  [/^#\/audit$/, "audit"],
];

const view = document.getElementById("view");
const nav = document.getElementById("nav");
const signOutButton = document.getElementById("sign-out");
let config = { api_base: "", stage: "production" };

async function loadConfig() {
  try {
    const response = await fetch("/console/config.json", { cache: "no-store", credentials: "omit" });
    if (response.ok) config = await response.json();
  } catch { /* a static site without config.json talks to its own origin */ }
  configure(config);
}

function signInPage(message) {
  nav.hidden = true;
  signOutButton.hidden = true;
  const input = h("textarea", { name: "token", rows: 4, autocomplete: "off", spellcheck: "false",
    placeholder: "eyJhbGciOi…" });
  const error = h("p", { class: "error", role: "alert" }, message || "");
  const submit = async (event) => {
    event.preventDefault();
    if (!input.value.trim()) { error.textContent = "Paste an admin token."; return; }
    signIn(input.value);
    try {
      await get("/v1/admin/settings");
    } catch (err) {
      signOut();
      error.textContent = err instanceof ApiError && err.status === 403
        ? "This token is not an admin token." : `Sign-in failed: ${err.message}`;
      return;
    }
    if (!location.hash || location.hash === "#/sign-in") location.hash = "#/overview";
    route();
  };
  const form = h("form", { class: "signin", onsubmit: submit },
    h("h1", {}, "Sign in"),
    h("p", {}, "Paste an admin token. It stays in this browser tab and is sent only to the API, in the Authorization header."),
    field("Admin token", input),
    config.local_admin_token ? h("button", { type: "button", class: "secondary", id: "use-local-token",
      onclick: () => { input.value = config.local_admin_token; } }, "Use the local admin token (make run)") : null,
    h("button", { type: "submit", id: "sign-in" }, "Sign in"), error);
  clear(view).append(h("div", { class: "narrow" }, card(null, form)));
}

async function route() {
  if (!token()) return signInPage();
  nav.hidden = false;
  signOutButton.hidden = false;
  clear(view).append(h("p", { class: "muted loading" }, "Loading…"));
  await loadRoutes();
  const hash = location.hash || "#/overview";
  const match = ROUTES.map(([re, page]) => [hash.match(re), page]).find(([m]) => m);
  for (const a of nav.querySelectorAll("a")) {
    a.classList.toggle("active", hash.startsWith(a.getAttribute("href").replace(/s$/, "")));
  }
  if (!match) { location.hash = "#/overview"; return; }
  const [m, page] = match;
  const root = view;
  try {
    const module = await import(`./pages/${page}.js`);
    const params = m.slice(1).map(decodeURIComponent);
    const container = h("div", { class: "page", "data-page": page });
    await module.render(container, ...params);
    clear(root).append(container);
  } catch (err) {
    clear(root).append(card("Something went wrong", h("p", { class: "error" }, err.message || String(err))));
  }
}

signOutButton.addEventListener("click", () => { signOut(); location.hash = ""; signInPage("Signed out."); });
window.addEventListener("hashchange", route);
window.addEventListener("console:unauthenticated", () => { signOut(); signInPage("The token was refused or has expired: sign in again."); });

loadConfig().then(route);
