"""Rewards catalogue, redemption, vouchers and gifting (SPEC 2.8).

A redemption is one TransactGetItems (member + reward) and one TransactWriteItems:
the member item (points debited FIFO, per-reward count; conditional on its
version), the reward's stock (decremented only while > 0), the redemption, its
unique voucher code and the `redeem` ledger entry. Any failed condition re-reads
and decides again, so concurrent redemptions never overdraw, oversell or exceed a
per-member limit.
"""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Optional

from chalicelib import clock, messaging, observability
from chalicelib.domain import codes, events
from chalicelib.domain import rewards as rules
from chalicelib.domain.months import month_of
from chalicelib.errors import (
    AlreadyExists,
    IdempotencyMismatch,
    InsufficientPoints,
    MemberNotFound,
    NotFound,
    OutOfStock,
    RewardLimitReached,
    RewardNotFound,
    TierRequired,
    ValidationFailed,
    VoucherNotIssued,
)
from chalicelib.services import audit, idempotency, members, program
from chalicelib.services.points import Change
from chalicelib.services.uow import UnitOfWork, retry
from chalicelib.store import idempotency as idem_store
from chalicelib.store import members as member_store
from chalicelib.store import rewards as reward_store
from chalicelib.store import tx
from chalicelib.store.base import Conflict

VOUCHER_CODE_LENGTH = 16  # 80 random bits (SPEC 2.10 asks for at least 60)


# --- catalogue --------------------------------------------------------------------------

def _reward_out(rec) -> dict:
    """The entry with `stock` (units offered in all) and `remaining` (left to redeem)."""
    return {**rec.data, "stock": int(rec.stock) if rec.stock is not None else None,
            "remaining": reward_store.remaining(rec)}


def _get_reward(reward_id: str):
    rec = reward_store.get_reward(reward_id)
    if rec is None:
        raise RewardNotFound(reward_id=reward_id)
    return rec


def _check_min_tier(body) -> None:
    tier_ids = [t.tier_id for t in program.tiers()]
    if body.min_tier is not None and body.min_tier not in tier_ids:
        raise ValidationFailed("min_tier is not a configured tier",
                               fields=[{"field": "min_tier", "message": "must be one of " + ", ".join(tier_ids)}])


def create_reward(body, actor: str) -> dict:
    _check_min_tier(body)
    data = body.model_dump(mode="json")
    stock = data.pop("stock")
    rec = reward_store.new_reward(body.reward_id, data, stock, clock.iso(clock.now()))
    try:
        tx.write([reward_store.create_op(rec),
                  audit.entry_op(actor, "reward.create", target=body.reward_id, details=body.model_dump(mode="json"))])
    except tx.TxCancelled:
        raise AlreadyExists(reward_id=body.reward_id)
    return _reward_out(rec)


def update_reward(reward_id: str, body, actor: str) -> dict:
    if body.reward_id not in (None, reward_id):
        raise ValidationFailed("reward_id in the body differs from the path",
                               fields=[{"field": "reward_id", "message": "must match the path"}])
    _check_min_tier(body)
    data = {**body.model_dump(mode="json"), "reward_id": reward_id}
    stock = data.pop("stock")
    try:
        tx.write([reward_store.replace_op(reward_id, data, stock, clock.iso(clock.now())),
                  audit.entry_op(actor, "reward.update", target=reward_id, details={**data, "stock": stock})])
    except tx.TxCancelled:
        raise RewardNotFound(reward_id=reward_id)
    return _reward_out(_get_reward(reward_id))


def delete_reward(reward_id: str, actor: str) -> None:
    """Take a reward out of the catalogue; vouchers already issued stay valid."""
    try:
        tx.write([reward_store.delete_op(reward_id),
                  audit.entry_op(actor, "reward.delete", target=reward_id)])
    except tx.TxCancelled:
        raise RewardNotFound(reward_id=reward_id)


