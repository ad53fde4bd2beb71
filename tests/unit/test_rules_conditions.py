"""Richer rules (SPEC 2.20): promotion item and order conditions, earning caps, expiry
policies, and the settings validation of contradictory rules. Pure rules, no AWS."""
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from chalicelib.domain import expiry
from chalicelib.domain.earning import (
    Line,
    OrderContext,
    Promo,
    cap_room,
    count_earned,
    points_for_order,
    promotion_applies,
)
from chalicelib.domain.wallet import Wallet
from chalicelib.schemas.program import ProgramSettings


def utc(*a):
    return datetime(*a, tzinfo=timezone.utc)


AT = utc(2026, 5, 10, 12)
MAY = (utc(2026, 5, 1), utc(2026, 6, 1))


def ctx(*lines, tier="bronze", mult="1.0", first=False, birthday=None, channel=None, store=None, total=None):
    return OrderContext(lines=tuple(Line(*ln) for ln in lines), occurred_at=AT, tier_id=tier,
                        tier_multiplier=Decimal(mult), first_purchase=first, birthday_month=birthday,
                        channel=channel, store_id=store, total_amount=total)


def promo(pid, **kw):
    return Promo(pid, MAY[0], MAY[1], **kw)


def earn(c, promos=(), cap=None, room=None, cats=None):
    return points_for_order(c, rate_points=1, rate_per_amount=100, category_multipliers=cats or {},
                            promotions=list(promos), max_points_per_order=cap, cap_room=room)


def pts(result, rule):
    return sum(b["points"] for b in result.breakdown if b["rule"] == rule)


# --- item conditions -----------------------------------------------------------------------

class TestItemConditions:
    LINES = (("coffee", 1000, "sku-1", "acme"), ("coffee", 1000, "sku-2", "other"), ("tea", 1000, "sku-3", "acme"))

    def test_brand_multiplier_applies_only_to_that_brands_lines(self):
        r = earn(ctx(*self.LINES), [promo("acme2x", multiplier=Decimal(2), brands=("acme",))])
        assert r.points == 50  # 30 base + 20 for the two acme lines
        assert pts(r, "promotion:acme2x") == 20

    def test_sku_multiplier(self):
        r = earn(ctx(*self.LINES), [promo("s", multiplier=Decimal(3), skus=("sku-2",))])
        assert pts(r, "promotion:s") == 20 and r.points == 50

    def test_conditions_of_different_kinds_all_hold_for_a_line(self):
        # coffee AND acme: only sku-1
        r = earn(ctx(*self.LINES), [promo("p", multiplier=Decimal(2), categories=("coffee",), brands=("acme",))])
        assert pts(r, "promotion:p") == 10

    def test_bonus_needs_a_selected_line(self):
        p = promo("b", bonus_points=100, brands=("nobody",))
        assert earn(ctx(*self.LINES), [p]).points == 30
        p = promo("b", bonus_points=100, skus=("sku-3",))
        r = earn(ctx(*self.LINES), [p])
        assert r.points == 130 and pts(r, "promotion_bonus:b") == 100

    def test_order_without_items_matches_no_item_condition(self):
        r = earn(ctx((None, 5000)), [promo("b", bonus_points=10, brands=("acme",)),
                                     promo("m", multiplier=Decimal(2), skus=("x",))])
        assert r.points == 50


# --- order conditions ----------------------------------------------------------------------

