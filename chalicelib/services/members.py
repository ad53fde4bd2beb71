"""Members: enrol, read, update, close (GDPR-style erasure)."""
from __future__ import annotations

from typing import Optional

from chalicelib import clock
from chalicelib.domain import codes, events, expiry
from chalicelib.domain.member import Member
from chalicelib.domain.months import month_of
from chalicelib.domain.tiers import qualifying_spend, tier_view
from chalicelib.errors import AlreadyExists, MemberInactive, MemberNotFound, ValidationFailed
from chalicelib.services import audit, program
from chalicelib.store import members as store
from chalicelib.store import tx
from chalicelib.store.base import Conflict


def _uow():
    # The unit of work (and with it the relay, the outbox, messaging) is imported by the first
    # write, not at `import app`: a member read does not need it (cold start, docs/PERFORMANCE.md).
    from chalicelib.services import uow

    return uow


DEFAULT_CONSENTS = {"email": False, "push": False, "sms": False}
PROFILE_FIELDS = ("name", "email", "birthday", "locale")


def new_member(member_id: str, profile: dict, now) -> Member:
    return Member.new(member_id, profile, program.tiers()[0].tier_id, now)


def require(member_id: str) -> Member:
    row = store.get(member_id)
    if row is None:
        raise MemberNotFound(member_id=member_id)
    return row


def require_active(row: Member) -> None:
    if row.status != "active":
        raise MemberInactive(status=row.status)


def view(row: Member, now=None) -> dict:
    """The Member shape of SPEC 4.4; pending points that matured show as available."""
    now = now or clock.now()
    settings = program.settings()
    wallet = row.wallet.copy()  # a read changes nothing
    wallet.mature(now)
    wallet.release_expired(now)  # a hold past its time reads as released before any write
    spend = qualifying_spend(row.spend, month_of(now), settings.tier_window_months)
    p = row.profile
    return {
        "member_id": row.member_id,
        "name": p.get("name"),
        "email": p.get("email"),
        "birthday": p.get("birthday"),
        "locale": p.get("locale") or "ja-JP",
        "consents": {**DEFAULT_CONSENTS, **(p.get("consents") or {})},
        "status": row.status,
        "enrolled_at": p.get("enrolled_at"),
        "referral_code": p.get("referral_code"),
        "referred_by": p.get("referred_by"),
        "points": {
            "available": wallet.available,
            "pending": wallet.pending,
            "held": wallet.held,
            "lifetime_earned": wallet.lifetime_earned,
            "lifetime_spent": wallet.lifetime_spent,
            "expiring_soon": expiry.expiring_soon(wallet, row.last_activity_month,
                                                  settings.points_expiry_policy, settings.points_expiry_months,
                                                  now, settings.expiry_warning_days),
        },
        "tier": tier_view(row.tier, spend, program.tiers()),
        "segment": row.segment,
        **({"merged_into": row.merged_into} if row.merged_into else {}),  # SPEC 2.15
    }


def get(member_id: str) -> dict:
    return view(require(member_id))


def enrol(body, actor: str) -> dict:
    """Create a member; an existing id is ALREADY_EXISTS. A referral code links the referrer."""
    return _enrol(body, None)[1]


def enrol_idempotent(body, actor: str, idem: tuple) -> tuple[int, dict]:
    """`enrol` for a request with an `Idempotency-Key`: the stored answer is written in the
    member's own transaction, so a retry after a lost response (or a concurrent twin) gets
    the original 201 body back with status 200 instead of ALREADY_EXISTS."""
    return _enrol(body, idem)