def list_rewards(principal, limit: int, cursor: Optional[dict]) -> tuple[list, Optional[dict]]:
    """Active rewards in their window. A member sees those their tier reaches."""
    now = clock.now()
    tier_ids = [t.tier_id for t in program.tiers()]
    member_view, my_tier = False, None
    if principal.has("member") and not principal.has("service", "admin"):
        member_view = True
        row = member_store.get(principal.sub)
        my_tier = row.tier_id if row else None
    items = []
    for rec in reward_store.all_rewards():  # the catalogue is small; paging is over the filtered list
        data = rec.data
        if not rules.available(data, now):
            continue
        if member_view and not rules.tier_reaches(my_tier, data.get("min_tier"), tier_ids):
            continue
        items.append(_reward_out(rec))
    items.sort(key=lambda r: (r["cost_points"], r["reward_id"]))
    start = int((cursor or {}).get("offset", 0))
    page = items[start:start + limit]
    nxt = {"offset": start + limit} if start + limit < len(items) else None
    return page, nxt


# --- redemption -------------------------------------------------------------------------

def _view(rec) -> dict:
    d = rec.data
    return {"redemption_id": rec.redemption_id, "member_id": rec.owner_id, "reward_id": d["reward_id"],
            "reward_name": d.get("reward_name"), "code": d["code"], "status": rec.status,
            "points_spent": d["points_spent"], "issued_at": d["issued_at"], "expires_at": rec.expires_at,
            "used_at": d.get("used_at"), "gifted_from": d.get("gifted_from")}


def _effective_status(rec, now: datetime) -> str:
    return rules.effective_status(rec.status, rec.expires_at, now)


def redeem(member_id: str, reward_id: str, actor: str, idem: Optional[tuple] = None) -> tuple[int, dict]:
    """Spend points on a reward; returns (201, Redemption) or a stored replay (200)."""

    def attempt():
        now = clock.now()
        keys = [member_store.key(member_id), reward_store.reward_key(reward_id)]
        if idem:
            keys.append(idem_store.key(idem[0]))
        rec, reward, *prior = tx.get_many(*keys)
        if prior and prior[0] is not None:  # a replay: the stored answer, whatever changed since
            if prior[0].request_hash != idem[1]:
                raise IdempotencyMismatch()
            return 200, prior[0].response
        if rec is None:
            raise MemberNotFound(member_id=member_id)
        row = member_store.from_record(rec)
        members.require_active(row)
        if reward is None or not rules.available(reward.data, now):
            raise RewardNotFound(reward_id=reward_id)
        data = reward.data
        tier_ids = [t.tier_id for t in program.tiers()]
        if not rules.tier_reaches(row.tier_id, data.get("min_tier"), tier_ids):
            raise TierRequired(min_tier=data["min_tier"])
        counts = row.rewards
        if data.get("per_member_limit") is not None and counts.get(reward_id, 0) >= data["per_member_limit"]:
            raise RewardLimitReached(per_member_limit=data["per_member_limit"])
        if reward_store.remaining(reward) == 0:
            raise OutOfStock(reward_id=reward_id)
        cost = int(data["cost_points"])
        ch = Change.begin(row, now)
        if not ch.wallet.can_spend(cost):
            raise InsufficientPoints(available=ch.wallet.available, required=cost)
        taken = ch.wallet.spend(cost)
        counts[reward_id] = counts.get(reward_id, 0) + 1
        redemption_id = "rd_" + secrets.token_hex(10)
        code = codes.random_code(VOUCHER_CODE_LENGTH)
        expires = now + timedelta(days=int(data.get("voucher_valid_days", 30)))
        ch.entry("redeem", -cost, reference={"reward_id": reward_id, "redemption_id": redemption_id},
                 actor=actor, occurred_at=now)
        red = reward_store.new_redemption(redemption_id, member_id, clock.sortable(now), clock.iso(expires),
                                          {"reward_id": reward_id, "reward_name": data.get("name"), "code": code,
                                           "points_spent": cost, "issued_at": clock.iso(now), "lots": taken})
        view = _view(red)
        ch.events.append(events.envelope("reward.redeemed", redemption_id, member_id, clock.iso(now), view))
        ch.messages.append(messaging.compose(
            template="reward_redeemed", member_id=member_id, profile=row.profile,
            channel=messaging.transactional_channel(row.profile.get("consents")),
            variables={"points": ch.wallet.available, "reward_name": data.get("name"), "voucher_code": code},
            source="reward_redeemed", period=redemption_id))
        uow = ch.unit_of_work()
        uow.add(reward_store.take_unit_op(reward_id))
        uow.add(reward_store.create_redemption_op(red), anchor=reward_store.redemption_anchor())
        uow.add(reward_store.voucher_code_op(code, redemption_id))
        idem_index = None
        if idem:
            idem_index = uow.add(idempotency.record_op(idem[0], idem[1], 201, view, member_id))
        try:
            uow.commit()
        except tx.TxCancelled as c:
            if idem_index is not None and c.failed(idem_index):
                prior = idem_store.get(idem[0])  # a concurrent twin won
                if prior.request_hash != idem[1]:
                    raise IdempotencyMismatch()
                return 200, prior.response
            raise Conflict()  # version, stock or code raced: read again and decide again
        observability.count("Redemptions")
        observability.count("PointsRedeemed", cost)
        return 201, view

    return retry(attempt)


