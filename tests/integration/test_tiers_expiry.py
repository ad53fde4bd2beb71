"""Issue 3: tiers, expiry, pending points and the jobs that apply them (SPEC 2.4, 2.6, 2.7)."""
import json

import pytest

from tests.factories import assert_invariant


def run_job(api, job, as_of):
    r = api.post("/v1/admin/jobs", {"job": job, "as_of": as_of}, role="admin")
    assert r.status == 202, r.body
    job_body = api.get(f"/v1/admin/jobs/{r.body['job_id']}", role="admin").body
    assert job_body["status"] == "succeeded", job_body
    return job_body


def put_settings(api, **changes):
    current = api.get("/v1/admin/settings", role="admin").body
    r = api.put("/v1/admin/settings", {**current, **changes}, role="admin")
    assert r.status == 200, r.body


def queued_messages():
    from chalicelib.messaging import queue_url, sqs_client

    out = []
    while True:
        resp = sqs_client().receive_message(QueueUrl=queue_url(), MaxNumberOfMessages=10)
        msgs = resp.get("Messages", [])
        if not msgs:
            return out
        out += [json.loads(m["Body"]) for m in msgs]


class TestUpgrades:
    def test_accrual_crossing_two_thresholds_upgrades_in_the_same_write(self, api):
        api.enrol("u1", consents={"email": False, "push": True, "sms": False})
        r = api.accrue("u1", 250000, now="2026-05-10T10:00:00Z")
        assert r.status == 201
        assert r.body["tier_change"] == {"from": "bronze", "to": "gold"}
        assert r.body["points_earned"] == 2500  # bronze multiplier applied to this order
        m = api.member("u1", now="2026-05-10T10:00:00Z")
        assert m["tier"]["tier_id"] == "gold"
        assert m["tier"]["retained_until"] == "2027-05-31T23:59:59Z"
        assert m["tier"]["next_tier"] == "platinum"
        assert m["tier"]["spend_to_next_tier"] == 250000
        # the gold multiplier applies from the next accrual on
        r2 = api.accrue("u1", 10000, now="2026-05-11T10:00:00Z")
        assert r2.body["points_earned"] == 150
        assert r2.body["tier_change"] is None
        msgs = [m for m in queued_messages() if m["template"] == "tier_changed"]
        assert len(msgs) == 1
        assert msgs[0]["member_id"] == "u1" and msgs[0]["channel"] == "push"
        assert msgs[0]["variables"]["tier"] == "gold"
        assert_invariant("u1")

    def test_refund_lowers_the_order_months_qualifying_spend(self, api):
        api.enrol("u2")
        api.accrue("u2", 60000, order_id="big", now="2026-05-10T10:00:00Z")
        r = api.post("/v1/members/u2/refunds", {"refund_id": "rf", "order_id": "big", "amount": 20000},
                     now="2026-05-12T10:00:00Z")
        assert r.status == 201 and r.body["points_reversed"] == 200
        m = api.member("u2", now="2026-05-12T10:00:00Z")
        assert m["tier"]["qualifying_spend"] == 40000
        assert m["tier"]["tier_id"] == "silver"  # refunds never downgrade directly; only the job does
        assert_invariant("u2")


class TestDowngrades:
    def test_spec_example_gold_retained_then_soft_landing_to_silver(self, api):
        api.enrol("d1")
        api.accrue("d1", 200000, now="2025-01-15T09:00:00Z")
        assert api.member("d1", now="2025-01-15T09:00:00Z")["tier"]["retained_until"] == "2026-01-31T23:59:59Z"
        run_job(api, "recalculate-tiers", "2026-01-31T12:00:00Z")
        assert api.member("d1", now="2026-01-31T12:00:00Z")["tier"]["tier_id"] == "gold"
        job = run_job(api, "recalculate-tiers", "2026-03-01")
        assert job["counts"]["changed"] == 1
        m = api.member("d1", now="2026-03-01T00:00:00Z")
        assert m["tier"]["tier_id"] == "silver"
        assert m["tier"]["retained_until"] == "2027-03-31T23:59:59Z"
        # re-running the same day changes nothing twice
        again = run_job(api, "recalculate-tiers", "2026-03-01")
        assert again["counts"].get("changed", 0) == 0

    def test_without_soft_landing_drops_to_the_earned_tier(self, api):
        put_settings(api, tier_soft_landing=False)
        api.enrol("d2")
        api.accrue("d2", 600000, now="2025-01-15T09:00:00Z")
        run_job(api, "recalculate-tiers", "2026-03-01")
        assert api.member("d2", now="2026-03-01T00:00:00Z")["tier"]["tier_id"] == "bronze"

    def test_earned_tier_at_least_current_changes_nothing(self, api):
        api.enrol("d3")
        api.accrue("d3", 60000, now="2025-01-15T09:00:00Z")
        api.accrue("d3", 60000, now="2026-02-15T09:00:00Z")
        job = run_job(api, "recalculate-tiers", "2026-03-01")
        assert job["counts"].get("changed", 0) == 0
        assert api.member("d3", now="2026-03-01T00:00:00Z")["tier"]["tier_id"] == "silver"


