// Find a member by id or by email.
import { get, enc, ApiError } from "../api.js";
import { h, card, field, table, num } from "../dom.js";
import { has, notAvailable } from "../features.js";

export async function render(root) {
  const idInput = h("input", { name: "member_id", type: "search", autocomplete: "off", required: true });
  const emailInput = h("input", { name: "email", type: "email", autocomplete: "off", required: true });
  const results = h("div", { class: "results" });
  const byId = h("form", { class: "inline", onsubmit: async (e) => {
    e.preventDefault();
    const id = idInput.value.trim();
    if (id) location.hash = `#/members/${enc(id)}`;
  } }, field("Member id", idInput), h("button", { type: "submit", id: "find-member" }, "Open"));
  const byEmail = h("form", { class: "inline", onsubmit: async (e) => {
    e.preventDefault();
    results.replaceChildren(h("p", { class: "muted" }, "Searching…"));
    try {
      const r = await get(`/v1/admin/members?email=${enc(emailInput.value.trim())}`);
      results.replaceChildren(table([
        { label: "Member", value: (m) => h("a", { href: `#/members/${enc(m.member_id)}` }, m.member_id) },
        { label: "Name", value: (m) => m.name || "" },
        { label: "Email", value: (m) => m.email || "" },
        { label: "Tier", value: (m) => (m.tier || {}).name || "" },
        { label: "Available", value: (m) => num((m.points || {}).available) },
      ], r.items || [], "No member has this email."));
    } catch (err) {
      results.replaceChildren(err instanceof ApiError && err.status === 404
        ? notAvailable("Finding a member by email") : h("p", { class: "error" }, err.message));
    }
  } }, field("Email (exact)", emailInput), h("button", { type: "submit", id: "find-email" }, "Search"));
  root.append(h("h1", {}, "Members"),
    h("div", { class: "grid two" },
      card("By member id", byId),
      card("By email", has("GET", "/v1/admin/members") ? byEmail : notAvailable("Finding a member by email"))),
    results);
}
