"""Points for an order and refund reversals (SPEC 2.3, 2.5): pure rules, no AWS."""
import math
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.earning import Line, OrderContext, Promo, points_for_order, reversal_for_refund


def utc(*a):
    return datetime(*a, tzinfo=timezone.utc)


AT = utc(2026, 5, 10, 12)
MAY = (utc(2026, 5, 1), utc(2026, 6, 1))


def order(*lines, tier="bronze", mult="1.0", first=False, birthday=None, at=AT):
    return OrderContext(lines=tuple(Line(c, a) for c, a in lines), occurred_at=at, tier_id=tier,
                        tier_multiplier=Decimal(mult), first_purchase=first, birthday_month=birthday)


def earn(ctx, points=1, per=100, cats=None, promos=(), cap=None):
    return points_for_order(ctx, rate_points=points, rate_per_amount=per, category_multipliers=cats or {},
                            promotions=list(promos), max_points_per_order=cap)


def promo(pid, window=MAY, **kw):
    return Promo(pid, window[0], window[1], **kw)


class TestBaseRate:
    @pytest.mark.parametrize("amount,points", [(0, 0), (99, 0), (100, 1), (12399, 123), (12400, 124)])
    def test_floor_of_one_point_per_100(self, amount, points):
        r = earn(order((None, amount)))
        assert r.points == points
        assert r.breakdown == [{"rule": "base", "points": points}]

    def test_rate_that_does_not_divide_evenly_is_exact(self):
        assert earn(order((None, 300)), points=1, per=3).points == 100  # float maths would give 99
        assert earn(order((None, 100)), points=1, per=3).points == 33
        assert earn(order((None, 12345)), points=3, per=1000).points == 37  # 37.035
        assert earn(order((None, 1000)), points=7, per=300).points == 23  # 23.33

    def test_floor_is_taken_once_over_the_whole_order_not_per_line(self):
        # 150 + 150 → 3 points (flooring each line would give 1 + 1)
        assert earn(order(("a", 150), ("b", 150))).points == 3


class TestCategoryMultipliers:
    def test_zero_excludes_missing_counts_one(self):
        cats = {"giftcard": Decimal(0), "shipping": Decimal(0), "coffee": Decimal(2)}
        r = earn(order(("coffee", 1000), ("giftcard", 5000), ("shipping", 500), ("home", 1000), (None, 250)),
                 cats=cats)
        assert r.points == 32  # 2000 + 0 + 0 + 1000 + 250 = 3250 → 32
        assert r.breakdown == [{"rule": "base", "points": 32}]

    def test_fractional_multiplier(self):
        assert earn(order(("tea", 1000)), cats={"tea": Decimal("1.5")}).points == 15
        assert earn(order(("tea", 999)), cats={"tea": Decimal("0.5")}).points == 4  # 4.995

    def test_all_lines_excluded_earn_nothing(self):
        assert earn(order(("giftcard", 100000)), cats={"giftcard": Decimal(0)}).points == 0


class TestTierMultiplier:
    def test_tier_line_is_the_increase_it_causes(self):
        r = earn(order((None, 10000), tier="silver", mult="1.25"))
        assert r.points == 125
        assert r.breakdown == [{"rule": "base", "points": 100}, {"rule": "tier:silver", "points": 25}]

    def test_floor_applies_after_the_multiplier(self):
        # 150 × 1/100 × 1.25 = 1.875 → 1; base alone is also 1, so no tier line
        r = earn(order((None, 150), tier="silver", mult="1.25"))
        assert r.points == 1 and r.breakdown == [{"rule": "base", "points": 1}]
        # 180 × 1.5 / 100 = 2.7 → 2 where base is 1
        r = earn(order((None, 180), tier="gold", mult="1.5"))
        assert r.breakdown == [{"rule": "base", "points": 1}, {"rule": "tier:gold", "points": 1}]


