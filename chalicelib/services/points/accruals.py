"""Accruals (SPEC 2.3): an order's points, its preview, the referral bonus of a first purchase.
The order record is the accrual's own record: a replay answers from it."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Optional

from chalicelib import clock, observability
from chalicelib.domain.hashing import canonical_hash
from chalicelib.domain import earning
from chalicelib.domain.member import Member
from chalicelib.domain.months import month_of
from chalicelib.domain.tiers import apply_upgrade, prune_buckets, qualifying_spend
from chalicelib.errors import (
    CurrencyMismatch,
    IdempotencyMismatch,
    LoyaltyError,
)
from chalicelib.services import members, program
from chalicelib.store import members as store
from chalicelib.store import operations
from chalicelib.services.uow import retry
from chalicelib.services.points.change import Change, _active_member, balance, record_tier_change


# --- accruals -------------------------------------------------------------------------

@dataclass
class AccrualPlan:
    points: int
    breakdown: list
    pending: bool
    release_at: Optional[datetime]
    tier_change: Optional[dict]
    tier_after: str


def _order_lines(body) -> tuple:
    if body.items:
        return tuple(earning.Line(i.category, i.amount, i.sku, getattr(i, "brand", None)) for i in body.items)
    return (earning.Line(None, body.total_amount),)


def _t(values) -> Optional[tuple]:
    return tuple(values) if values else None


def _promos(settings) -> list:
    return [earning.Promo(p.promotion_id, p.starts_at, p.ends_at,
                          Decimal(p.multiplier) if p.multiplier is not None else None,
                          p.bonus_points, _t(p.categories), _t(p.tiers), p.first_purchase_only,
                          p.birthday_month_only, skus=_t(p.skus), brands=_t(p.brands), channels=_t(p.channels),
                          stores=_t(p.stores), min_order_amount=p.min_order_amount)
            for p in settings.promotions]


def order_context(row: Member, body, tier, occurred: datetime, first_purchase: bool) -> earning.OrderContext:
    """The facts the earning rules judge an order by (the simulator builds the same)."""
    birthday = row.profile.get("birthday")
    return earning.OrderContext(
        lines=_order_lines(body), occurred_at=occurred, tier_id=tier.tier_id, tier_multiplier=tier.multiplier,
        first_purchase=first_purchase, birthday_month=int(birthday[:2]) if birthday else None,
        channel=body.channel, store_id=getattr(body, "store_id", None), total_amount=body.total_amount)


def earn_for(settings, ctx: earning.OrderContext, cash_share: Fraction = Fraction(1),
             cap_room: Optional[int] = None) -> earning.Earning:
    """An order's points under `settings` (today's, or a candidate's in the simulator)."""
    return earning.points_for_order(
        ctx, rate_points=settings.base_rate.points, rate_per_amount=settings.base_rate.per_amount,
        category_multipliers=settings.category_multipliers, promotions=_promos(settings),
        max_points_per_order=settings.max_points_per_order, cash_share=cash_share, cap_room=cap_room)


def _cap_room(row: Member, settings, now: datetime) -> Optional[int]:
    caps = settings.earning_caps
    return earning.cap_room(row.earned, now.date().isoformat(), month_of(now),
                            caps.per_member_per_day, caps.per_member_per_month)


def _count_earned(row: Member, now: datetime, points: int) -> None:
    """Earning-cap counters, on the member item: its version condition in this write's own
    transaction makes them exact under concurrent writes (docs/RULES.md)."""
    if points > 0:
        row.earned = earning.count_earned(row.earned, now.date().isoformat(), month_of(now), points)


def _check_currency(body, settings) -> None:
    if body.currency != settings.currency:
        raise CurrencyMismatch(expected=settings.currency, got=body.currency)


