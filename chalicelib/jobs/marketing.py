"""Segmentation and messaging jobs: score-rfm, run-automations, run-triggers, send-message-campaign."""
from __future__ import annotations

import secrets
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
    """RFM quintiles, labels, LTV and touch model for every active member (docs/SEGMENTS.md).

    Phase 1 scans the members and keeps (R, F, M) per active member in memory; the
    population is then ranked; phase 2 scans again and writes each member's segment
    conditionally on the version it reads (no write when nothing changed). Phase 1 lives
    in memory, so a resumed run gathers again (a fresh phase name); phase 2 resumes from
    its checkpoints. docs/SEGMENTS.md explains how this scales past one worker."""
    gathered: dict[str, rfm.Inputs] = {}

    def gather(rec):
        if rec.status != "active":
            return {"inactive": 1}
        gathered[rec.member_id] = rfm.inputs_from_state(rec.member_id, dict(rec.state or {}), ctx.as_of)
        return None

    ctx.scan(MemberRecord, gather, phase=f"gather-{secrets.token_hex(4)}")
    scores = {s.member_id: s for s in rfm.score_all(list(gathered.values()))}
    scored_at = clock.iso(ctx.as_of)

    def write(rec):
        score = scores.get(rec.member_id)
        if score is None:
            return None  # enrolled (or reactivated) after the gather: scored next run
        return {segments.write_segment(member_store.MemberRow.from_record(rec), score, scored_at): 1}

    ctx.scan(MemberRecord, write, phase="write")
    report = segments.build_report(scores.values(), gathered.values(), scored_at)
    store.save_report(report)
    ctx.counts.pop("inactive", None)
    ctx.counts.update(scored=len(scores), **{f"segment_{k}": v for k, v in report["segments"].items() if v})


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
