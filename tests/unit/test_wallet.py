"""A member's points (SPEC 2.4–2.6): FIFO lots, pending points, deficits, reversals, expiry."""
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.wallet import Wallet


def utc(*a):
    return datetime(*a, tzinfo=timezone.utc)


def invariant(w: Wallet) -> None:
    assert sum(w.lots.values()) == max(w.available, 0)
    assert all(v > 0 for v in w.lots.values())
    assert w.pending == sum(p.points for p in w.pending_lots)


class TestFifo:
    def test_spending_takes_the_oldest_months_first(self):
        w = Wallet()
        w.earn(100, "2025-01")
        w.earn(50, "2025-02")
        w.earn(30, "2025-03")
        w.spend(120)
        assert w.lots == {"2025-02": 30, "2025-03": 30}
        w.spend(40)
        assert w.lots == {"2025-03": 20}
        assert (w.available, w.lifetime_earned, w.lifetime_spent) == (20, 180, 160)
        invariant(w)

    def test_lots_of_one_month_add_up_whatever_the_order_of_earning(self):
        w = Wallet()
        w.earn(10, "2025-03")
        w.earn(10, "2025-01")
        w.earn(5, "2025-03")
        assert w.lots == {"2025-01": 10, "2025-03": 15}
        w.spend(12)
        assert w.lots == {"2025-03": 13}

    def test_no_overdraft(self):
        w = Wallet()
        w.earn(10, "2025-01")
        assert not w.can_spend(11) and not w.can_spend(-1) and w.can_spend(10)
        with pytest.raises(ValueError):
            w.spend(11)
        assert w.available == 10 and w.lots == {"2025-01": 10}

    def test_give_back_returns_a_cancelled_spend_to_the_lots_it_came_from(self):
        w = Wallet()
        w.earn(50, "2025-01")
        w.earn(50, "2025-03")
        taken = w.spend(80)
        assert taken == {"2025-01": 50, "2025-03": 30} and w.lots == {"2025-03": 20}
        w.earn(10, "2025-06")
        w.give_back(taken)  # not a fresh lot of the cancellation month: no longer life
        assert (w.available, w.lifetime_spent, w.lots) == (110, 0, {"2025-01": 50, "2025-03": 50, "2025-06": 10})


class TestPending:
    def test_pending_until_release_then_available_in_the_earning_month(self):
        w = Wallet()
        assert w.earn(100, "2026-03", order_id="o1", release_at=utc(2026, 3, 15), now=utc(2026, 3, 1)) is True
        assert (w.available, w.pending, w.lots) == (0, 100, {})
        assert not w.can_spend(1)  # pending points cannot be redeemed
        assert w.mature(utc(2026, 3, 14, 23, 59, 59)) == 0
        assert w.mature(utc(2026, 4, 2)) == 100  # matured in April, still a March lot for expiry
        assert (w.available, w.pending, w.lots, w.pending_lots) == (100, 0, {"2026-03": 100}, [])
        invariant(w)

    def test_release_exactly_now_is_available_at_once(self):
        w = Wallet()
        assert w.earn(100, "2026-03", order_id="o1", release_at=utc(2026, 3, 1), now=utc(2026, 3, 1)) is False
        assert (w.available, w.pending) == (100, 0)

    def test_maturation_boundary_is_inclusive_and_per_lot(self):
        w = Wallet()
        w.earn(10, "2026-03", order_id="a", release_at=utc(2026, 3, 10), now=utc(2026, 3, 1))
        w.earn(20, "2026-03", order_id="b", release_at=utc(2026, 3, 20), now=utc(2026, 3, 1))
        assert w.mature(utc(2026, 3, 10)) == 10
        assert (w.available, w.pending, [p.order_id for p in w.pending_lots]) == (10, 20, ["b"])
        invariant(w)

    def test_reversal_takes_the_orders_pending_points_first(self):
        w = Wallet()
        w.earn(50, "2026-02")
        w.earn(100, "2026-03", order_id="o", release_at=utc(2026, 3, 31), now=utc(2026, 3, 1))
        w.earn(70, "2026-03", order_id="other", release_at=utc(2026, 3, 31), now=utc(2026, 3, 1))
        w.reverse(40, "o")
        assert (w.available, w.pending) == (50, 130)
        assert [(p.order_id, p.points) for p in w.pending_lots] == [("o", 60), ("other", 70)]
        w.reverse(80, "o")  # 60 from its pending lot, 20 from available
        assert (w.available, w.pending, w.lots) == (30, 70, {"2026-02": 30})
        assert [p.order_id for p in w.pending_lots] == ["other"]
        assert w.lifetime_earned == 220 - 120
        invariant(w)


class TestDeficit:
    def test_reversal_of_spent_points_goes_negative_and_later_earnings_cover_it_first(self):
        w = Wallet()
        w.earn(100, "2026-01")
        w.spend(100)
        w.reverse(30, "o")  # the order's points were already spent
        assert (w.available, w.lots) == (-30, {})
        assert not w.can_spend(0 + 1)
        w.earn(10, "2026-02")
        assert (w.available, w.lots) == (-20, {})  # all of it went to the deficit
        w.earn(50, "2026-03")
        assert (w.available, w.lots) == (30, {"2026-03": 30})
        invariant(w)

    def test_maturing_points_cover_a_deficit_too(self):
        w = Wallet()
        w.earn(100, "2026-03", order_id="o", release_at=utc(2026, 3, 15), now=utc(2026, 3, 1))
        w.debit(40)  # a negative adjustment while everything is pending
        assert (w.available, w.pending) == (-40, 100)
        w.mature(utc(2026, 3, 15))
        assert (w.available, w.pending, w.lots) == (60, 0, {"2026-03": 60})
        invariant(w)

    def test_debit_takes_lots_fifo_then_goes_below_zero(self):
        w = Wallet()
        w.earn(10, "2026-01")
        w.earn(10, "2026-02")
        w.debit(15)
        assert (w.available, w.lots) == (5, {"2026-02": 5})
        w.debit(15)
        assert (w.available, w.lots) == (-10, {})


