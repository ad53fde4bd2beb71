// Webhooks (SPEC 2.16): list, create, deliveries, redeliver.
import { get, post, patch, api, enc } from "../api.js";
import { h, card, field, table, when, toast } from "../dom.js";
import { ifAvailable } from "../features.js";
import { showErrors, clearErrors, confirmAction, list } from "../forms.js";

export async function render(root) {
  root.append(h("h1", {}, "Webhooks"));
  root.append(await ifAvailable("GET", "/v1/admin/webhooks", "Webhooks", () => page()));
}

async function page() {
  const r = await get("/v1/admin/webhooks?limit=100");
  const deliveries = h("div", { id: "deliveries" });
  const showDeliveries = async (w) => {
    const d = await get(`/v1/admin/webhooks/${enc(w.webhook_id)}/deliveries?limit=50`);
    deliveries.replaceChildren(h("h3", {}, `Deliveries of ${w.url}`), table([
      { label: "Event", value: (x) => x.event_id }, { label: "Type", value: (x) => x.type },
      { label: "Status", value: (x) => h("span", { class: `badge ${x.status}` }, x.status) },
      { label: "Attempts", value: (x) => x.attempts }, { label: "Last code", value: (x) => x.last_status_code ?? "—" },
      { label: "Last attempt", value: (x) => when(x.last_attempt_at) },
      { label: "", value: (x) => h("button", { type: "button", class: "secondary", onclick: async () => {
        try { await post(`/v1/admin/webhooks/${enc(w.webhook_id)}/deliveries/${enc(x.event_id)}/redeliver`); toast("Redelivery queued."); }
        catch (err) { toast(err.message, "bad"); }
      } }, "Redeliver") },
    ], d.items || [], "No deliveries yet."));
  };
  const url = h("input", { name: "url", type: "url", required: true });
  const events = h("input", { name: "events", type: "text", value: "*" });
  const secret = h("div", {});
  const form = h("form", { class: "inline", onsubmit: async (e) => {
    e.preventDefault();
    clearErrors(form);
    try {
      const w = await post("/v1/admin/webhooks", { url: url.value, events: list(events.value) });
      secret.replaceChildren(h("p", { class: "notice" }, "Signing secret (shown once): ", h("code", {}, w.body.secret || "")));
    } catch (err) { showErrors(form, err); }
  } }, field("URL", url), field("Events", events, "types, comma-separated, or *"), h("button", { type: "submit" }, "Add webhook"));
  return h("div", {},
    card("Endpoints", table([
      { label: "URL", value: (w) => w.url }, { label: "Events", value: (w) => (w.events || []).join(", ") },
      { label: "Active", value: (w) => (w.active === false ? "no" : "yes") },
      { label: "", value: (w) => h("div", { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: () => showDeliveries(w).catch((err) => toast(err.message, "bad")) }, "Deliveries"),
        h("button", { type: "button", class: "secondary", onclick: async () => {
          try { await patch(`/v1/admin/webhooks/${enc(w.webhook_id)}`, { active: w.active === false }); toast("Updated."); window.dispatchEvent(new HashChangeEvent("hashchange")); }
          catch (err) { toast(err.message, "bad"); }
        } }, w.active === false ? "Enable" : "Disable"),
        h("button", { type: "button", class: "danger", onclick: async () => {
          if (!await confirmAction("Delete webhook", [`Stop sending events to ${w.url}?`], { danger: true, confirmLabel: "Delete" })) return;
          try { await api("DELETE", `/v1/admin/webhooks/${enc(w.webhook_id)}`); toast("Deleted."); window.dispatchEvent(new HashChangeEvent("hashchange")); }
          catch (err) { toast(err.message, "bad"); }
        } }, "Delete")) },
    ], r.items || [], "No webhooks yet.")),
    card("New webhook", form, secret), deliveries);
}
