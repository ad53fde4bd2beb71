"""Paying with points at checkout: hold, capture, release (SPEC 2.14).

A hold works like a card authorisation. Creating it moves points from `available` to
`held`, oldest lots first; the member item's wallet keeps the open hold with the lots it
took, and a hold record (store/holds.py) keeps its history. Capture spends some or all
of it (one `spend` entry), release puts every point back in the lot it came from. Each
is one read of the member and one transaction (member, ledger, hold record) through the
unit of work; the hold record is the anchor. A hold past `expires_at` is released by the
member's next write (`Change.begin`) and by the hourly `release-holds` job; reads show it
released at once.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Optional

from chalicelib import clock, observability
from chalicelib.domain import events
from chalicelib.domain.hashing import canonical_hash
from chalicelib.errors import (
    HoldNotActive,
    HoldNotFound,
    IdempotencyMismatch,
    InsufficientPoints,
    LoyaltyError,
    PointsBelowMinimum,
    PointsExceedOrder,
    ValidationFailed,
)
from chalicelib.services import members, program
from chalicelib.services.lifecycle import _apply
from chalicelib.services.points import Change
from chalicelib.services.uow import retry
from chalicelib.store import holds as store
from chalicelib.store import tx
from chalicelib.store.base import Conflict

MAX_OPEN_HOLDS = 10  # open holds live in the member item, which stays under 4 KB (docs/HOLDS.md)


def _effective_status(status: str, expires_at: str, now: datetime) -> str:
    if status == "held" and clock.parse_instant(expires_at) <= now:
        return "released"
    return status


def view(rec, now: Optional[datetime] = None) -> dict:
    d = rec.data
    return {"hold_id": rec.hold_id, "member_id": rec.member_id, "order_id": d.get("order_id"),
            "points": d["points"], "amount": d["amount"], "captured_points": int(rec.captured_points or 0),
            "status": _effective_status(rec.status, d["expires_at"], now or clock.now()),
            "created_at": d["created_at"], "expires_at": d["expires_at"]}


def _open_view(hold_id: str, member_id: str, h: dict, status: str, captured: int) -> dict:
    return {"hold_id": hold_id, "member_id": member_id, "order_id": h.get("order_id"), "points": h["points"],
            "amount": h["amount"], "captured_points": captured, "status": status,
            "created_at": h["created_at"], "expires_at": h["expires_at"]}


def create(member_id: str, body, actor: str) -> tuple[int, dict]:
    """Reserve points for a checkout (201), or answer a replay of the same hold_id (200)."""
    req_hash = canonical_hash({"member_id": member_id, **body.model_dump(mode="json")})

    def answer(rec) -> tuple[int, dict]:
        if rec.member_id != member_id or rec.request_hash != req_hash:
            raise IdempotencyMismatch(hold_id=body.hold_id)
        return 200, rec.response

    def replay(err: Optional[LoyaltyError] = None) -> tuple[int, dict]:
        rec = store.get_hold(body.hold_id)
        if rec is None:
            if err is not None:
                raise err
            raise Conflict()  # the condition failed but the record is not there yet: decide again
        return answer(rec)

    def attempt():
        now = clock.now()
        settings = program.settings()
        row = members.require(member_id)
        ch = Change.begin(row, now)
        if body.hold_id in ch.wallet.holds:
            return replay()
        try:
            members.require_active(row)
            if body.points < settings.min_points_per_use:
                raise PointsBelowMinimum(points=body.points, min_points_per_use=settings.min_points_per_use)
            amount = body.points * settings.point_value
            if body.order_total is not None:
                limit = math.floor(body.order_total * Fraction(settings.max_points_share))
                if amount > limit:
                    raise PointsExceedOrder(amount=amount, max_amount=limit)
            if not ch.wallet.can_spend(body.points):
                raise InsufficientPoints(available=ch.wallet.available, required=body.points)
            if len(ch.wallet.holds) >= MAX_OPEN_HOLDS:
                raise ValidationFailed(f"a member has at most {MAX_OPEN_HOLDS} open holds",
                                       fields=[{"field": "hold_id", "message": "too many open holds"}])
        except LoyaltyError as err:
            return replay(err)  # a retried hold that succeeded before gets its answer
        expires = now + timedelta(minutes=settings.hold_ttl_minutes)
        meta = {"order_id": body.order_id, "amount": amount, "created_at": clock.iso(now),
                "expires_at": clock.iso(expires)}
        taken = ch.wallet.hold(body.hold_id, body.points, **meta)
        out = _open_view(body.hold_id, member_id, {**meta, "points": body.points}, "held", 0)
        ch.events.append(events.envelope("hold.created", body.hold_id, member_id, clock.iso(now), out))
        uow = ch.unit_of_work()
        index = uow.add(store.put_hold_op(body.hold_id, member_id, clock.sortable(now), req_hash,
                                          {**meta, "points": body.points, "lots": taken}, out), anchor=store.anchor())
        replayed = uow.commit_or_replay(index, lambda: store.get_hold(body.hold_id), answer)
        if replayed is not None:
            return replayed
        observability.count("PointHolds")
        return 201, out

    return retry(attempt)


def _closed(member_id: str, hold_id: str, now: datetime, same: bool) -> dict:
    """A hold that is not open in the member's wallet: the repeat of the call that closed it
    (`same`: this call is that one) answers as it did, anything else is HOLD_NOT_ACTIVE."""
    rec = store.get_hold(hold_id)
    if rec is None or rec.member_id != member_id:
        raise HoldNotFound(hold_id=hold_id)
    if same:
        return view(rec, now)
    raise HoldNotActive(hold_id=hold_id, status=_effective_status(rec.status, rec.data["expires_at"], now))


def capture(member_id: str, hold_id: str, body, actor: str) -> dict:
    """Spend a hold's points (all, or `points` of them); the rest go back to available."""
    request = {"points": body.points}

    def attempt():
        now = clock.now()
        ch = Change.begin(members.require(member_id), now)
        h = ch.wallet.holds.get(hold_id)
        if h is None:
            rec = store.get_hold(hold_id)
            same = bool(rec and rec.status == "captured" and rec.closed_by == "capture"
                        and rec.close_request == request)
            return _closed(member_id, hold_id, now, same)
        points = h["points"] if body.points is None else body.points
        if points > h["points"]:
            raise ValidationFailed("a capture takes at most the held points",
                                   fields=[{"field": "points", "message": f"at most {h['points']}"}])
        spent = ch.wallet.capture(hold_id, points)
        if points:
            ch.entry("spend", -points, reference={"hold_id": hold_id, **({"order_id": h["order_id"]}
                                                                         if h.get("order_id") else {})},
                     actor=actor, occurred_at=now)
        captured = _open_view(hold_id, member_id, h, "captured", points)
        ch.events.append(events.envelope("hold.captured", hold_id, member_id, clock.iso(now), captured))
        uow = ch.unit_of_work()
        uow.add(store.close_hold_op(hold_id, member_id, "captured", closed_by="capture", closed_at=clock.iso(now),
                                    captured_points=points, spent_lots=spent, close_request=request),
                anchor=store.anchor())
        try:
            uow.commit()
        except tx.TxCancelled:
            raise Conflict()
        observability.count("PointsCaptured", points)
        return captured

    return retry(attempt)