class TestExpiry:
    def test_points_of_month_m_expire_at_the_end_of_m_plus_n(self):
        w = Wallet()
        w.earn(100, "2025-01")
        w.earn(50, "2025-02")
        assert w.expire(utc(2026, 1, 31, 23, 59, 59), 12) == 0
        assert w.expire(utc(2026, 2, 1), 12) == 100
        assert (w.available, w.lots) == (50, {"2025-02": 50})
        assert w.expire(utc(2026, 3, 1), 12) == 50 and w.available == 0
        invariant(w)

    def test_short_expiry_and_leap_february(self):
        w = Wallet()
        w.earn(10, "2028-01")
        assert w.expiring_soon(utc(2028, 2, 1), 1, 30) == [{"points": 10, "expires_at": "2028-02-29T23:59:59Z"}]
        assert w.expire(utc(2028, 2, 29, 23, 59, 59), 1) == 0
        assert w.expire(utc(2028, 3, 1), 1) == 10

    def test_pending_points_and_disabled_expiry(self):
        w = Wallet()
        w.earn(100, "2020-01", order_id="o", release_at=utc(2030, 1, 1), now=utc(2020, 1, 1))
        w.earn(10, "2020-01")
        assert w.expire(utc(2026, 1, 1), None) == 0
        assert w.expire(utc(2026, 1, 1), 12) == 10
        assert (w.available, w.pending) == (0, 100)  # pending points do not expire before they exist

    def test_expiring_soon_lists_lots_expiring_within_the_warning_days(self):
        w = Wallet()
        w.earn(100, "2025-01")
        w.earn(40, "2025-02")
        w.earn(7, "2025-06")
        now = utc(2026, 1, 10)
        assert w.expiring_soon(now, 12, 30) == [{"points": 100, "expires_at": "2026-01-31T23:59:59Z"}]
        assert w.expiring_soon(now, 12, 60) == [{"points": 100, "expires_at": "2026-01-31T23:59:59Z"},
                                                {"points": 40, "expires_at": "2026-02-28T23:59:59Z"}]
        assert w.expiring_soon(now, None, 30) == []
        assert w.expiring_soon(now, 12, 0) == []

    def test_expiring_soon_boundary_is_inclusive(self):
        w = Wallet()
        w.earn(100, "2025-01")  # expires 2026-01-31T23:59:59Z
        assert w.expiring_soon(utc(2026, 1, 1, 23, 59, 59), 12, 30) == [
            {"points": 100, "expires_at": "2026-01-31T23:59:59Z"}]
        assert w.expiring_soon(utc(2026, 1, 1, 23, 59, 58), 12, 30) == []


def test_round_trip_through_the_stored_dict():
    w = Wallet()
    w.earn(100, "2025-01")
    w.earn(30, "2025-02", order_id="o", release_at=utc(2025, 3, 1), now=utc(2025, 2, 1))
    w.spend(20)
    again = Wallet.from_dict(w.to_dict())
    assert again == w and again.to_dict() == w.to_dict()
    assert Wallet.from_dict(None) == Wallet()


# --- property: any sequence of operations keeps the wallet consistent ---------------------------

ops = st.lists(st.one_of(
    st.tuples(st.just("earn"), st.integers(0, 500), st.integers(1, 12)),
    st.tuples(st.just("earn_pending"), st.integers(1, 500), st.integers(1, 12)),
    st.tuples(st.just("spend"), st.integers(0, 800), st.just(0)),
    st.tuples(st.just("debit"), st.integers(0, 300), st.just(0)),
    st.tuples(st.just("reverse"), st.integers(0, 300), st.integers(0, 5)),
    st.tuples(st.just("mature"), st.integers(0, 60), st.just(0)),
), max_size=40)


@settings(deadline=None)  # a shared, noisy machine must not fail a pure rule
@given(ops)
def test_any_sequence_keeps_lots_pending_and_the_balance_consistent(sequence):
    w = Wallet()
    start = utc(2026, 1, 1)
    balance = 0  # what the ledger would sum to
    for i, (op, n, arg) in enumerate(sequence):
        if op == "earn":
            w.earn(n, f"2026-{arg:02d}")
            balance += n
        elif op == "earn_pending":
            w.earn(n, f"2026-{arg:02d}", order_id=f"o{i % 6}", release_at=start + timedelta(days=n % 30),
                   now=start)
            balance += n
        elif op == "spend" and w.can_spend(n):
            w.spend(n)
            balance -= n
        elif op == "debit":
            w.debit(n)
            balance -= n
        elif op == "reverse":
            w.reverse(n, f"o{arg}")
            balance -= n
        elif op == "mature":
            w.mature(start + timedelta(days=n))
        invariant(w)
        assert w.balance == balance
