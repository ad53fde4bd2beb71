"""Points mutations: accruals, refunds, activities, adjustments (SPEC 2.3–2.5).

Each is: read the member (one GetItem) → pure rules compute the new state, the
ledger entries and the response → one TransactWriteItems, conditional on the
member's version and on the operation's id being new → bounded jittered retry
on a version conflict. A failed id condition means a replay: the stored
response comes back with status 200, or IDEMPOTENCY_MISMATCH when the payload
differs.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Callable, Optional

from chalicelib import clock, messaging, observability
from chalicelib.domain.hashing import canonical_hash
from chalicelib.domain import earning, events
from chalicelib.domain.member import Member
from chalicelib.domain.months import month_of
from chalicelib.domain.tiers import apply_upgrade, prune_buckets, qualifying_spend
from chalicelib.domain.wallet import Wallet, slice_lots
from chalicelib.errors import (
    ActivityLimitReached,
    CurrencyMismatch,
    IdempotencyMismatch,
    LoyaltyError,
    MemberNotFound,
    OrderNotFound,
    RefundExceedsOrder,
    UnknownActivity,
)
from chalicelib.services import audit, members, program
from chalicelib.store import members as store
from chalicelib.store import operations, tx
from chalicelib.services.uow import UnitOfWork, retry
from chalicelib.store.base import Conflict


# --- the mutation frame ------------------------------------------------------------

@dataclass
class Change:
    """What one mutation of one member writes."""

    row: Member
    wallet: Wallet  # the member's own (row.wallet)
    entries: list = field(default_factory=list)
    ops: list = field(default_factory=list)
    messages: list = field(default_factory=list)
    events: list = field(default_factory=list)  # domain events besides the ledger's own
    lifetime_at_start: tuple = (0, 0)  # (earned, spent): did this change earn or spend?
    pending_at_start: int = 0  # as read, before maturation
    held_at_start: int = 0  # as read, before expired holds were released

    @classmethod
    def begin(cls, row: Member, now: datetime) -> "Change":
        wallet = row.wallet
        ch = cls(row, wallet, lifetime_at_start=(wallet.lifetime_earned, wallet.lifetime_spent),
                 pending_at_start=wallet.pending, held_at_start=wallet.held)
        wallet.mature(now)  # maturation happens on any write of the member
        ch.release_expired_holds(now)  # and so does the release of holds past their time
        return ch

    def release_expired_holds(self, now: datetime) -> int:
        """Release the holds past `expires_at` (no ledger entry: the points never left)."""
        from chalicelib.store import holds as hold_store

        released = self.wallet.release_expired(now)
        for h in released:
            self.ops.append(hold_store.close_hold_op(h["hold_id"], self.row.member_id, "released",
                                                     closed_by="expiry", closed_at=clock.iso(now)))
        return sum(h["points"] for h in released)

    def entry(self, type_: str, points: int, *, reference: dict, actor: str, occurred_at: datetime,
              note: Optional[str] = None) -> dict:
        """Append a ledger entry; call after the wallet holds the new balance."""
        seq = self.row.next_seq()
        now = clock.now()
        e = {
            "entry_id": f"le_{self.row.member_id}_{seq}",
            "member_id": self.row.member_id,
            "type": type_,
            "points": points,
            "balance_after": self.wallet.balance,
            "occurred_at": clock.iso(occurred_at),
            "recorded_at": clock.iso(now),
            "reference": reference,
            "actor": actor,
            "note": note,
        }
        self.entries.append((seq, e))
        return e

    def write_ops(self) -> list:
        earned, spent = self.lifetime_at_start
        if self.wallet.lifetime_earned > earned or self.wallet.lifetime_spent > spent:
            # the month of the last earning or spending: points_expiry_policy last_activity (SPEC 2.20)
            self.row.last_activity_month = month_of(clock.now())
        ops = [store.save_op(self.row)]
        ops += [store.ledger_op(self.row.member_id, seq, e) for seq, e in self.entries]
        ops += self.ops
        return ops

    def unit_of_work(self, own_record: bool = False) -> UnitOfWork:
        """A unit of work holding this change (member, ledger, extra ops) and its messages.
        `own_record`: the caller adds the operation's own record as the anchor, so the member
        item carries no commit token (40 bytes less in the item every accrual rewrites)."""
        uow = UnitOfWork()
        member_op, *rest = self.write_ops()
        uow.add(member_op, anchor=None if own_record else store.anchor())
        uow.extend(rest)
        uow.publish(self.messages)
        uow.publish_events(self.domain_events())
        return uow

    def domain_events(self) -> list:
        """A `points.*` event per ledger entry, then the others this change recorded, numbered
        by the member's new version (SPEC 2.16)."""
        now = balance(self.wallet)
        found = [events.for_ledger_entry(e, now) for _, e in self.entries] + self.events
        version = self.row.version + 1 if self.row.version is not None else 0
        return events.numbered(found, version)


