"""Points for an order (SPEC 2.3), with a breakdown that adds up exactly.

    eligible = Σ line.amount × category_multiplier(line.category)   (or total_amount)
    points   = floor(eligible × rate × tier_multiplier × Π promotion multipliers)
               + Σ promotion bonus_points, capped by max_points_per_order

A promotion limited to `categories` multiplies only those lines, and its bonus
needs a line in one of them. Each multiplier's contribution is the increase of
the floored total it causes, in order, so the breakdown sums to the result.
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


@dataclass(frozen=True)
class OrderContext:
    lines: tuple  # of Line
    occurred_at: datetime
    tier_id: str
    tier_multiplier: Decimal
    first_purchase: bool
    birthday_month: Optional[int] = None  # the member's birthday month


@dataclass
class Earning:
    points: int
    breakdown: list = field(default_factory=list)


def promotion_applies(p: Promo, ctx: OrderContext) -> bool:
    if not (p.starts_at <= ctx.occurred_at < p.ends_at):
        return False
    if p.tiers and ctx.tier_id not in p.tiers:
        return False
    if p.first_purchase_only and not ctx.first_purchase:
        return False
    if p.birthday_month_only and ctx.birthday_month != ctx.occurred_at.month:
        return False
    if p.categories and not any(line.category in p.categories for line in ctx.lines):
        return False
    return True


@functools.lru_cache(maxsize=256)
def _exact(value) -> Fraction:
    """A multiplier (Decimal, int or its string) as an exact fraction; a program has few."""
    return Fraction(Decimal(str(value)))


def points_for_order(ctx: OrderContext, *, rate_points: int, rate_per_amount: int,
                     category_multipliers: dict, promotions: Sequence[Promo],
                     max_points_per_order: Optional[int] = None, cash_share: Fraction = Fraction(1)) -> Earning:
    """`cash_share`: the part of the order paid in money (SPEC 2.14), applied to every line."""
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
                    if p.multiplier is not None and (not p.categories or line.category in p.categories):
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
    if max_points_per_order is not None and running > max_points_per_order:
        breakdown.append({"rule": "cap", "points": max_points_per_order - running})
        running = max_points_per_order
    return Earning(points=running, breakdown=breakdown)


def reversal_for_refund(order_points: int, order_total: int, refunded_before: int,
                        refund_amount: int) -> int:
    """Points to reverse now so that a cumulative refund reverses exactly its share (SPEC 2.5)."""
    if order_total <= 0:
        return 0
    before = (order_points * refunded_before) // order_total
    after = (order_points * (refunded_before + refund_amount)) // order_total
    return after - before
