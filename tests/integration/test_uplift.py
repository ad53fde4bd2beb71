"""Control groups, attribution and uplift end to end (SPEC 2.18, 4.5): a broadcast with a
known control group, orders inside and outside the window, refunds netted, a late order,
a re-measurement, and an automation over several days."""
from __future__ import annotations

import hashlib
import math

from tests.integration.test_marketing_helpers import EMAIL, drain, enrol_at, job, only, settings

T1 = "2026-11-10T10:00:00Z"
IDS = [f"u{i}" for i in range(12)]
# sha256("mc_up:u3") etc. begin below 0.2 × 2^32 (0.089, 0.121, 0.138, 0.152 of 2^32): held out
CONTROL = ["u0", "u11", "u2", "u3"]
TREATMENT = ["u1", "u10", "u4", "u5", "u6", "u7", "u8", "u9"]


def _held(key: str, share: float) -> bool:
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) < share * 2 ** 32


def _order(api, member, order_id, total, at, now=None):
    r = api.post(f"/v1/members/{member}/accruals", {"order_id": order_id, "total_amount": total, "currency": "JPY",
                                                    "occurred_at": at}, now=now or at)
    assert r.status == 201, r.body


def _refund(api, member, order_id, amount, now):
    r = api.post(f"/v1/members/{member}/refunds", {"refund_id": f"rf-{order_id}-{amount}", "order_id": order_id,
                                                   "amount": amount}, now=now)
    assert r.status == 201, r.body


def _broadcast(api, campaign_id, ids, share="0", now=T1):
    r = api.post("/v1/admin/message-campaigns", {"campaign_id": campaign_id, "name": "Up", "template": "sale",
                                                  "channel": "email", "audience": {"member_ids": ids},
                                                  "control_share": share}, role="admin", now=now)
    assert r.status == 201, r.body
    return r.body


def _results(api, path):
    return api.get(path, role="admin")