class TestPromotions:
    def test_multiplier_and_bonus(self):
        r = earn(order((None, 1000)), promos=[promo("x2", multiplier=Decimal(2)), promo("b", bonus_points=50)])
        assert r.points == 70
        assert r.breakdown == [{"rule": "base", "points": 10}, {"rule": "promotion:x2", "points": 10},
                               {"rule": "promotion_bonus:b", "points": 50}]

    def test_multipliers_compound_with_the_tier(self):
        r = earn(order((None, 1000), tier="gold", mult="1.5"),
                 promos=[promo("x2", multiplier=Decimal(2)), promo("x1_5", multiplier=Decimal("1.5"))])
        assert r.points == 45  # 10 × 1.5 × 2 × 1.5
        assert [b["points"] for b in r.breakdown] == [10, 5, 15, 15]

    def test_bonus_without_spend(self):
        assert earn(order((None, 0)), promos=[promo("b", bonus_points=50)]).points == 50

    @pytest.mark.parametrize("at,applies", [
        (MAY[0], True),                               # starts_at is inclusive
        (MAY[0] - timedelta(microseconds=1), False),
        (MAY[1] - timedelta(microseconds=1), True),
        (MAY[1], False),                              # ends_at is exclusive
    ])
    def test_time_window_edges(self, at, applies):
        r = earn(order((None, 1000), at=at), promos=[promo("x3", multiplier=Decimal(3))])
        assert r.points == (30 if applies else 10)

    def test_categories_multiply_only_their_lines_and_gate_the_bonus(self):
        p = promo("coffee", multiplier=Decimal(3), bonus_points=20, categories=("coffee",))
        r = earn(order(("coffee", 1000), ("home", 1000)), promos=[p])
        assert r.points == 60  # home 10 + coffee 30 + bonus 20
        assert r.breakdown == [{"rule": "base", "points": 20}, {"rule": "promotion:coffee", "points": 20},
                               {"rule": "promotion_bonus:coffee", "points": 20}]
        assert earn(order(("home", 1000)), promos=[p]).points == 10  # no coffee line: no bonus either
        assert earn(order((None, 1000)), promos=[p]).points == 10  # an order without lines has no category

    def test_category_multiplier_zero_stays_zero_under_a_promotion(self):
        r = earn(order(("giftcard", 5000), ("home", 1000)), cats={"giftcard": Decimal(0)},
                 promos=[promo("x2", multiplier=Decimal(2))])
        assert r.points == 20

    def test_tiers_condition_uses_the_tier_held_before_the_order(self):
        p = promo("gold-only", bonus_points=100, tiers=("gold", "platinum"))
        assert earn(order((None, 1000), tier="silver", mult="1.25"), promos=[p]).points == 12
        assert earn(order((None, 1000), tier="gold", mult="1.5"), promos=[p]).points == 115

    def test_first_purchase_only(self):
        p = promo("welcome", bonus_points=200, first_purchase_only=True)
        assert earn(order((None, 1000), first=True), promos=[p]).points == 210
        assert earn(order((None, 1000), first=False), promos=[p]).points == 10

    def test_birthday_month_only(self):
        p = promo("bday", multiplier=Decimal(2), birthday_month_only=True)
        assert earn(order((None, 1000), birthday=5), promos=[p]).points == 20
        assert earn(order((None, 1000), birthday=6), promos=[p]).points == 10
        assert earn(order((None, 1000), birthday=None), promos=[p]).points == 10

    def test_multiplier_zero_promotion_cancels_the_order(self):
        r = earn(order((None, 1000)), promos=[promo("zero", multiplier=Decimal(0))])
        assert r.points == 0
        assert r.breakdown == [{"rule": "base", "points": 10}, {"rule": "promotion:zero", "points": -10}]


class TestCap:
    def test_cap_cuts_with_a_negative_line(self):
        promos = [promo("x2", multiplier=Decimal(2)), promo("b", bonus_points=50)]
        r = earn(order((None, 4000)), promos=promos, cap=100)
        assert r.points == 100
        assert r.breakdown[-1] == {"rule": "cap", "points": -30}  # 80 + 50 = 130 → 100
        assert sum(b["points"] for b in r.breakdown) == 100

    def test_cap_not_reached_adds_no_line(self):
        r = earn(order((None, 4000)), cap=100)
        assert r.points == 40 and r.breakdown == [{"rule": "base", "points": 40}]
        assert earn(order((None, 10000)), cap=100).breakdown == [{"rule": "base", "points": 100}]


# --- properties ---------------------------------------------------------------------------

CATS = ["coffee", "home", "giftcard", None]
MULTS = ["0", "0.5", "1", "1.25", "1.5", "2", "3"]


