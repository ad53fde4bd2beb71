"""The points liability report (SPEC 2.17): every figure worked by hand from a small history
with pending points, a hold, a negative balance, a cancelled redemption, an expiry run and
entries on both sides of the 12-month period; segments, resumption and the route's 4xx."""
from __future__ import annotations

import pytest

from tests.factories import assert_invariant

AS_OF = "2026-06-01T00:00:00Z"  # period: [2025-06-01, 2026-06-01)
R = "/v1/admin/reports/liability"


def _reward(api, reward_id, cost):
    r = api.post("/v1/admin/rewards", {"reward_id": reward_id, "name": reward_id, "cost_points": cost,
                                       "kind": "voucher"}, role="admin")
    assert r.status == 201, r.body


def _redeem(api, member_id, reward_id, now):
    r = api.post(f"/v1/members/{member_id}/redemptions", {"reward_id": reward_id}, role="service", now=now)
    assert r.status == 201, r.body
    return r.body


def _ok(resp, status=201):
    assert resp.status == status, resp.body
    return resp.body


def history(api):
    """Three members (1 point per 100 yen, bronze's multiplier 1), point_value 2.

    la: earn 400 (2025-04-15, before the period) · earn 300 (2025-07-01; that order lifts la
        to silver, whose multiplier applies from the next order on) · redeem 200 from the
        2025-04 lot (2025-08-01) · redeem 100 and cancel it (2025-09) · expire-points as of
        2026-05-01 expires the rest of the 2025-04 lot (200) · hold 100 at 2026-05-31 23:50,
        still open at as_of → available 200, held 100, all from the 2025-07 lot (expires 2026-07).
    lb: earn 200 (2026-01-10) · redeem 200 (01-11) · the order is refunded in full (01-12):
        reversal 200 → available −200 (counts 0; negative_balance 200).
    lc: (pending_days 14 from here) earn 100 (2026-05-25, pending until 06-08) · review
        activity 50 (2026-05-26, lot 2026-05, expires 2027-05).
    """
    api.settings(point_value=2)
    _reward(api, "cup", 200)
    _reward(api, "pen", 100)
    for m in ("la", "lb", "lc"):
        api.enrol(m)
    _ok(api.accrue("la", 40000, order_id="la-1", now="2025-04-15T10:00:00Z", occurred_at="2025-04-15T10:00:00Z"))
    _ok(api.accrue("la", 30000, order_id="la-2", now="2025-07-01T10:00:00Z", occurred_at="2025-07-01T10:00:00Z"))
    _redeem(api, "la", "cup", "2025-08-01T10:00:00Z")
    pen = _redeem(api, "la", "pen", "2025-09-01T10:00:00Z")
    _ok(api.post(f"/v1/members/la/redemptions/{pen['redemption_id']}/cancel", role="service",
                 now="2025-09-02T10:00:00Z"), 200)
    job = _ok(api.post("/v1/admin/jobs", {"job": "expire-points", "as_of": "2026-05-01T00:10:00Z"}, role="admin"), 202)
    assert api.get(f"/v1/admin/jobs/{job['job_id']}", role="admin").body["counts"]["points_expired"] == 200
    _ok(api.post("/v1/members/la/point-holds", {"hold_id": "la-h", "points": 100}, now="2026-05-31T23:50:00Z"))

    _ok(api.accrue("lb", 20000, order_id="lb-1", now="2026-01-10T10:00:00Z", occurred_at="2026-01-10T10:00:00Z"))
    _redeem(api, "lb", "cup", "2026-01-11T10:00:00Z")
    _ok(api.refund("lb", "lb-1", 20000, now="2026-01-12T10:00:00Z"))

    api.settings(pending_days=14)
    _ok(api.accrue("lc", 10000, order_id="lc-1", now="2026-05-25T10:00:00Z", occurred_at="2026-05-25T10:00:00Z"))
    _ok(api.activity("lc", "review", now="2026-05-26T10:00:00Z"))
    for m in ("la", "lb", "lc"):
        assert_invariant(m)


EXPECTED = {
    "as_of": AS_OF,
    "period": {"from": "2025-06-01T00:00:00Z", "to": AS_OF},
    "currency": "JPY",
    "point_value": 2,
    "outstanding": {"available": 250, "pending": 100, "held": 100},  # la 200 + lb 0 + lc 50
    "outstanding_value": 900,  # 450 × 2
    "expiring_by_month": [{"month": "2026-07", "points": 300}, {"month": "2027-05", "points": 50}],
    "issued": 650,  # 300 + 200 + 100 + 50 (la's 400 of 2025-04 is before the period)
    "redeemed": 400,  # 200 + (100 − 100) + 200
    "expired": 200,
    "breakage_rate": "0.3333",  # 200 / (200 + 400) = 0.33333… floored
    "estimated_liability": 600,  # floor(900 × 0.6667) = floor(600.03)
    "other_flows": {"reversed": 200, "adjusted_down": 0, "moved_net": 0},
    "negative_balance": 200,
    "closed_points": 0,
    "members": 3,
    "members_negative": 1,
    "members_failed": 0,
}