class TestOrderConditions:
    def test_channel(self):
        p = promo("app", multiplier=Decimal(3), channels=("app",))
        assert earn(ctx((None, 1000), channel="app"), [p]).points == 30
        assert earn(ctx((None, 1000), channel="web"), [p]).points == 10
        assert earn(ctx((None, 1000)), [p]).points == 10

    def test_store(self):
        p = promo("st", bonus_points=7, stores=("tokyo-1",))
        assert earn(ctx((None, 1000), store="tokyo-1"), [p]).points == 17
        assert earn(ctx((None, 1000), store="osaka-1"), [p]).points == 10

    def test_min_order_amount_uses_the_order_total(self):
        p = promo("big", bonus_points=100, min_order_amount=5000)
        assert earn(ctx(("a", 1000), total=5000), [p]).points == 110  # the lines are part of 5000
        assert earn(ctx(("a", 1000), total=4999), [p]).points == 10
        assert earn(ctx((None, 5000)), [p]).points == 150  # no total given: Σ lines

    def test_order_condition_gates_an_item_promotion(self):
        p = promo("p", multiplier=Decimal(2), brands=("acme",), channels=("app",))
        line = ("c", 1000, "s", "acme")
        assert earn(ctx(line, channel="app"), [p]).points == 20
        assert earn(ctx(line, channel="pos"), [p]).points == 10

    def test_tier_first_purchase_birthday(self):
        assert promotion_applies(promo("t", bonus_points=1, tiers=("gold",)), ctx((None, 1), tier="gold"))
        assert not promotion_applies(promo("t", bonus_points=1, tiers=("gold",)), ctx((None, 1)))
        assert not promotion_applies(promo("f", bonus_points=1, first_purchase_only=True), ctx((None, 1)))
        assert promotion_applies(promo("f", bonus_points=1, first_purchase_only=True), ctx((None, 1), first=True))
        assert promotion_applies(promo("b", bonus_points=1, birthday_month_only=True), ctx((None, 1), birthday=5))
        assert not promotion_applies(promo("b", bonus_points=1, birthday_month_only=True), ctx((None, 1), birthday=6))


# --- caps ------------------------------------------------------------------------------------

class TestCaps:
    def test_cap_room_is_the_tighter_of_day_and_month(self):
        c = {"days": {"2026-05-10": 900}, "months": {"2026-05": 4500}}
        assert cap_room(c, "2026-05-10", "2026-05", 1000, 5000) == 100
        assert cap_room(c, "2026-05-10", "2026-05", 1000, 4550) == 50
        assert cap_room(c, "2026-05-11", "2026-05", 1000, None) == 1000
        assert cap_room(c, "2026-05-10", "2026-05", None, None) is None
        assert cap_room({"days": {"2026-05-10": 2000}}, "2026-05-10", "2026-05", 1000, None) == 0

    def test_counters_stay_bounded(self):
        c = None
        for d in range(1, 20):
            c = count_earned(c, f"2026-05-{d:02d}", "2026-05", 10)
        c = count_earned(c, "2026-06-01", "2026-06", 5)
        c = count_earned(c, "2026-07-01", "2026-07", 5)
        assert len(c["days"]) == 3 and list(c["months"]) == ["2026-06", "2026-07"]
        assert c["days"]["2026-07-01"] == 5

    def test_cap_line_combines_order_cap_and_room(self):
        r = earn(ctx((None, 10000)), room=30)
        assert r.points == 30 and r.breakdown[-1] == {"rule": "cap", "points": -70}
        r = earn(ctx((None, 10000)), cap=20, room=30)
        assert r.points == 20 and [b for b in r.breakdown if b["rule"] == "cap"] == [{"rule": "cap", "points": -80}]
        r = earn(ctx((None, 10000)), room=0)
        assert r.points == 0

    def test_no_cap_line_below_the_room(self):
        r = earn(ctx((None, 1000)), room=30)
        assert r.points == 10 and all(b["rule"] != "cap" for b in r.breakdown)


# --- properties ------------------------------------------------------------------------------

mults = st.sampled_from(["0", "0.5", "1", "1.25", "1.5", "2", "3", "10"])
line_st = st.tuples(st.sampled_from([None, "coffee", "tea", "giftcard"]), st.integers(0, 200_000),
                    st.sampled_from(["s1", "s2", "s3"]), st.sampled_from([None, "acme", "other"]))
promo_st = st.builds(
    lambda i, m, b, cats, skus, brands, chans, stores, mina: Promo(
        f"p{i}", MAY[0], MAY[1], multiplier=Decimal(m) if m else None, bonus_points=b,
        categories=cats, skus=skus, brands=brands, channels=chans, stores=stores, min_order_amount=mina),
    st.integers(0, 99), st.one_of(st.none(), mults), st.one_of(st.none(), st.integers(0, 500)),
    st.one_of(st.none(), st.just(("coffee",))), st.one_of(st.none(), st.just(("s1", "s2"))),
    st.one_of(st.none(), st.just(("acme",))), st.one_of(st.none(), st.just(("app",))),
    st.one_of(st.none(), st.just(("t1",))), st.one_of(st.none(), st.integers(0, 300_000)))


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(line_st, min_size=1, max_size=6), promos=st.lists(promo_st, max_size=4),
       tier=mults, channel=st.sampled_from([None, "app", "web"]), store=st.sampled_from([None, "t1", "t2"]),
       cap=st.one_of(st.none(), st.integers(1, 5000)), room=st.one_of(st.none(), st.integers(0, 5000)),
       cats=st.dictionaries(st.sampled_from(["coffee", "tea", "giftcard"]), mults))
