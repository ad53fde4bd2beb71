"""Tier rules (SPEC 2.7): rolling window, upgrades, retention, downgrades with and without soft landing."""
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from chalicelib.domain.months import add_months, month_end
from chalicelib.domain.tiers import (
    TierState,
    TierDef,
    apply_upgrade,
    earned_index,
    prune_buckets,
    qualifying_spend,
    recalculate,
    tier_view,
)


def utc(*a):
    return datetime(*a, tzinfo=timezone.utc)


TIERS = [TierDef("bronze", "Bronze", 0, Decimal("1.0")), TierDef("silver", "Silver", 50000, Decimal("1.25")),
         TierDef("gold", "Gold", 200000, Decimal("1.5")), TierDef("platinum", "Platinum", 500000, Decimal("2.0"))]


class TestMonths:
    def test_month_arithmetic_across_years(self):
        assert add_months("2025-12", 1) == "2026-01"
        assert add_months("2026-01", -1) == "2025-12"
        assert add_months("2025-01", 12) == "2026-01"
        assert add_months("2025-03", -27) == "2022-12"
        assert month_end("2026-02") == utc(2026, 2, 28, 23, 59, 59)


class TestQualifyingSpend:
    def test_window_of_calendar_months_ending_with_the_current_month(self):
        buckets = {"2025-02": 1, "2025-03": 10, "2026-02": 100, "2026-03": 1000}
        assert qualifying_spend(buckets, "2026-02", 12) == 110  # 2025-03 … 2026-02
        assert qualifying_spend(buckets, "2026-03", 12) == 1100
        assert qualifying_spend(buckets, "2026-02", 1) == 100
        assert qualifying_spend(buckets, "2027-03", 12) == 0
        assert qualifying_spend(buckets, "2025-03", 2) == 11  # months after the window's end never count
        assert qualifying_spend({**buckets, "2026-04": 7}, "2026-03", 12) == 1100

    def test_refunds_are_negative_net_spend(self):
        assert qualifying_spend({"2026-01": 60000, "2026-02": -20000}, "2026-02", 12) == 40000

    def test_prune_keeps_every_month_a_window_can_reach(self):
        buckets = {"2024-12": 1, "2025-01": 2, "2025-02": 3, "2026-01": 4}
        assert prune_buckets(buckets, "2026-01", 13) == {"2025-01": 2, "2025-02": 3, "2026-01": 4}


class TestUpgrade:
    @pytest.mark.parametrize("spend,tier", [(0, "bronze"), (49999, "bronze"), (50000, "silver"),
                                            (199999, "silver"), (200000, "gold"), (10**9, "platinum")])
    def test_earned_tier_is_the_highest_threshold_reached(self, spend, tier):
        assert TIERS[earned_index(spend, TIERS)].tier_id == tier

    def test_several_tiers_at_once_with_retention_from_that_month(self):
        state = TierState("bronze", retained_until=None)
        change = apply_upgrade(state, 500000, TIERS, utc(2026, 5, 10, 8), 12)
        assert change == {"from": "bronze", "to": "platinum"}
        assert state == TierState("platinum", retained_until="2027-05-31T23:59:59Z", reached_at="2026-05-10T08:00:00Z")

    def test_no_change_below_or_at_the_current_tier(self):
        state = TierState("gold", retained_until="2027-01-31T23:59:59Z")
        assert apply_upgrade(state, 60000, TIERS, utc(2026, 5, 10), 12) is None
        assert apply_upgrade(state, 200000, TIERS, utc(2026, 5, 10), 12) is None
        assert state == TierState("gold", retained_until="2027-01-31T23:59:59Z")

    def test_a_removed_tier_falls_back_to_the_lowest(self):
        state = TierState("diamond")
        assert apply_upgrade(state, 0, TIERS, utc(2026, 5, 10), 12) is None
        assert state.tier_id == "bronze"
        assert apply_upgrade(TierState("diamond"), 60000, TIERS, utc(2026, 5, 10), 12) == {
            "from": "diamond", "to": "silver"}