class TestBroadcast:
    def test_known_control_group_attribution_and_uplift(self, api):
        assert sorted(m for m in IDS if _held(f"mc_up:{m}", 0.2)) == sorted(CONTROL)  # the spec's hash
        for m in IDS:
            enrol_at(api, m, "2026-11-01T00:00:00Z", consents=EMAIL)
        enrol_at(api, "u12", "2026-11-01T00:00:00Z")  # no consent: in neither group
        drain()
        _order(api, "u6", "o-before", 3000, "2026-11-09T10:00:00Z")  # before the message: not attributed

        # before any measurement: 404
        assert _results(api, "/v1/admin/message-campaigns/mc_up/results").status == 404

        sent = _broadcast(api, "mc_up", IDS + ["u12"], share="0.2")
        assert (sent["audience_size"], sent["eligible"], sent["queued"], sent["control"],
                sent["no_consent"]) == (13, 12, 8, 4, 1)
        msgs = drain()
        assert sorted(m["member_id"] for m in msgs) == sorted(TREATMENT)  # control members get nothing
        assert api.get("/v1/admin/message-campaigns/mc_up", role="admin").body["control"] == 4

        # treatment
        _order(api, "u1", "o-u1", 10000, "2026-11-11T10:00:00Z")
        _order(api, "u4", "o-u4", 5000, "2026-11-12T10:00:00Z")
        _refund(api, "u4", "o-u4", 2000, "2026-11-13T10:00:00Z")  # netted: 3000
        _order(api, "u5", "o-u5", 7000, "2026-11-18T10:00:00Z")  # 8 days after: outside the window
        _order(api, "u7", "o-u7", 2500, "2026-11-13T09:00:00Z", now="2026-11-19T08:00:00Z")  # reported late
        _order(api, "u8", "o-u8a", 1000, "2026-11-11T12:00:00Z")
        _order(api, "u8", "o-u8b", 1500, "2026-11-16T12:00:00Z")  # a second order: one converter
        # control
        _order(api, "u0", "o-u0", 4000, "2026-11-12T10:00:00Z")
        _order(api, "u2", "o-u2", 6000, "2026-11-16T09:00:00Z")
        _refund(api, "u2", "o-u2", 6000, "2026-11-17T09:00:00Z")  # refunded in full: no conversion
        _order(api, "u12", "o-u12", 9000, "2026-11-12T10:00:00Z")  # not in the campaign

        done = job(api, "measure-campaigns", "2026-11-20T00:00:00Z")
        assert done["counts"]["exposures_indexed"] == 12
        r = _results(api, "/v1/admin/message-campaigns/mc_up/results")
        assert r.status == 200, r.body
        body = r.body
        assert body["attribution_days"] == 7 and body["as_of"] == "2026-11-20T00:00:00Z"
        assert body["treatment"] == {"members": 8, "converters": 4, "conversion_rate": 0.5, "revenue": 18000,
                                     "revenue_per_member": 2250.0}
        assert body["control"] == {"members": 4, "converters": 1, "conversion_rate": 0.25, "revenue": 4000,
                                   "revenue_per_member": 1000.0}
        # se = sqrt(.5·.5/8 + .25·.75/4) = 0.279508; 1.96·se = 0.547836
        # pooled 5/12: z = 0.25 / sqrt(5/12 · 7/12 · 3/8) = 0.828079, p = 0.40763
        assert body["uplift"] == {"conversion_rate_diff": 0.25, "ci95": [-0.2978, 0.7978], "p_value": 0.4076,
                                  "incremental_revenue": 10000}
        assert body["guidance"]["conclusive"] is False and body["guidance"]["verdict"] == "too_small"
        assert set(body) == {"attribution_days", "as_of", "treatment", "control", "uplift", "guidance"}

        # a later refund of a treated order: the next measurement nets it and u1 no longer converts
        _refund(api, "u1", "o-u1", 10000, "2026-11-20T12:00:00Z")
        job(api, "measure-campaigns", "2026-11-21T00:00:00Z")
        body = _results(api, "/v1/admin/message-campaigns/mc_up/results").body
        assert body["as_of"] == "2026-11-21T00:00:00Z"
        assert (body["treatment"]["converters"], body["treatment"]["revenue"]) == (3, 8000)
        assert body["uplift"]["incremental_revenue"] == math.floor((8000 / 8 - 1000) * 8) == 0
        # a measurement again for the same day changes nothing (re-run safe)
        job(api, "measure-campaigns", "2026-11-21T00:00:00Z")
        assert _results(api, "/v1/admin/message-campaigns/mc_up/results").body == body

    def test_measurement_as_of_ignores_later_orders(self, api):
        for m in ("u1", "u9"):
            enrol_at(api, m, "2026-11-01T00:00:00Z", consents=EMAIL)
        _broadcast(api, "mc_up", ["u1", "u9"], share="0.2")  # both treated (0.926, 0.971)
        _order(api, "u1", "o-1", 1000, "2026-11-11T10:00:00Z")
        _order(api, "u9", "o-9", 2000, "2026-11-13T10:00:00Z")
        job(api, "measure-campaigns", "2026-11-12T00:00:00Z")
        body = _results(api, "/v1/admin/message-campaigns/mc_up/results").body
        assert body["treatment"] == {"members": 2, "converters": 1, "conversion_rate": 0.5, "revenue": 1000,
                                     "revenue_per_member": 500.0}
        assert body["control"]["members"] == 0 and body["control"]["conversion_rate"] is None
        assert body["uplift"] == {"conversion_rate_diff": None, "ci95": None, "p_value": None,
                                  "incremental_revenue": None}
        assert body["guidance"]["verdict"] == "no_control"

    def test_control_members_use_no_cap_and_replays_keep_the_group(self, api):
        settings(api, frequency_cap_per_week=1)
        for m in ("u0", "u1"):
            enrol_at(api, m, "2026-11-01T00:00:00Z", consents=EMAIL)
        first = _broadcast(api, "mc_up", ["u0", "u1"], share="0.2")  # u0 held out, u1 treated
        assert (first["queued"], first["control"]) == (1, 1)
        drain()
        second = _broadcast(api, "mc_two", ["u0", "u1"], now="2026-11-10T11:00:00Z")
        assert (second["queued"], second["capped"]) == (1, 1)  # u1 used its cap, u0 did not
        assert [m["member_id"] for m in drain()] == ["u0"]

    def test_unknown_and_invalid(self, api):
        assert _results(api, "/v1/admin/message-campaigns/nope/results").status == 404
        job(api, "measure-campaigns", "2026-11-20T00:00:00Z")
        r = _results(api, "/v1/admin/message-campaigns/nope/results")
        assert r.status == 404 and r.error == "NOT_FOUND"
        assert _results(api, "/v1/admin/automations/nope/results").error == "NOT_FOUND"
        for share in ("1", "1.5", "-0.1", 0.1, "abc"):
            r = api.post("/v1/admin/message-campaigns", {"name": "x", "template": "t", "channel": "email",
                                                          "audience": {"member_ids": ["u1"]}, "control_share": share},
                         role="admin")
            assert r.status == 400 and r.error == "VALIDATION_ERROR", (share, r.body)
        current = api.get("/v1/admin/settings", role="admin").body
        assert current["automations"]["birthday"]["control_share"] == "0" and current["attribution_days"] == 7
        for share in ("1", "x", 0.5):
            autos = {**current["automations"], "birthday": {**current["automations"]["birthday"],
                                                            "control_share": share}}
            r = api.put("/v1/admin/settings", {**current, "automations": autos}, role="admin")
            assert r.status == 400 and r.error == "VALIDATION_ERROR", (share, r.body)
        for q in ("from=2026-13-01", "to=yesterday", "from=2026-11-10&to=2026-11-01", "from=2020-01-01&to=2026-01-01",
                  "sort=x"):
            r = _results(api, f"/v1/admin/automations/welcome/results?{q}")
            assert r.status == 400 and r.error == "VALIDATION_ERROR", (q, r.body)
        assert api.get("/v1/admin/automations/welcome/results", role="service").status == 403