def test_breakdown_always_sums_to_the_points_and_never_exceeds_a_cap(lines, promos, tier, channel, store, cap,
                                                                     room, cats):
    promos = list({p.promotion_id: p for p in promos}.values())
    c = ctx(*lines, mult=tier, channel=channel, store=store)
    r = earn(c, promos, cap=cap, room=room, cats={k: Decimal(v) for k, v in cats.items()})
    assert sum(b["points"] for b in r.breakdown) == r.points
    assert r.points >= 0
    if cap is not None:
        assert r.points <= cap
    if room is not None:
        assert r.points <= room
    if cap is None and room is None:
        assert all(b["rule"] != "cap" for b in r.breakdown)


@settings(max_examples=200, deadline=None)
@given(orders=st.lists(st.integers(0, 3000), min_size=1, max_size=30), per_day=st.integers(1, 2000),
       per_month=st.integers(2000, 10_000), days=st.lists(st.integers(1, 3), min_size=30, max_size=30))
def test_a_sequence_of_accruals_never_earns_past_either_cap(orders, per_day, per_month, days):
    counters: dict = {}
    by_day: dict = {}
    total = 0
    for points, d in zip(orders, days):
        day = f"2026-05-0{d}"
        room = cap_room(counters, day, "2026-05", per_day, per_month)
        r = earn(ctx((None, points * 100)), room=room)
        counters = count_earned(counters, day, "2026-05", r.points)
        by_day[day] = by_day.get(day, 0) + r.points
        total += r.points
        assert sum(b["points"] for b in r.breakdown) == r.points
    assert all(v <= per_day for v in by_day.values())
    assert total <= per_month


# --- expiry policies -------------------------------------------------------------------------

def state(lots, last=None):
    s = {"wallet": {"lots": lots}}
    if last:
        s["last_activity_month"] = last
    return s


class TestExpiry:
    def test_earned_month_schedule(self):
        s = state({"2026-01": 100, "2026-03": 50, "2026-04": 0})
        assert expiry.expiring_by_month(s, "earned_month", 12) == {"2027-01": 100, "2027-03": 50}
        assert expiry.expiring_by_month(s, "earned_month", None) == {}

    def test_last_activity_schedule_is_one_date_for_everything(self):
        s = state({"2026-01": 100, "2026-03": 50}, last="2026-06")
        assert expiry.expiring_by_month(s, "last_activity", 12) == {"2027-06": 150}
        # no stamp (written before the policy existed): the newest lot's month
        assert expiry.expiring_by_month(state({"2026-01": 100, "2026-03": 50}), "last_activity", 6) == {"2026-09": 150}

    def test_expire_last_activity_takes_everything_only_after_the_date(self):
        w = Wallet(available=150, lots={"2026-01": 100, "2026-03": 50})
        assert expiry.expire(w, "2026-06", "last_activity", 12, utc(2027, 6, 30, 23, 59)) == 0
        assert w.available == 150
        assert expiry.expire(w, "2026-06", "last_activity", 12, utc(2027, 7, 1)) == 150
        assert w.available == 0 and w.lots == {}

    def test_expire_earned_month_is_the_wallets_rule(self):
        w = Wallet(available=150, lots={"2026-01": 100, "2026-03": 50})
        assert expiry.expire(w, None, "earned_month", 12, utc(2027, 2, 1)) == 100
        assert w.lots == {"2026-03": 50}

    def test_expiring_soon_under_both_policies(self):
        w = Wallet(available=150, lots={"2026-01": 100, "2026-03": 50})
        now = utc(2027, 1, 15)
        assert expiry.expiring_soon(w, "2026-03", "earned_month", 12, now, 30) == [
            {"points": 100, "expires_at": "2027-01-31T23:59:59Z"}]
        assert expiry.expiring_soon(w, "2026-03", "last_activity", 12, now, 30) == []
        assert expiry.expiring_soon(w, "2026-03", "last_activity", 12, utc(2027, 3, 10), 30) == [
            {"points": 150, "expires_at": "2027-03-31T23:59:59Z"}]