class TestRetentionAndDowngrade:
    """SPEC 2.7's example: Gold reached on 2025-01-15 is retained until 2026-01-31; a
    recalculation as of 2026-03-01 with an empty window lands the member on Silver."""

    def gold(self):
        state = TierState("bronze")
        assert apply_upgrade(state, 200000, TIERS, utc(2025, 1, 15, 9), 12) == {"from": "bronze", "to": "gold"}
        assert state.retained_until == "2026-01-31T23:59:59Z"
        return state

    def test_retained_through_the_last_second_of_the_month(self):
        state = self.gold()
        assert recalculate(state, 0, TIERS, utc(2026, 1, 31, 12), 12, True) is None
        last_instant = utc(2026, 1, 31, 23, 59, 59) + timedelta(microseconds=999999)
        assert recalculate(state, 0, TIERS, last_instant, 12, True) is None
        assert state.tier_id == "gold"
        assert recalculate(state, 0, TIERS, utc(2026, 2, 1), 12, True) == {"from": "gold", "to": "silver"}

    def test_soft_landing_one_step_with_new_retention(self):
        state = self.gold()
        assert recalculate(state, 0, TIERS, utc(2026, 3, 1), 12, True) == {"from": "gold", "to": "silver"}
        assert state.tier_id == "silver"
        assert state.retained_until == "2027-03-31T23:59:59Z"  # landing on a tier retains it too
        assert recalculate(state, 0, TIERS, utc(2026, 4, 1), 12, True) is None
        assert recalculate(state, 0, TIERS, utc(2027, 4, 1), 12, True) == {"from": "silver", "to": "bronze"}
        assert state.retained_until is None  # nothing below the lowest tier

    def test_without_soft_landing_straight_to_the_earned_tier(self):
        state = self.gold()
        assert recalculate(state, 0, TIERS, utc(2026, 3, 1), 12, False) == {"from": "gold", "to": "bronze"}
        assert state.retained_until is None
        state = self.gold()
        assert recalculate(state, 60000, TIERS, utc(2026, 3, 1), 12, False) == {"from": "gold", "to": "silver"}

    def test_soft_landing_never_goes_below_the_earned_tier(self):
        state = TierState("platinum", retained_until="2025-12-31T23:59:59Z")
        assert recalculate(state, 250000, TIERS, utc(2026, 3, 1), 12, True) == {"from": "platinum", "to": "gold"}
        assert recalculate(state, 250000, TIERS, utc(2030, 1, 1), 12, True) is None  # gold is earned

    def test_earned_at_least_current_changes_nothing_even_after_retention(self):
        state = TierState("silver", retained_until="2025-01-31T23:59:59Z")
        assert recalculate(state, 50000, TIERS, utc(2026, 3, 1), 12, True) is None
        assert state == TierState("silver", retained_until="2025-01-31T23:59:59Z")

    def test_recalculation_also_upgrades(self):
        state = TierState("silver", retained_until="2027-01-31T23:59:59Z")
        assert recalculate(state, 210000, TIERS, utc(2026, 3, 1), 12, True) == {"from": "silver", "to": "gold"}
        assert state.retained_until == "2027-03-31T23:59:59Z"

    def test_zero_retention_months_keeps_until_the_end_of_the_month_reached(self):
        state = TierState("bronze")
        apply_upgrade(state, 60000, TIERS, utc(2026, 5, 10), 0)
        assert state.retained_until == "2026-05-31T23:59:59Z"
        assert recalculate(state, 0, TIERS, utc(2026, 6, 1), 0, True)["to"] == "bronze"


def test_tier_view():
    v = tier_view(TierState("silver", retained_until="2027-01-31T23:59:59Z"), 60000, TIERS)
    assert v == {"tier_id": "silver", "name": "Silver", "multiplier": "1.25", "qualifying_spend": 60000,
                 "next_tier": "gold", "spend_to_next_tier": 140000, "retained_until": "2027-01-31T23:59:59Z"}
    # a retained tier above what the spend earns: nothing "to go" is negative
    assert tier_view(TierState("bronze"), 70000, TIERS)["spend_to_next_tier"] == 0
    top = tier_view(TierState("platinum"), 10, TIERS)
    assert (top["next_tier"], top["spend_to_next_tier"], top["retained_until"]) == (None, None, None)
