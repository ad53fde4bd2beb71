"""Refunds (SPEC 2.5): an order's points reversed in proportion to the refunded amount, and
the points that paid for it returned to their own lots."""
from __future__ import annotations


from chalicelib import clock
from chalicelib.domain.hashing import canonical_hash
from chalicelib.domain import earning
from chalicelib.domain.months import month_of
from chalicelib.domain.wallet import slice_lots
from chalicelib.errors import (
    IdempotencyMismatch,
    MemberNotFound,
    OrderNotFound,
    RefundExceedsOrder,
)
from chalicelib.store import members as store
from chalicelib.store import operations, tx
from chalicelib.services.uow import retry
from chalicelib.store.base import Conflict
from chalicelib.services.points.change import Change, balance


# --- refunds --------------------------------------------------------------------------

def refund(member_id: str, body, actor: str) -> tuple[int, dict]:
    """Reverse an order's points in proportion to the cumulative refunded amount."""
    req_hash = canonical_hash({"member_id": member_id, **body.model_dump(mode="json")})

    def attempt():
        now = clock.now()
        rec, order, prior = tx.get_many(store.key(member_id), operations.order_ref(body.order_id),
                                        operations.key("refund", body.refund_id))
        if prior is not None:
            if prior.request_hash != req_hash:
                raise IdempotencyMismatch(refund_id=body.refund_id)
            return 200, prior.response
        if rec is None:
            raise MemberNotFound(member_id=member_id)
        row = store.from_record(rec)
        if row.merged_into or (order is not None and order.member_id != member_id):
            from chalicelib.services import merge  # a merged member's orders reach the survivor (SPEC 2.15)

            row = merge.owner_for_order(row, order.member_id if order is not None else None)
        if order is None or order.member_id not in (member_id, *row.merged_from, row.member_id):
            raise OrderNotFound(order_id=body.order_id)
        data = dict(order.data)
        total, refunded = int(data["total_amount"]), int(data.get("refunded_amount", 0))
        if refunded + body.amount > total:
            raise RefundExceedsOrder(order_total=total, refunded_so_far=refunded, requested=body.amount)
        reverse_now = earning.reversal_for_refund(int(data["points"]), total, refunded, body.amount)
        ch = Change.begin(row, now)
        ch.wallet.reverse(reverse_now, body.order_id)
        spend = row.spend
        if data["month"] in spend:  # refunds lower the order month's qualifying spend
            spend[data["month"]] = int(spend[data["month"]]) - body.amount
        if reverse_now:
            ch.entry("reversal", -reverse_now, reference={"order_id": body.order_id, "refund_id": body.refund_id},
                     actor=actor, occurred_at=now)
        # Points that paid for the order come back in the same proportion, to their own lots.
        paid, returned_before = int(data.get("points_paid", 0)), int(data.get("points_returned", 0))
        returned_after = (paid * (refunded + body.amount)) // total if total else 0
        return_now = returned_after - returned_before
        if return_now:
            ch.wallet.give_back(slice_lots(data.get("paid_lots") or {}, returned_before, returned_after)
                                or {month_of(now): return_now})
            ch.entry("refund_spend", return_now, reference={"order_id": body.order_id, "refund_id": body.refund_id,
                                                            "hold_id": data.get("hold_id")},
                     actor=actor, occurred_at=now)
        response = {"refund_id": body.refund_id, "order_id": body.order_id, "points_reversed": reverse_now,
                    "points_returned": return_now, "balance": balance(ch.wallet)}
        data.update(refunded_amount=refunded + body.amount,
                    reversed_points=int(data.get("reversed_points", 0)) + reverse_now)
        if paid:
            data["points_returned"] = returned_after
        uow = ch.unit_of_work()
        uow.add(operations.order_update_op(order, data))
        uow.add(operations.record_op("refund", body.refund_id, member_id, req_hash, response),
                anchor=operations.record_anchor())
        try:
            uow.commit()
        except tx.TxCancelled:
            raise Conflict()  # re-read: a replay is then answered from the stored record
        return 201, response

    return retry(attempt)