def _owned(member_id: str, redemption_id: str):
    rec = reward_store.get_redemption(redemption_id)
    if rec is None:
        raise NotFound(redemption_id=redemption_id)
    if rec.owner_id != member_id:
        from chalicelib.services import merge  # a merged member's vouchers, addressed to either id (SPEC 2.15)

        if merge.current_owner(rec.owner_id) != merge.current_owner(member_id):
            raise NotFound(redemption_id=redemption_id)
    return rec


def list_redemptions(member_id: str, limit: int, cursor: Optional[dict]) -> tuple[list, Optional[dict]]:
    members.require(member_id)
    now = clock.now()
    records, last = reward_store.redemptions_page(member_id, limit, cursor)
    items = []
    for rec in records:
        view = _view(rec)
        view["status"] = _effective_status(rec, now)
        items.append(view)
    return items, last


def cancel(member_id: str, redemption_id: str, actor: str) -> dict:
    """Cancel an issued voucher: the points go back to the member who paid, the stock returns."""

    def attempt():
        now = clock.now()
        red = _owned(member_id, redemption_id)
        if _effective_status(red, now) != "issued":
            raise VoucherNotIssued(status=_effective_status(red, now))
        payer = member_store.get(red.payer_id)
        if payer is None:
            raise MemberNotFound(member_id=red.payer_id)
        if payer.merged_into:
            from chalicelib.services import merge  # the points go back to the member that absorbed the payer

            payer = merge.follow(payer)
        d = red.data
        cost = int(d["points_spent"])
        ch = Change.begin(payer, now)
        # the lots the redemption took; redemptions stored before lots were kept: their month
        ch.wallet.give_back(d.get("lots") or {d.get("earned_month") or month_of(now): cost})
        counts = payer.rewards
        counts[d["reward_id"]] = max(0, counts.get(d["reward_id"], 0) - 1)
        ch.entry("refund_redemption", cost, reference={"reward_id": d["reward_id"], "redemption_id": redemption_id},
                 actor=actor, occurred_at=now)
        red.status = "cancelled"
        red.data = {**d, "cancelled_at": clock.iso(now)}
        version = int(red.version)
        red.version = version + 1
        ch.events.append(events.envelope("voucher.cancelled", redemption_id, red.owner_id, clock.iso(now), _view(red)))
        uow = ch.unit_of_work()
        uow.add(reward_store.issued_update_op(red, version), anchor=reward_store.redemption_anchor())
        if reward_store.reward_exists(d["reward_id"]):  # deleted since: nothing to restock
            uow.add(reward_store.return_unit_op(d["reward_id"]))
        try:
            uow.commit()
        except tx.TxCancelled:
            raise Conflict()
        return _view(red)

    return retry(attempt)


