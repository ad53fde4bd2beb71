// Jobs: start one, watch its progress and counts; jobs started from this tab stay listed.
import { get, post, enc } from "../api.js";
import { h, card, field, table, num, when, toast } from "../dom.js";
import { showErrors, clearErrors } from "../forms.js";

const JOBS = ["recalculate-tiers", "expire-points", "mature-points", "expire-vouchers", "score-rfm", "run-automations",
  "run-triggers", "release-holds", "report-liability", "measure-campaigns"];
const RECENT = "loyalty.console.jobs";

export function recentJobs() {
  try { return JSON.parse(sessionStorage.getItem(RECENT) || "[]"); } catch { return []; }
}

function remember(jobId) {
  sessionStorage.setItem(RECENT, JSON.stringify([jobId, ...recentJobs().filter((j) => j !== jobId)].slice(0, 20)));
}

// Polls a job until it finishes; `onUpdate(job)` after each read.
export async function watchJob(jobId, onUpdate, { intervalMs = 700, timeoutMs = 600000 } = {}) {
  remember(jobId);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await get(`/v1/admin/jobs/${enc(jobId)}`);
    onUpdate(job);
    if (job.status === "succeeded" || job.status === "failed" || Date.now() > deadline) return job;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

function jobView(job) {
  const counts = Object.entries(job.counts || {});
  return h("div", { class: "job", "data-job-id": job.job_id, "data-status": job.status },
    h("div", { class: "title-row" }, h("strong", {}, job.job), h("span", { class: `badge ${job.status}` }, job.status),
      job.status === "queued" || job.status === "running" ? h("progress", {}) : null),
    h("p", { class: "muted" }, `${job.job_id} · as of ${when(job.as_of)} · started ${when(job.started_at)} · finished ${when(job.finished_at)}`),
    counts.length ? h("dl", { class: "kv" }, counts.flatMap(([k, v]) => [h("dt", {}, k.replace(/_/g, " ")), h("dd", {}, num(v))])) : null,
    job.error ? h("p", { class: "error" }, job.error) : null);
}

export async function render(root) {
  const select = h("select", { name: "job" }, JOBS.map((j) => h("option", { value: j }, j)));
  const asOf = h("input", { name: "as_of", type: "datetime-local" });
  const current = h("div", { id: "job-current" });
  const form = h("form", { id: "job-form", class: "inline", onsubmit: async (e) => {
    e.preventDefault();
    clearErrors(form);
    const body = { job: select.value };
    if (asOf.value) body.as_of = `${asOf.value}:00Z`;
    try {
      const r = await post("/v1/admin/jobs", body);
      toast(`Started ${body.job}.`);
      await watchJob(r.body.job_id, (job) => current.replaceChildren(jobView(job)));
    } catch (err) { showErrors(form, err); }
  } }, field("Job", select), field("As of (UTC, optional)", asOf), h("button", { type: "submit" }, "Start"));
  const lookupId = h("input", { name: "job_id", type: "text" });
  const lookup = h("form", { class: "inline", onsubmit: async (e) => {
    e.preventDefault();
    clearErrors(lookup);
    try { current.replaceChildren(jobView(await get(`/v1/admin/jobs/${enc(lookupId.value.trim())}`))); }
    catch (err) { showErrors(lookup, err); }
  } }, field("Job id", lookupId), h("button", { type: "submit", class: "secondary" }, "Show"));
  const recent = await Promise.all(recentJobs().slice(0, 10).map((id) => get(`/v1/admin/jobs/${enc(id)}`).catch(() => null)));
  root.append(h("h1", {}, "Jobs"), card("Start a job", form, current), card("Find a job", lookup),
    card("Started from this tab", table([
      { label: "Job", value: (j) => j.job }, { label: "Status", value: (j) => h("span", { class: `badge ${j.status}` }, j.status) },
      { label: "As of", value: (j) => when(j.as_of) }, { label: "Finished", value: (j) => when(j.finished_at) },
      { label: "Counts", value: (j) => Object.entries(j.counts || {}).map(([k, v]) => `${k} ${num(v)}`).join(" · ") },
    ], recent.filter(Boolean), "None yet.")));
}