def _plan_accrual(row: Member, body, now: datetime, apply: bool,
                  points_paid: int = 0) -> AccrualPlan:
    settings = program.settings()
    # Points pay part of the order: unless the program says otherwise, only the cash part earns.
    cash_share = Fraction(1)
    if points_paid and body.total_amount and not settings.earn_on_points_paid:
        cash = max(body.total_amount - points_paid * settings.point_value, 0)
        cash_share = Fraction(cash, body.total_amount)
    tiers = program.tiers()
    occurred = body.occurred_at or now
    tier = program.tier_by_id(row.tier.tier_id) or tiers[0]
    ctx = order_context(row, body, tier, occurred, row.orders.count == 0)
    result = earn_for(settings, ctx, cash_share, _cap_room(row, settings, now))
    if apply:
        _count_earned(row, now, result.points)
    release_at = occurred + timedelta(days=settings.pending_days) if settings.pending_days else None
    pending = bool(release_at and release_at > now and result.points > 0)
    # Tier upgrade: on a copy unless applying, so a preview changes nothing.
    spend = dict(row.spend)
    month = month_of(occurred)
    spend[month] = int(spend.get(month, 0)) + body.total_amount
    state = row.tier if apply else dataclasses.replace(row.tier)
    qualifying = qualifying_spend(spend, month_of(now), settings.tier_window_months)
    change = apply_upgrade(state, qualifying, tiers, now, settings.tier_retention_months)
    if apply:
        row.spend = prune_buckets(spend, month_of(now), max(settings.tier_window_months, 13))
    return AccrualPlan(result.points, result.breakdown, pending, release_at, change, state.tier_id)


def preview(member_id: str, body) -> dict:
    """The accrual's computation with nothing written (checkout's "you will earn N points")."""
    now = clock.now()
    row = _active_member(member_id)
    _check_currency(body, program.settings())
    plan = _plan_accrual(row, body, now, apply=False)
    return {"points_earned": plan.points, "pending": plan.points if plan.pending else 0,
            "breakdown": plan.breakdown, "tier_after": plan.tier_after}


def _order_answer(order, member_id: str, req_hash: str) -> dict:
    """A stored order's response, when it is this accrual's (else IDEMPOTENCY_MISMATCH)."""
    if order.member_id != member_id or order.request_hash != req_hash:
        raise IdempotencyMismatch(order_id=order.order_id)
    return order.response


def _stored_order(order_id: str, member_id: str, req_hash: str) -> Optional[dict]:
    """The stored response of an accrual of this order, None when there is none."""
    order = operations.get_order(order_id)
    return _order_answer(order, member_id, req_hash) if order is not None else None


def _hashed_body(body) -> dict:
    """The accrual body as its idempotency hash sees it: the fields added later (`store_id`,
    an item's `brand`) count only when sent, so an order accrued before they existed still
    replays."""
    d = body.model_dump(mode="json")
    if d.get("store_id") is None:
        d.pop("store_id", None)
    for item in d.get("items") or []:
        if item.get("brand") is None:
            item.pop("brand", None)
    return d