def balance(wallet: Wallet) -> dict:
    return {"available": wallet.available, "pending": wallet.pending, "held": wallet.held}


def _active_member(member_id: str) -> Member:
    row = members.require(member_id)
    members.require_active(row)
    return row


def tier_change_message(row: Member, wallet: Wallet, change: dict, source_ref: str) -> dict:
    return messaging.compose(
        template="tier_changed", member_id=row.member_id, profile=row.profile,
        channel=messaging.transactional_channel(row.profile.get("consents")),
        variables={"points": wallet.available, "tier": change["to"], "previous_tier": change["from"]},
        source="tier_changed", period=source_ref)


def record_tier_change(ch: Change, change: dict, at: datetime, reason: str) -> None:
    ch.ops.append(operations.tier_history_op(ch.row.member_id, at, reason, {**change, "at": clock.iso(at),
                                                                            "reason": reason}))
    ch.messages.append(tier_change_message(ch.row, ch.wallet, change, f"{reason}@{clock.iso(at)}"))
    ch.events.append(events.envelope("tier.changed", f"{ch.row.member_id}|{reason}@{clock.iso(at)}",
                                     ch.row.member_id, clock.iso(clock.now()),
                                     {**change, "reason": reason, "at": clock.iso(at)}))


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


# --- refunds --------------------------------------------------------------------------