@st.composite
def orders(draw):
    lines = draw(st.lists(st.tuples(st.sampled_from(CATS), st.integers(0, 10**7)), min_size=1, max_size=6))
    promos = []
    for i in range(draw(st.integers(0, 3))):
        promos.append(promo(
            f"p{i}",
            multiplier=draw(st.one_of(st.none(), st.sampled_from(MULTS).map(Decimal))),
            bonus_points=draw(st.one_of(st.none(), st.integers(0, 500))),
            categories=draw(st.one_of(st.none(), st.just(("coffee",)))),
            tiers=draw(st.one_of(st.none(), st.just(("gold",)))),
            first_purchase_only=draw(st.booleans()), birthday_month_only=draw(st.booleans())))
    ctx = order(*lines, tier=draw(st.sampled_from(["bronze", "gold"])), mult=draw(st.sampled_from(MULTS[2:])),
                first=draw(st.booleans()), birthday=draw(st.one_of(st.none(), st.integers(1, 12))))
    return ctx, promos, draw(st.integers(1, 100)), draw(st.integers(1, 10**4)), draw(st.one_of(
        st.none(), st.integers(1, 10**5)))


@settings(deadline=None)  # a shared, noisy machine must not fail a pure rule
@given(orders())
def test_breakdown_adds_up_exactly_to_the_points(case):
    ctx, promos, rate_points, per, cap = case
    r = earn(ctx, points=rate_points, per=per, cats={"giftcard": Decimal(0), "coffee": Decimal(2)},
             promos=promos, cap=cap)
    assert sum(b["points"] for b in r.breakdown) == r.points
    assert r.points >= 0 and (cap is None or r.points <= cap)


@settings(deadline=None)  # a shared, noisy machine must not fail a pure rule
@given(amounts=st.lists(st.integers(0, 10**8), min_size=1, max_size=5), tier=st.sampled_from(MULTS[2:]),
       mults=st.lists(st.sampled_from(MULTS), max_size=3), bonuses=st.lists(st.integers(0, 1000), max_size=3),
       rate=st.tuples(st.integers(1, 50), st.integers(1, 5000)), cap=st.one_of(st.none(), st.integers(1, 10**6)))
def test_points_follow_the_spec_formula(amounts, tier, mults, bonuses, rate, cap):
    """points = floor(eligible × rate × tier × Π multipliers) + Σ bonus, then the cap."""
    promos = [promo(f"m{i}", multiplier=Decimal(m)) for i, m in enumerate(mults)]
    promos += [promo(f"b{i}", bonus_points=b) for i, b in enumerate(bonuses)]
    product = Fraction(1)
    for m in mults:
        product *= Fraction(Decimal(m))
    expected = math.floor(Fraction(sum(amounts)) * Fraction(*rate) * Fraction(Decimal(tier)) * product) + sum(bonuses)
    if cap is not None:
        expected = min(expected, cap)
    r = earn(order(*[(None, a) for a in amounts], mult=tier), points=rate[0], per=rate[1], promos=promos, cap=cap)
    assert r.points == expected


# --- refunds (SPEC 2.5) ---------------------------------------------------------------------

class TestRefundReversal:
    def test_full_refund_reverses_exactly(self):
        assert reversal_for_refund(123, 12345, 0, 12345) == 123

    def test_partials_add_up_to_the_order_points(self):
        # 100 points on 10,000: 3,333 + 3,333 + 3,334 → 33 + 33 + 34
        steps = [(0, 3333), (3333, 3333), (6666, 3334)]
        assert [reversal_for_refund(100, 10000, before, amount) for before, amount in steps] == [33, 33, 34]
        # odd points split in halves: 50 then 51
        assert reversal_for_refund(101, 10000, 0, 5000) == 50
        assert reversal_for_refund(101, 10000, 5000, 5000) == 51

    def test_tiny_refunds_reverse_nothing_until_they_add_up(self):
        assert [reversal_for_refund(10, 1000, i * 10, 10) for i in range(10)] == [0] * 9 + [1]

    def test_zero_points_or_zero_total(self):
        assert reversal_for_refund(0, 5000, 0, 5000) == 0
        assert reversal_for_refund(50, 0, 0, 0) == 0


@settings(deadline=None)  # a shared, noisy machine must not fail a pure rule
@given(points=st.integers(0, 10**7), total=st.integers(1, 10**9), data=st.data())
def test_cumulative_refunds_reverse_their_exact_share(points, total, data):
    cuts = sorted(data.draw(st.lists(st.integers(1, total), max_size=8, unique=True)))
    bounds = [0, *cuts]
    if bounds[-1] != total:
        bounds.append(total)
    reversed_so_far = 0
    for before, after in zip(bounds, bounds[1:]):
        now = reversal_for_refund(points, total, before, after - before)
        assert now >= 0
        reversed_so_far += now
        assert reversed_so_far == points * after // total
    assert reversed_so_far == points  # the last refund completes the order: all points back
