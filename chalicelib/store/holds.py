"""PynamoDB model of point holds (SPEC 2.14). Key formats live here.

- holds:      hold_id → the hold. While it is `held`, the member item's wallet carries it too
              (its points and the lots they came from): a capture or a release reads only the
              member and writes both items in one transaction. `by-member` lists a member's
              holds newest first.
"""
from __future__ import annotations

from typing import Optional

from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex

from chalicelib.store import tx
from chalicelib.store.base import Record


class HoldsByMember(GlobalSecondaryIndex):
    class Meta:
        index_name = "by-member"
        projection = AllProjection()

    member_id = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class HoldRecord(Record):
    class Meta(Record.Meta):
        resource = "holds"

    hold_id = UnicodeAttribute(hash_key=True)
    member_id = UnicodeAttribute()
    created_at = UnicodeAttribute()  # sortable timestamp
    status = UnicodeAttribute()  # held | captured | released
    request_hash = UnicodeAttribute()
    data = JSONAttribute()  # order_id, points, amount, created_at, expires_at (ISO), lots
    response = JSONAttribute()  # the create answer (a replay returns it)
    captured_points = NumberAttribute(null=True)
    spent_lots = JSONAttribute(null=True)
    closed_by = UnicodeAttribute(null=True)  # capture | release | expiry | accrual
    closed_at = UnicodeAttribute(null=True)
    close_request = JSONAttribute(null=True)  # the capture body that closed it
    paid_order_id = UnicodeAttribute(null=True)  # the accrual this hold paid for
    by_member = HoldsByMember()


MODELS = [HoldRecord]


def get_hold(hold_id: str) -> Optional[HoldRecord]:
    return HoldRecord.find(hold_id)


def put_hold_op(hold_id: str, member_id: str, created_sortable: str, request_hash: str, data: dict,
                response: dict) -> tx.Op:
    rec = HoldRecord(hold_id, member_id=member_id, created_at=created_sortable, status="held",
                     request_hash=request_hash, data=data, response=response)
    return tx.put(rec, HoldRecord.hold_id.does_not_exist())


def close_hold_op(hold_id: str, member_id: str, status: str, *, closed_by: str, closed_at: str,
                  captured_points: int = 0, spent_lots: Optional[dict] = None,
                  close_request: Optional[dict] = None, paid_order_id: Optional[str] = None) -> tx.Op:
    """`held` → captured/released, conditional on the hold still being held by this member."""
    actions = [HoldRecord.status.set(status), HoldRecord.closed_by.set(closed_by),
               HoldRecord.closed_at.set(closed_at), HoldRecord.captured_points.set(captured_points),
               HoldRecord.spent_lots.set(spent_lots or {})]
    if close_request is not None:
        actions.append(HoldRecord.close_request.set(close_request))
    if paid_order_id is not None:
        actions.append(HoldRecord.paid_order_id.set(paid_order_id))
    return tx.update(HoldRecord(hold_id), actions,
                     (HoldRecord.status == "held") & (HoldRecord.member_id == member_id))


def mark_paid_op(hold_id: str, member_id: str, order_id: str) -> tx.Op:
    """A hold captured earlier pays for one order, once."""
    return tx.update(HoldRecord(hold_id), [HoldRecord.paid_order_id.set(order_id)],
                     (HoldRecord.status == "captured") & (HoldRecord.member_id == member_id)
                     & HoldRecord.paid_order_id.does_not_exist())


def holds_page(member_id: str, limit: int, cursor: Optional[dict]) -> tuple[list, Optional[dict]]:
    result = HoldRecord.by_member.query(member_id, scan_index_forward=False, limit=limit, last_evaluated_key=cursor)
    return list(result), result.last_evaluated_key


def anchor() -> type:
    """The hold as a unit of work's anchor (the write's own record)."""
    return HoldRecord
