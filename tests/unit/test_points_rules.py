"""Pure rules of points, tiers and codes (no AWS)."""
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain import codes
from chalicelib.domain.earning import Line, OrderContext, Promo, points_for_order, reversal_for_refund
from chalicelib.domain.tiers import TierDef, TierState, apply_upgrade, qualifying_spend, recalculate, tier_view
from chalicelib.domain.wallet import Wallet


def utc(*a):
    return datetime(*a, tzinfo=timezone.utc)


def ctx(lines, tier="1", first=False, at=utc(2026, 5, 10), birthday=None):
    return OrderContext(lines=tuple(lines), occurred_at=at, tier_id="t", tier_multiplier=Decimal(tier),
                        first_purchase=first, birthday_month=birthday)


def earn(c, **kw):
    args = {"rate_points": 1, "rate_per_amount": 100, "category_multipliers": {}, "promotions": []}
    args.update(kw)
    return points_for_order(c, **args)


class TestEarning:
    def test_floor_and_base_rate(self):
        assert earn(ctx([Line(None, 12399)])).points == 123
        assert earn(ctx([Line(None, 99)])).points == 0
        # a rate that does not divide evenly stays exact: 300 × 1/3 = 100, not 99
        assert earn(ctx([Line(None, 300)]), rate_points=1, rate_per_amount=3).points == 100

    def test_category_multipliers_missing_counts_one_zero_excludes(self):
        lines = [Line("coffee", 1000), Line("giftcard", 5000), Line("home", 1000)]
        r = earn(ctx(lines), category_multipliers={"coffee": Decimal(2), "giftcard": Decimal(0)})
        assert r.points == 30

    def test_tier_multiplier_and_breakdown(self):
        r = earn(ctx([Line(None, 10000)], tier="1.25"))
        assert r.points == 125
        assert r.breakdown == [{"rule": "base", "points": 100}, {"rule": "tier:t", "points": 25}]

    def test_promotions_window_bonus_categories_and_cap(self):
        promos = [
            Promo("x2", utc(2026, 5, 1), utc(2026, 6, 1), multiplier=Decimal(2)),
            Promo("bonus", utc(2026, 5, 1), utc(2026, 6, 1), bonus_points=50),
            Promo("coffee3", utc(2026, 5, 1), utc(2026, 6, 1), multiplier=Decimal(3), categories=("coffee",)),
            Promo("over", utc(2026, 1, 1), utc(2026, 5, 10), multiplier=Decimal(10)),  # ended (end exclusive)
        ]
        lines = [Line("coffee", 1000), Line("home", 1000)]
        r = earn(ctx(lines), promotions=promos)
        # home 10 × 2 = 20; coffee 10 × 2 × 3 = 60; + 50 bonus
        assert r.points == 130
        assert sum(b["points"] for b in r.breakdown) == 130
        capped = earn(ctx(lines), promotions=promos, max_points_per_order=100)
        assert capped.points == 100 and capped.breakdown[-1] == {"rule": "cap", "points": -30}

    def test_promotion_conditions(self):
        first = [Promo("welcome", utc(2026, 1, 1), utc(2027, 1, 1), bonus_points=100, first_purchase_only=True)]
        assert earn(ctx([Line(None, 0)], first=True), promotions=first).points == 100
        assert earn(ctx([Line(None, 0)], first=False), promotions=first).points == 0
        bday = [Promo("bday", utc(2026, 1, 1), utc(2027, 1, 1), multiplier=Decimal(2), birthday_month_only=True)]
        assert earn(ctx([Line(None, 1000)], birthday=5), promotions=bday).points == 20
        assert earn(ctx([Line(None, 1000)], birthday=6), promotions=bday).points == 10
        gold = [Promo("gold", utc(2026, 1, 1), utc(2027, 1, 1), bonus_points=7, tiers=("gold",))]
        assert earn(ctx([Line(None, 0)]), promotions=gold).points == 0

    @given(amounts=st.lists(st.integers(0, 10**7), min_size=1, max_size=5),
           tier=st.sampled_from(["1.0", "1.25", "1.5", "2.0"]), mult=st.sampled_from(["1.1", "1.5", "3"]),
           bonus=st.integers(0, 1000), cap=st.one_of(st.none(), st.integers(1, 10**5)))
    def test_breakdown_always_sums_to_points(self, amounts, tier, mult, bonus, cap):
        promos = [Promo("p", utc(2026, 1, 1), utc(2027, 1, 1), multiplier=Decimal(mult), bonus_points=bonus)]
        r = earn(ctx([Line(None, a) for a in amounts], tier=tier), promotions=promos, max_points_per_order=cap)
        assert sum(b["points"] for b in r.breakdown) == r.points
        assert cap is None or r.points <= cap


