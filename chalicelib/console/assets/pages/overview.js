// Program overview: members, liability and expiring points, segments, touch, F2, NPS, jobs.
import { get } from "../api.js";
import { h, card, stat, num, pct, when, table } from "../dom.js";
import { bars, columns, donut } from "../charts.js";
import { ifAvailable } from "../features.js";

const LABELS = { champions: "Champions", loyal: "Loyal", potential_loyalist: "Potential loyalist", new: "New",
  promising: "Promising", need_attention: "Need attention", at_risk: "At risk", cant_lose: "Can't lose",
  hibernating: "Hibernating", lost: "Lost" };

export async function render(root) {
  const [segments, audit] = await Promise.all([get("/v1/admin/segments"), get("/v1/admin/audit?limit=100")]);
  const nps = segments.nps;
  root.append(h("h1", {}, "Program overview"),
    h("p", { class: "muted" }, segments.as_of ? `Scores as of ${when(segments.as_of)}.` : "Members are not scored yet: run the score-rfm job."),
    h("div", { class: "stats" },
      stat("Members scored", num(segments.scored)),
      stat("F2 rate", pct(segments.f2_rate), "share who bought a second time"),
      stat("NPS", nps === null || nps === undefined ? "—" : Number(nps).toFixed(1)),
      stat("Predicted 12-month value", num(segments.ltv_12m_total))));

  const liability = await ifAvailable("GET", "/v1/admin/reports/liability", "The points liability report", async () => {
    const r = await get("/v1/admin/reports/liability");
    const out = r.outstanding || {};
    return h("div", {},
      h("div", { class: "stats" },
        stat("Points outstanding", num((out.available || 0) + (out.pending || 0) + (out.held || 0)),
          `available ${num(out.available)} · pending ${num(out.pending)} · held ${num(out.held)}`),
        stat("Outstanding value", num(r.outstanding_value)),
        stat("Breakage rate", pct(r.breakage_rate)),
        stat("Estimated liability", num(r.estimated_liability))),
      h("h3", {}, "Points expiring by month"),
      columns((r.expiring_by_month || []).map((m) => ({ label: m.month, value: m.points })), { title: "expiring points by month" }),
      h("p", { class: "muted" }, `As of ${when(r.as_of)}.`));
  });

  const segItems = Object.entries(segments.segments || {}).map(([k, v]) => ({ label: LABELS[k] || k, value: v }));
  const touchItems = Object.entries(segments.touch || {}).map(([k, v]) => ({ label: k.replace("_", " "), value: v }));
  const npsItems = Object.entries(segments.nps_responses || {}).filter(([k]) => k !== "total").map(([k, v]) => ({ label: k, value: v }));
  const jobs = audit.items.filter((a) => a.action === "job.start").slice(0, 8);

  root.append(h("div", { class: "grid" },
    card("Points liability", liability),
    card("Segments", bars(segItems, { title: "members by segment" })),
    card("Touch model", donut(touchItems, { title: "members by touch model" })),
    card("NPS responses", bars(npsItems, { title: "NPS responses" })),
    card("Last jobs started", table([
      { label: "Job", value: (a) => (a.details || {}).job || "" },
      { label: "Started", value: (a) => when(a.at) },
      { label: "By", value: (a) => a.actor },
      { label: "Id", value: (a) => h("a", { href: "#/jobs", "data-job": a.target }, a.target) },
    ], jobs, "No job started from the API yet."))));
}
