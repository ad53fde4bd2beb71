"""The member aggregate (domain/member.py) and the bounded wallet: pure, no AWS."""
import json
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.clock import parse_instant
from chalicelib.domain.member import Member, OrderStats
from chalicelib.domain.tiers import TierState
from chalicelib.domain.wallet import MAX_PENDING_LOTS, Wallet

T0 = datetime(2026, 3, 1, 9, tzinfo=timezone.utc)


def test_a_new_member_stores_what_enrolment_always_stored():
    m = Member.new("m-1", {"name": "A"}, "bronze", T0)
    assert m.version is None and m.active
    assert m.to_state() == {
        "wallet": Wallet().to_dict(), "spend": {}, "seq": 0, "activities": {}, "referral_paid": False,
        "rewards": {}, "segment": None,
        "tier": {"tier_id": "bronze", "retained_until": None, "reached_at": "2026-03-01T09:00:00Z"},
        "orders": {"count": 0, "first_at": None, "last_at": None, "recent": []},
    }


def test_the_stored_form_round_trips_and_keeps_unknown_fields():
    state = {"wallet": {"available": 5, "lots": {"2026-02": 5}}, "tier": {"tier_id": "gold"}, "seq": 3,
             "orders": {"count": 1, "first_at": "2026-02-01T00:00:00Z", "recent": [1769904000]},
             "merged_from": ["x"], "import": {"import_id": "i", "row": 2}, "from_a_newer_release": {"k": 1}}
    m = Member.from_state("m-2", 4, "suspended", {}, state)
    assert (m.tier_id, m.seq, m.orders.count, m.merged_from, m.imported) == ("gold", 3, 1, ["x"], {"import_id": "i", "row": 2})
    again = Member.from_state("m-2", 4, "suspended", {}, json.loads(json.dumps(m.to_state())))
    assert again.to_state() == m.to_state()
    assert again.to_state()["from_a_newer_release"] == {"k": 1}
    assert "merged_into" not in m.to_state()  # optional parts only when set


def test_order_stats_stay_bounded():
    o = OrderStats()
    now = T0
    for day in range(800):
        placed = T0 + timedelta(days=day)
        first = o.record(placed, placed)
        assert first is (day == 0)
        now = placed
    assert o.count == 800 and len(o.recent) == 40 and len(o.months) <= 13
    assert o.first_at == "2026-03-01T09:00:00Z" and o.last_at == (now.strftime("%Y-%m-%dT%H:%M:%SZ"))


def _pending_wallet(n: int, gap_minutes: int) -> tuple[Wallet, list]:
    w = Wallet()
    promised = []
    for i in range(n):
        placed = T0 + timedelta(minutes=gap_minutes * i)
        release = placed + timedelta(days=14)
        w.earn(10 + i, "2026-03", order_id=f"o{i}", release_at=release, now=placed)
        promised.append(release)
    return w, promised


def test_pending_lots_are_bounded_and_keep_their_points():
    w, _ = _pending_wallet(200, 30)
    assert len(w.pending_lots) == MAX_PENDING_LOTS
    assert w.pending == sum(10 + i for i in range(200)) == sum(p.points for p in w.pending_lots)
    assert all(p.month == "2026-03" for p in w.pending_lots)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=60 * 24 * 20), min_size=1, max_size=60),
       st.integers(min_value=0, max_value=30))
def test_no_point_matures_before_its_promise(offsets, pending_days):
    """Whatever the orders' times: every point matures at or after its own order's release,
    nothing is lost, and the lots stay within the bound."""
    w = Wallet()
    releases = []
    for i, minutes in enumerate(sorted(offsets)):
        placed = T0 + timedelta(minutes=minutes)
        release = placed + timedelta(days=pending_days, hours=1)
        w.earn(7, "2026-03" if minutes < 60 * 24 * 10 else "2026-04", order_id=f"o{i}", release_at=release,
               now=placed)
        releases.append(release)
    assert len(w.pending_lots) <= MAX_PENDING_LOTS
    assert w.pending == 7 * len(offsets)
    # walk time forward through every promised release: matured points never exceed those promised by then
    for when in sorted(releases):
        w.mature(when)
        promised = 7 * sum(1 for r in releases if r <= when)
        assert w.available <= promised
    w.mature(max(releases) + timedelta(seconds=1))
    assert (w.available, w.pending) == (7 * len(offsets), 0)


def test_a_merged_lot_releases_at_the_later_instant():
    w, promised = _pending_wallet(MAX_PENDING_LOTS + 1, 60)
    merged = [p for p in w.pending_lots if p.order_id == ""]
    assert len(merged) == 1
    # the two closest lots (all an hour apart: the first two) merged, released at the later one
    assert parse_instant(merged[0].release_at) == promised[1]
    assert merged[0].points == 10 + 11


def test_tier_state_round_trips():
    t = TierState("silver", "2026-01-01T00:00:00Z", "2026-12-31T23:59:59Z")
    assert TierState.from_dict(t.to_dict()) == t


def test_pending_lots_are_stored_as_lists_and_older_keyed_lots_still_read():
    w = Wallet.from_dict({"available": 0, "pending": 30, "lifetime_earned": 30, "pending_lots": [
        {"order_id": "old", "points": 10, "month": "2026-02", "release_at": "2026-03-01T00:00:00Z"},
        ["new", 20, "2026-02", "2026-03-02T00:00:00Z"]]})
    assert [(p.order_id, p.points) for p in w.pending_lots] == [("old", 10), ("new", 20)]
    assert w.to_dict()["pending_lots"] == [["old", 10, "2026-02", "2026-03-01T00:00:00Z"],
                                           ["new", 20, "2026-02", "2026-03-02T00:00:00Z"]]
    assert w.mature(datetime(2026, 3, 1, tzinfo=timezone.utc)) == 10
