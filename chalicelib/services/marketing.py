"""Storefront events, feedback, product signals, broadcasts and the segments report (SPEC 2.11, 2.12)."""
from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Optional

from chalicelib import clock
from chalicelib.api.http import canonical_hash
from chalicelib.domain import rfm
from chalicelib.errors import IdempotencyMismatch, NotFound, ValidationFailed
from chalicelib.services import audit, members, program
from chalicelib.services.outreach import Candidate, deliver
from chalicelib.store import members as member_store
from chalicelib.store import tx
from chalicelib.store.models import IdempotencyRecord, MemberRecord
from chalicelib.store.marketing import (
    FavoriteRecord,
    FeedbackRecord,
    MemberEventRecord,
    MessageCampaignRecord,
    SegmentReportRecord,
)

EVENT_TTL = timedelta(days=60)
TRIGGER_TYPES = {"cart_abandoned": "cart_reminder", "product_viewed": "browse_reminder"}


def _replay(key: str, req_hash: str) -> Optional[dict]:
    try:
        prior = IdempotencyRecord.get(key, consistent_read=True)
    except IdempotencyRecord.DoesNotExist:
        return None
    if prior.request_hash != req_hash:
        raise IdempotencyMismatch(key=key.split("#", 1)[1])
    return prior.response


# --- storefront events -------------------------------------------------------------------

def record_event(member_id: str, body) -> tuple[int, dict]:
    """Store a behaviour event (202); favourites update the sku's follower list at once."""
    key = f"event#{body.event_id}"
    req_hash = canonical_hash({"member_id": member_id, **body.model_dump(mode="json")})
    stored = _replay(key, req_hash)
    if stored is not None:
        return 200, stored
    row = members.require(member_id)
    members.require_active(row)
    now = clock.now()
    occurred = body.occurred_at or now
    if body.type.startswith("favorite") and not body.sku:
        raise ValidationFailed("favourite events need a sku", fields=[{"field": "sku", "message": "required"}])
    response = {"event_id": body.event_id, "member_id": member_id, "type": body.type, "accepted": True}
    event = MemberEventRecord(member_id, f"{clock.sortable(occurred)}#{body.event_id}", event_id=body.event_id,
                              type=body.type, occurred_at=clock.iso(occurred), sku=body.sku,
                              data={"cart": body.cart} if body.cart is not None else None,
                              pending=True if body.type in TRIGGER_TYPES else None, expires_at=EVENT_TTL)
    ops = [tx.put(IdempotencyRecord(key, member_id=member_id, request_hash=req_hash, status_code=202,
                                    response=response), IdempotencyRecord.key.does_not_exist()),
           tx.put(event)]
    if body.type == "favorite_added":
        ops.append(tx.put(FavoriteRecord(body.sku, member_id, added_at=clock.iso(occurred))))
    elif body.type == "favorite_removed":
        ops.append(tx.delete(FavoriteRecord(body.sku, member_id, added_at="")))
    try:
        tx.write(ops)
    except tx.TxCancelled:
        return 200, _replay(key, req_hash)
    return 202, response


def fire_trigger(event: MemberEventRecord, as_of, config: dict, cap: int) -> Optional[str]:
    """`run-triggers` for one event: a reminder once it is old enough, unless a purchase followed."""
    trigger = TRIGGER_TYPES.get(event.type)
    settings = config.get(trigger) or {}
    occurred = clock.parse_instant(event.occurred_at)
    hours = float(settings.get("cart_reminder_hours" if trigger == "cart_reminder" else "hours",
                               2 if trigger == "cart_reminder" else 24))
    if occurred + timedelta(hours=hours) > as_of:
        return None  # not yet
    row = member_store.get(event.member_id)
    outcome = "suppressed"
    if row is not None and row.status == "active" and settings.get("enabled", True):
        last = (row.state.get("orders") or {}).get("last_at")
        if not (last and last >= event.occurred_at):
            counts = deliver([Candidate(row.member_id, row.profile, trigger, trigger, event.event_id,
                                        {"sku": event.sku, **((event.data or {}).get("cart") and
                                                              {"cart": event.data["cart"]} or {})})], cap)
            outcome = "queued" if counts.get("queued") else "skipped"
    event.update(actions=[MemberEventRecord.pending.remove()])
    return outcome