def release(member_id: str, hold_id: str, actor: str) -> dict:
    """Give every held point back to the lot it came from; no ledger entry."""

    def attempt():
        now = clock.now()
        ch = Change.begin(members.require(member_id), now)
        h = ch.wallet.holds.get(hold_id)
        if h is None:
            rec = store.get_hold(hold_id)
            same = bool(rec and rec.status == "released" and rec.closed_by == "release")
            return _closed(member_id, hold_id, now, same)
        ch.wallet.release(hold_id)
        released = _open_view(hold_id, member_id, h, "released", 0)
        ch.events.append(events.envelope("hold.released", hold_id, member_id, clock.iso(now), released))
        uow = ch.unit_of_work()
        uow.add(store.close_hold_op(hold_id, member_id, "released", closed_by="release", closed_at=clock.iso(now)),
                anchor=store.anchor())
        try:
            uow.commit()
        except tx.TxCancelled:
            raise Conflict()
        return released

    return retry(attempt)


def list_holds(member_id: str, limit: int, cursor: Optional[dict]) -> tuple[list, Optional[dict]]:
    members.require(member_id)
    now = clock.now()
    recs, last = store.holds_page(member_id, limit, cursor)
    return [view(r, now) for r in recs], last


def pay_with_hold(ch: Change, hold_id: str, order_id: str, actor: str, now: datetime) -> tuple[int, dict, list]:
    """An accrual's `points_payment`: capture the hold inside the accrual's own transaction.
    Returns (points paid, the lots they came from, the ops to add). A hold captured before
    counts with its captured points, for one order only."""
    member_id = ch.row.member_id
    h = ch.wallet.holds.get(hold_id)
    if h is not None:
        points = h["points"]
        spent = ch.wallet.capture(hold_id, points)
        ch.entry("spend", -points, reference={"hold_id": hold_id, "order_id": order_id}, actor=actor, occurred_at=now)
        return points, spent, [store.close_hold_op(hold_id, member_id, "captured", closed_by="accrual",
                                                   closed_at=clock.iso(now), captured_points=points,
                                                   spent_lots=spent, paid_order_id=order_id)]
    rec = store.get_hold(hold_id)
    if rec is None:
        raise HoldNotFound(hold_id=hold_id)
    if rec.member_id != member_id or rec.status != "captured" or rec.paid_order_id not in (None, order_id):
        status = _effective_status(rec.status, rec.data["expires_at"], now) if rec.member_id == member_id else None
        raise HoldNotActive(hold_id=hold_id, status=status)
    ops = [] if rec.paid_order_id == order_id else [store.mark_paid_op(hold_id, member_id, order_id)]
    return int(rec.captured_points or 0), dict(rec.spent_lots or {}), ops


def release_expired(row, as_of: datetime) -> int:
    """`release-holds` for one member: the holds past their time go back to available."""
    if not row.wallet.expired_holds(as_of):
        return 0

    def mutate(ch: Change) -> Optional[int]:
        # Change.begin released what was due at the clock's now; `as_of` may be later.
        ch.release_expired_holds(as_of)
        released = ch.held_at_start - ch.wallet.held
        return released or None

    return _apply(row.member_id, row, mutate) or 0
