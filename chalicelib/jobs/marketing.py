"""Segmentation and messaging jobs: score-rfm, run-automations, run-triggers, send-message-campaign."""
from __future__ import annotations

from collections import Counter
from datetime import timedelta

from chalicelib import clock
from chalicelib.domain import rfm
from chalicelib.domain.automations import due_automations
from chalicelib.domain.months import month_of, window
from chalicelib.jobs.framework import JobContext, register
from chalicelib.services import members, program
from chalicelib.services.outreach import Candidate, deliver
from chalicelib.store import members as member_store
from chalicelib.store import tx
from chalicelib.store.base import Conflict, retrying
from chalicelib.store.marketing import MemberEventRecord, MessageCampaignRecord, SegmentReportRecord
from chalicelib.store.models import MemberRecord, OutboxRecord


# --- score-rfm -------------------------------------------------------------------------------

def _inputs(row: member_store.MemberRow, as_of) -> rfm.Inputs:
    """R, F, M as of `as_of`: orders recorded after it do not count (back-dated scoring)."""
    orders = row.state.get("orders") or {}
    until = clock.iso(as_of)
    before = [d for d in orders.get("recent", []) if d <= until]
    last = max(before) if before else (orders.get("last_at") if (orders.get("last_at") or "~") <= until else None)
    if not int(orders.get("count", 0)) or not last:
        return rfm.Inputs(row.member_id, None, 0, 0)
    horizon = clock.iso(as_of - timedelta(days=365))
    recency = max(0, (as_of.date() - clock.parse_instant(last).date()).days)
    frequency = sum(1 for d in before if d >= horizon)
    spend = row.state.get("spend") or {}
    monetary = sum(int(spend.get(m, 0)) for m in window(month_of(as_of), 12))
    return rfm.Inputs(row.member_id, recency, frequency, max(0, monetary))


def _write_segment(member_id: str, segment: dict) -> None:
    def attempt():
        row = member_store.get(member_id)
        if row is None or row.status != "active":
            return
        previous = (row.state.get("segment") or {}).get("label")
        row.state["segment"] = {**segment, "previous_label": previous}
        try:
            tx.write([member_store.save_op(row, row.version)])
        except tx.TxCancelled:
            raise Conflict()

    retrying()(attempt)


@register("score-rfm", fanout=False)
def score_rfm(ctx: JobContext) -> None:
    """RFM quintiles, labels, LTV and touch model for every active member (docs/SEGMENTS.md)."""
    gathered: list = []
    order_counts: list = []

    def gather(rec):
        row = member_store.MemberRow.from_record(rec)
        if row.status != "active":
            return None
        gathered.append(_inputs(row, ctx.as_of))
        order_counts.append(int((row.state.get("orders") or {}).get("count", 0)))
        return None

    # Phase 1 keeps its results in memory, so it always runs whole (no resume mid-gather).
    ctx.scan(MemberRecord, gather, phase=f"gather-{clock.sortable(clock.now())}")
    scores = rfm.score_all(gathered)
    scored_at = clock.iso(ctx.as_of)
    labels: Counter = Counter()
    touch: Counter = Counter()
    for s in scores:
        _write_segment(s.member_id, {"rfm": s.rfm, "label": s.label, "touch": s.touch, "ltv_12m": s.ltv_12m,
                                     "scored_at": scored_at})
        labels[s.label] += 1
        touch[s.touch] += 1
    SegmentReportRecord("latest", data={
        "as_of": scored_at, "scored": len(scores),
        "segments": {label: labels.get(label, 0) for label in rfm.LABELS},
        "touch": {t: touch.get(t, 0) for t in rfm.TOUCH},
        "f2_rate": rfm.f2_rate(order_counts)}).save()
    ctx.counts.update({"scored": len(scores), **{f"segment_{k}": v for k, v in labels.items()}})


# --- run-automations -------------------------------------------------------------------------

