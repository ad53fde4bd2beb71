"""Pure rules of transfers and merges (SPEC 2.15): lot moves, limits, merged state and tier."""
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.tiers import TierDef
from chalicelib.domain.wallet import PendingLot, Wallet, absorb, give_lots, receive_lots

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=timezone.utc)
TIERS = [TierDef("bronze", "Bronze", 0, Decimal("1.0")), TierDef("silver", "Silver", 50000, Decimal("1.25")),
         TierDef("gold", "Gold", 200000, Decimal("1.5"))]


def wallet(lots=None, available=None, **kw):
    lots = lots or {}
    return Wallet(available=sum(lots.values()) if available is None else available, lots=dict(lots), **kw)


def ok(w: Wallet) -> bool:
    return (sum(w.lots.values()) == max(w.available, 0) and w.pending == sum(p.points for p in w.pending_lots)
            and w.held == sum(h["points"] for h in w.holds.values()))


class TestLotMoves:
    def test_oldest_lots_leave_first_and_keep_their_month(self):
        sender, recipient = wallet({"2025-09": 200, "2025-06": 100}), wallet({"2026-03": 50})
        taken = give_lots(sender, 150)
        assert taken == {"2025-06": 100, "2025-09": 50}
        assert (sender.available, sender.lots) == (150, {"2025-09": 150})
        assert receive_lots(recipient, taken) == 150
        assert recipient.lots == {"2025-06": 100, "2025-09": 50, "2026-03": 50} and recipient.available == 200
        # neither earned nor spent
        assert (sender.lifetime_spent, recipient.lifetime_earned) == (0, 0)

    def test_only_available_points_move(self):
        w = wallet({"2026-01": 40}, pending=10, pending_lots=[PendingLot("o", 10, "2026-03", "2026-04-01T00:00:00Z")])
        with pytest.raises(ValueError):
            give_lots(w, 41)
        with pytest.raises(ValueError):
            give_lots(w, 0)
        assert w.available == 40  # a refused move changes nothing

    def test_a_deficit_is_covered_first(self):
        recipient = wallet(available=-30)
        receive_lots(recipient, {"2026-01": 50})
        assert (recipient.available, recipient.lots) == (20, {"2026-01": 20})

    @settings(max_examples=200, deadline=None)
    @given(st.dictionaries(st.sampled_from(["2025-01", "2025-05", "2025-11", "2026-02"]), st.integers(1, 500),
                           min_size=1), st.data())
    def test_nothing_is_made_or_lost(self, lots, data):
        sender, recipient = wallet(lots), wallet({"2025-05": 7})
        points = data.draw(st.integers(1, sum(lots.values())))
        before = sender.balance + recipient.balance
        receive_lots(recipient, give_lots(sender, points))
        assert sender.balance + recipient.balance == before
        assert ok(sender) and ok(recipient)
        # FIFO: what stays with the sender is never older than what left
        if sender.lots:
            moved_months = [m for m in lots if lots[m] > sender.lots.get(m, 0)]
            assert max(moved_months) <= min(sender.lots)


class TestAbsorb:
    def test_everything_moves_and_the_source_is_empty(self):
        survivor = wallet({"2025-05": 100}, lifetime_earned=100)
        source = wallet({"2025-04": 50, "2025-07": 300}, lifetime_earned=900, lifetime_spent=250,
                        pending=200, pending_lots=[PendingLot("o1", 200, "2026-03", "2026-03-23T00:00:00Z")],
                        held=150, holds={"h1": {"points": 150, "lots": {"2025-04": 150},
                                                "expires_at": "2026-03-10T10:30:00Z"}})
        moved = absorb(survivor, source)
        assert moved == 700
        assert survivor.lots == {"2025-04": 50, "2025-05": 100, "2025-07": 300}
        assert (survivor.available, survivor.pending, survivor.held) == (450, 200, 150)
        assert survivor.holds["h1"]["lots"] == {"2025-04": 150}
        assert [p.order_id for p in survivor.pending_lots] == ["o1"]
        assert (survivor.lifetime_earned, survivor.lifetime_spent) == (1000, 250)
        assert (source.balance, source.lots, source.holds, source.pending_lots) == (0, {}, {}, [])
        assert ok(survivor) and ok(source)

    def test_a_deficit_moves_too(self):
        survivor, source = wallet({"2026-01": 100}), wallet(available=-30)
        assert absorb(survivor, source) == -30
        assert (survivor.available, survivor.lots) == (70, {"2026-01": 70})
        survivor, source = wallet(available=-20), wallet({"2026-01": 50})
        absorb(survivor, source)
        assert (survivor.available, survivor.lots) == (30, {"2026-01": 30})

    @settings(max_examples=200, deadline=None)
    @given(st.integers(-100, 300), st.integers(-100, 300), st.integers(0, 50))
    def test_balances_add_up(self, a, b, pending):
        sv = wallet({"2025-03": a} if a > 0 else {}, available=a)
        src = wallet({"2025-08": b} if b > 0 else {}, available=b, pending=pending,
                     pending_lots=[PendingLot("o", pending, "2026-03", "2026-04-01T00:00:00Z")] if pending else [])
        total = sv.balance + src.balance
        moved = absorb(sv, src)
        assert moved == b + pending and sv.balance == total and src.balance == 0
        assert ok(sv) and ok(src)


