"""The settings simulator (SPEC 4.5, docs/RULES.md): the points orders would earn under
today's settings and under a candidate, side by side. Read-only: it reads the settings,
the members (one BatchGetItem per 100) and, for `last_days`, a bounded scan of the orders
table; it never writes.

Both sides are computed the same way, so the difference is the candidate's alone:
- each order is judged with its member's current tier, birthday and first-purchase fact
  (a sample order is a first purchase when the member has no order yet and it is their
  first in the sample; a recorded one when it was the member's first order);
- earning caps are counted within the simulated orders, per member and UTC day/month of
  each order's `occurred_at`, in time order, from zero;
- the cash share of an order paid partly with points follows each side's
  `earn_on_points_paid` and `point_value`.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Optional

from chalicelib import clock
from chalicelib.domain import earning
from chalicelib.domain.member import Member
from chalicelib.domain.months import month_of
from chalicelib.schemas.simulate import MAX_ORDERS
from chalicelib.services import points, program
from chalicelib.store import members as member_store
from chalicelib.store import operations

MAX_SCANNED = 5000  # order items read at most for `last_days` (the table has no time index)
SCAN_PAGE = 500


@dataclass
class _Order:
    """What the earning rules need of an order, from a request body or a recorded order."""

    order_id: str
    member_id: str
    source: str
    total_amount: int
    occurred_at: datetime
    items: Optional[list]
    channel: Optional[str]
    store_id: Optional[str]
    points_paid: int = 0
    first_purchase: Optional[bool] = None  # recorded orders know it


@dataclass
class _Item:
    sku: str
    category: Optional[str]
    brand: Optional[str]
    amount: int


def _from_body(o, now: datetime) -> _Order:
    items = [_Item(i.sku, i.category, i.brand, i.amount) for i in o.items] if o.items else None
    return _Order(o.order_id, o.member_id, "sample", o.total_amount, o.occurred_at or now, items, o.channel,
                  o.store_id)


def _from_record(rec) -> Optional[_Order]:
    d = rec.data or {}
    try:
        occurred = clock.parse_instant(d["occurred_at"])
        total = int(d["total_amount"])
    except (KeyError, TypeError, ValueError):
        return None
    lines = d.get("lines")
    items = [_Item(s, c, b, int(a)) for s, c, b, a in lines] if lines else None
    return _Order(rec.order_id, rec.member_id, "recorded", total, occurred, items, d.get("channel"),
                  d.get("store_id"), int(d.get("points_paid") or 0))


def recent_orders(days: int, now: datetime) -> tuple[list[_Order], bool]:
    """Orders that occurred in the last `days` days: a scan of at most MAX_SCANNED items and at
    most MAX_ORDERS results. Returns them and whether a bound cut the read short."""
    since = now - timedelta(days=days)
    found: list[_Order] = []
    scanned = 0
    result = operations.scan_orders(SCAN_PAGE, MAX_SCANNED)
    for rec in result:
        scanned += 1
        order = _from_record(rec)
        if order is not None and since <= order.occurred_at <= now:
            found.append(order)
            if len(found) >= MAX_ORDERS:
                return found, True
    truncated = scanned >= MAX_SCANNED and result.last_evaluated_key is not None
    return found, truncated


def _members(ids: set) -> dict[str, Member]:
    return member_store.batch_get(ids, consistent=False)


class _Side:
    """One side of the comparison: a settings object and its own cap counters."""

    def __init__(self, settings) -> None:
        self.settings = settings
        self.counters: dict[str, dict] = {}
        self.total = 0

    def earn(self, row: Member, order: _Order, first: bool) -> earning.Earning:
        s = self.settings
        tier = program.tier_by_id(row.tier_id) or program.tiers()[0]
        ctx = points.order_context(row, order, tier, order.occurred_at, first)
        share = Fraction(1)
        if order.points_paid and order.total_amount and not s.earn_on_points_paid:
            share = Fraction(max(order.total_amount - order.points_paid * s.point_value, 0), order.total_amount)
        day, month = order.occurred_at.date().isoformat(), month_of(order.occurred_at)
        caps = s.earning_caps
        room = earning.cap_room(self.counters.get(row.member_id), day, month, caps.per_member_per_day,
                                caps.per_member_per_month)
        result = points.earn_for(s, ctx, share, room)
        if room is not None:
            self.counters[row.member_id] = earning.count_earned(self.counters.get(row.member_id), day, month,
                                                                result.points)
        self.total += result.points
        return result


def simulate(body) -> dict:
    """`{orders: [{order_id, member_id, source, current, candidate, breakdown}], totals, skipped,
    truncated}`; nothing is written."""
    now = clock.now()
    orders = [_from_body(o, now) for o in body.orders or []]
    truncated = False
    if body.last_days is not None:
        recorded, truncated = recent_orders(body.last_days, now)
        given = {o.order_id for o in orders}
        orders += [o for o in recorded if o.order_id not in given]
    rows = _members({o.member_id for o in orders}) if orders else {}
    current, candidate = _Side(program.settings()), _Side(body.settings)
    out, skipped = [], []
    seen_members: set = set()
    for order in sorted(orders, key=lambda o: (o.occurred_at, o.order_id)):
        row = rows.get(order.member_id)
        if row is None:
            skipped.append({"order_id": order.order_id, "member_id": order.member_id, "reason": "MEMBER_NOT_FOUND"})
            continue
        if row.status != "active" and order.source == "sample":  # it could not earn (SPEC 2.2)
            skipped.append({"order_id": order.order_id, "member_id": order.member_id, "reason": "MEMBER_INACTIVE"})
            continue
        if order.source == "recorded":
            first = row.orders.first_at == clock.iso(order.occurred_at)
        else:
            first = row.orders.count == 0 and order.member_id not in seen_members
        seen_members.add(order.member_id)
        a, b = current.earn(row, order, first), candidate.earn(row, order, first)
        out.append({"order_id": order.order_id, "member_id": order.member_id, "source": order.source,
                    "current": a.points, "candidate": b.points,
                    "breakdown": {"current": a.breakdown, "candidate": b.breakdown}})
    return {"orders": out, "totals": {"current": current.total, "candidate": candidate.total},
            "skipped": skipped, "truncated": truncated}
