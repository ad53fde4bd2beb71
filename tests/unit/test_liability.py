"""The liability report's pure arithmetic (SPEC 2.17), worked by hand."""
from __future__ import annotations

from collections import Counter
from datetime import datetime
from decimal import Decimal

import pytest

from chalicelib.clock import parse_instant
from chalicelib.domain import liability as L

POLICY = L.ExpiryPolicy(12)


def at(text: str) -> datetime:
    return parse_instant(text)


def entry(type_, points, occurred, recorded=None):
    return {"type": type_, "points": points, "occurred_at": occurred, "recorded_at": recorded or occurred}


class TestMemberPosition:
    def test_available_pending_held_and_expiry_of_available_and_held_lots(self):
        wallet = {"available": 300, "pending": 80, "held": 120,
                  "lots": {"2025-07": 100, "2026-01": 200},
                  "pending_lots": [{"order_id": "o", "points": 80, "month": "2026-05", "release_at": "x"}],
                  "holds": {"h": {"points": 120, "lots": {"2025-07": 20, "2025-09": 100}}}}
        out = L.member_position(wallet, POLICY)
        assert (out["available"], out["pending"], out["held"], out["members"]) == (300, 80, 120, 1)
        # pending points are in no lot yet: not expiring; held lots keep their month
        assert {k: v for k, v in out.items() if k.startswith(L.EXPIRING_PREFIX)} == {
            "expiring:2026-07": 120, "expiring:2026-09": 100, "expiring:2027-01": 200}
        assert out["negative_balance"] == 0

    def test_a_negative_balance_counts_as_zero_available(self):
        out = L.member_position({"available": -250, "pending": 40, "held": 0, "lots": {}}, POLICY)
        assert (out["available"], out["pending"], out["negative_balance"], out["members_negative"]) == (0, 40, 250, 1)

    def test_a_closed_members_points_still_count_and_are_reported(self):
        out = L.member_position({"available": 30, "pending": 5, "held": 0, "lots": {"2026-01": 30}}, POLICY,
                                closed=True)
        assert (out["available"], out["pending"], out["closed_points"], out["expiring:2027-01"]) == (30, 5, 35, 30)

    def test_no_expiry_means_nothing_expiring(self):
        out = L.member_position({"available": 10, "lots": {"2026-01": 10}}, L.ExpiryPolicy(None))
        assert not [k for k in out if k.startswith(L.EXPIRING_PREFIX)]

    def test_last_activity_policy_puts_every_lot_on_one_month_held_ones_too(self):
        wallet = {"available": 30, "held": 20, "lots": {"2025-11": 30},
                  "holds": {"h": {"points": 20, "lots": {"2025-09": 20}}}}
        state = {"last_activity_month": "2026-02"}
        out = L.member_position(wallet, L.ExpiryPolicy(12, "last_activity"), state)
        assert {k: v for k, v in out.items() if k.startswith(L.EXPIRING_PREFIX)} == {"expiring:2027-02": 50}

    def test_expiry_by_earned_month(self):
        assert L.expiring_schedule({"2025-11": 5, "2025-12": 7, "2026-01": 0}, L.ExpiryPolicy(3)) == {
            "2026-02": 5, "2026-03": 7}