class TestExpiry:
    def test_points_expire_at_end_of_month_m_plus_n_with_one_entry(self, api):
        api.enrol("e1")
        api.accrue("e1", 10000, now="2025-01-20T00:00:00Z")  # 100 pts, month 2025-01
        api.accrue("e1", 5000, now="2025-02-03T00:00:00Z")   # 50 pts, month 2025-02
        m = api.member("e1", now="2026-01-10T00:00:00Z")
        assert m["points"]["expiring_soon"] == [{"points": 100, "expires_at": "2026-01-31T23:59:59Z"}]
        run_job(api, "expire-points", "2026-01-31T23:59:59Z")
        assert api.member("e1", now="2026-01-31T23:59:59Z")["points"]["available"] == 150
        job = run_job(api, "expire-points", "2026-02-01")
        assert job["counts"]["points_expired"] == 100
        assert job["counts"]["members_expired"] == 1
        ledger = api.get("/v1/members/e1/ledger").body["items"]
        assert ledger[0]["type"] == "expire" and ledger[0]["points"] == -100
        assert ledger[0]["balance_after"] == 50
        again = run_job(api, "expire-points", "2026-02-01")
        assert again["counts"].get("points_expired", 0) == 0
        assert_invariant("e1")

    def test_fifo_spending_consumes_oldest_lots_first(self, api):
        api.enrol("e2")
        api.accrue("e2", 10000, now="2025-01-20T00:00:00Z")  # 100 (2025-01)
        api.accrue("e2", 10000, now="2025-03-20T00:00:00Z")  # 100 (2025-03)
        r = api.post("/v1/admin/members/e2/adjustments",
                     {"adjustment_id": "adj-e2", "points": -120, "reason": "correction"}, role="admin",
                     now="2025-04-01T00:00:00Z")
        assert r.status == 201
        job = run_job(api, "expire-points", "2026-02-01")  # 2025-01 lot is fully spent
        assert job["counts"].get("points_expired", 0) == 0
        job = run_job(api, "expire-points", "2026-04-01")  # 80 left from 2025-03
        assert job["counts"]["points_expired"] == 80
        assert api.member("e2", now="2026-04-01T00:00:00Z")["points"]["available"] == 0
        assert_invariant("e2")

    def test_negative_balance_has_nothing_to_expire(self, api):
        api.enrol("e3")
        api.accrue("e3", 10000, order_id="e3o", now="2025-01-20T00:00:00Z")
        api.post("/v1/admin/members/e3/adjustments", {"adjustment_id": "adj-e3", "points": -100, "reason": "spent"},
                 role="admin", now="2025-01-21T00:00:00Z")
        api.post("/v1/members/e3/refunds", {"refund_id": "r-e3", "order_id": "e3o", "amount": 10000},
                 now="2025-01-22T00:00:00Z")
        assert api.member("e3", now="2025-01-22T00:00:00Z")["points"]["available"] == -100
        job = run_job(api, "expire-points", "2026-06-01")
        assert job["counts"].get("points_expired", 0) == 0
        r = api.accrue("e3", 15000, now="2026-06-02T00:00:00Z")
        assert r.body["balance"]["available"] == 50  # the deficit is covered first
        assert_invariant("e3")

    def test_expiry_disabled(self, api):
        put_settings(api, points_expiry_months=None)
        api.enrol("e4")
        api.accrue("e4", 10000, now="2020-01-20T00:00:00Z")
        job = run_job(api, "expire-points", "2026-06-01")
        assert job["counts"].get("points_expired", 0) == 0
        assert api.member("e4", now="2026-06-01T00:00:00Z")["points"]["expiring_soon"] == []


