"""The pure hold maths of the wallet (SPEC 2.14): FIFO holds, release to the same lots,
partial capture spending the oldest held points, slices for refunds."""
from datetime import datetime, timezone

from chalicelib.domain.wallet import Wallet, slice_lots, split_lots

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)


def wallet_with(**lots) -> Wallet:
    w = Wallet()
    for month, points in sorted(lots.items()):
        w.earn(points, month.replace("_", "-"))
    return w


def meta(expires="2026-06-01T00:30:00Z"):
    return {"expires_at": expires, "created_at": "2026-06-01T00:00:00Z", "amount": 0}


def test_a_hold_takes_the_oldest_lots_and_keeps_the_balance():
    w = wallet_with(m2026_01=100, m2026_03=100)
    taken = w.hold("h1", 150, **meta())
    assert taken == {"m2026-01": 100, "m2026-03": 50}
    assert (w.available, w.held, w.balance) == (50, 150, 200)
    assert w.lots == {"m2026-03": 50}


def test_release_returns_points_to_the_lots_they_came_from():
    w = wallet_with(m2026_01=100, m2026_03=100)
    w.hold("h1", 150, **meta())
    w.release("h1")
    assert w.lots == {"m2026-01": 100, "m2026-03": 100}
    assert (w.available, w.held, w.holds) == (200, 0, {})
    assert w.lifetime_spent == 0


def test_a_partial_capture_spends_the_oldest_and_returns_the_rest():
    w = wallet_with(m2026_01=100, m2026_03=100)
    w.hold("h1", 150, **meta())
    spent = w.capture("h1", 120)
    assert spent == {"m2026-01": 100, "m2026-03": 20}
    assert w.lots == {"m2026-03": 80}
    assert (w.available, w.held, w.lifetime_spent, w.balance) == (80, 0, 120, 80)


def test_a_hold_needs_available_points():
    w = wallet_with(m2026_01=10)
    try:
        w.hold("h1", 11, **meta())
    except ValueError:
        pass
    else:
        raise AssertionError("held more than available")
    assert (w.available, w.held) == (10, 0)


def test_expired_holds_are_released_at_their_time():
    w = wallet_with(m2026_01=100)
    w.hold("early", 30, **meta("2026-06-01T00:10:00Z"))
    w.hold("late", 30, **meta("2026-06-01T01:00:00Z"))
    released = w.release_expired(datetime(2026, 6, 1, 0, 10, tzinfo=timezone.utc))
    assert [h["hold_id"] for h in released] == ["early"]
    assert (w.available, w.held, list(w.holds)) == (70, 30, ["late"])


def test_a_wallet_round_trips_its_holds():
    w = wallet_with(m2026_01=100)
    w.hold("h1", 40, **meta())
    again = Wallet.from_dict(w.to_dict())
    assert (again.held, again.holds) == (40, w.holds)


def test_slices_lay_lots_out_oldest_first():
    lots = {"2026-01": 30, "2026-02": 20}
    assert split_lots(lots, 40) == ({"2026-01": 30, "2026-02": 10}, {"2026-02": 10})
    assert slice_lots(lots, 0, 25) == {"2026-01": 25}
    assert slice_lots(lots, 25, 50) == {"2026-01": 5, "2026-02": 20}
    assert sum(slice_lots(lots, a, b) and sum(slice_lots(lots, a, b).values()) or 0
               for a, b in [(0, 7), (7, 33), (33, 50)]) == 50
