"""Feedback (voice of the customer) and marketers' message campaigns (SPEC 2.11, 2.12)."""
from __future__ import annotations

import re
import secrets
import threading
from collections import Counter
from datetime import timedelta
from typing import Iterator, Optional

from chalicelib import clock, messaging
from chalicelib.config import get_settings
from chalicelib.domain import rfm
from chalicelib.domain.audience import NOBODY, Audience, MemberFacts
from chalicelib.domain.audience import in_audience as _in_audience
from chalicelib.domain.hashing import canonical_hash
from chalicelib.domain.member import Member
from chalicelib.errors import ActivityLimitReached, AlreadyExists, IdempotencyMismatch, NotFound, ValidationFailed
from chalicelib.jobs import framework
from chalicelib.schemas.common import ID_PATTERN
from chalicelib.schemas.members import ActivityRequest
from chalicelib.services import audit, coupons, members, points, program
from chalicelib.services.outreach import Candidate, deliver
from chalicelib.services.uow import UnitOfWork
from chalicelib.store import marketing as store
from chalicelib.store import members as member_store
from chalicelib.store import tx

FEEDBACK_TTL = timedelta(days=400)
INLINE_LIMIT = 5000  # audiences whose resolution reads more members than this run as a job
CHUNK = 500


# --- feedback ---------------------------------------------------------------------------

def _feedback_replay(feedback_id: str, req_hash: str) -> Optional[dict]:
    prior = store.get_feedback(feedback_id)
    if prior is None:
        return None
    if prior.request_hash != req_hash:
        raise IdempotencyMismatch(feedback_id=feedback_id)
    return prior.response


def give_feedback(member_id: str, body, actor: str) -> tuple[int, dict]:
    """Store a 0–10 score (idempotent per feedback_id), earn the `survey` activity points
    when configured and under its limits, count it for NPS, and alert customer success
    (`cs_alert` channel) on a detractor score from a high-touch member."""
    req_hash = canonical_hash({"member_id": member_id, **body.model_dump(mode="json")})
    stored = _feedback_replay(body.feedback_id, req_hash)
    if stored is not None:
        return 200, stored
    row = members.require(member_id)
    members.require_active(row)
    points_earned = 0
    if "survey" in program.settings().activity_rules:
        try:
            _, result = points.record_activity(
                member_id, ActivityRequest(activity_id=f"feedback:{body.feedback_id}", type="survey"), actor)
            points_earned = int(result["points_earned"])
        except ActivityLimitReached:
            points_earned = 0  # the feedback still counts; the points limit is reached
    now = clock.now()
    response = {"feedback_id": body.feedback_id, "points_earned": points_earned}
    feedback_op, *counter_ops = store.feedback_ops(
        body.feedback_id, member_id=member_id, score=body.score, at=clock.iso(now), request_hash=req_hash,
        response=response, comment=body.comment, expires_at=FEEDBACK_TTL, bucket=rfm.nps_bucket(body.score))
    uow = UnitOfWork()
    uow.add(feedback_op, anchor=store.feedback_anchor())
    uow.extend(counter_ops)
    segment = row.segment or {}
    if body.score <= 6 and row.segment_touch == "high_touch":
        # in the outbox of the same transaction: the alert cannot be lost after the feedback is stored
        uow.publish([messaging.compose(
            template="cs_alert", member_id=member_id, profile=row.profile, channel="cs_alert",
            variables={"reason": "detractor_feedback", "score": body.score, "comment": body.comment,
                       "feedback_id": body.feedback_id, "segment": segment.get("label"),
                       "ltv_12m": segment.get("ltv_12m"), "tier": row.tier_id},
            source="feedback_detractor", period=body.feedback_id)])
    try:
        uow.commit()
    except tx.TxCancelled:
        stored = _feedback_replay(body.feedback_id, req_hash)
        if stored is None:
            raise
        return 200, stored
    return 201, response


# --- message campaigns ------------------------------------------------------------------

def in_audience(member: Member, audience: dict) -> bool:
    """A broadcast's audience (domain/audience.py): active, and either listed in member_ids or
    matching every given filter (tiers, segments, touch models; segments and touch models are
    those of the last scoring). A selection: an audience with nothing in it selects no one."""
    return _in_audience(Audience.of(audience), MemberFacts.of(member), when_empty=NOBODY)


