// Message campaigns (broadcasts): list; compose with a dry run of the audience, then send.
import { get, post, enc } from "../api.js";
import { h, card, field, table, num, when, toast, newId, stat } from "../dom.js";
import { bars } from "../charts.js";
import { showErrors, clearErrors, confirmAction, list } from "../forms.js";
import { has, ifAvailable, notAvailable } from "../features.js";
import { upliftView } from "./message.js";

// An automation's or trigger's uplift over a period (GET /v1/admin/automations/{name}/results).
async function automationResults() {
  const route = "/v1/admin/automations/{name}/results";
  if (!has("GET", route)) return notAvailable("Automation uplift results");
  const settings = await get("/v1/admin/settings");
  const name = h("select", { name: "name" }, Object.keys(settings.automations || {}).map((n) => h("option", { value: n }, n)));
  const today = new Date().toISOString().slice(0, 10);
  const from = h("input", { name: "from", type: "date", value: new Date(Date.now() - 30 * 864e5).toISOString().slice(0, 10) });
  const to = h("input", { name: "to", type: "date", value: today });
  const out = h("div", {});
  const form = h("form", { class: "inline", onsubmit: async (e) => {
    e.preventDefault();
    clearErrors(form);
    try {
      out.replaceChildren(await ifAvailable("GET", route, "Automation uplift results", async () =>
        upliftView(await get(`/v1/admin/automations/${enc(name.value)}/results?from=${enc(from.value)}&to=${enc(to.value)}`))));
    } catch (err) { showErrors(form, err); }
  } }, field("Automation", name), field("From", from), field("To", to), h("button", { type: "submit" }, "Show results"));
  return h("div", {}, form, out);
}

export async function render(root) {
  const r = await get("/v1/admin/message-campaigns?limit=50");
  const f = {
    name: h("input", { name: "name", type: "text", required: true }),
    template: h("input", { name: "template", type: "text", required: true, placeholder: "spring_sale" }),
    channel: h("select", { name: "channel" }, ["email", "push", "sms"].map((v) => h("option", { value: v }, v))),
    tiers: h("input", { name: "audience.tiers", type: "text" }),
    segments: h("input", { name: "audience.segments", type: "text" }),
    touch: h("input", { name: "audience.touch", type: "text" }),
    member_ids: h("input", { name: "audience.member_ids", type: "text" }),
    coupon: h("input", { name: "coupon_campaign_id", type: "text" }),
  };
  const dry = h("div", { id: "dry-run-result" });
  const body = (dryRun) => {
    const audience = {};
    for (const k of ["tiers", "segments", "touch", "member_ids"]) if (f[k].value.trim()) audience[k] = list(f[k].value);
    const b = { name: f.name.value, template: f.template.value, channel: f.channel.value, audience, dry_run: dryRun };
    if (f.coupon.value.trim()) b.coupon_campaign_id = f.coupon.value.trim();
    if (!dryRun) b.campaign_id = newId("broadcast");
    return b;
  };
  const counts = (c) => bars(["audience_size", "eligible", "queued", "capped", "no_consent", "no_code"]
    .filter((k) => c[k] !== undefined).map((k) => ({ label: k.replace(/_/g, " "), value: c[k] })), { title: "audience" });
  const form = h("form", { id: "message-form", class: "cols", onsubmit: (e) => e.preventDefault() },
    field("Name", f.name), field("Template", f.template), field("Channel", f.channel),
    field("Audience tiers", f.tiers, "comma-separated"), field("Audience segments", f.segments, "e.g. at_risk, cant_lose"),
    field("Audience touch models", f.touch, "high_touch, low_touch, tech_touch"), field("Member ids", f.member_ids),
    field("Coupon campaign id", f.coupon, "optional: a code per recipient"),
    h("div", { class: "actions" },
      h("button", { type: "button", class: "secondary", id: "dry-run", onclick: async () => {
        clearErrors(form);
        try {
          const c = (await post("/v1/admin/message-campaigns", body(true))).body;
          dry.replaceChildren(h("div", { class: "stats" }, stat("Audience", num(c.audience_size)), stat("Eligible", num(c.eligible))), counts(c));
        } catch (err) { showErrors(form, err); }
      } }, "Dry run (count the audience)"),
      h("button", { type: "button", id: "send", onclick: async () => {
        clearErrors(form);
        const b = body(false);
        if (!await confirmAction("Send campaign", [`Send “${b.name}” by ${b.channel} to its audience now?`,
          "Members without consent or over the weekly cap are skipped."], { confirmLabel: "Send" })) return;
        try {
          const c = (await post("/v1/admin/message-campaigns", b)).body;
          toast(`Queued ${num(c.queued)} messages.`);
          location.hash = `#/messages/${enc(c.campaign_id)}`;
        } catch (err) { showErrors(form, err); }
      } }, "Send…")), dry);
  root.append(h("h1", {}, "Message campaigns"), card("Compose a broadcast", form),
    card("Campaigns", table([
      { label: "Name", value: (c) => h("a", { href: `#/messages/${enc(c.campaign_id)}` }, c.name) },
      { label: "Status", value: (c) => h("span", { class: `badge ${c.status}` }, c.status) },
      { label: "Channel", value: (c) => c.channel }, { label: "Audience", value: (c) => num(c.audience_size) },
      { label: "Queued", value: (c) => num(c.queued) }, { label: "Created", value: (c) => when(c.created_at) },
    ], r.items || [], "No campaigns yet.")),
    card("Automation results", await automationResults()));
}