@register("run-automations")
def run_automations(ctx: JobContext) -> None:
    """Lifecycle messages due today: welcome, onboarding, F2 nudge, dormant, birthday,
    points expiring, near next tier, churn risk."""
    settings = program.settings()
    config = {name: settings.automation(name) for name in settings.automations}
    buffer: list = []

    def handle(rec):
        row = member_store.MemberRow.from_record(rec)
        if row.status != "active":
            return None
        view = members.view(row, ctx.as_of)
        for due in due_automations(view, row.state, ctx.as_of, config):
            buffer.append(Candidate(row.member_id, row.profile, due.automation, due.automation, due.period,
                                    due.variables, kind="cs_alert" if due.cs_alert else "marketing"))
        return None

    def flush():
        counts = deliver(buffer, settings.frequency_cap_per_week)
        buffer.clear()
        return {k: v for k, v in counts.items() if k != "candidates"}

    ctx.scan(MemberRecord, handle, on_page_end=flush)


# --- run-triggers ----------------------------------------------------------------------------

@register("run-triggers")
def run_triggers(ctx: JobContext) -> None:
    """Cart and browse reminders that are due, and the outbox of messages caused by writes."""
    from chalicelib.services import marketing
    from chalicelib.services.points import flush_messages

    settings = program.settings()
    config = {name: settings.automation(name) for name in settings.automations}

    def handle(event):
        outcome = marketing.fire_trigger(event, ctx.as_of, config, settings.frequency_cap_per_week)
        return {f"trigger_{outcome}": 1} if outcome else None

    ctx.scan(MemberEventRecord, handle, phase="events", filter_condition=MemberEventRecord.pending == True)  # noqa: E712
    stale = clock.iso(clock.now() - timedelta(minutes=1))
    leftovers = [r.body for r in OutboxRecord.scan(OutboxRecord.created_at <= stale)]
    if leftovers:
        flush_messages(leftovers)
        ctx.counts["outbox_flushed"] += len(leftovers)


# --- message campaigns ---------------------------------------------------------------------

@register("send-message-campaign", fanout=False)
def send_message_campaign(ctx: JobContext) -> None:
    """A broadcast: audience → consent and cap → one personal message each (with a coupon code)."""
    from chalicelib.services import marketing

    campaign_id = ctx.params["campaign_id"]
    rec = MessageCampaignRecord.get(campaign_id, consistent_read=True)
    data = dict(rec.data)
    audience = data.get("audience") or {}
    settings = program.settings()
    totals: Counter = Counter()
    buffer: list = []

    def handle(member_rec):
        row = member_store.MemberRow.from_record(member_rec)
        if marketing.in_audience(row, audience):
            totals["audience_size"] += 1
            view = members.view(row, ctx.as_of)
            buffer.append(Candidate(row.member_id, row.profile, data["template"], f"campaign:{campaign_id}", "once",
                                    {"points": view["points"]["available"], "tier": view["tier"]["tier_id"],
                                     "next_tier": view["tier"]["next_tier"],
                                     "spend_to_next_tier": view["tier"]["spend_to_next_tier"],
                                     **(data.get("variables") or {})},
                                    channel=data["channel"], campaign_id=campaign_id))
        return None

    def flush():
        if not buffer:
            return {}
        if data.get("coupon_campaign_id") and not data.get("dry_run"):
            from chalicelib.services import coupons

            eligible = [c for c in buffer if c.profile.get("consents", {}).get(c.channel)]
            codes = coupons.issue_codes(data["coupon_campaign_id"], [c.member_id for c in eligible],
                                        notify=False, actor=f"message_campaign:{campaign_id}")
            for c in buffer:
                if c.member_id in codes:
                    c.variables["coupon_code"] = codes[c.member_id]
        counts = deliver(buffer, settings.frequency_cap_per_week, dry_run=bool(data.get("dry_run")))
        buffer.clear()
        totals.update({k: counts.get(k, 0) for k in ("eligible", "queued")})
        return {k: v for k, v in counts.items()}

    ids = audience.get("member_ids") or []
    if ids and not audience.get("tiers") and not audience.get("segments") and not audience.get("touch"):
        for member_rec in MemberRecord.batch_get(list(dict.fromkeys(ids))):
            handle(member_rec)
        flush()
    else:
        ctx.scan(MemberRecord, handle, on_page_end=flush)
    data.update(status="dry_run" if data.get("dry_run") else "sent", audience_size=totals["audience_size"],
                eligible=totals["eligible"], queued=totals["queued"], finished_at=clock.iso(clock.now()))
    MessageCampaignRecord(campaign_id, created_at=rec.created_at, data=data).save()
    ctx.counts.update(audience_size=totals["audience_size"], eligible=totals["eligible"], queued=totals["queued"])
