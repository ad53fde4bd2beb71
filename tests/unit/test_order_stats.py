"""The member item's order timestamps (`orders.recent`): kept in epoch seconds, read alike
whether an item holds seconds or the ISO strings of items written before."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from chalicelib.domain import order_stats, rfm


def _at(day: int, hour: int = 10) -> datetime:
    return datetime(2025, 1, 1, hour, tzinfo=timezone.utc) + timedelta(days=day)


def test_seconds_round_trip_to_the_same_iso_instant():
    t = datetime(2025, 3, 9, 23, 59, 58, 999999, tzinfo=timezone.utc)
    assert order_stats.encode(t) == 1741564798
    assert order_stats.decode(1741564798) == "2025-03-09T23:59:58Z"
    assert order_stats.decode("2025-03-09T23:59:58Z") == "2025-03-09T23:59:58Z"
    assert order_stats.recent_seconds({"recent": ["2025-03-09T23:59:58Z", 1741564700]}) == [1741564700, 1741564798]


def test_with_order_keeps_the_newest_within_the_horizon_in_seconds():
    recent: list = []
    for d in range(60):
        recent = order_stats.with_order(recent, _at(d), _at(d) - timedelta(days=400), 40)
    assert len(recent) == 40 and all(type(s) is int for s in recent)
    assert recent[0] == order_stats.encode(_at(20)) and recent[-1] == order_stats.encode(_at(59))
    # an old ISO list converts on the next order; timestamps before the horizon drop out
    legacy = ["2024-01-01T10:00:00Z", "2025-01-05T10:00:00Z"]
    assert order_stats.with_order(legacy, _at(10), _at(0), 40) == [order_stats.encode(_at(4)),
                                                                   order_stats.encode(_at(10))]


def test_rfm_reads_seconds_and_iso_strings_the_same_way():
    stamps = [_at(d, hour=d % 24) for d in range(0, 400, 9)]
    base = {"count": 70, "first_at": "2024-06-01T08:00:00Z", "last_at": order_stats.decode(order_stats.encode(stamps[-1]))}
    as_iso = {"orders": {**base, "recent": [order_stats.decode(order_stats.encode(t)) for t in stamps]},
              "spend": {"2025-06": 12000, "2025-12": 3000}}
    as_seconds = {"orders": {**base, "recent": [order_stats.encode(t) for t in stamps]}, "spend": as_iso["spend"]}
    for as_of in (_at(200, 10), _at(200, 11), _at(380), _at(500)):
        a, b = rfm.inputs_from_state("m", as_iso, as_of), rfm.inputs_from_state("m", as_seconds, as_of)
        assert a == b
        assert rfm.calibration_from_state(as_iso, as_of, 90) == rfm.calibration_from_state(as_seconds, as_of, 90)
    # an order exactly at as_of counts, one a second later does not (back-dated scoring)
    at = stamps[20]
    inputs = rfm.inputs_from_state("m", as_seconds, at)
    assert inputs.recency_days == 0 and inputs.orders == 70 - (len(stamps) - 21)
    later = rfm.inputs_from_state("m", as_seconds, at - timedelta(seconds=1))
    assert later.orders == inputs.orders - 1


def test_the_member_json_is_compact_utf8_and_keeps_a_lone_surrogate_escaped():
    import json

    from chalicelib.store.members import compact_json

    assert compact_json({"name": "さくら", "n": [1, 2]}) == '{"name":"さくら","n":[1,2]}'
    odd = compact_json({"name": "a\ud800b"})  # valid JSON input, not encodable as UTF-8
    assert odd == '{"name":"a\\ud800b"}' and json.loads(odd) == {"name": "a\ud800b"}
    odd.encode("utf-8")