def _figures(report: dict) -> dict:
    return {k: report[k] for k in EXPECTED}


def test_every_figure_of_the_report_worked_by_hand(api):
    history(api)
    assert api.get(R, role="admin").error == "NOT_FOUND"  # before any run
    job = _ok(api.post("/v1/admin/jobs", {"job": "report-liability", "as_of": AS_OF}, role="admin"), 202)
    assert job["status"] == "succeeded", job
    report = _ok(api.get(R, role="admin"), 200)
    assert _figures(report) == EXPECTED
    assert report["job_id"] == job["job_id"]
    # the job's counts are the summed partial sums
    counts = api.get(f"/v1/admin/jobs/{job['job_id']}", role="admin").body["counts"]
    assert (counts["issued"], counts["expiring:2026-07"], counts["members"]) == (650, 300, 3)


def test_the_latest_report_is_the_newest_as_of_and_flows_follow_the_period(api):
    history(api)
    for as_of in ("2026-06-01T00:00:00Z", "2025-10-01T00:00:00Z"):  # the older one runs last
        assert _ok(api.post("/v1/admin/jobs", {"job": "report-liability", "as_of": as_of}, role="admin"),
                   202)["status"] == "succeeded"
    report = api.get(R, role="admin").body
    assert report["as_of"] == AS_OF and report["issued"] == 650
    from chalicelib.store import reports

    older = [r.body for r in reports.ReportRecord.query("liability") if r.body["as_of"] == "2025-10-01T00:00:00Z"]
    [older] = older
    # [2024-10-01, 2025-10-01): la's earn 400 + 300, redeem 200, redeem and cancel 100; nothing expired yet
    assert (older["issued"], older["redeemed"], older["expired"], older["breakage_rate"]) == (700, 200, 0, "0.0000")
    # outstanding is the members' balances at the run; with a rate of 0 the estimate is the whole value
    assert older["estimated_liability"] == older["outstanding_value"] == 900


def test_no_redemption_and_no_expiry_means_no_breakage_rate(api):
    api.enrol("solo")
    _ok(api.adjust("solo", 120, now="2026-05-02T00:00:00Z"))
    _ok(api.adjust("solo", -20, now="2026-05-03T00:00:00Z"))
    _ok(api.post("/v1/admin/jobs", {"job": "report-liability", "as_of": AS_OF}, role="admin"), 202)
    report = api.get(R, role="admin").body
    assert (report["issued"], report["other_flows"]["adjusted_down"], report["breakage_rate"],
            report["estimated_liability"], report["outstanding_value"]) == (120, 20, None, 100, 100)
    assert report["expiring_by_month"] == [{"month": "2027-05", "points": 100}]


def test_a_closed_members_points_are_outstanding_and_reported_apart(api):
    api.enrol("gone", email="gone@example.com")
    _ok(api.adjust("gone", 80, now="2026-05-02T00:00:00Z"))
    _ok(api.post("/v1/members/gone/close", role="admin", now="2026-05-03T00:00:00Z"), 200)
    _ok(api.post("/v1/admin/jobs", {"job": "report-liability", "as_of": AS_OF}, role="admin"), 202)
    report = api.get(R, role="admin").body
    assert (report["outstanding"]["available"], report["closed_points"], report["issued"]) == (80, 80, 80)


def test_expiry_disabled_leaves_nothing_expiring(api):
    api.settings(points_expiry_months=None)
    api.enrol("keep")
    _ok(api.adjust("keep", 70, now="2026-05-02T00:00:00Z"))
    _ok(api.post("/v1/admin/jobs", {"job": "report-liability", "as_of": AS_OF}, role="admin"), 202)
    report = api.get(R, role="admin").body
    assert (report["outstanding"]["available"], report["expiring_by_month"]) == (70, [])


def test_the_programs_expiry_policy_decides_the_expiry_months(api):
    api.settings(points_expiry_policy="last_activity")
    api.enrol("la1")
    _ok(api.adjust("la1", 100, now="2026-01-10T00:00:00Z"))
    _ok(api.adjust("la1", 50, now="2026-03-05T00:00:00Z"))
    _ok(api.post("/v1/admin/jobs", {"job": "report-liability", "as_of": AS_OF}, role="admin"), 202)
    report = api.get(R, role="admin").body
    # every point waits for the last activity (2026-03) + 12 months, as expire-points would
    assert (report["points_expiry_policy"], report["expiring_by_month"]) == (
        "last_activity", [{"month": "2027-03", "points": 150}])


