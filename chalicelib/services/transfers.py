"""Transfers of points between members (SPEC 2.15).

One read and one write, as any points mutation: a TransactGetItems of the sender, the
recipient and the transfer's own record (a replay answers from it before any rule runs),
then one TransactWriteItems through the unit of work holding both members (each
conditional on the version read), the `transfer_out` and `transfer_in` ledger entries,
the transfer record (the anchor, conditional on its id being new), one list line per
member and the `points.transferred` events.

The month's limit is counted in the sender's own item (`state.transfers`: the UTC month
and the points sent in it). That item is written conditionally on its version in the
same transaction, so two transfers racing from one member cannot both pass the limit, nor
both spend the same points: the loser re-reads and decides again.
"""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from chalicelib import clock, observability
from chalicelib.domain.hashing import canonical_hash
from chalicelib.domain.member import Member
from chalicelib.domain.months import month_of
from chalicelib.domain.wallet import give_lots, receive_lots
from chalicelib.errors import (
    IdempotencyMismatch,
    InsufficientPoints,
    MemberNotFound,
    TransferLimitReached,
    TransfersDisabled,
    ValidationFailed,
)
from chalicelib.services import members, program
from chalicelib.services.points import Change, balance
from chalicelib.services.uow import UnitOfWork, retry
from chalicelib.store import members as member_store
from chalicelib.store import transfers as store
from chalicelib.store import tx


def month_sent(member: Member, month: str) -> int:
    """Points the member sent in `month` (UTC), from the counter in its own item."""
    counter = member.transfers or {}
    return int(counter.get("points", 0)) if counter.get("month") == month else 0


def check_limits(settings, points: int, sent_this_month: int) -> None:
    """The `transfers` settings: switched on, at least `min_points`, within the month's limit."""
    if not settings.enabled:
        raise TransfersDisabled()
    if points < settings.min_points:
        raise TransferLimitReached(points=points, min_points=settings.min_points)
    cap = settings.max_points_per_month
    if cap is not None and sent_this_month + points > cap:
        raise TransferLimitReached(points=points, max_points_per_month=cap, sent_this_month=sent_this_month)


def _line(transfer_id: str, from_id: str, to_id: str, points: int, direction: str, at: datetime) -> dict:
    return {"transfer_id": transfer_id, "from_member_id": from_id, "to_member_id": to_id, "points": points,
            "direction": direction, "created_at": clock.iso(at)}


def transfer(member_id: str, body, actor: str) -> tuple[int, dict]:
    """Send available points to another member (201), or answer a replay of the same transfer_id (200)."""
    if body.to_member_id == member_id:
        raise ValidationFailed("a member cannot transfer points to itself",
                               fields=[{"field": "to_member_id", "message": "must be another member"}])
    req_hash = canonical_hash({"member_id": member_id, **body.model_dump(mode="json")})

    def replay(rec) -> tuple[int, dict]:
        if rec.from_member_id != member_id or rec.request_hash != req_hash:
            raise IdempotencyMismatch(transfer_id=body.transfer_id)
        return 200, rec.response

    def attempt():
        now = clock.now()
        sender_rec, recipient_rec, prior = tx.get_many(member_store.key(member_id), member_store.key(body.to_member_id),
                                                       store.transfer_key(body.transfer_id))
        if prior is not None:
            return replay(prior)  # a replay gets its answer whatever the rules say now
        if sender_rec is None:
            raise MemberNotFound(member_id=member_id)
        sender = member_store.from_record(sender_rec)
        members.require_active(sender)
        settings = program.settings().transfers
        if not settings.enabled:
            raise TransfersDisabled()
        if recipient_rec is None:
            raise MemberNotFound(member_id=body.to_member_id)
        recipient = member_store.from_record(recipient_rec)
        members.require_active(recipient)
        month = month_of(now)
        check_limits(settings, body.points, month_sent(sender, month))
        ch, rch = Change.begin(sender, now), Change.begin(recipient, now)
        if not ch.wallet.can_spend(body.points):
            raise InsufficientPoints(available=ch.wallet.available, required=body.points)
        lots = give_lots(ch.wallet, body.points)
        receive_lots(rch.wallet, lots)
        sender.transfers = {"month": month, "points": month_sent(sender, month) + body.points}
        ref = {"transfer_id": body.transfer_id}
        ch.entry("transfer_out", -body.points, reference=ref, actor=actor, occurred_at=now,
                 note=f"to {body.to_member_id}")
        rch.entry("transfer_in", body.points, reference=ref, actor=actor, occurred_at=now, note=f"from {member_id}")
        response = {"transfer_id": body.transfer_id, "from_member_id": member_id, "to_member_id": body.to_member_id,
                    "points": body.points, "balance": balance(ch.wallet)}
        at = clock.sortable(now)
        uow = UnitOfWork()
        uow.extend(ch.write_ops())
        uow.extend(rch.write_ops())
        index = uow.add(store.put_transfer_op(body.transfer_id, member_id, body.to_member_id, req_hash,
                                              {"points": body.points, "lots": lots, "created_at": clock.iso(now)},
                                              response), anchor=store.transfer_anchor())
        uow.add(store.line_op(member_id, at, body.transfer_id,
                              _line(body.transfer_id, member_id, body.to_member_id, body.points, "out", now)))
        uow.add(store.line_op(body.to_member_id, at, body.transfer_id,
                              _line(body.transfer_id, member_id, body.to_member_id, body.points, "in", now)))
        uow.publish(ch.messages + rch.messages)
        uow.publish_events(ch.domain_events() + rch.domain_events())
        replayed = uow.commit_or_replay(index, lambda: store.get_transfer(body.transfer_id), replay)
        if replayed is not None:
            return replayed
        observability.count("PointsTransferred", body.points)
        return 201, response

    return retry(attempt)


def list_transfers(member_id: str, limit: int, cursor: Optional[dict]) -> tuple[list, Optional[dict]]:
    """The member's transfers in and out, newest first."""
    members.require(member_id)
    return store.lines_page(member_id, limit, cursor)