def accrue(member_id: str, body, actor: str) -> tuple[int, dict]:
    """Credit an order's points (201), or replay the stored response (200)."""
    req_hash = canonical_hash(_hashed_body(body))

    def refused(err: LoyaltyError) -> tuple[int, dict]:
        # A replay gets its original answer even when a rule would now refuse the order
        # (member suspended since, currency setting changed): it was credited already.
        stored = _stored_order(body.order_id, member_id, req_hash)
        if stored is None:
            raise err
        return 200, stored

    try:
        _check_currency(body, program.settings())
    except CurrencyMismatch as err:
        return refused(err)

    def attempt():
        now = clock.now()
        row = members.require(member_id)
        try:
            members.require_active(row)
        except LoyaltyError as err:
            return refused(err)
        ch = Change.begin(row, now)
        occurred = body.occurred_at or now
        paid, paid_lots, hold_ops = 0, {}, []
        if body.points_payment is not None:
            from chalicelib.services import holds

            try:
                paid, paid_lots, hold_ops = holds.pay_with_hold(ch, body.points_payment.hold_id, body.order_id,
                                                                actor, now)
            except LoyaltyError as err:
                return refused(err)
        plan = _plan_accrual(row, body, now, apply=True, points_paid=paid)
        ch.wallet.earn(plan.points, month_of(occurred), order_id=body.order_id,
                       release_at=plan.release_at, now=now)
        first_purchase = row.orders.record(occurred, now)  # bounded statistics (domain/member.py)
        if plan.points:
            ch.entry("earn", plan.points, reference={"order_id": body.order_id}, actor=actor,
                     occurred_at=occurred, note="pending" if plan.pending else None)
        referrer = _referral_bonus(ch, first_purchase, body.order_id, occurred, now) if first_purchase else None
        if plan.tier_change:
            record_tier_change(ch, plan.tier_change, now, f"order:{body.order_id}")
        response = {
            "order_id": body.order_id,
            "points_earned": plan.points,
            "pending": plan.points if plan.pending else 0,
            "breakdown": plan.breakdown,
            "balance": balance(ch.wallet),
            "tier_change": plan.tier_change,
            "points_paid": paid,
        }
        paid_data = {"points_paid": paid, "paid_lots": paid_lots, "points_returned": 0,
                     "hold_id": body.points_payment.hold_id} if paid else {}
        order = operations.new_order_op(body.order_id, member_id, req_hash, response, {
            "total_amount": body.total_amount, "currency": body.currency, "occurred_at": clock.iso(occurred),
            "month": month_of(occurred), "points": plan.points, "refunded_amount": 0, "reversed_points": 0,
            **_simulation_facts(body), **paid_data})
        uow = ch.unit_of_work(own_record=True)
        order_index = uow.add(order, anchor=operations.order_anchor())
        uow.extend(hold_ops)
        if referrer is not None:  # the referrer's bonus, with its own points.earned event
            uow.extend(referrer.write_ops())
            uow.publish_events(referrer.domain_events())
        replayed = uow.commit_or_replay(order_index, lambda: operations.get_order(body.order_id),
                                        lambda order: (200, _order_answer(order, member_id, req_hash)))
        if replayed is not None:
            return replayed
        observability.count("Accruals")
        observability.count("PointsEarned", plan.points)
        return 201, response

    return retry(attempt)


def _simulation_facts(body) -> dict:
    """What the settings simulator needs to judge this order again (SPEC 4.5): its lines,
    channel and store."""
    out: dict = {}
    if body.items:
        out["lines"] = [[i.sku, i.category, getattr(i, "brand", None), i.amount] for i in body.items]
    if body.channel:
        out["channel"] = body.channel
    if getattr(body, "store_id", None):
        out["store_id"] = body.store_id
    return out


def _referral_bonus(ch: Change, first_purchase: bool, order_id: str, occurred: datetime,
                    now: datetime) -> Optional[Change]:
    """On the referred member's first accrual both members get the referral points, once.
    Returns the referrer's change (None when there is none to pay)."""
    referrer_id = ch.row.profile.get("referred_by")
    rule = program.settings().activity_rules.get("referral")
    if not (first_purchase and referrer_id and rule and rule.points and not ch.row.referral_paid):
        return None
    ch.row.referral_paid = True
    ch.wallet.earn(rule.points, month_of(now))
    ch.entry("bonus", rule.points, reference={"order_id": order_id}, actor="system", occurred_at=now,
             note="referral: referred member's first purchase")
    referrer = store.get(referrer_id)
    if referrer is None or referrer.status != "active":
        return None
    rch = Change.begin(referrer, now)
    rch.wallet.earn(rule.points, month_of(now))
    rch.entry("bonus", rule.points, reference={"order_id": order_id}, actor="system", occurred_at=now,
              note=f"referral: {ch.row.member_id} made a first purchase")
    return rch