class TestPeriodAndFlows:
    def test_the_period_is_the_twelve_months_before_as_of(self):
        assert L.period(at("2026-06-01T00:00:00Z")) == (at("2025-06-01T00:00:00Z"), at("2026-06-01T00:00:00Z"))
        assert L.period(at("2028-02-29T12:00:00Z"))[0] == at("2027-02-28T12:00:00Z")  # clamped

    def test_flows_as_positive_magnitudes_within_the_period(self):
        start, end = at("2025-06-01T00:00:00Z"), at("2026-06-01T00:00:00Z")
        entries = [
            entry("earn", 500, "2025-05-31T23:59:59Z"),  # just before: not counted
            entry("earn", 300, "2025-06-01T00:00:00Z"),  # the first instant: counted
            entry("bonus", 50, "2025-07-01T00:00:00Z"),
            entry("activity", 20, "2025-07-02T00:00:00Z"),
            entry("import", 1000, "2025-07-03T00:00:00Z"),
            entry("adjust", 30, "2025-07-04T00:00:00Z"),
            entry("adjust", -12, "2025-07-05T00:00:00Z"),
            entry("redeem", -200, "2025-08-01T00:00:00Z"),
            entry("refund_redemption", 200, "2025-08-02T00:00:00Z"),
            entry("redeem", -150, "2025-08-03T00:00:00Z"),
            entry("spend", -90, "2025-09-01T00:00:00Z"),
            entry("refund_spend", 40, "2025-09-02T00:00:00Z"),
            entry("expire", -70, "2026-01-01T00:10:00Z"),
            entry("reversal", -25, "2026-02-01T00:00:00Z"),
            entry("transfer_out", -10, "2026-03-01T00:00:00Z"),
            entry("transfer_in", 10, "2026-03-01T00:00:00Z"),
            entry("earn", 999, "2026-06-01T00:00:00Z"),  # as_of itself: after the period
        ]
        out = L.ledger_flows(entries, start, end, parse_instant)
        assert out == Counter({"issued": 300 + 50 + 20 + 1000 + 30, "redeemed": 200 - 200 + 150 + 90 - 40,
                               "expired": 70, "reversed": 25, "adjusted_down": 12})

    def test_reading_stops_at_entries_recorded_well_before_the_period(self):
        start = at("2025-06-01T00:00:00Z")
        assert not L.stop_reading(entry("earn", 1, "2025-05-31T12:00:00Z"), start, parse_instant)
        assert L.stop_reading(entry("earn", 1, "2025-05-30T23:59:59Z"), start, parse_instant)


class TestRateAndReport:
    @pytest.mark.parametrize("expired,redeemed,rate", [
        (0, 0, None), (300, 400, "0.4285"), (200, 400, "0.3333"), (1, 0, "1.0000"), (0, 5, "0.0000"),
        (5, -5, None),  # returns outweighing everything leave no denominator
    ])
    def test_breakage_rate(self, expired, redeemed, rate):
        got = L.breakage_rate(expired, redeemed)
        assert (None if got is None else str(got)) == rate

    def test_estimated_liability_floors_with_the_reported_rate(self):
        assert L.estimated_liability(900, Decimal("0.4285")) == 514  # 900 × 0.5715 = 514.35
        assert L.estimated_liability(900, None) == 900
        assert L.estimated_liability(7, Decimal("1.0000")) == 0

    def test_build_report_from_summed_partial_sums(self):
        a = L.member_position({"available": 200, "held": 100, "lots": {"2025-07": 200},
                               "holds": {"h": {"points": 100, "lots": {"2025-07": 100}}}}, POLICY)
        b = L.member_position({"available": -200, "lots": {}}, POLICY)
        c = L.member_position({"available": 50, "pending": 100, "lots": {"2026-05": 50}}, POLICY)
        totals = a + b + c + Counter({"issued": 650, "redeemed": 400, "expired": 200, "reversed": 200})
        report = L.build_report(totals, point_value=2)
        assert report == {
            "outstanding": {"available": 250, "pending": 100, "held": 100},
            "outstanding_value": 900,
            "expiring_by_month": [{"month": "2026-07", "points": 300}, {"month": "2027-05", "points": 50}],
            "issued": 650, "redeemed": 400, "expired": 200,
            "breakage_rate": "0.3333",
            "estimated_liability": 600,
            "other_flows": {"reversed": 200, "adjusted_down": 0, "moved_net": 0},
            "negative_balance": 200, "closed_points": 0, "members": 3, "members_negative": 1, "members_failed": 0,
        }

    def test_an_empty_program(self):
        report = L.build_report(Counter(), point_value=1)
        assert (report["outstanding_value"], report["breakage_rate"], report["estimated_liability"],
                report["expiring_by_month"], report["members"]) == (0, None, 0, [], 0)


def test_the_domain_module_is_pure():
    import chalicelib.domain.liability as mod

    source = open(mod.__file__).read()
    for banned in ("boto3", "botocore", "pynamodb", "chalicelib.store", "chalicelib.services"):
        assert banned not in source
