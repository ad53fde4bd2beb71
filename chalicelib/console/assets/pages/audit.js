// The audit log: every admin action, the console's included, newest first.
import { get, enc } from "../api.js";
import { h, card, table, when } from "../dom.js";

export async function render(root) {
  const box = h("div", { id: "audit" });
  const load = async (cursor) => {
    const r = await get(`/v1/admin/audit?limit=50${cursor ? `&cursor=${enc(cursor)}` : ""}`);
    box.replaceChildren(table([
      { label: "When", value: (a) => when(a.at) },
      { label: "Actor", value: (a) => a.actor },
      { label: "Action", value: (a) => h("code", {}, a.action) },
      { label: "Target", value: (a) => a.target || "" },
      { label: "Details", value: (a) => h("code", { class: "details" }, JSON.stringify(a.details || {})) },
    ], r.items || [], "No admin actions yet."),
    r.next_cursor ? h("button", { type: "button", class: "secondary", onclick: () => load(r.next_cursor) }, "Older") : "");
  };
  await load(null);
  root.append(h("h1", {}, "Audit log"), card(null, box));
}