# --- feedback ------------------------------------------------------------------------------

def give_feedback(member_id: str, body, actor: str) -> tuple[int, dict]:
    """Store a score; earn the `survey` activity points; alert customer success on a
    detractor from a high-touch member."""
    req_hash = canonical_hash({"member_id": member_id, **body.model_dump(mode="json")})
    try:
        prior = FeedbackRecord.get(body.feedback_id, consistent_read=True)
        if prior.request_hash != req_hash:
            raise IdempotencyMismatch(feedback_id=body.feedback_id)
        return 200, prior.response
    except FeedbackRecord.DoesNotExist:
        pass
    row = members.require(member_id)
    members.require_active(row)
    points_earned = 0
    if "survey" in program.settings().activity_rules:
        from chalicelib.errors import ActivityLimitReached
        from chalicelib.schemas.members import ActivityRequest
        from chalicelib.services import points

        try:
            _, result = points.record_activity(
                member_id, ActivityRequest(activity_id=f"feedback:{body.feedback_id}", type="survey"), actor)
            points_earned = result["points_earned"]
        except ActivityLimitReached:
            points_earned = 0
    now = clock.now()
    response = {"feedback_id": body.feedback_id, "points_earned": points_earned}
    rec = FeedbackRecord(body.feedback_id, member_id=member_id, score=body.score, at=clock.iso(now),
                         request_hash=req_hash, response=response, comment=body.comment,
                         expires_at=timedelta(days=400))
    try:
        tx.write([tx.put(rec, FeedbackRecord.feedback_id.does_not_exist())])
    except tx.TxCancelled:
        return 200, FeedbackRecord.get(body.feedback_id, consistent_read=True).response
    segment = row.state.get("segment") or {}
    if body.score <= 6 and segment.get("touch") == "high_touch":
        deliver([Candidate(member_id, row.profile, "cs_alert", "feedback_detractor", body.feedback_id,
                           {"score": body.score, "comment": body.comment, "ltv_12m": segment.get("ltv_12m")},
                           kind="cs_alert")], program.settings().frequency_cap_per_week)
    return 201, response


def nps_90_days() -> Optional[float]:
    horizon = clock.iso(clock.now() - timedelta(days=90))
    return rfm.nps([int(r.score) for r in FeedbackRecord.scan(FeedbackRecord.at >= horizon)])


# --- product signals -----------------------------------------------------------------------

def product_signal(body, actor: str) -> tuple[int, dict]:
    """Queue a back-in-stock / price-drop / low-stock message to the sku's followers now."""
    key = f"signal#{body.signal_id}"
    req_hash = canonical_hash(body.model_dump(mode="json"))
    stored = _replay(key, req_hash)
    if stored is not None:
        return 200, stored
    settings = program.settings()
    followers = [f.member_id for f in FavoriteRecord.query(body.sku)]
    counts = {"queued": 0}
    if settings.automation(body.type).get("enabled", True) and followers:
        rows = {r.member_id: r for r in MemberRecord.batch_get(followers)}
        cands = [Candidate(m, r.profile, body.type, body.type, body.signal_id,
                           {"sku": body.sku, **(body.variables or {})})
                 for m, r in rows.items() if r.status == "active"]
        counts = deliver(cands, settings.frequency_cap_per_week)
    response = {"signal_id": body.signal_id, "sku": body.sku, "type": body.type,
                "followers": len(followers), "queued": int(counts.get("queued", 0))}
    try:
        tx.write([tx.put(IdempotencyRecord(key, request_hash=req_hash, status_code=202, response=response),
                         IdempotencyRecord.key.does_not_exist()),
                  audit.entry_op(actor, "product_signal", target=body.sku, details=response)])
    except tx.TxCancelled:
        return 200, _replay(key, req_hash)
    return 202, response


