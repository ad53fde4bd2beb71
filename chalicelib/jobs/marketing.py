"""Segmentation and messaging jobs: score-rfm, run-automations, run-triggers, send-message-campaign."""
from __future__ import annotations

import secrets
from collections import Counter
from datetime import timedelta

from chalicelib import clock
from chalicelib.domain import rfm
from chalicelib.jobs.framework import JobContext, register
from chalicelib.services import automations, program, segments
from chalicelib.services.outreach import deliver, flush_pending
from chalicelib.store import marketing as store
from chalicelib.store import members as member_store
from chalicelib.store.models import MemberRecord, OutboxRecord

OUTBOX_GRACE = timedelta(minutes=1)


# --- score-rfm -------------------------------------------------------------------------------

@register("score-rfm", fanout=False)
def score_rfm(ctx: JobContext) -> None:
    """RFM quintiles, labels, predicted value (p_alive, expected orders, LTV) and touch model
    for every active member (docs/SEGMENTS.md, "Running at scale").

    Phase 1 (gather) scans the members once, keeping only bounded statistics: exact
    histograms of R and F, a histogram of M (4 significant digits), the f2 counts, and a
    uniform reservoir sample of members for the model fit. The value model is fitted once
    on the sample; the quintile cut points, the model and the touch thresholds are stored
    with the job, so a resumed run skips the gather. Phase 2 (write) scans again; each
    member is scored alone from that stored scorer and written conditionally on the version
    read (nothing when unchanged); it resumes from its per-segment checkpoints, and the
    report is summed from the checkpointed counts (a page's report counts are kept only
    with the checkpoint that ends it, so a page scanned again on resume counts once)."""
    plan = segments.load_plan(ctx.job_id)
    if plan is None:
        gather = segments.Gatherer(ctx.as_of, seed=ctx.job_id)

        def visit(rec):
            if rec.status != "active":
                return None
            gather.add(rec.member_id, dict(rec.state or {}))
            return None

        ctx.scan(MemberRecord, visit, phase=f"gather-{secrets.token_hex(4)}")
        plan = gather.plan()
        plan = segments.save_plan(ctx.job_id, plan)
    scorer = plan.scorer()
    scored_at = clock.iso(ctx.as_of)

    page: Counter = Counter()  # the report's counts of this page: kept only with its checkpoint

    def write(rec):
        if rec.status != "active":
            return None
        row = member_store.MemberRow.from_record(rec)
        inputs = rfm.inputs_from_state(rec.member_id, row.state, ctx.as_of)
        score = scorer.score(inputs, plan.predict(inputs))
        outcome = segments.write_segment(row, score, scored_at)
        page.update({f"label_{score.label}": 1, f"touch_{score.touch}": 1, "ltv_total": score.ltv_12m, "scored": 1,
                     "buyers": int(inputs.orders >= 1), "repeat_buyers": int(inputs.orders >= 2)})
        return {outcome: 1}

    def page_end():
        out = dict(page)
        page.clear()
        return out

    ctx.scan(MemberRecord, write, phase="write", on_page_end=page_end)
    report = segments.report_from_counts(ctx.counts, scored_at, plan.model)
    store.save_report(report)
    for key in [k for k in ctx.counts if k.startswith(("label_", "touch_")) or k in (
            "ltv_total", "buyers", "repeat_buyers")]:
        ctx.counts.pop(key)
    ctx.counts.update(model=0 if plan.model.kind == "fallback" else 1,
                      **{f"segment_{k}": v for k, v in report["segments"].items() if v})


# --- run-automations -------------------------------------------------------------------------

@register("run-automations")
def run_automations(ctx: JobContext) -> None:
    """Lifecycle messages due at `as_of`: welcome, onboarding, F2 nudge, dormant, birthday,
    points expiring, near next tier, churn risk (docs/MESSAGING.md)."""
    settings = program.settings()
    cfg = automations.config(settings)
    buffer: list = []

    def handle(rec):
        buffer.extend(automations.candidates_for(member_store.MemberRow.from_record(rec), ctx.as_of, settings, cfg))
        return None

    def flush():
        if not buffer:
            return {}
        outcomes: dict = {}
        counts = deliver(buffer, settings.frequency_cap_per_week, outcomes=outcomes)
        counts.pop("candidates", None)
        for c in buffer:
            if outcomes.get(id(c)) == "queued":
                counts[f"queued_{c.template}"] += 1
        buffer.clear()
        return dict(counts)

    ctx.scan(MemberRecord, handle, on_page_end=flush)


# --- run-triggers ----------------------------------------------------------------------------

@register("run-triggers")
def run_triggers(ctx: JobContext) -> None:
    """Hourly: cart and browse reminders that are due, then the outboxes — messages a
    write committed (tier_changed, reward_redeemed, ...) or a delivery claimed, whose
    send failed or was cut short — re-sent and deleted."""
    from chalicelib.services import triggers
    from chalicelib import relay

    settings = program.settings()
    cfg = automations.config(settings)
    page: list = []

    def handle(event):
        state = triggers.reminder_due(event, ctx.as_of, cfg)
        if state is None:
            return None  # not yet: stays pending
        if state != "due":
            store.clear_pending(event)
            return {f"trigger_{state}": 1}
        page.append(event)
        return None

    def flush():
        if not page:
            return {}
        counts = triggers.fire_reminders(list(page), ctx.as_of, cfg, settings.frequency_cap_per_week)
        page.clear()
        return counts

    ctx.scan(store.PENDING_EVENTS, handle, on_page_end=flush)
    if ctx.only_segment in (None, 0):  # the outboxes once per run, not once per segment
        stale = clock.iso(clock.now() - OUTBOX_GRACE)
        flushed = relay.sweep()
        if flushed:
            ctx.counts["outbox_flushed"] += flushed
        resent = flush_pending(stale)
        if resent:
            ctx.counts["pending_resent"] += resent


# --- message campaigns ---------------------------------------------------------------------

@register("send-message-campaign")
def send_message_campaign(ctx: JobContext) -> None:
    """A large broadcast: audience → consent and cap → one personal message each (with its
    own coupon code when the campaign has one). Checkpointed and fanned out like any scan;
    the campaign's counts are the job's (a resumed member counts once: a message already
    queued for this campaign is a duplicate and counts as queued)."""
    from chalicelib.services import marketing

    campaign_id = ctx.params["campaign_id"]
    rec = store.get_campaign(campaign_id)
    data = dict(rec.data)
    run = marketing.CampaignRun(data)
    audience = data.get("audience") or {}
    id_only = not (audience.get("tiers") or audience.get("segments") or audience.get("touch"))
    source = store.MemberIdList(audience.get("member_ids") or []) if id_only else MemberRecord

    def handle(member_rec):
        return run.offer(member_store.MemberRow.from_record(member_rec), ctx.as_of)

    ctx.scan(source, handle, on_page_end=run.flush)
    if ctx.only_segment is None:
        marketing.finish(campaign_id, ctx.counts)
