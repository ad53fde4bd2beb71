// Coupon campaigns: the list and the create form.
import { get, post, enc } from "../api.js";
import { h, card, field, table, num, pct, when, toast } from "../dom.js";
import { showErrors, clearErrors, list } from "../forms.js";

function input(name, attrs = {}) {
  return h("input", { name, type: "text", autocomplete: "off", ...attrs });
}

export async function render(root) {
  const r = await get("/v1/admin/coupon-campaigns?limit=100");
  const now = new Date(), later = new Date(now.getTime() + 30 * 864e5);
  const f = {
    campaign_id: input("campaign_id", { required: true }), name: input("name", { required: true }),
    type: h("select", { name: "discount.type" }, ["percent", "amount", "free_shipping"].map((v) => h("option", { value: v }, v))),
    value: input("discount.value", { type: "number", value: 10 }),
    code_mode: h("select", { name: "code_mode" }, ["unique", "shared"].map((v) => h("option", { value: v }, v))),
    shared_code: input("shared_code"), prefix: input("code_pattern.prefix"),
    starts_at: input("starts_at", { type: "datetime-local", value: now.toISOString().slice(0, 16) }),
    ends_at: input("ends_at", { type: "datetime-local", value: later.toISOString().slice(0, 16) }),
    min_order_amount: input("min_order_amount", { type: "number", value: 0 }),
    max_redemptions: input("max_redemptions", { type: "number" }),
    max_per_member: input("max_per_member", { type: "number", value: 1 }),
    tiers: input("audience.tiers"), segments: input("audience.segments"),
  };
  const utc = (v) => (v ? `${v}:00Z` : v);
  const form = h("form", { id: "coupon-create", class: "cols", onsubmit: async (e) => {
    e.preventDefault();
    clearErrors(form);
    const body = {
      campaign_id: f.campaign_id.value, name: f.name.value,
      discount: { type: f.type.value, value: Number(f.value.value || 0) },
      code_mode: f.code_mode.value, starts_at: utc(f.starts_at.value), ends_at: utc(f.ends_at.value),
      min_order_amount: Number(f.min_order_amount.value || 0), max_per_member: Number(f.max_per_member.value || 1),
    };
    if (f.max_redemptions.value) body.max_redemptions = Number(f.max_redemptions.value);
    if (body.code_mode === "shared") body.shared_code = f.shared_code.value;
    else if (f.prefix.value) body.code_pattern = { prefix: f.prefix.value };
    if (f.tiers.value || f.segments.value) {
      body.audience = {};
      if (f.tiers.value) body.audience.tiers = list(f.tiers.value);
      if (f.segments.value) body.audience.segments = list(f.segments.value);
    }
    try {
      await post("/v1/admin/coupon-campaigns", body);
      toast("Campaign created.");
      location.hash = `#/coupons/${enc(body.campaign_id)}`;
    } catch (err) { showErrors(form, err); }
  } },
  field("Campaign id", f.campaign_id), field("Name", f.name), field("Discount type", f.type),
  field("Discount value", f.value, "percent: 1–100; amount: minor units"), field("Codes", f.code_mode),
  field("Shared code", f.shared_code, "shared campaigns only"), field("Code prefix", f.prefix, "unique codes only"),
  field("Starts (UTC)", f.starts_at), field("Ends (UTC)", f.ends_at), field("Minimum order", f.min_order_amount),
  field("Max redemptions", f.max_redemptions, "empty: no limit"), field("Max per member", f.max_per_member),
  field("Audience tiers", f.tiers, "comma-separated"), field("Audience segments", f.segments, "comma-separated"),
  h("div", { class: "actions" }, h("button", { type: "submit" }, "Create campaign")));

  root.append(h("h1", {}, "Coupon campaigns"),
    card("Campaigns", table([
      { label: "Campaign", value: (c) => h("a", { href: `#/coupons/${enc(c.campaign_id)}` }, c.name) },
      { label: "Status", value: (c) => h("span", { class: `badge ${c.status}` }, c.status) },
      { label: "Codes", value: (c) => `${c.code_mode} · ${num(c.stats.codes)}` },
      { label: "Issued", value: (c) => num(c.stats.issued) },
      { label: "Redeemed", value: (c) => num(c.stats.redeemed) },
      { label: "Rate", value: (c) => pct(c.stats.redemption_rate) },
      { label: "Ends", value: (c) => when(c.ends_at) },
    ], r.items || [], "No coupon campaigns yet.")),
    card("New campaign", form));
}