class TestPending:
    def test_pending_until_return_window_closes(self, api):
        put_settings(api, pending_days=14)
        api.enrol("p1")
        r = api.accrue("p1", 10000, order_id="p1o", now="2026-03-01T10:00:00Z")
        assert r.body["pending"] == 100 and r.body["balance"] == {"available": 0, "pending": 100, "held": 0}
        m = api.member("p1", now="2026-03-15T09:59:59Z")
        assert m["points"]["pending"] == 100
        m = api.member("p1", now="2026-03-15T10:00:00Z")  # reads show the current split
        assert m["points"] == {**m["points"], "available": 100, "pending": 0}
        job = run_job(api, "mature-points", "2026-03-15T11:00:00Z")
        assert job["counts"]["points_matured"] == 100
        assert run_job(api, "mature-points", "2026-03-15T12:00:00Z")["counts"].get("points_matured", 0) == 0
        assert_invariant("p1")

    def test_refund_during_return_window_reverses_pending_points(self, api):
        put_settings(api, pending_days=30)
        api.enrol("p2")
        api.accrue("p2", 10000, order_id="p2o", now="2026-03-01T10:00:00Z")
        r = api.post("/v1/members/p2/refunds", {"refund_id": "p2r", "order_id": "p2o", "amount": 4000},
                     now="2026-03-05T10:00:00Z")
        assert r.body["points_reversed"] == 40
        assert r.body["balance"] == {"available": 0, "pending": 60, "held": 0}
        assert_invariant("p2")

    def test_later_write_matures(self, api):
        put_settings(api, pending_days=7)
        api.enrol("p3")
        api.accrue("p3", 10000, now="2026-03-01T10:00:00Z")
        r = api.accrue("p3", 20000, now="2026-03-09T10:00:00Z")
        assert r.body["balance"] == {"available": 100, "pending": 200, "held": 0}
        assert_invariant("p3")


def test_job_resumes_after_a_crash_without_double_effects(api, monkeypatch):
    from chalicelib.errors import RetryLater
    from chalicelib.jobs import framework
    from chalicelib.services import lifecycle

    for i in range(12):
        api.enrol(f"c{i:02d}")
        api.accrue(f"c{i:02d}", 10000, now="2025-01-20T00:00:00Z")
    job = framework.create("expire-points", framework.parse_as_of("2026-02-01"), actor="test", segments=3)
    real = lifecycle.expire_points
    calls = {"n": 0}

    def flaky(row, as_of):
        calls["n"] += 1
        if calls["n"] == 7:
            raise RetryLater("the store stopped answering")  # transient: the run stops, resumable
        return real(row, as_of)

    monkeypatch.setattr(lifecycle, "expire_points", flaky)
    with pytest.raises(RetryLater):
        framework.execute(job["job_id"])
    failed = framework.get_job(job["job_id"])
    assert failed["status"] == "failed" and failed["error"].startswith("RetryLater")  # it says why
    monkeypatch.setattr(lifecycle, "expire_points", real)
    done = framework.execute(job["job_id"])
    assert done["status"] == "succeeded"
    assert done["counts"]["points_expired"] == 1200
    assert done["counts"]["members_expired"] == 12
    assert done["counts"]["scanned"] == 12
    for i in range(12):
        ledger = api.get(f"/v1/members/c{i:02d}/ledger").body["items"]
        assert [e["type"] for e in ledger] == ["expire", "earn"]
        assert_invariant(f"c{i:02d}")


def test_fanned_out_segments_finish_the_job(api):
    from chalicelib.jobs import framework

    for i in range(5):
        api.enrol(f"f{i}")
    job = framework.create("mature-points", framework.parse_as_of("2026-02-01"), actor="test", segments=3)
    for seg in range(3):
        state = framework.execute(job["job_id"], only_segment=seg)
        assert state["status"] == ("succeeded" if seg == 2 else "running")
    assert framework.get_job(job["job_id"])["counts"]["scanned"] == 5


def test_schedule_runs_the_job(aws):
    from chalice.test import Client

    from app import app
    from chalicelib.store.models import JobRecord

    with Client(app) as c:
        event = c.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event", detail={},
                                           resources=[])
        event["time"] = "2026-02-01T00:10:00Z"
        c.lambda_.invoke("expire-points", event)
    jobs = [r.data for r in JobRecord.scan() if "#" not in r.job_id]
    assert len(jobs) == 1
    assert jobs[0]["job"] == "expire-points" and jobs[0]["status"] == "succeeded"
    assert jobs[0]["as_of"] == "2026-02-01T00:10:00Z" and jobs[0]["actor"] == "schedule:expire-points"