def _validate(body) -> None:
    aud = body.audience
    bad = sorted(set(aud.segments or []) - set(rfm.LABELS))
    if bad:
        raise ValidationFailed("unknown segments", fields=[{"field": "audience.segments",
                                                             "message": f"unknown: {', '.join(bad)}"}])
    known = {t.tier_id for t in program.tiers()}
    bad = sorted(set(aud.tiers or []) - known)
    if bad:
        raise ValidationFailed("unknown tiers", fields=[{"field": "audience.tiers",
                                                          "message": f"unknown: {', '.join(bad)}"}])
    if body.coupon_campaign_id:
        coupons.require(body.coupon_campaign_id)


def _filters(audience: dict) -> bool:
    return Audience.of(audience).has_filters


def estimated_reads(audience: dict) -> int:
    """Members read to resolve the audience: the listed ids, plus the members of the given
    segments (last report) or, for tier/touch filters alone, the whole members table."""
    n = len(audience.get("member_ids") or [])
    if audience.get("segments"):
        report = store.latest_report() or {}
        n += sum(int((report.get("segments") or {}).get(s, 0)) for s in audience["segments"])
    elif _filters(audience):
        n += member_store.estimated_count()
    return n


def _audience_rows(audience: dict) -> Iterator[Member]:
    """Inline resolution: listed ids, then the segments' index, or a scan for tier/touch alone
    (the candidates; `in_audience` decides)."""
    seen: set = set()

    def rows_of(ids: list) -> Iterator[Member]:
        for i in range(0, len(ids), 100):
            yield from member_store.batch_get(ids[i:i + 100], consistent=False).values()

    ids = [m for m in dict.fromkeys(audience.get("member_ids") or [])]
    seen.update(ids)
    yield from rows_of(ids)
    if audience.get("segments"):
        for label in audience["segments"]:
            after = None
            while True:
                page, after = store.segment_member_ids(label, 100, after)
                fresh = [m for m in page if m not in seen]
                seen.update(fresh)
                yield from rows_of(fresh)
                if not after:
                    break
    elif _filters(audience):
        for member in member_store.scan():
            if member.member_id not in seen:
                yield member


class CampaignRun:
    """Sends one campaign to audience rows, chunk by chunk (shared by inline runs and the job)."""

    def __init__(self, data: dict):
        self.data = data
        self.audience = data.get("audience") or {}
        self.selection = Audience.of(self.audience)
        self.settings = program.settings()
        self.buffer: list = []

    def offer(self, row: Member, as_of) -> Optional[dict]:
        if not _in_audience(self.selection, MemberFacts.of(row), when_empty=NOBODY):
            return None
        view = members.view(row, as_of)
        # the marketer's variables never override the member's own
        variables = {**(self.data.get("variables") or {}), "name": view["name"], "points": view["points"]["available"],
                     "tier": view["tier"]["tier_id"], "next_tier": view["tier"]["next_tier"],
                     "spend_to_next_tier": view["tier"]["spend_to_next_tier"]}
        self.buffer.append(Candidate(row.member_id, row.profile, self.data["template"],
                                     f"campaign:{self.data['campaign_id']}", "once", variables,
                                     channel=self.data["channel"], campaign_id=self.data["campaign_id"],
                                     control_share=str(self.data.get("control_share") or "0")))
        return {"audience_size": 1}

    def _codes(self, eligible: list) -> list:
        codes = coupons.issue_codes(self.data["coupon_campaign_id"], [c.member_id for c in eligible],
                                    notify=False, actor=f"message_campaign:{self.data['campaign_id']}")
        kept = []
        for c in eligible:
            if c.member_id in codes:
                c.variables["coupon_code"] = codes[c.member_id]
                kept.append(c)
        return kept

    def flush(self) -> dict:
        if not self.buffer:
            return {}
        enrich = self._codes if self.data.get("coupon_campaign_id") else None
        counts = deliver(self.buffer, self.settings.frequency_cap_per_week, dry_run=bool(self.data.get("dry_run")),
                         enrich=enrich)
        self.buffer = []
        # a member already sent this campaign (a resumed run) counts as eligible and queued
        # held-out members (SPEC 2.18) are eligible too: they count in `control`, not `queued`
        return {"eligible": counts["eligible"] + counts["duplicate"] + counts["no_code"] + counts["control"],
                "queued": counts["queued"] + counts["duplicate"], "capped": counts["capped"],
                "no_consent": counts["no_consent"], "no_code": counts["no_code"], "control": counts["control"]}