def gift(member_id: str, redemption_id: str, to_member_id: str, actor: str) -> dict:
    """Give an issued voucher to another active member; it is theirs from then on."""
    if to_member_id == member_id:
        raise ValidationFailed("a voucher cannot be gifted to its owner",
                               fields=[{"field": "to_member_id", "message": "must be another member"}])

    def attempt():
        now = clock.now()
        red = reward_store.get_redemption(redemption_id)
        if red is None:
            raise NotFound(redemption_id=redemption_id)
        if red.owner_id == to_member_id and red.data.get("gifted_from") == member_id:
            return _view(red)  # a retried gift answers as the first did
        if red.owner_id != member_id:
            raise NotFound(redemption_id=redemption_id)
        if _effective_status(red, now) != "issued":
            raise VoucherNotIssued(status=_effective_status(red, now))
        giver, recipient = (member_store.from_record(r) for r in
                            tx.get_many(member_store.key(member_id), member_store.key(to_member_id)))
        if giver is None:
            raise MemberNotFound(member_id=member_id)
        members.require_active(giver)  # suspended or closed: cannot hand it on
        if recipient is None:
            raise MemberNotFound(member_id=to_member_id)
        members.require_active(recipient)
        # The voucher gets a new code: the giver (who saw the old one) can no longer spend it.
        version = int(red.version)
        old_code, new_code = red.data["code"], codes.random_code(VOUCHER_CODE_LENGTH)
        red.owner_id = to_member_id
        red.version = version + 1
        red.data = {**red.data, "code": new_code, "gifted_from": member_id, "gifted_at": clock.iso(now)}
        uow = UnitOfWork()
        uow.add(reward_store.issued_update_op(red, version), anchor=reward_store.redemption_anchor())
        uow.add(reward_store.voucher_code_release_op(old_code, redemption_id))
        uow.add(reward_store.voucher_code_op(new_code, redemption_id))
        uow.add(member_store.active_check_op(member_id))
        uow.add(member_store.active_check_op(to_member_id))
        # no member item is written: numbered after the recipient's version read, in its second half
        gifted = events.envelope("voucher.gifted", f"{redemption_id}@{red.version}", to_member_id, clock.iso(now),
                                 {**_view(red), "gifted_from": member_id})
        uow.publish_events([{**gifted, "sequence": int(recipient.version or 0) * events.SEQUENCE_STEP + 50}])
        try:
            uow.commit()
        except tx.TxCancelled:
            raise Conflict()
        return _view(red)

    return retry(attempt)


def use_voucher(code: str, order_id: Optional[str], actor: str) -> dict:
    """Mark a voucher used at a store; the same use retried answers 200 again."""
    normalized = codes.normalize(code)
    if not normalized:
        raise NotFound(code=code)

    def attempt():
        now = clock.now()
        redemption_id = reward_store.voucher_redemption_id(normalized)
        red = reward_store.get_redemption(redemption_id) if redemption_id is not None else None
        if red is None:
            raise NotFound("no voucher with this code")
        if codes.normalize(red.data["code"]) != normalized:  # a gifted voucher's old code
            raise NotFound("no voucher with this code")
        if red.status == "used" and order_id and red.data.get("used_order_id") == order_id:
            return _view(red)
        if _effective_status(red, now) != "issued":
            raise VoucherNotIssued(status=_effective_status(red, now))
        version = int(red.version)
        red.status = "used"
        red.version = version + 1
        red.data = {**red.data, "used_at": clock.iso(now), "used_order_id": order_id, "used_by": actor}
        uow = UnitOfWork()
        uow.add(reward_store.issued_update_op(red, version), anchor=reward_store.redemption_anchor())
        owner = member_store.get(red.owner_id)
        if owner is not None and owner.merged_into:
            from chalicelib.services import merge  # the voucher's owner was merged: the event names the survivor

            owner = merge.follow(owner)
        used = events.envelope("voucher.used", redemption_id, owner.member_id if owner else red.owner_id,
                               clock.iso(now), _view(red))
        uow.publish_events([{**used, "sequence": int(owner.version if owner else 0) * events.SEQUENCE_STEP + 50}])
        try:
            uow.commit()
        except tx.TxCancelled:
            raise Conflict()
        observability.count("VouchersUsed")
        return _view(red)

    return retry(attempt)


def expire_voucher(rec, as_of: datetime) -> bool:
    """`expire-vouchers` for one voucher: issued and past `expires_at` → expired (points stay spent)."""
    if rec.status != "issued" or rules.effective_status(rec.status, rec.expires_at, as_of) != "expired":
        return False
    version = int(rec.version)
    rec.status = "expired"
    rec.version = version + 1
    rec.data = {**rec.data, "expired_at": clock.iso(as_of)}
    try:
        tx.write([reward_store.issued_update_op(rec, version)])
    except tx.TxCancelled:
        return False  # used, cancelled or gifted meanwhile; the next run sees it again if still issued
    return True