def _enrol(body, idem: Optional[tuple]) -> tuple[int, dict]:
    from chalicelib.services import idempotency

    now = clock.now()
    referred_by = None
    if body.referral_code:
        referred_by = store.referral_owner(codes.normalize(body.referral_code))
        if referred_by is None:
            raise ValidationFailed("unknown referral code",
                                   fields=[{"field": "referral_code", "message": "no member has this code"}])
    profile = {
        "name": body.name, "email": body.email, "birthday": body.birthday,
        "locale": body.locale or "ja-JP",
        "consents": {**DEFAULT_CONSENTS, **(body.consents.model_dump() if body.consents else {})},
        "enrolled_at": clock.iso(now), "referred_by": referred_by,
    }
    for _ in range(5):
        code = codes.random_code(8)
        profile["referral_code"] = code
        row = new_member(body.member_id, dict(profile), now)
        result = view(row, now)
        uow = _uow().UnitOfWork()
        uow.add(store.save_op(row), anchor=store.anchor())
        uow.add(store.referral_op(code, body.member_id))
        if idem:
            uow.add(idempotency.record_op(idem[0], idem[1], 201, result, body.member_id))
        uow.publish_events([member_event("member.enrolled", row, result, 0)])
        try:
            uow.commit()
            return 201, result
        except tx.TxCancelled as c:
            if c.failed(0) or (idem and c.failed(2)):
                if idem:
                    stored = idempotency.replay_json(idem[0], idem[1])  # a twin with this key won
                    if stored is not None:
                        return 200, stored
                raise AlreadyExists(member_id=body.member_id)
            # referral code collision: draw another
    raise Conflict()


def member_event(type_: str, row: Member, resource: dict, version: int) -> dict:
    """A `member.*` event: the member as the API returns it, named by the version it creates."""
    return events.numbered([events.envelope(type_, f"{row.member_id}@{version}", row.member_id,
                                            clock.iso(clock.now()), resource)], version)[0]


def patch(member_id: str, body, may_set_status: bool, actor: Optional[str] = None) -> dict:
    """Update profile and consent fields (merged); `status` only when `may_set_status`.
    A status change, and any change an admin makes, is recorded in the audit trail (field
    names and the status, never the personal values)."""
    changes = body.model_dump(exclude_unset=True)
    if "status" in changes and not may_set_status:
        raise ValidationFailed("only a service or admin may change status",
                               fields=[{"field": "status", "message": "not allowed"}])

    def attempt():
        row = require(member_id)
        if row.status == "closed":
            raise MemberInactive(status="closed")
        expected = row.version
        for key in PROFILE_FIELDS:
            if key in changes:
                row.profile[key] = changes[key]
        if changes.get("consents") is not None:
            row.profile["consents"] = {**DEFAULT_CONSENTS, **(row.profile.get("consents") or {}),
                                       **{k: v for k, v in changes["consents"].items() if v is not None}}
        audited = []
        if changes.get("status") and changes["status"] != row.status:
            audited.append(audit.entry_op(actor or "system", "member.status", target=member_id,
                                          details={"from": row.status, "to": changes["status"]}))
            row.status = changes["status"]
        elif actor and actor.startswith("admin:"):
            audited.append(audit.entry_op(actor, "member.update", target=member_id,
                                          details={"fields": sorted(changes)}))
        uow = _uow().UnitOfWork()
        uow.add(store.save_op(row), anchor=store.anchor())
        uow.extend(audited)
        uow.publish_events([member_event("member.updated", row, view(row), expected + 1)])
        try:
            uow.commit()
        except tx.TxCancelled:
            raise Conflict()
        return view(row)

    return _uow().retry(attempt)


def close(member_id: str, actor: str) -> dict:
    """Erase personal data; the ledger keeps its amounts (it holds no personal data).
    The member's feedback comments are erased after the commit (and again by a repeated
    close, which finishes an erasure a failure cut short)."""
    from chalicelib.store import marketing as marketing_store  # closing is rare: off the cold path

    def attempt():
        row = require(member_id)
        if row.status == "closed":
            return view(row)
        expected = row.version
        code = row.profile.get("referral_code")
        row.status = "closed"
        row.profile = {"name": None, "email": None, "birthday": None, "locale": None,
                       "consents": dict(DEFAULT_CONSENTS), "enrolled_at": row.profile.get("enrolled_at"),
                       "referral_code": None, "referred_by": row.profile.get("referred_by"),
                       "closed_at": clock.iso(clock.now())}
        uow = _uow().UnitOfWork()
        uow.add(store.save_op(row), anchor=store.anchor())
        if code:
            uow.add(store.referral_release_op(code, member_id))
        uow.add(audit.entry_op(actor, "member.close", target=member_id))
        uow.publish_events([member_event("member.closed", row, view(row), expected + 1)])
        try:
            uow.commit()
        except tx.TxCancelled:
            raise Conflict()
        return view(row)

    closed = _uow().retry(attempt)
    marketing_store.erase_comments(member_id)
    return closed


