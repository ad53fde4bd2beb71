// One coupon campaign: stats, generate codes (with progress), issue to an audience, status.
import { get, post, patch, enc } from "../api.js";
import { h, card, field, stat, num, pct, when, toast } from "../dom.js";
import { bars, progress } from "../charts.js";
import { showErrors, clearErrors, confirmAction, list } from "../forms.js";
import { watchJob } from "./jobs.js";

export async function render(root, campaignId) {
  const path = `/v1/admin/coupon-campaigns/${enc(campaignId)}`;
  const c = await get(path);
  const st = c.stats || {};
  const count = h("input", { name: "count", type: "number", min: 1, value: 100 });
  const genStatus = h("div", { class: "job-status" });
  const gen = h("form", { id: "codes-form", onsubmit: async (e) => {
    e.preventDefault();
    clearErrors(gen);
    try {
      const r = await post(`${path}/codes`, { count: Number(count.value) });
      if (r.status === 202 && r.body.job_id) {
        genStatus.replaceChildren(progress(0, r.body.count || Number(count.value), "queued"));
        await watchJob(r.body.job_id, (job) => {
          const done = (job.counts || {}).codes_generated || 0;
          genStatus.replaceChildren(progress(done, r.body.count || Number(count.value), `${job.status}: ${num(done)} codes`));
        });
      }
      toast("Codes generated.");
      window.dispatchEvent(new HashChangeEvent("hashchange"));
    } catch (err) { showErrors(gen, err); }
  } }, field("How many codes", count), h("button", { type: "submit" }, "Generate codes"), genStatus);

  const memberIds = h("textarea", { name: "member_ids", rows: 2 });
  const tiers = h("input", { name: "audience.tiers", type: "text" });
  const segments = h("input", { name: "audience.segments", type: "text" });
  const notify = h("input", { name: "notify", type: "checkbox" });
  const issueResult = h("div", { id: "issue-result" });
  const issue = h("form", { id: "issue-form", onsubmit: async (e) => {
    e.preventDefault();
    clearErrors(issue);
    const body = { notify: notify.checked };
    if (memberIds.value.trim()) body.member_ids = list(memberIds.value);
    if (tiers.value || segments.value) {
      body.audience = {};
      if (tiers.value) body.audience.tiers = list(tiers.value);
      if (segments.value) body.audience.segments = list(segments.value);
    }
    const who = body.member_ids ? `${body.member_ids.length} member(s)` : "the audience";
    if (!await confirmAction("Issue coupons", [`Issue ${c.name} to ${who}?`, notify.checked ? "They will be notified." : "No message is sent."], { confirmLabel: "Issue" })) return;
    try {
      const r = await post(`${path}/issue`, body);
      issueResult.replaceChildren(bars(Object.entries(r.body).filter(([, v]) => typeof v === "number").map(([k, v]) => ({ label: k.replace(/_/g, " "), value: v }))));
      toast(`Issued ${num(r.body.issued)}.`);
    } catch (err) { showErrors(issue, err); }
  } }, field("Member ids", memberIds, "comma or space separated"), field("Or audience tiers", tiers),
  field("Or audience segments", segments), h("label", { class: "check" }, notify, " Notify the members"),
  h("button", { type: "submit" }, "Issue…"), issueResult);

  const next = c.status === "active" ? "paused" : c.status === "paused" || c.status === "draft" ? "active" : null;
  const statusButton = next ? h("button", { type: "button", class: "secondary", onclick: async () => {
    if (!await confirmAction("Change status", [`Set ${c.name} to ${next}?`])) return;
    try { await patch(path, { status: next }); toast(`Campaign ${next}.`); window.dispatchEvent(new HashChangeEvent("hashchange")); }
    catch (err) { toast(err.message, "bad"); }
  } }, next === "paused" ? "Pause" : "Activate") : null;

  root.append(h("div", { class: "title-row" }, h("h1", {}, c.name), h("span", { class: `badge ${c.status}` }, c.status), statusButton),
    h("p", { class: "muted" }, `${c.campaign_id} · ${c.discount.type} ${c.discount.value || ""} · ${when(c.starts_at)} → ${when(c.ends_at)}`),
    h("div", { class: "stats", id: "coupon-stats" }, stat("Codes", num(st.codes)), stat("Issued", num(st.issued)),
      stat("Redeemed", num(st.redeemed)), stat("Redemption rate", pct(st.redemption_rate)),
      st.revenue !== undefined ? stat("Revenue", num(st.revenue)) : null),
    h("div", { class: "grid two" },
      card("Funnel", bars([{ label: "codes", value: st.codes }, { label: "issued", value: st.issued }, { label: "redeemed", value: st.redeemed }])),
      c.code_mode === "unique" ? card("Generate codes", gen) : card("Code", h("p", {}, `Shared code ${c.shared_code}`))),
    card("Issue to members or an audience", issue));
}