# --- settings validation ---------------------------------------------------------------------

P = {"promotion_id": "p", "name": "P", "starts_at": "2026-05-01T00:00:00Z", "ends_at": "2026-06-01T00:00:00Z",
     "multiplier": "2"}


class TestSettingsValidation:
    def test_defaults(self):
        s = ProgramSettings.model_validate({})
        assert s.earning_caps.per_member_per_day is None and s.earning_caps.per_member_per_month is None
        assert s.points_expiry_policy == "earned_month"

    def test_multiplier_as_string_or_json_number(self):
        s = ProgramSettings.model_validate_json('{"promotions": [{"promotion_id": "p", "name": "P", '
                                                '"starts_at": "2026-05-01T00:00:00Z", '
                                                '"ends_at": "2026-06-01T00:00:00Z", "multiplier": 1.5}], '
                                                '"category_multipliers": {"a": "2.5"}}')
        assert s.promotions[0].multiplier == Decimal("1.5") and s.category_multipliers["a"] == Decimal("2.5")
        assert s.model_dump(mode="json")["promotions"][0]["multiplier"] == "1.5"

    @pytest.mark.parametrize("body,where", [
        ({"earning_caps": {"per_member_per_day": 5000, "per_member_per_month": 1000}}, "earning_caps"),
        ({"earning_caps": {"per_member_per_day": 0}}, "earning_caps.per_member_per_day"),
        ({"promotions": [{**P, "ends_at": "2026-04-01T00:00:00Z"}]}, "promotions.0"),
        ({"promotions": [{**P, "brands": []}]}, "promotions.0.brands"),
        ({"promotions": [{**P, "channels": []}]}, "promotions.0.channels"),
        ({"promotions": [{**P, "skus": [""]}]}, "promotions.0.skus.0"),
        ({"promotions": [{k: v for k, v in P.items() if k != "multiplier"}]}, "promotions.0"),
        ({"points_expiry_policy": "never"}, "points_expiry_policy"),
        ({"points_expiry_policy": "last_activity", "points_expiry_months": None}, ""),
    ])
    def test_contradictory_rules_are_rejected(self, body, where):
        with pytest.raises(ValidationError) as e:
            ProgramSettings.model_validate(body)
        locs = [".".join(str(x) for x in err["loc"]) for err in e.value.errors()]
        assert where in locs, locs

    def test_equal_caps_are_allowed(self):
        s = ProgramSettings.model_validate({"earning_caps": {"per_member_per_day": 100, "per_member_per_month": 100}})
        assert s.earning_caps.per_member_per_day == 100


# --- coupon budgets: the slices (SPEC 2.20) ---------------------------------------------------

from chalicelib.domain import coupons as coupon_rules  # noqa: E402


class TestBudgetSlices:
    def test_allocate_prefers_the_given_slice_then_the_roomiest(self):
        assert coupon_rules.allocate(300, [313, 100, 400], prefer=0) == {0: 300}
        assert coupon_rules.allocate(300, [13, 100, 400], prefer=0) == {0: 13, 2: 287}
        assert coupon_rules.allocate(0, [0, 0]) == {}
        assert coupon_rules.allocate(201, [100, 100]) is None

    def test_budget_verdict(self):
        from tests.unit.test_coupons_rules import MID, rules  # the shared rule factory
        r = rules(discount_type="amount", discount_value=500)
        v = coupon_rules.evaluate(r, now=MID, member=coupon_rules.MemberFacts("m"), total=1000, lines=[],
                                  budget_left=499)
        assert v.reason == coupon_rules.BUDGET
        assert coupon_rules.evaluate(r, now=MID, member=coupon_rules.MemberFacts("m"), total=1000, lines=[],
                                     budget_left=500).discount_amount == 500


@settings(max_examples=300, deadline=None)
@given(amount=st.integers(0, 5000), rooms=st.lists(st.integers(0, 1000), min_size=1, max_size=16),
       prefer=st.integers(0, 15))
def test_allocation_never_takes_more_than_a_slice_has(amount, rooms, prefer):
    parts = coupon_rules.allocate(amount, rooms, prefer=prefer)
    if sum(rooms) < amount:
        assert parts is None
    else:
        assert sum(parts.values()) == amount
        assert all(0 < a <= rooms[n] for n, a in parts.items())
