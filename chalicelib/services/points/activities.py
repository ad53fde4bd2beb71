"""Activities and adjustments (SPEC 2.4, 4.5): points for non-purchase activities within their
rules' limits, and an admin's correction; each made idempotent by its operation record."""
from __future__ import annotations

from datetime import datetime
from typing import Callable, Optional

from chalicelib import clock
from chalicelib.domain.hashing import canonical_hash
from chalicelib.domain.months import month_of
from chalicelib.errors import (
    ActivityLimitReached,
    IdempotencyMismatch,
    LoyaltyError,
    UnknownActivity,
)
from chalicelib.services import audit, members, program
from chalicelib.store import members as store
from chalicelib.store import operations
from chalicelib.services.uow import retry
from chalicelib.services.points.change import Change, balance
from chalicelib.services.points.accruals import _cap_room, _count_earned


# --- activities -----------------------------------------------------------------------

def _prior_response(kind: str, op_id: str, member_id: str, req_hash: str) -> Optional[dict]:
    """The stored response of an earlier request with this id, None when there is none;
    IDEMPOTENCY_MISMATCH when the id was used with another payload or member."""
    prior = operations.get_record(kind, op_id)
    if prior is None:
        return None
    if prior.request_hash != req_hash or prior.member_id != member_id:
        raise IdempotencyMismatch(key=op_id)
    return prior.response


def _idempotent_member_op(kind: str, op_id: str, member_id: str, req_hash: str,
                          build: Callable[[Change, datetime], dict], actor: str,
                          extra_ops: Callable[[], list] = lambda: []) -> tuple[int, dict]:
    """A member mutation made idempotent by its operation record, written in the same transaction."""

    def attempt():
        now = clock.now()
        row = members.require(member_id)
        ch = Change.begin(row, now)
        try:
            response = build(ch, now)
        except LoyaltyError:
            # A business rule says no (limit reached, member suspended since): when this is the
            # retry of a request that already succeeded, the client gets its original answer.
            prior = _prior_response(kind, op_id, member_id, req_hash)
            if prior is not None:
                return 200, prior
            raise
        uow = ch.unit_of_work()
        idem_index = uow.add(operations.record_op(kind, op_id, member_id, req_hash, response),
                             anchor=operations.record_anchor())
        uow.extend(extra_ops())
        replayed = uow.commit_or_replay(idem_index, lambda: _prior_response(kind, op_id, member_id, req_hash),
                                        lambda prior: (200, prior))
        return replayed or (201, response)

    return retry(attempt)


ACTIVITY_DAYS_KEPT = 35  # per-day activity counts kept per type (the newest days)


def record_activity(member_id: str, body, actor: str) -> tuple[int, dict]:
    """Points for a non-purchase activity, within its rule's per-day and total limits."""
    req_hash = canonical_hash({"member_id": member_id, **body.model_dump(mode="json")})

    def build(ch: Change, now: datetime) -> dict:
        rule = program.settings().activity_rules.get(body.type)
        if rule is None:
            raise UnknownActivity(type=body.type)
        members.require_active(ch.row)
        occurred = body.occurred_at or now
        day = occurred.date().isoformat()
        counts = ch.row.activities.setdefault(body.type, {"total": 0, "days": {}})
        days = dict(counts.get("days") or {})
        if rule.max_total is not None and counts["total"] >= rule.max_total:
            raise ActivityLimitReached(type=body.type, max_total=rule.max_total)
        if rule.max_per_day is not None:
            # Counts are kept for the newest ACTIVITY_DAYS_KEPT days (by the activity's own day, so a
            # late report still counts against its day); a day older than all of them cannot be checked.
            if day not in days and len(days) >= ACTIVITY_DAYS_KEPT and day < min(days):
                raise ActivityLimitReached(type=body.type, max_per_day=rule.max_per_day,
                                           reason="occurred_at is too far in the past to check the daily limit")
            if days.get(day, 0) >= rule.max_per_day:
                raise ActivityLimitReached(type=body.type, max_per_day=rule.max_per_day)
        counts["total"] += 1
        days[day] = days.get(day, 0) + 1
        counts["days"] = dict(sorted(days.items())[-ACTIVITY_DAYS_KEPT:])
        # Earning caps (SPEC 2.20): the activity still counts, its points stop at the cap.
        points = rule.points
        room = _cap_room(ch.row, program.settings(), now)
        if room is not None:
            points = min(points, room)
        _count_earned(ch.row, now, points)
        ch.wallet.earn(points, month_of(occurred))
        if points:
            ch.entry("activity", points, reference={"activity_id": body.activity_id}, actor=actor,
                     occurred_at=occurred, note=body.type)
        return {"activity_id": body.activity_id, "points_earned": points, "balance": balance(ch.wallet)}

    return _idempotent_member_op("activity", body.activity_id, member_id, req_hash, build, actor)


def adjust(member_id: str, body, actor: str) -> tuple[int, dict]:
    """An admin's correction, positive or negative, with its reason in the ledger and the audit trail."""
    req_hash = canonical_hash({"member_id": member_id, **body.model_dump(mode="json")})

    def build(ch: Change, now: datetime) -> dict:
        if body.points > 0:
            ch.wallet.earn(body.points, month_of(now))
        else:
            ch.wallet.debit(-body.points)
        return ch.entry("adjust", body.points, reference={"adjustment_id": body.adjustment_id}, actor=actor,
                        occurred_at=now, note=body.reason)

    def extra() -> list:
        return [audit.entry_op(actor, "member.adjust", target=member_id,
                               details={"adjustment_id": body.adjustment_id, "points": body.points,
                                        "reason": body.reason})]

    return _idempotent_member_op("adjustment", body.adjustment_id, member_id, req_hash, build, actor, extra)


def ledger(member_id: str, limit: int, cursor: Optional[dict]) -> tuple[list, Optional[dict]]:
    members.require(member_id)
    return store.ledger_page(member_id, limit, cursor)