DAYS = [("2026-11-10", "a"), ("2026-11-11", "b"), ("2026-11-12", "c")]
# welcome:{day}:{member} below 0.5 × 2^32 — nobody on the 10th; b1, b2 and c1, c2 after
AUTO_CONTROL = ["b1", "b2", "c1", "c2"]


class TestAutomationOverSeveralDays:
    def test_welcome_with_a_control_group(self, api):
        only(api, "welcome", welcome={"control_share": "0.5"})
        held = sorted(f"{p}{i}" for d, p in DAYS for i in range(4) if _held(f"welcome:{d}:{p}{i}", 0.5))
        assert held == AUTO_CONTROL
        for day, p in DAYS:
            for i in range(4):
                enrol_at(api, f"{p}{i}", f"{day}T08:00:00Z", consents=EMAIL)
            counts = job(api, "run-automations", f"{day}T10:00:00Z")["counts"]
            assert counts.get("control", 0) == (0 if p == "a" else 2)
        sent = sorted(m["member_id"] for m in drain() if m["template"] == "welcome")
        assert sent == ["a0", "a1", "a2", "a3", "b0", "b3", "c0", "c3"]
        # a re-run of a day queues nothing and keeps its control members held out
        again = job(api, "run-automations", "2026-11-11T10:00:00Z")["counts"]
        assert again.get("queued", 0) == 0 and again.get("control", 0) == 2 and drain() == []

        _order(api, "a0", "wa0", 2000, "2026-11-11T10:00:00Z")
        _order(api, "b0", "wb0", 3000, "2026-11-13T10:00:00Z")
        _order(api, "b1", "wb1", 1000, "2026-11-12T10:00:00Z")  # control converts too
        _order(api, "c0", "wc0", 5000, "2026-11-14T10:00:00Z")
        _order(api, "c1", "wc1", 8000, "2026-11-25T10:00:00Z")  # 13 days after the hold-out: outside
        job(api, "measure-campaigns", "2026-11-26T00:00:00Z")

        whole = _results(api, "/v1/admin/automations/welcome/results?from=2026-11-10&to=2026-11-12").body
        assert whole["treatment"] == {"members": 8, "converters": 3, "conversion_rate": 0.375, "revenue": 10000,
                                      "revenue_per_member": 1250.0}
        assert whole["control"] == {"members": 4, "converters": 1, "conversion_rate": 0.25, "revenue": 1000,
                                    "revenue_per_member": 250.0}
        # se = sqrt(.375·.625/8 + .25·.75/4) = 0.275993, 1.96·se = 0.540946; pooled 4/12:
        # z = 0.125 / sqrt(1/3 · 2/3 · 3/8) = 0.433013, p = 0.66501
        assert whole["uplift"] == {"conversion_rate_diff": 0.125, "ci95": [-0.4159, 0.6659], "p_value": 0.665,
                                   "incremental_revenue": 8000}

        first = _results(api, "/v1/admin/automations/welcome/results?from=2026-11-10&to=2026-11-10").body
        assert (first["treatment"]["members"], first["treatment"]["converters"], first["treatment"]["revenue"]) == (
            4, 1, 2000)
        assert first["control"]["members"] == 0 and first["uplift"]["p_value"] is None

        later = _results(api, "/v1/admin/automations/welcome/results?from=2026-11-11&to=2026-11-12").body
        assert (later["treatment"]["members"], later["treatment"]["converters"], later["treatment"]["revenue"]) == (
            4, 2, 8000)
        assert (later["control"]["members"], later["control"]["converters"], later["control"]["revenue"]) == (4, 1, 1000)
        assert later["uplift"]["incremental_revenue"] == 7000  # floor((2000 − 250) × 4)

        # default range: the 30 days up to the last measurement
        default = _results(api, "/v1/admin/automations/welcome/results").body
        assert default["treatment"] == whole["treatment"] and default["control"] == whole["control"]
        # other automations: measured, nobody
        empty = _results(api, "/v1/admin/automations/birthday/results").body
        assert empty["treatment"]["members"] == 0 and empty["uplift"]["conversion_rate_diff"] is None


