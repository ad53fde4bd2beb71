"""Points for an order (SPEC 2.3), with a breakdown that adds up exactly.

    eligible = Σ line.amount × category_multiplier(line.category)   (or total_amount)
    points   = floor(eligible × rate × tier_multiplier × Π promotion multipliers)
               + Σ promotion bonus_points, capped by max_points_per_order

Promotions (SPEC 2.3, 2.20) have two kinds of conditions:
- item conditions (`categories`, `skus`, `brands`) choose the lines a multiplier
  applies to (a line must satisfy every condition given); a bonus needs one such line;
- order conditions (`channels`, `stores`, `min_order_amount`, `tiers`,
  `first_purchase_only`, `birthday_month_only`) and the time window decide whether
  the promotion is active at all.
Each multiplier's contribution is the increase of the floored total it causes, in
order, so the breakdown sums to the result. The per-order cap and the member's
earning-cap room (`cap_room`) become one `cap` line.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Optional, Sequence


@dataclass(frozen=True)
class Line:
    category: Optional[str]
    amount: int
    sku: Optional[str] = None
    brand: Optional[str] = None


@dataclass(frozen=True)
class Promo:
    promotion_id: str
    starts_at: datetime
    ends_at: datetime
    multiplier: Optional[Decimal] = None
    bonus_points: Optional[int] = None
    categories: Optional[tuple] = None
    tiers: Optional[tuple] = None
    first_purchase_only: bool = False
    birthday_month_only: bool = False
    skus: Optional[tuple] = None
    brands: Optional[tuple] = None
    channels: Optional[tuple] = None
    stores: Optional[tuple] = None
    min_order_amount: Optional[int] = None

    @property
    def has_item_conditions(self) -> bool:
        return bool(self.categories or self.skus or self.brands)

    def selects(self, line: Line) -> bool:
        """Does this line satisfy every item condition the promotion names?"""
        return ((not self.categories or line.category in self.categories)
                and (not self.skus or line.sku in self.skus)
                and (not self.brands or line.brand in self.brands))


@dataclass(frozen=True)
class OrderContext:
    lines: tuple  # of Line
    occurred_at: datetime
    tier_id: str
    tier_multiplier: Decimal
    first_purchase: bool
    birthday_month: Optional[int] = None  # the member's birthday month
    channel: Optional[str] = None
    store_id: Optional[str] = None
    total_amount: Optional[int] = None  # the order's total (min_order_amount); Σ lines when None


@dataclass
class Earning:
    points: int
    breakdown: list = field(default_factory=list)


def order_conditions_met(p: Promo, ctx: OrderContext) -> bool:
    """The window and the order conditions: is the promotion active for this order at all?"""
    if not (p.starts_at <= ctx.occurred_at < p.ends_at):
        return False
    if p.tiers and ctx.tier_id not in p.tiers:
        return False
    if p.first_purchase_only and not ctx.first_purchase:
        return False
    if p.birthday_month_only and ctx.birthday_month != ctx.occurred_at.month:
        return False
    if p.channels and ctx.channel not in p.channels:
        return False
    if p.stores and ctx.store_id not in p.stores:
        return False
    if p.min_order_amount is not None:
        total = ctx.total_amount if ctx.total_amount is not None else sum(ln.amount for ln in ctx.lines)
        if total < p.min_order_amount:
            return False
    return True


def promotion_applies(p: Promo, ctx: OrderContext) -> bool:
    """Active, and (when it names item conditions) the order has a line it selects."""
    if not order_conditions_met(p, ctx):
        return False
    if p.has_item_conditions and not any(p.selects(line) for line in ctx.lines):
        return False
    return True


@functools.lru_cache(maxsize=256)
def _exact(value) -> Fraction:
    """A multiplier (Decimal, int or its string) as an exact fraction; a program has few."""
    return Fraction(Decimal(str(value)))


def points_for_order(ctx: OrderContext, *, rate_points: int, rate_per_amount: int,
                     category_multipliers: dict, promotions: Sequence[Promo],
                     max_points_per_order: Optional[int] = None, cash_share: Fraction = Fraction(1),
                     cap_room: Optional[int] = None) -> Earning:
    """`cash_share`: the part of the order paid in money (SPEC 2.14), applied to every line.
    `cap_room`: the points the member may still earn under the earning caps (SPEC 2.20)."""
    # Fractions keep every step exact; only the final result is floored.
    rate = Fraction(rate_points, rate_per_amount)
    weighted = [(line, line.amount * _exact(category_multipliers.get(line.category, 1)) * cash_share)
                for line in ctx.lines]
    eligible = sum(amount for _, amount in weighted)
    active = [p for p in promotions if promotion_applies(p, ctx)]

    def total(tier: Decimal, promos: Sequence[Promo]) -> int:
        acc = eligible
        if promos:
            acc = Fraction(0)
            for line, amount in weighted:
                for p in promos:
                    if p.multiplier is not None and p.selects(line):
                        amount *= _exact(p.multiplier)
                acc += amount
        return math.floor(acc * rate * _exact(tier))

    breakdown = []
    base = total(Decimal(1), [])
    breakdown.append({"rule": "base", "points": base})
    running = total(ctx.tier_multiplier, [])
    if running != base:
        breakdown.append({"rule": f"tier:{ctx.tier_id}", "points": running - base})
    applied: list = []
    for p in active:
        if p.multiplier is None:
            continue
        applied.append(p)
        after = total(ctx.tier_multiplier, applied)
        breakdown.append({"rule": f"promotion:{p.promotion_id}", "points": after - running})
        running = after
    for p in active:
        if p.bonus_points:
            breakdown.append({"rule": f"promotion_bonus:{p.promotion_id}", "points": p.bonus_points})
            running += p.bonus_points
    limit = tightest(max_points_per_order, cap_room)
    if limit is not None and running > limit:
        breakdown.append({"rule": "cap", "points": limit - running})
        running = limit
    return Earning(points=running, breakdown=breakdown)


def tightest(*limits: Optional[int]) -> Optional[int]:
    """The smallest of the limits that are set (None when none is); never below 0."""
    set_ = [max(int(x), 0) for x in limits if x is not None]
    return min(set_) if set_ else None


# --- earning caps (SPEC 2.20) ------------------------------------------------------------

CAP_DAYS_KEPT = 3  # per-day counters kept (today, and a little slack for a clock moved back)
CAP_MONTHS_KEPT = 2


def cap_room(counters: Optional[dict], day: str, month: str, per_day: Optional[int],
             per_month: Optional[int]) -> Optional[int]:
    """Points the member may still earn on `day` (YYYY-MM-DD) in `month` (YYYY-MM); None
    when no cap is set. `counters`: {"days": {day: points}, "months": {month: points}}."""
    counters = counters or {}
    room_day = None if per_day is None else per_day - int((counters.get("days") or {}).get(day, 0))
    room_month = None if per_month is None else per_month - int((counters.get("months") or {}).get(month, 0))
    return tightest(room_day, room_month)


def count_earned(counters: Optional[dict], day: str, month: str, points: int) -> dict:
    """The counters after earning `points` on `day`; only the newest days and months are kept."""
    counters = counters or {}
    days = dict(counters.get("days") or {})
    months = dict(counters.get("months") or {})
    days[day] = int(days.get(day, 0)) + points
    months[month] = int(months.get(month, 0)) + points
    return {"days": dict(sorted(days.items())[-CAP_DAYS_KEPT:]),
            "months": dict(sorted(months.items())[-CAP_MONTHS_KEPT:])}


def reversal_for_refund(order_points: int, order_total: int, refunded_before: int,
                        refund_amount: int) -> int:
    """Points to reverse now so that a cumulative refund reverses exactly its share (SPEC 2.5)."""
    if order_total <= 0:
        return 0
    before = (order_points * refunded_before) // order_total
    after = (order_points * (refunded_before + refund_amount)) // order_total
    return after - before
