// One message campaign: its counts and its uplift results with the interval drawn (SPEC 2.18).
import { get, enc } from "../api.js";
import { h, card, stat, num, pct, when, table } from "../dom.js";
import { bars, interval } from "../charts.js";
import { ifAvailable } from "../features.js";

// An uplift report (a broadcast's or an automation's): groups, difference and its interval.
export function upliftView(r) {
  const u = r.uplift || {}, t = r.treatment || {}, k = r.control || {};
  const diff = u.conversion_rate_diff;
  return h("div", { class: "uplift" },
    h("div", { class: "stats" },
      stat("Conversion uplift", diff === null || diff === undefined ? "—" : `${(diff * 100).toFixed(2)} pp`),
      stat("95% interval", Array.isArray(u.ci95) && u.ci95[0] !== null ? u.ci95.map((v) => `${(v * 100).toFixed(2)}`).join(" to ") + " pp" : "—"),
      stat("p-value", u.p_value ?? "—"), stat("Incremental revenue", num(u.incremental_revenue))),
    h("h3", {}, "Uplift with its 95% interval (percentage points; the dashed line is no effect)"),
    interval(diff, u.ci95),
    table([{ label: "Group", value: (g) => g.name }, { label: "Members", value: (g) => num(g.members) },
      { label: "Converters", value: (g) => num(g.converters) }, { label: "Conversion", value: (g) => pct(g.conversion_rate, 2) },
      { label: "Revenue", value: (g) => num(g.revenue) }, { label: "Per member", value: (g) => num(g.revenue_per_member) }],
    [{ name: "treatment", ...t }, { name: "control", ...k }]),
    h("p", { class: "muted" }, `Orders within ${r.attribution_days ?? "—"} days, as of ${when(r.as_of)} (the last measure-campaigns job).`));
}

export async function render(root, campaignId) {
  const path = `/v1/admin/message-campaigns/${enc(campaignId)}`;
  const c = await get(path);
  const results = await ifAvailable("GET", "/v1/admin/message-campaigns/{campaign_id}/results", "Uplift results",
    async () => upliftView(await get(`${path}/results`)));
  root.append(h("div", { class: "title-row" }, h("h1", {}, c.name), h("span", { class: `badge ${c.status}` }, c.status)),
    h("p", { class: "muted" }, `${c.campaign_id} · ${c.channel} · template ${c.template} · by ${c.created_by} · ${when(c.created_at)}`),
    h("div", { class: "grid two" },
      card("Delivery", bars(["audience_size", "eligible", "queued", "capped", "no_consent", "no_code"]
        .map((k2) => ({ label: k2.replace(/_/g, " "), value: c[k2] })))),
      card("Results", h("div", { id: "results" }, results))));
}
