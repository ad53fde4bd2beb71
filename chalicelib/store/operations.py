"""The points operations' own records: orders (an accrual's), the records of refunds,
activities, adjustments and the other member operations that carry their own id, and the
tier history. Each is written in its operation's transaction (the unit of work's anchor),
so a replay finds it and answers from it; its key format lives here only.
"""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from chalicelib import clock
from chalicelib.store import tx
from chalicelib.store.models import IdempotencyRecord, OrderRecord, TierHistoryRecord


def _record_key(kind: str, op_id: str) -> str:
    return f"{kind}#{op_id}"


# --- orders ------------------------------------------------------------------------------

def get_order(order_id: str) -> Optional[OrderRecord]:
    return OrderRecord.find(order_id)


def order_ref(order_id: str) -> tuple:
    """The order's key for `tx.get_many`."""
    return (OrderRecord, order_id)


def new_order_op(order_id: str, member_id: str, request_hash: str, response: dict, data: dict) -> tx.Op:
    """An accrual's order, only if its id is new (a replay fails this condition)."""
    item = OrderRecord.to_item(order_id=order_id, member_id=member_id, request_hash=request_hash,
                               response=response, data=data)
    return tx.put_item(OrderRecord, item, OrderRecord.order_id.does_not_exist())


def order_update_op(order: OrderRecord, data: dict) -> tx.Op:
    """The order with new `data` (a refund's running totals), conditional on the version read."""
    new = OrderRecord(order.order_id, member_id=order.member_id, version=int(order.version) + 1,
                      request_hash=order.request_hash, data=data, response=order.response)
    return tx.put(new, OrderRecord.version == order.version)


def order_anchor() -> type:
    return OrderRecord


# --- operation records (refund, activity, adjustment, ...) ---------------------------------

def key(kind: str, op_id: str) -> tuple:
    """An operation record's key for `tx.get_many`."""
    return (IdempotencyRecord, _record_key(kind, op_id))


def get_record(kind: str, op_id: str) -> Optional[IdempotencyRecord]:
    return IdempotencyRecord.find(_record_key(kind, op_id))


def record_op(kind: str, op_id: str, member_id: Optional[str], request_hash: str, response: dict,
              status_code: int = 201) -> tx.Op:
    """The operation's record with its answer, only if its id is new."""
    rec = IdempotencyRecord(_record_key(kind, op_id), member_id=member_id, request_hash=request_hash,
                            status_code=status_code, response=response)
    return tx.put(rec, IdempotencyRecord.key.does_not_exist())


def record_anchor() -> type:
    return IdempotencyRecord


# --- tier history ---------------------------------------------------------------------------

def tier_history_op(member_id: str, at: datetime, reason: str, change: dict) -> tx.Op:
    return tx.put(TierHistoryRecord(member_id, f"{clock.sortable(at)}#{reason}", change=change))


def scan_orders(page_size: int, limit: int):
    """Up to `limit` orders in table order (the settings simulator's `last_days`: the table has
    no time index); the result's `last_evaluated_key` says whether more remain."""
    return OrderRecord.scan(page_size=page_size, limit=limit)
