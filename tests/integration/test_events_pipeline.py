"""The events pipeline end to end (SPEC 2.16): events of a job, events surviving a crash
between the commit and the relay, and a member's events reaching a webhook once each, in
`sequence` order, however often the relay repeats itself."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

from chalicelib import relay
from chalicelib.services import webhooks
from tests.integration.test_events import tap  # noqa: F401
from tests.integration.test_tiers_expiry import run_job
from tests.integration.test_webhooks import Receiver, create


@pytest.fixture
def stream_relay(api, monkeypatch):
    """As in production: the request path only writes the outbox rows; nothing is sent
    until the relay runs (here: never, as if it crashed, until the sweep)."""
    from tests.factories import reset_caches

    monkeypatch.setenv("LOYALTY_RELAY", "stream")
    reset_caches()
    yield
    reset_caches()


def outbox_rows() -> list:
    from chalicelib.store.models import OutboxRecord

    return list(OutboxRecord.scan())


def test_expire_points_publishes_points_expired_once(api, tap):  # noqa: F811
    api.enrol("evx")
    api.accrue("evx", 10000, now="2025-01-20T00:00:00Z")
    tap()
    run_job(api, "expire-points", "2026-02-01")
    [expired] = tap()
    assert (expired["type"], expired["member_id"], expired["data"]["points"]) == ("points.expired", "evx", -100)
    assert expired["data"]["balance"] == {"available": 0, "pending": 0, "held": 0}
    run_job(api, "expire-points", "2026-02-01")  # a re-run expires nothing more
    assert tap() == []


def test_events_survive_a_crash_between_commit_and_relay(api, tap, stream_relay, monkeypatch):  # noqa: F811
    api.enrol("evc")
    assert api.accrue("evc", 60000, order_id="evc-o").status == 201
    assert tap() == []  # committed, not yet relayed (the relay "crashed")
    kinds = [(r.body.get("event") or {}).get("type", "message") for r in outbox_rows()]
    assert kinds.count("points.earned") == 1 and kinds.count("tier.changed") == 1
    monkeypatch.setattr(relay, "STALE_AFTER", timedelta(0))  # the hourly sweep, now
    assert relay.sweep() >= 3  # member.enrolled, points.earned, tier.changed (+ the tier message)
    got = tap()
    assert sorted(e["type"] for e in got) == ["member.enrolled", "points.earned", "tier.changed"]
    assert outbox_rows() == []
    assert relay.sweep() == 0 and tap() == []  # nothing twice


def test_a_members_events_reach_a_webhook_once_each_in_sequence_order(api, stream_relay, monkeypatch):
    rx = Receiver()
    try:
        create(api, rx.url)
        api.enrol("evw")
        for n in range(3):
            assert api.accrue("evw", 1000 * (n + 1), order_id=f"evw-o{n}").status == 201
        assert api.post("/v1/admin/members/evw/adjustments", {"adjustment_id": "evw-a", "points": -5, "reason": "test"},
                        role="admin").status == 201
        monkeypatch.setattr(relay, "STALE_AFTER", timedelta(0))
        rows = outbox_rows()
        relay.sweep()
        # the relay repeats itself (a stream batch retried after a partial failure): no second delivery
        from chalicelib.store import outbox
        from chalicelib.store import tx

        tx.write([outbox.put_op(r.body) for r in rows])
        relay.sweep()
        counts = webhooks.deliver_due()
        assert counts["delivered"] == 5 and counts["failed"] == 0
        got = [json.loads(r["body"]) for r in rx.requests]
        assert [e["type"] for e in sorted(got, key=lambda e: e["sequence"])] == [
            "member.enrolled", "points.earned", "points.earned", "points.earned", "points.adjusted"]
        assert len({e["event_id"] for e in got}) == 5  # at least once, deduplicated by event_id: once
        seqs = sorted(e["sequence"] for e in got)
        assert len(set(seqs)) == 5
        assert [e["data"]["points"] for e in sorted(got, key=lambda e: e["sequence"])[1:]] == [10, 20, 30, -5]
        assert webhooks.deliver_due()["due"] == 0
    finally:
        rx.close()