class TestCouponRevenue:
    def test_revenue_of_the_orders_that_redeemed_codes(self, api):
        from tests.integration.test_coupons import C, campaign, create, redeem, rollback

        now = "2026-01-10T00:00:00Z"
        create(api, campaign("c1"))
        for m in ("m1", "m2", "m3"):
            enrol_at(api, m, "2026-01-02T00:00:00Z")
        _order(api, "m1", "o1", 10000, "2026-01-10T00:00:00Z")
        assert redeem(api, "WINTER10", "m1", "o1", total=10000, now=now).status == 201
        _refund(api, "m1", "o1", 3000, "2026-01-11T00:00:00Z")  # net 7000
        assert redeem(api, "WINTER10", "m2", "o2", total=8000, now=now).status == 201  # no accrual: its total
        r = redeem(api, "WINTER10", "m3", "o3", total=5000, now=now)
        assert rollback(api, r.body["coupon_redemption_id"]).status == 200  # rolled back: not counted
        assert "revenue" not in api.get(f"{C}/c1", role="admin").body["stats"]  # before any measurement

        done = job(api, "measure-campaigns", "2026-01-20T00:00:00Z")
        assert done["counts"]["coupon_campaigns"] == 1
        assert api.get(f"{C}/c1", role="admin").body["stats"]["revenue"] == 15000
        listed = {c["campaign_id"]: c for c in api.get(C, role="admin").body["items"]}
        assert listed["c1"]["stats"]["revenue"] == 15000


class TestTriggers:
    def test_product_signal_and_cart_reminder_hold_out_by_day(self, api):
        only(api, "back_in_stock", "cart_reminder", back_in_stock={"control_share": "0.5"},
             cart_reminder={"control_share": "0.5"})
        for i in range(6):
            enrol_at(api, f"f{i}", "2026-03-01T00:00:00Z", consents=EMAIL)
            assert api.post(f"/v1/members/f{i}/events", {"event_id": f"fav-{i}", "type": "favorite_added",
                                                         "sku": "BAG"}, now="2026-03-02T00:00:00Z").status == 202
        r = api.post("/v1/admin/product-signals", {"signal_id": "sig-1", "sku": "BAG", "type": "back_in_stock"},
                     role="admin", now="2026-04-01T11:00:00Z")
        assert r.status == 202 and (r.body["queued"], r.body["control"]) == (2, 4)
        assert sorted(m["member_id"] for m in drain()) == ["f2", "f4"]  # back_in_stock:2026-04-01:f2, f4 not held

        for i in range(6):
            enrol_at(api, f"r{i}", "2026-03-01T00:00:00Z", consents=EMAIL)
            assert api.post(f"/v1/members/r{i}/events", {"event_id": f"cart-{i}", "type": "cart_abandoned",
                                                         "occurred_at": "2026-04-01T07:00:00Z"},
                            now="2026-04-01T07:00:00Z").status == 202
        counts = job(api, "run-triggers", "2026-04-01T10:00:00Z")["counts"]
        assert (counts.get("trigger_queued"), counts.get("trigger_control")) == (3, 3)
        assert sorted(m["member_id"] for m in drain()) == ["r0", "r2", "r3"]
        # held-out events are done with: the next hour sends nothing to them
        assert job(api, "run-triggers", "2026-04-01T11:00:00Z")["counts"].get("trigger_queued", 0) == 0
        assert drain() == []

        _order(api, "f0", "fo0", 3000, "2026-04-02T10:00:00Z")  # control
        _order(api, "f2", "fo2", 5000, "2026-04-03T10:00:00Z")  # treated
        _order(api, "r1", "ro1", 2000, "2026-04-01T12:00:00Z")  # control
        _order(api, "r0", "ro0", 1000, "2026-04-01T12:00:00Z")  # treated
        job(api, "measure-campaigns", "2026-04-10T00:00:00Z")
        sig = _results(api, "/v1/admin/automations/back_in_stock/results?from=2026-04-01&to=2026-04-01").body
        assert (sig["treatment"]["members"], sig["treatment"]["converters"], sig["treatment"]["revenue"]) == (2, 1, 5000)
        assert (sig["control"]["members"], sig["control"]["converters"], sig["control"]["revenue"]) == (4, 1, 3000)
        assert sig["uplift"]["incremental_revenue"] == 3500  # floor((2500 − 750) × 2)
        rem = _results(api, "/v1/admin/automations/cart_reminder/results?from=2026-04-01&to=2026-04-01").body
        assert (rem["treatment"]["members"], rem["treatment"]["converters"], rem["treatment"]["revenue"]) == (3, 1, 1000)
        assert (rem["control"]["members"], rem["control"]["converters"], rem["control"]["revenue"]) == (3, 1, 2000)