class TestRefundReversal:
    def test_full_refund_reverses_exactly(self):
        assert reversal_for_refund(123, 12345, 0, 12345) == 123

    @given(points=st.integers(0, 10**6), total=st.integers(1, 10**8), data=st.data())
    def test_cumulative_partials_sum_to_the_full_reversal(self, points, total, data):
        parts = data.draw(st.lists(st.integers(1, total), min_size=1, max_size=6))
        refunded, reversed_total = 0, 0
        for p in parts:
            if refunded + p > total:
                break
            reversed_total += reversal_for_refund(points, total, refunded, p)
            refunded += p
        assert reversed_total == points * refunded // total
        assert reversed_total + reversal_for_refund(points, total, refunded, total - refunded) == points


class TestWallet:
    def test_fifo_lots_and_expiry_at_end_of_month_m_plus_n(self):
        w = Wallet()
        w.earn(100, "2025-01")
        w.earn(50, "2025-02")
        w.spend(120)
        assert w.lots == {"2025-02": 30}
        assert w.expire(utc(2026, 2, 28, 23, 59, 59), 12) == 0
        assert w.expire(utc(2026, 3, 1), 12) == 30 and w.available == 0

    def test_pending_matures_and_reverses_first(self):
        w = Wallet()
        assert w.earn(100, "2026-03", order_id="o", release_at=utc(2026, 3, 15), now=utc(2026, 3, 1)) is True
        w.reverse(40, "o")
        assert (w.available, w.pending) == (0, 60)
        assert w.mature(utc(2026, 3, 14)) == 0
        assert w.mature(utc(2026, 3, 15)) == 60 and (w.available, w.pending) == (60, 0)

    def test_deficit_is_covered_first(self):
        w = Wallet()
        w.earn(100, "2026-01")
        w.spend(100)
        w.debit(30)  # a reversal after the points were spent
        assert w.available == -30 and w.lots == {}
        assert not w.can_spend(1)
        w.earn(50, "2026-02")
        assert w.available == 20 and w.lots == {"2026-02": 20}

    def test_expiring_soon(self):
        w = Wallet()
        w.earn(100, "2025-01")
        w.earn(40, "2025-03")
        assert w.expiring_soon(utc(2026, 1, 10), 12, 30) == [{"points": 100, "expires_at": "2026-01-31T23:59:59Z"}]
        assert w.expiring_soon(utc(2026, 1, 10), None, 30) == []


TIERS = [TierDef("bronze", "Bronze", 0, Decimal("1.0")), TierDef("silver", "Silver", 50000, Decimal("1.25")),
         TierDef("gold", "Gold", 200000, Decimal("1.5")), TierDef("platinum", "Platinum", 500000, Decimal("2.0"))]


class TestTiers:
    def test_rolling_window_of_calendar_months(self):
        buckets = {"2025-01": 10, "2025-02": 20, "2026-01": 30}
        assert qualifying_spend(buckets, "2026-01", 12) == 50
        assert qualifying_spend(buckets, "2026-02", 12) == 30

    def test_upgrade_several_tiers_at_once(self):
        state = TierState("bronze")
        assert apply_upgrade(state, 250000, TIERS, utc(2026, 5, 10), 12) == {"from": "bronze", "to": "gold"}
        assert state.retained_until == "2027-05-31T23:59:59Z"

    def test_spec_example_retention_and_soft_landing(self):
        state = TierState("bronze")
        apply_upgrade(state, 200000, TIERS, utc(2025, 1, 15), 12)
        assert state.retained_until == "2026-01-31T23:59:59Z"
        assert recalculate(replace(state), 0, TIERS, utc(2026, 1, 31, 12), 12, True) is None
        soft = replace(state)
        assert recalculate(soft, 0, TIERS, utc(2026, 3, 1), 12, True) == {"from": "gold", "to": "silver"}
        hard = replace(state)
        assert recalculate(hard, 0, TIERS, utc(2026, 3, 1), 12, False) == {"from": "gold", "to": "bronze"}
        assert hard.retained_until is None

    def test_tier_view(self):
        v = tier_view(TierState("silver", retained_until="x"), 60000, TIERS)
        assert (v["next_tier"], v["spend_to_next_tier"], v["multiplier"]) == ("gold", 140000, "1.25")
        top = tier_view(TierState("platinum"), 10, TIERS)
        assert top["next_tier"] is None and top["spend_to_next_tier"] is None


def test_codes_alphabet_bits_and_normalisation():
    code = codes.random_code(12)
    assert len(code) == 12 and codes.bits(12) >= 60
    assert not set(code) & set("ILOU")
    assert codes.normalize(" ab-cd-12 ") == "ABCD12"
    assert codes.is_valid_shared_code("SPRING2026") and not codes.is_valid_shared_code("ab")
