"""Messaging jobs: run-automations, run-triggers, send-message-campaign (score-rfm: jobs/scoring.py)."""
from __future__ import annotations

from datetime import timedelta

from chalicelib import clock, relay
from chalicelib.jobs.framework import JobContext, register
from chalicelib.services import automations, marketing, program, triggers
from chalicelib.services.outreach import deliver, flush_pending
from chalicelib.store import marketing as store
from chalicelib.store import members as member_store
from chalicelib.store import scans

OUTBOX_GRACE = timedelta(minutes=1)


# --- run-automations -------------------------------------------------------------------------

@register("run-automations")
def run_automations(ctx: JobContext) -> None:
    """Lifecycle messages due at `as_of`: welcome, onboarding, F2 nudge, dormant, birthday,
    points expiring, near next tier, churn risk (docs/MESSAGING.md)."""
    settings = program.settings()
    cfg = automations.config(settings)
    buffer: list = []

    def handle(rec):
        buffer.extend(automations.candidates_for(member_store.from_record(rec), ctx.as_of, settings, cfg))
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

    ctx.scan(scans.members(), handle, on_page_end=flush)


# --- run-triggers ----------------------------------------------------------------------------

@register("run-triggers")
def run_triggers(ctx: JobContext) -> None:
    """Hourly: cart and browse reminders that are due, then the outboxes — messages a
    write committed (tier_changed, reward_redeemed, ...) or a delivery claimed, whose
    send failed or was cut short — re-sent and deleted."""
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
    campaign_id = ctx.params["campaign_id"]
    rec = store.get_campaign(campaign_id)
    data = dict(rec.data)
    run = marketing.CampaignRun(data)
    audience = data.get("audience") or {}
    id_only = not (audience.get("tiers") or audience.get("segments") or audience.get("touch"))
    source = store.MemberIdList(audience.get("member_ids") or []) if id_only else scans.members()

    def handle(member_rec):
        return run.offer(member_store.from_record(member_rec), ctx.as_of)

    ctx.scan(source, handle, on_page_end=run.flush)
    if ctx.only_segment is None:
        marketing.finish(campaign_id, ctx.counts)
