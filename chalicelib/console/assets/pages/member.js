// A member's whole story: profile, points and expiring lots, tier progress, ledger,
// redemptions, coupons, holds, transfers; adjust points, status match, merge, close.
import { get, post, put, enc, ApiError } from "../api.js";
import { h, card, stat, num, when, table, field, newId, toast } from "../dom.js";
import { columns, progress } from "../charts.js";
import { ifAvailable, has, notAvailable } from "../features.js";
import { showErrors, clearErrors, confirmAction } from "../forms.js";

function ref(entry) {
  return Object.entries(entry.reference || {}).map(([k, v]) => `${k}: ${v}`).join(", ");
}

// A list with a "more" button following next_cursor (SPEC 4.3).
function paged(path, columnsDef, empty) {
  const box = h("div", {});
  const load = async (cursor) => {
    const sep = path.includes("?") ? "&" : "?";
    const r = await get(`${path}${sep}limit=20${cursor ? `&cursor=${enc(cursor)}` : ""}`);
    const t = table(columnsDef, r.items || [], empty);
    const more = r.next_cursor ? h("button", { type: "button", class: "secondary", onclick: () => load(r.next_cursor).catch(fail) }, "Older") : null;
    box.replaceChildren(t, more || "");
  };
  const fail = (err) => box.replaceChildren(h("p", { class: "error" }, err.message));
  return { box, load: () => load(null).catch(fail) };
}

export async function render(root, memberId) {
  const base = `/v1/members/${enc(memberId)}`;
  let m;
  try {
    m = await get(base);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      root.append(h("h1", {}, "Member not found"), h("p", {}, `No member has the id ${memberId}.`), h("a", { href: "#/members" }, "Back to search"));
      return;
    }
    throw err;
  }
  const p = m.points || {}, t = m.tier || {};
  const ledger = paged(`${base}/ledger`, [
    { label: "When", value: (e) => when(e.occurred_at) },
    { label: "Type", value: (e) => h("span", { class: `tag ${e.type}` }, e.type) },
    { label: "Points", value: (e) => h("span", { class: e.points < 0 ? "neg" : "pos" }, (e.points > 0 ? "+" : "") + num(e.points)) },
    { label: "Balance", value: (e) => num(e.balance_after) },
    { label: "Reference", value: ref },
    { label: "By", value: (e) => [e.actor || "", e.note ? h("div", { class: "muted" }, e.note) : null] },
  ], "No ledger entries.");
  const redemptions = paged(`${base}/redemptions`, [
    { label: "Issued", value: (r) => when(r.issued_at) },
    { label: "Reward", value: (r) => r.reward_id },
    { label: "Code", value: (r) => r.code },
    { label: "Status", value: (r) => r.status },
    { label: "Points", value: (r) => num(r.points_spent) },
    { label: "Expires", value: (r) => when(r.expires_at) },
  ], "No redemptions.");
  const coupons = paged(`${base}/coupons`, [
    { label: "Code", value: (c) => c.code },
    { label: "Campaign", value: (c) => h("a", { href: `#/coupons/${enc(c.campaign_id)}` }, c.name || c.campaign_id) },
    { label: "Status", value: (c) => c.status },
    { label: "Issued", value: (c) => when(c.issued_at) },
    { label: "Ends", value: (c) => when(c.ends_at) },
  ], "No coupons.");
  const holdsPath = `/v1/members/{member_id}/point-holds`, transfersPath = `/v1/members/{member_id}/transfers`;
  const holds = has("GET", holdsPath) ? paged(`${base}/point-holds`, [
    { label: "Hold", value: (x) => x.hold_id },
    { label: "Points", value: (x) => num(x.points) },
    { label: "Status", value: (x) => x.status },
    { label: "Order", value: (x) => x.order_id || "" },
    { label: "Expires", value: (x) => when(x.expires_at) },
  ], "No holds.") : null;
  const transfers = has("GET", transfersPath) ? paged(`${base}/transfers`, [
    { label: "Transfer", value: (x) => x.transfer_id },
    { label: "From", value: (x) => x.from_member_id || "" },
    { label: "To", value: (x) => x.to_member_id || "" },
    { label: "Points", value: (x) => num(x.points) },
    { label: "When", value: (x) => when(x.created_at || x.occurred_at) },
  ], "No transfers.") : null;

  const closed = m.status === "closed";
  const spendGoal = (Number(t.qualifying_spend) || 0) + (Number(t.spend_to_next_tier) || 0);
  root.append(
    h("div", { class: "title-row" }, h("h1", {}, m.name || m.member_id),
      h("span", { class: `badge ${m.status}` }, m.status), m.merged_into ? h("span", { class: "badge" }, `merged into ${m.merged_into}`) : null),
    h("div", { class: "grid" },
      card("Profile", h("dl", { class: "kv" },
        ...[["Member id", m.member_id], ["Email", m.email], ["Birthday", m.birthday], ["Locale", m.locale],
          ["Enrolled", when(m.enrolled_at)], ["Referral code", m.referral_code], ["Referred by", m.referred_by],
          ["Consents", Object.entries(m.consents || {}).filter(([, v]) => v).map(([k]) => k).join(", ") || "none"],
          ["Segment", m.segment ? `${m.segment.label} (RFM ${m.segment.rfm}, ${m.segment.touch})` : "not scored"]]
          .flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v || "—")]))),
      card("Points", h("div", { class: "stats", id: "points" },
        stat("Available", num(p.available)), stat("Pending", num(p.pending)), stat("Held", num(p.held)),
        stat("Lifetime earned", num(p.lifetime_earned)), stat("Lifetime spent", num(p.lifetime_spent))),
      h("h3", {}, "Expiring lots"),
      columns((p.expiring_soon || []).map((l) => ({ label: String(l.expires_at).slice(0, 10), value: l.points })), { title: "expiring points" })),
      card("Tier", h("div", { class: "stats" }, stat("Tier", t.name || t.tier_id || "—"), stat("Multiplier", t.multiplier || "—"),
        stat("Qualifying spend", num(t.qualifying_spend))),
      t.next_tier ? progress(t.qualifying_spend, spendGoal, `${num(t.spend_to_next_tier)} to ${t.next_tier}`) : h("p", { class: "muted" }, "Top tier."),
      t.retained_until ? h("p", { class: "muted" }, `Retained until ${when(t.retained_until)}.`) : null)),
    card("Ledger", ledger.box),
    h("div", { class: "grid two" }, card("Redemptions", redemptions.box), card("Coupons", coupons.box)),
    h("div", { class: "grid two" },
      card("Holds", holds ? holds.box : notAvailable("Point holds")),
      card("Transfers", transfers ? transfers.box : notAvailable("Transfers"))),
    closed ? card("Actions", h("p", { class: "muted" }, "This member is closed: no further actions.")) :
      h("div", { class: "grid" }, adjustCard(m), statusMatchCard(m), mergeCard(m), closeCard(m)));
  await Promise.all([ledger.load(), redemptions.load(), coupons.load(), holds && holds.load(), transfers && transfers.load()]);
}