def finish(campaign_id: str, totals: dict) -> dict:
    rec = store.get_campaign(campaign_id)
    data = dict(rec.data)
    data.update(status="dry_run" if data.get("dry_run") else "sent", finished_at=clock.iso(clock.now()),
                **{k: int(totals.get(k, 0)) for k in ("audience_size", "eligible", "queued", "capped",
                                                       "no_consent", "no_code", "control")})
    store.save_campaign(rec, data)
    return data


def run_inline(data: dict, as_of) -> dict:
    run = CampaignRun(data)
    totals: Counter = Counter()
    for row in _audience_rows(run.audience):
        totals.update(run.offer(row, as_of) or {})
        if len(run.buffer) >= CHUNK:
            totals.update(run.flush())
    totals.update(run.flush())
    return finish(data["campaign_id"], totals)


def create_campaign(body, actor: str) -> tuple[int, dict]:
    """Store the campaign and send it: inline when resolving its audience reads at most
    INLINE_LIMIT members (201 with the counts), else as the resumable
    `send-message-campaign` job (201 with status `queued` and the `job_id`)."""
    _validate(body)
    campaign_id = body.campaign_id or "mc_" + secrets.token_hex(8)
    now = clock.now()
    data = {**body.model_dump(mode="json"), "campaign_id": campaign_id, "created_at": clock.iso(now),
            "created_by": actor, "status": "sending", "audience_size": 0, "eligible": 0, "queued": 0,
            "capped": 0, "no_consent": 0, "no_code": 0, "control": 0, "job_id": None, "finished_at": None}
    large = estimated_reads(data["audience"]) > INLINE_LIMIT
    if large:
        data["status"] = "queued"
    try:
        tx.write([store.campaign_create_op(campaign_id, data),
                  audit.entry_op(actor, "message_campaign.create", target=campaign_id,
                                 details={"template": body.template, "channel": body.channel,
                                          "dry_run": body.dry_run, "audience": data["audience"]})])
    except tx.TxCancelled:
        raise AlreadyExists(campaign_id=campaign_id)
    if not large:
        return 201, run_inline(data, now)
    job = framework.create("send-message-campaign", now, actor, params={"campaign_id": campaign_id})
    rec = store.get_campaign(campaign_id)
    data = {**rec.data, "job_id": job["job_id"]}
    store.save_campaign(rec, data)
    _start(job["job_id"])
    return 201, data


def _start(job_id: str, wait_seconds: float = 20.0) -> None:
    """Run a created job: in a background thread locally (waiting briefly, as the jobs API
    does: the in-process emulator serves one call at a time), through the jobs queue in AWS."""
    if not get_settings().is_local:
        framework.enqueue(job_id)
        return
    done = threading.Event()

    def target():
        try:
            framework.execute(job_id)
        except Exception:  # noqa: BLE001 - recorded as failed on the job
            pass
        finally:
            done.set()

    threading.Thread(target=target, daemon=True).start()
    done.wait(wait_seconds)


def _resolved(data: dict) -> dict:
    """A queued campaign whose fanned-out job has finished takes the job's counts."""
    if data.get("status") == "queued" and data.get("job_id"):
        try:
            job = framework.get_job(data["job_id"])
        except NotFound:
            return data
        if job["status"] == "succeeded":
            return finish(data["campaign_id"], job.get("counts") or {})
    return data


def get_campaign(campaign_id: str) -> dict:
    rec = store.get_campaign(campaign_id) if re.fullmatch(ID_PATTERN, campaign_id) else None
    if rec is None:
        raise NotFound("no such message campaign", campaign_id=campaign_id)
    return _resolved(dict(rec.data))


def list_campaigns(limit: int, cursor: Optional[dict]) -> tuple[list, Optional[dict]]:
    after = (cursor or {}).get("after")
    if after is not None and not (isinstance(after, str) and re.fullmatch(r"[0-9TZ:.-]{27}#[A-Za-z0-9._:@#/-]{1,128}", after)):
        raise ValidationFailed("cursor is not valid", fields=[{"field": "cursor", "message": "invalid"}])
    items, nxt = store.campaigns_page(limit, after)
    return [_resolved(d) for d in items], ({"after": nxt} if nxt else None)