class TestTransferLimits:
    def _settings(self, **kw):
        from chalicelib.schemas.program import TransferSettings

        return TransferSettings(**kw)

    def test_minimum_month_limit_and_switch(self):
        from chalicelib.errors import TransferLimitReached, TransfersDisabled
        from chalicelib.services.transfers import check_limits

        s = self._settings(min_points=10, max_points_per_month=100)
        check_limits(s, 10, 0)
        check_limits(s, 40, 60)  # exactly the limit
        with pytest.raises(TransferLimitReached):
            check_limits(s, 9, 0)
        with pytest.raises(TransferLimitReached):
            check_limits(s, 41, 60)
        check_limits(self._settings(), 10**9, 10**9)  # no month limit by default
        with pytest.raises(TransfersDisabled):
            check_limits(self._settings(enabled=False), 10, 0)

    def test_the_month_counter_is_per_utc_month(self):
        from chalicelib.domain.member import Member
        from chalicelib.services.transfers import month_sent

        sent = Member("a", transfers={"month": "2026-03", "points": 70})
        assert (month_sent(sent, "2026-03"), month_sent(sent, "2026-04"), month_sent(Member("b"), "2026-03")) == (70, 0, 0)

    def test_contradictory_settings_are_refused(self):
        from pydantic import ValidationError

        with pytest.raises(ValidationError):
            self._settings(min_points=100, max_points_per_month=50)
        with pytest.raises(ValidationError):
            self._settings(min_points=0)


class TestMergedTier:
    def test_the_highest_with_its_retained_until(self):
        from chalicelib.domain.tiers import TierState, merged_tier

        mine = TierState("bronze")
        theirs = TierState("gold", retained_until="2026-08-31T23:59:59Z", reached_at="2025-08-01T00:00:00Z")
        t = merged_tier(mine, theirs, 0, TIERS, NOW, 12)
        assert (t.tier_id, t.retained_until, t.reached_at) == ("gold", "2026-08-31T23:59:59Z", "2025-08-01T00:00:00Z")

    def test_both_held_it_the_later_retained_until(self):
        from chalicelib.domain.tiers import TierState, merged_tier

        a = TierState("silver", retained_until="2026-06-30T23:59:59Z")
        b = TierState("silver", retained_until="2026-09-30T23:59:59Z")
        assert merged_tier(a, b, 0, TIERS, NOW, 12).retained_until == "2026-09-30T23:59:59Z"
        assert merged_tier(b, a, 0, TIERS, NOW, 12).retained_until == "2026-09-30T23:59:59Z"

    def test_the_merged_window_earns_a_higher_tier_reached_now(self):
        from chalicelib.domain.tiers import TierState, merged_tier

        a = TierState("bronze")
        b = TierState("silver", retained_until="2026-06-30T23:59:59Z")
        t = merged_tier(a, b, 200000, TIERS, NOW, 12)
        assert (t.tier_id, t.retained_until) == ("gold", "2027-03-31T23:59:59Z")


class TestMergedState:
    def test_counters_buckets_and_ids(self):
        from chalicelib.domain.member import Member, merge_history

        survivor = {"spend": {"2026-02": 1000}, "orders": {"count": 2, "first_at": "2025-05-01T00:00:00Z",
                                                           "last_at": "2026-02-01T00:00:00Z",
                                                           "months": {"2026-02": 2},
                                                           "recent": [1769904000]},
                    "rewards": {"cup": 1}, "activities": {"review": {"total": 1, "days": {"2026-03-01": 1}}},
                    "merged_from": ["old"], "transfers": {"month": "2026-03", "points": 30}}
        source = {"spend": {"2026-02": 500, "2026-03": 700}, "rewards": {"cup": 2, "mug": 1},
                  "orders": {"count": 1, "first_at": "2025-01-01T00:00:00Z", "last_at": "2026-03-01T00:00:00Z",
                             "months": {"2026-03": 1}, "recent": ["2026-03-01T00:00:00Z"]},
                  "activities": {"review": {"total": 2, "days": {"2026-03-01": 2}}}, "referral_paid": True,
                  "merged_from": ["older"], "transfers": {"month": "2026-03", "points": 20},
                  "earned": {"days": {"2026-03-10": 40}, "months": {"2026-03": 90}}}
        survivor["earned"] = {"days": {"2026-03-10": 10}, "months": {"2026-03": 10, "2026-02": 5}}
        survivor = Member.from_state("sv", 3, "active", {}, survivor)
        source = Member.from_state("dup", 1, "active", {}, source)
        merge_history(survivor, source, NOW, 12)
        assert survivor.spend == {"2026-02": 1500, "2026-03": 700}
        o = survivor.orders
        assert (o.count, o.first_at, o.last_at, o.months) == (
            3, "2025-01-01T00:00:00Z", "2026-03-01T00:00:00Z", {"2026-02": 2, "2026-03": 1})
        assert o.recent == [1769904000, "2026-03-01T00:00:00Z"]  # oldest first, whatever the encoding
        assert survivor.rewards == {"cup": 3, "mug": 1}
        assert survivor.activities["review"] == {"total": 3, "days": {"2026-03-01": 3}}
        assert survivor.referral_paid is True
        assert survivor.merged_from == ["old", "dup", "older"]
        assert survivor.transfers == {"month": "2026-03", "points": 50}
        assert survivor.earned == {"days": {"2026-03-10": 50}, "months": {"2026-02": 5, "2026-03": 100}}