function rerender() {
  // Re-read everything after an action: the page shows what the API now says.
  window.dispatchEvent(new HashChangeEvent("hashchange"));
}

function adjustCard(m) {
  const points = h("input", { name: "points", type: "number", step: 1, required: true });
  const reason = h("input", { name: "reason", type: "text", maxlength: 500, required: true });
  const form = h("form", { id: "adjust-form", onsubmit: async (e) => {
    e.preventDefault();
    clearErrors(form);
    const n = Number(points.value);
    const ok = await confirmAction("Adjust points", [
      `${n > 0 ? "Add" : "Remove"} ${num(Math.abs(n))} points ${n > 0 ? "to" : "from"} ${m.member_id}?`,
      `Reason: ${reason.value || "(none)"}`, "The adjustment is recorded in the ledger and the audit log."], { confirmLabel: "Adjust" });
    if (!ok) return;
    try {
      await post(`/v1/admin/members/${enc(m.member_id)}/adjustments`,
        { adjustment_id: newId("console"), points: points.value === "" ? null : n, reason: reason.value });
      toast("Points adjusted.");
      rerender();
    } catch (err) { showErrors(form, err); }
  } }, field("Points (negative removes)", points), field("Reason", reason), h("button", { type: "submit" }, "Adjust points…"));
  return card("Adjust points", form);
}

function statusMatchCard(m) {
  if (!has("PUT", "/v1/admin/members/{member_id}/tier")) return card("Status match", notAvailable("Status match"));
  const tier = h("input", { name: "tier_id", type: "text", required: true });
  const until = h("input", { name: "until", type: "date", required: true });
  const reason = h("input", { name: "reason", type: "text", required: true });
  const form = h("form", { onsubmit: async (e) => {
    e.preventDefault();
    clearErrors(form);
    if (!await confirmAction("Status match", [`Give ${m.member_id} the tier ${tier.value} until ${until.value}?`])) return;
    try {
      await put(`/v1/admin/members/${enc(m.member_id)}/tier`, { tier_id: tier.value, until: until.value, reason: reason.value });
      toast("Tier set.");
      rerender();
    } catch (err) { showErrors(form, err); }
  } }, field("Tier id", tier), field("Until", until), field("Reason", reason), h("button", { type: "submit" }, "Match status…"));
  return card("Status match", form);
}

function mergeCard(m) {
  if (!has("POST", "/v1/admin/members/{member_id}/merge")) return card("Merge", notAvailable("Merging members"));
  const source = h("input", { name: "source_member_id", type: "text", required: true });
  const form = h("form", { onsubmit: async (e) => {
    e.preventDefault();
    clearErrors(form);
    if (!await confirmAction("Merge members", [`Move everything of ${source.value} into ${m.member_id}?`,
      `${source.value} will be closed. This cannot be undone.`], { danger: true, confirmLabel: "Merge", typeToConfirm: source.value })) return;
    try {
      await post(`/v1/admin/members/${enc(m.member_id)}/merge`, { merge_id: newId("merge"), source_member_id: source.value });
      toast("Members merged.");
      rerender();
    } catch (err) { showErrors(form, err); }
  } }, field("Merge from member id", source), h("button", { type: "submit" }, "Merge…"));
  return card("Merge a duplicate into this member", form);
}

function closeCard(m) {
  const form = h("form", { onsubmit: async (e) => {
    e.preventDefault();
    clearErrors(form);
    if (!await confirmAction("Close this member", [`Close ${m.member_id} and erase their personal data?`, "This cannot be undone."],
      { danger: true, confirmLabel: "Close member", typeToConfirm: m.member_id })) return;
    try {
      await post(`/v1/members/${enc(m.member_id)}/close`);
      toast("Member closed.");
      rerender();
    } catch (err) { showErrors(form, err); }
  } }, h("p", {}, "Closing erases the member's personal data (a data-subject request)."),
  h("button", { type: "submit", class: "danger" }, "Close member…"));
  return card("Close", form);
}