def test_two_racing_deliveries_of_one_broadcast_record_each_member_once(locked_emulator):
    """The same broadcast's members offered by two deliveries at the same moment (a resumed
    job beside its first run): each treated member gets one message, each control member
    none, and exactly one treatment or control record each, with the time of its claim."""
    import secrets
    import threading

    from chalicelib.services.outreach import Candidate, deliver
    from chalicelib.store import attribution as store
    from chalicelib.store.marketing import OutreachRecord

    campaign_id = f"mc_race_{secrets.token_hex(3)}"
    ids = [f"race-u{i}" for i in range(12)]
    control = {m for m in ids if _held(f"{campaign_id}:{m}", 0.5)}
    assert 0 < len(control) < len(ids)
    profile = {"consents": EMAIL, "name": "x"}
    barrier = threading.Barrier(2)
    results = [None, None]

    def run(k):
        cands = [Candidate(m, profile, "sale", f"campaign:{campaign_id}", "once", {}, channel="email",
                           campaign_id=campaign_id, control_share="0.5") for m in ids]
        barrier.wait()
        results[k] = deliver(cands, cap_per_week=3)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    msgs = [m for m in drain() if m["campaign_id"] == campaign_id]
    assert sorted(m["member_id"] for m in msgs) == sorted(set(ids) - control)
    assert results[0]["queued"] + results[1]["queued"] == len(ids) - len(control)
    assert results[0]["control"] + results[1]["control"] == 2 * len(control)  # each run counts them held out
    for batch in list(store.ExposureBatchRecord.scan()):
        store.index_batch(batch)
    records = [r for r in store.ExposureRecord.scan() if r.source == f"campaign:{campaign_id}"]
    assert sorted(r.member_id for r in records) == sorted(ids)  # one each
    assert {r.member_id for r in records if r.group == "control"} == control
    logs = {r.member_id: r for r in OutreachRecord.scan() if r.member_id in ids}
    for r in records:
        assert r.at == logs[r.member_id].sent[r.message_id]  # the claim's own time
        assert logs[r.member_id].marketing == ([] if r.group == "control" else [r.at])  # no cap used when held out
    assert list(store.ExposureBatchRecord.scan()) == []