# --- broadcasts ----------------------------------------------------------------------------

def create_campaign(body, actor: str) -> tuple[int, dict]:
    """A marketer's message campaign; the sending runs as a resumable job (inline when small)."""
    from chalicelib.jobs import framework

    campaign_id = body.campaign_id or "mc_" + secrets.token_hex(6)
    now = clock.now()
    data = {**body.model_dump(mode="json"), "campaign_id": campaign_id, "created_at": clock.iso(now),
            "created_by": actor, "status": "queued", "audience_size": 0, "eligible": 0, "queued": 0}
    rec = MessageCampaignRecord(campaign_id, created_at=clock.sortable(now), data=data)
    try:
        tx.write([tx.put(rec, MessageCampaignRecord.campaign_id.does_not_exist()),
                  audit.entry_op(actor, "message_campaign.create", target=campaign_id,
                                 details={"template": body.template, "dry_run": body.dry_run})])
    except tx.TxCancelled:
        from chalicelib.errors import AlreadyExists

        raise AlreadyExists(campaign_id=campaign_id)
    job = framework.start("send-message-campaign", now, actor, params={"campaign_id": campaign_id})
    out = get_campaign(campaign_id)
    out["job_id"] = job["job_id"]
    return 201, out


def get_campaign(campaign_id: str) -> dict:
    try:
        return dict(MessageCampaignRecord.get(campaign_id, consistent_read=True).data)
    except MessageCampaignRecord.DoesNotExist:
        raise NotFound(campaign_id=campaign_id)


def list_campaigns(limit: int, cursor: Optional[dict]) -> tuple[list, Optional[dict]]:
    items = [r.data for r in sorted(MessageCampaignRecord.scan(), key=lambda r: r.created_at, reverse=True)]
    start = int((cursor or {}).get("offset", 0))
    nxt = {"offset": start + limit} if start + limit < len(items) else None
    return items[start:start + limit], nxt


def in_audience(row: member_store.MemberRow, audience: dict) -> bool:
    if row.status != "active":
        return False
    if audience.get("member_ids") and row.member_id in audience["member_ids"]:
        return True
    checks = []
    segment = row.state.get("segment") or {}
    if audience.get("tiers"):
        checks.append((row.state.get("tier") or {}).get("tier_id") in audience["tiers"])
    if audience.get("segments"):
        checks.append((segment.get("label") or "new") in audience["segments"])
    if audience.get("touch"):
        checks.append((segment.get("touch") or "tech_touch") in audience["touch"])
    return bool(checks) and all(checks)


# --- segments report -----------------------------------------------------------------------

def segments_report() -> dict:
    try:
        report = dict(SegmentReportRecord.get("latest", consistent_read=True).data)
    except SegmentReportRecord.DoesNotExist:
        report = {"as_of": None, "scored": 0, "segments": {label: 0 for label in rfm.LABELS},
                  "touch": {t: 0 for t in rfm.TOUCH}, "f2_rate": 0.0}
    report["nps"] = nps_90_days()
    return report


def segment_members(segment: str, limit: int, cursor: Optional[dict]) -> tuple[list, Optional[dict]]:
    if segment not in rfm.LABELS:
        raise NotFound(segment=segment)
    result = MemberRecord.by_segment.query(segment, limit=limit, last_evaluated_key=cursor)
    ids = [r.member_id for r in result]
    last = result.last_evaluated_key
    rows = {r.member_id: member_store.from_record(r) for r in MemberRecord.batch_get(ids)} if ids else {}
    items = []
    for m in ids:
        row = rows.get(m)
        if row is not None:
            v = members.view(row)
            items.append({"member_id": m, "name": v["name"], "tier": v["tier"]["tier_id"],
                          "points": v["points"]["available"], "segment": v["segment"]})
    return items, last
