"""Rolling back a coupon redemption (the order was cancelled): SPEC 2.9, 2.20."""
from __future__ import annotations

from chalicelib import clock
from chalicelib.domain import events
from chalicelib.errors import NotFound
from chalicelib.services.coupons.campaigns import _c
from chalicelib.services.uow import UnitOfWork
from chalicelib.store import coupons as store
from chalicelib.store import members as member_store
from chalicelib.store import tx
from chalicelib.store.base import Conflict, retrying


def rollback(coupon_redemption_id: str, actor: str) -> dict:
    """Give a redemption's use back (order cancelled): counters down (its discount back to the
    budget), a unique code is issued again, the order no longer counts it for stacking. A
    second rollback answers the same body."""

    def attempt():
        rec = store.get_redemption(coupon_redemption_id)
        if rec is None:
            raise NotFound("no such coupon redemption", coupon_redemption_id=coupon_redemption_id)
        data = dict(rec.data or {})
        if rec.status == "rolled_back":
            return data["rollback"]
        response = {"coupon_redemption_id": rec.coupon_redemption_id, "status": "rolled_back",
                    "discount_amount": int(data.get("discount_amount", 0)), "order_id": rec.order_id,
                    "member_id": rec.member_id, "campaign_id": rec.campaign_id, "code": rec.code,
                    "rolled_back_at": clock.iso(clock.now())}
        data.update(rollback=response, rollback_actor=actor)
        cid = rec.campaign_id
        ops = [
            store.redemption_rollback_op(rec.coupon_redemption_id, data),
            store.wallet_unuse_op(rec.member_id, cid, bool(data.get("own_code"))),
        ]
        parts = {int(n): int(a) for n, a in (data.get("spent_parts") or {}).items()}
        for n in sorted({int(rec.shard), *parts}):
            ops.append(store.shard_release_op(cid, n, counts=n == int(rec.shard), part=parts.get(n)))
        if data.get("kind") == "unique":
            ops.append(store.code_unredeem_op(rec.code, cid, rec.coupon_redemption_id))
        if data.get("order_tracked"):
            ops.append(store.order_coupons_rollback_op(rec.order_id, bool(data.get("stackable"))))
        uow = UnitOfWork()
        uow.add(ops[0], anchor=store.redemption_anchor())
        uow.extend(ops[1:])
        member = member_store.get(rec.member_id)
        rolled = events.envelope("coupon.rolled_back", rec.coupon_redemption_id, rec.member_id,
                                 response["rolled_back_at"], response)
        uow.publish_events([{**rolled, "sequence": int(member.version if member else 0) * events.SEQUENCE_STEP + 51}])
        try:
            uow.commit()
        except tx.TxCancelled:
            raise Conflict()  # a concurrent rollback won: the re-read answers with its body
        for cache in (_c()["full"], _c()["rooms"]):
            for key in [k for k in cache if k[0] == cid]:
                cache.pop(key, None)  # a slot (and budget) came back
        return response

    return retrying()(attempt)