def test_a_measurement_cut_short_resumes_to_the_same_figures(api, monkeypatch):
    """The store fails in the middle of the tally: the job fails, is started again with
    the same job_id, resumes from its checkpoints and reports what a clean run reports."""
    import pytest

    from chalicelib.errors import RetryLater
    from chalicelib.jobs import framework
    from chalicelib.store import attribution as store

    for m in IDS:
        enrol_at(api, m, "2026-11-01T00:00:00Z", consents=EMAIL)
    _broadcast(api, "mc_up", IDS, share="0.2")
    for i, m in enumerate(IDS):
        if i % 2 == 0:
            _order(api, m, f"ro-{m}", 1000 * (i + 1), "2026-11-12T10:00:00Z")
    clean = framework.execute(framework.create("measure-campaigns", framework.parse_as_of("2026-11-20"), "t")["job_id"])
    expected = _results(api, "/v1/admin/message-campaigns/mc_up/results").body
    assert expected["treatment"]["members"] + expected["control"]["members"] == 12
    assert clean["status"] == "succeeded"

    real, calls = store.attributions_of, []

    def flaky(key):
        calls.append(key)
        if len(calls) == 7:
            raise RetryLater("throttled")
        return real(key)

    monkeypatch.setattr(store, "attributions_of", flaky)
    job = framework.create("measure-campaigns", framework.parse_as_of("2026-11-20"), "t")
    with pytest.raises(RetryLater):
        framework.execute(job["job_id"])
    assert framework.get_job(job["job_id"])["status"] == "failed"
    done = framework.execute(job["job_id"])
    assert done["status"] == "succeeded"
    assert done["counts"]["results_written"] == clean["counts"]["results_written"]
    assert _results(api, "/v1/admin/message-campaigns/mc_up/results").body == expected


def test_a_measurement_as_of_an_earlier_time_reports_nothing_newer(api):
    for m in ("u1", "u9"):
        enrol_at(api, m, "2026-11-01T00:00:00Z", consents=EMAIL)
    _broadcast(api, "mc_up", ["u1"], share="0.2", now="2026-11-10T10:00:00Z")
    _broadcast(api, "mc_late", ["u9"], now="2026-11-15T10:00:00Z")
    job(api, "measure-campaigns", "2026-11-20T00:00:00Z")
    assert _results(api, "/v1/admin/message-campaigns/mc_late/results").body["treatment"]["members"] == 1
    job(api, "measure-campaigns", "2026-11-12T00:00:00Z")  # before mc_late was sent
    body = _results(api, "/v1/admin/message-campaigns/mc_late/results").body
    assert body["as_of"] == "2026-11-12T00:00:00Z" and body["treatment"]["members"] == 0
    assert _results(api, "/v1/admin/message-campaigns/mc_up/results").body["treatment"]["members"] == 1


def test_fanned_out_one_invocation_per_segment_gives_the_same_figures(api, monkeypatch):
    """As in AWS: one worker invocation per segment (jobs-queue messages). Each segment runs
    its phases while the phase before is done everywhere; the last one to finish a phase
    sends the others on, once; the job succeeds with the same results as in one process."""
    from chalicelib.jobs import framework
    from chalicelib.store import attribution as store

    for m in IDS:
        enrol_at(api, m, "2026-11-01T00:00:00Z", consents=EMAIL)
    _broadcast(api, "mc_up", IDS, share="0.2")
    for i, m in enumerate(IDS):
        if i % 3:
            _order(api, m, f"fo-{m}", 700 * (i + 1), "2026-11-13T10:00:00Z")
    batches = list(store.ExposureBatchRecord.scan())
    framework.execute(framework.create("measure-campaigns", framework.parse_as_of("2026-11-20"), "t")["job_id"])
    expected = _results(api, "/v1/admin/message-campaigns/mc_up/results").body
    assert expected["treatment"]["members"] + expected["control"]["members"] == 12
    for b in batches:  # the same delivery again, not indexed yet
        b.save()
    store.save_meta({})  # forget the measurement

    queue: list = []
    monkeypatch.setattr(framework, "_send_job_messages", lambda bodies: queue.extend(bodies))
    job = framework.create("measure-campaigns", framework.parse_as_of("2026-11-20"), "t")
    framework.enqueue(job["job_id"])
    assert len(queue) == job["segments"] == 4
    handled = 0
    while queue and handled < 100:
        framework.handle_worker_message(__import__("json").dumps(queue.pop(0)))
        handled += 1
    assert handled == 4 + 3 * 3  # the first wave, then the others woken once after index, match and tally
    done = framework.get_job(job["job_id"])
    assert done["status"] == "succeeded", done
    assert done["counts"]["exposures_indexed"] == 12 and done["counts"]["sources"] == 1
    assert _results(api, "/v1/admin/message-campaigns/mc_up/results").body == expected