def refund(member_id: str, body, actor: str) -> tuple[int, dict]:
    """Reverse an order's points in proportion to the cumulative refunded amount."""
    req_hash = canonical_hash({"member_id": member_id, **body.model_dump(mode="json")})

    def attempt():
        now = clock.now()
        rec, order, prior = tx.get_many(store.key(member_id), operations.order_key(body.order_id),
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


# --- activities -----------------------------------------------------------------------

def _prior_response(kind: str, op_id: str, member_id: str, req_hash: str) -> Optional[dict]:
    """The stored response of an earlier request with this id, None when there is none;
    IDEMPOTENCY_MISMATCH when the id was used with another payload or member."""
    prior = operations.get_record(kind, op_id)
    if prior is None:
        return None
    if prior.request_hash != req_hash or prior.member_id != member_id:
        raise IdempotencyMismatch(key=op_id)
    return prior.response


def _idempotent_member_op(kind: str, op_id: str, member_id: str, req_hash: str,
                          build: Callable[[Change, datetime], dict], actor: str,
                          extra_ops: Callable[[], list] = lambda: []) -> tuple[int, dict]:
    """A member mutation made idempotent by its operation record, written in the same transaction."""

    def attempt():
        now = clock.now()
        row = members.require(member_id)
        ch = Change.begin(row, now)
        try:
            response = build(ch, now)
        except LoyaltyError:
            # A business rule says no (limit reached, member suspended since): when this is the
            # retry of a request that already succeeded, the client gets its original answer.
            prior = _prior_response(kind, op_id, member_id, req_hash)
            if prior is not None:
                return 200, prior
            raise
        uow = ch.unit_of_work()
        idem_index = uow.add(operations.record_op(kind, op_id, member_id, req_hash, response),
                             anchor=operations.record_anchor())
        uow.extend(extra_ops())
        replayed = uow.commit_or_replay(idem_index, lambda: _prior_response(kind, op_id, member_id, req_hash),
                                        lambda prior: (200, prior))
        return replayed or (201, response)

    return retry(attempt)


ACTIVITY_DAYS_KEPT = 35  # per-day activity counts kept per type (the newest days)


def record_activity(member_id: str, body, actor: str) -> tuple[int, dict]:
    """Points for a non-purchase activity, within its rule's per-day and total limits."""
    req_hash = canonical_hash({"member_id": member_id, **body.model_dump(mode="json")})

    def build(ch: Change, now: datetime) -> dict:
        rule = program.settings().activity_rules.get(body.type)
        if rule is None:
            raise UnknownActivity(type=body.type)
        members.require_active(ch.row)
        occurred = body.occurred_at or now
        day = occurred.date().isoformat()
        counts = ch.row.activities.setdefault(body.type, {"total": 0, "days": {}})
        days = dict(counts.get("days") or {})
        if rule.max_total is not None and counts["total"] >= rule.max_total:
            raise ActivityLimitReached(type=body.type, max_total=rule.max_total)
        if rule.max_per_day is not None:
            # Counts are kept for the newest ACTIVITY_DAYS_KEPT days (by the activity's own day, so a
            # late report still counts against its day); a day older than all of them cannot be checked.
            if day not in days and len(days) >= ACTIVITY_DAYS_KEPT and day < min(days):
                raise ActivityLimitReached(type=body.type, max_per_day=rule.max_per_day,
                                           reason="occurred_at is too far in the past to check the daily limit")
            if days.get(day, 0) >= rule.max_per_day:
                raise ActivityLimitReached(type=body.type, max_per_day=rule.max_per_day)
        counts["total"] += 1
        days[day] = days.get(day, 0) + 1
        counts["days"] = dict(sorted(days.items())[-ACTIVITY_DAYS_KEPT:])
        # Earning caps (SPEC 2.20): the activity still counts, its points stop at the cap.
        points = rule.points
        room = _cap_room(ch.row, program.settings(), now)
        if room is not None:
            points = min(points, room)
        _count_earned(ch.row, now, points)
        ch.wallet.earn(points, month_of(occurred))
        if points:
            ch.entry("activity", points, reference={"activity_id": body.activity_id}, actor=actor,
                     occurred_at=occurred, note=body.type)
        return {"activity_id": body.activity_id, "points_earned": points, "balance": balance(ch.wallet)}

    return _idempotent_member_op("activity", body.activity_id, member_id, req_hash, build, actor)


def adjust(member_id: str, body, actor: str) -> tuple[int, dict]:
    """An admin's correction, positive or negative, with its reason in the ledger and the audit trail."""
    req_hash = canonical_hash({"member_id": member_id, **body.model_dump(mode="json")})

    def build(ch: Change, now: datetime) -> dict:
        if body.points > 0:
            ch.wallet.earn(body.points, month_of(now))
        else:
            ch.wallet.debit(-body.points)
        return ch.entry("adjust", body.points, reference={"adjustment_id": body.adjustment_id}, actor=actor,
                        occurred_at=now, note=body.reason)

    def extra() -> list:
        return [audit.entry_op(actor, "member.adjust", target=member_id,
                               details={"adjustment_id": body.adjustment_id, "points": body.points,
                                        "reason": body.reason})]

    return _idempotent_member_op("adjustment", body.adjustment_id, member_id, req_hash, build, actor, extra)


def ledger(member_id: str, limit: int, cursor: Optional[dict]) -> tuple[list, Optional[dict]]:
    members.require(member_id)
    return store.ledger_page(member_id, limit, cursor)