def test_fanned_out_segments_store_the_report_once_the_last_one_is_done(api):
    from chalicelib.jobs import framework

    history(api)
    job = framework.create("report-liability", framework.parse_as_of(AS_OF), actor="test", segments=3)
    for segment in (2, 0):
        framework.execute(job["job_id"], only_segment=segment)
        assert api.get(R, role="admin").error == "NOT_FOUND"
    framework.execute(job["job_id"], only_segment=1)
    assert framework.get_job(job["job_id"])["status"] == "succeeded"
    assert _figures(api.get(R, role="admin").body) == EXPECTED
    framework.handle_worker_message('{"job_id": "%s", "segment": 1}' % job["job_id"])  # a redelivery
    assert _figures(api.get(R, role="admin").body) == EXPECTED


def test_a_page_cut_short_by_a_transient_failure_is_not_counted_twice(api, monkeypatch):
    from chalicelib.errors import RetryLater
    from chalicelib.jobs import framework
    from chalicelib.services import finance

    history(api)
    real = finance.member_partials
    calls = {"n": 0}

    def flaky(row, as_of, policy):
        calls["n"] += 1
        if calls["n"] == 2:  # the second member of the first page: the first was already summed
            raise RetryLater("throttled")
        return real(row, as_of, policy)

    monkeypatch.setattr(finance, "member_partials", flaky)
    monkeypatch.setattr(framework, "PAGE_SIZE", 2)
    monkeypatch.setenv("LOYALTY_REPORT_WORKERS", "1")  # the members of a page in order
    job = framework.create("report-liability", framework.parse_as_of(AS_OF), actor="test", segments=1)
    with pytest.raises(RetryLater):
        framework.execute(job["job_id"])
    assert framework.get_job(job["job_id"])["status"] == "failed"
    done = framework.execute(job["job_id"])  # resumes from the checkpoint
    assert done["status"] == "succeeded"
    assert _figures(api.get(R, role="admin").body) == EXPECTED


def test_a_member_that_cannot_be_read_is_counted_and_reported(api, monkeypatch):
    from chalicelib.services import finance

    api.enrol("ok1")
    _ok(api.adjust("ok1", 10, now="2026-05-02T00:00:00Z"))
    api.enrol("bad1")
    real = finance.member_partials

    def broken(row, as_of, policy):
        if row.member_id == "bad1":
            raise ValueError("corrupt wallet")
        return real(row, as_of, policy)

    monkeypatch.setattr(finance, "member_partials", broken)
    job = _ok(api.post("/v1/admin/jobs", {"job": "report-liability", "as_of": AS_OF}, role="admin"), 202)
    assert job["status"] == "succeeded"
    report = api.get(R, role="admin").body
    assert (report["members"], report["members_failed"], report["outstanding"]["available"]) == (1, 1, 10)


def test_the_report_route_is_admin_only_and_takes_no_parameters(api):
    assert api.get(R, role="service").error == "FORBIDDEN"
    assert api.get(R, role="member", sub="la").error == "FORBIDDEN"
    assert api.get(R, role=None).error == "UNAUTHENTICATED"
    assert api.get(R + "?as_of=2026-01-01", role="admin").error == "VALIDATION_ERROR"
    assert api.post(R, {}, role="admin").status == 405
    r = api.post("/v1/admin/jobs", {"job": "report-liability", "as_of": "1999-12-31"}, role="admin")
    assert r.error == "VALIDATION_ERROR"


def test_the_cli_runs_the_report(api, capsys):
    import json

    from chalicelib import cli

    api.enrol("cli1")
    _ok(api.adjust("cli1", 40, now="2026-05-02T00:00:00Z"))
    assert cli.main(["job", "report-liability", "--as-of", "2026-06-01"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["status"] == "succeeded" and out["counts"]["available"] == 40
    assert api.get(R, role="admin").body["outstanding"]["available"] == 40


def test_segments_finishing_at_the_same_moment_store_one_complete_report(locked_emulator):
    """The fanned-out segments run side by side on the locked emulator (thread-safe, like
    DynamoDB): whichever finishes last builds the report, and it counts every member once."""
    from chalicelib.jobs import framework
    from chalicelib.services import finance, points
    from chalicelib.store import reports
    from tests.integration.test_concurrency import accrual, enrol, run_parallel

    for i in range(9):
        enrol(f"cc{i}")
        points.accrue(f"cc{i}", accrual(f"cc{i}-o", 10000 + 100 * i), "svc")  # 100 + i points
    from datetime import timedelta

    from chalicelib import clock

    as_of = clock.now() + timedelta(seconds=2)  # after the accruals (as_of is kept to the second)
    job = framework.create("report-liability", as_of, actor="test", segments=4)
    results = run_parallel([lambda s=s: framework.execute(job["job_id"], only_segment=s) for s in range(4)])
    assert [r[0] for r in results] == ["ok"] * 4, results
    assert framework.get_job(job["job_id"])["status"] == "succeeded"
    stored = [r for r in reports.ReportRecord.query("liability") if r.job_id == job["job_id"]]
    assert len(stored) == 1  # written once, or twice under the same key
    report = finance.latest_liability()
    assert (report["members"], report["outstanding"]["available"], report["issued"]) == (9, 900 + 36, 900 + 36)
