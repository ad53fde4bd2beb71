"""run-automations end to end: trigger edges, consent, the weekly cap, dedupe on re-runs, SQS
failures (partial batches, a crash between claim and send) and the cap under concurrent jobs."""
from __future__ import annotations

import secrets
import threading
from datetime import datetime, timedelta, timezone

import pytest

from tests.integration.test_marketing_helpers import EMAIL, PUSH, drain, enrol_at, job, only, settings, templates


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


class TestEdges:
    def test_welcome_consent_channel_variables_and_rerun_dedupe(self, api):
        only(api, "welcome")
        enrol_at(api, "w1", "2026-03-01T08:00:00Z", name="Ann", consents=EMAIL, locale="en-US")
        enrol_at(api, "w2", "2026-03-01T09:00:00Z")  # no consent: no marketing message
        enrol_at(api, "w3", "2026-02-28T09:00:00Z", consents=EMAIL)  # yesterday
        enrol_at(api, "w4", "2026-03-01T09:30:00Z", consents={"email": False, "push": False, "sms": True})
        drain()
        counts = job(api, "run-automations", "2026-03-01T10:00:00Z")["counts"]
        msgs = drain()
        assert templates(msgs) == [("welcome", "w1"), ("welcome", "w4")]
        m = next(m for m in msgs if m["member_id"] == "w1")
        assert (m["channel"], m["locale"], m["template"], m["campaign_id"]) == ("email", "en-US", "welcome", None)
        assert m["variables"] == {"name": "Ann", "points": 0, "tier": "bronze", "next_tier": "silver",
                                  "spend_to_next_tier": 50000}
        assert m["created_at"] == "2026-03-01T10:00:00Z"
        assert next(m for m in msgs if m["member_id"] == "w4")["channel"] == "sms"
        assert (counts["queued"], counts["no_consent"], counts["queued_welcome"]) == (2, 1, 2)
        again = job(api, "run-automations", "2026-03-01T10:00:00Z")["counts"]  # same day again
        assert drain() == [] and again["duplicate"] == 2 and again.get("queued", 0) == 0
        job(api, "run-automations", "2026-03-01T23:00:00Z")  # later that day: still nothing twice
        assert drain() == []

    @pytest.mark.parametrize("day,expected", [(6, []), (7, ["onboarding_step"]), (8, []), (30, ["onboarding_step"])])
    def test_onboarding_days(self, api, day, expected):
        only(api, "onboarding_step")
        enrol_at(api, "o1", "2026-03-01T08:00:00Z", consents=EMAIL)
        drain()
        job(api, "run-automations", iso(datetime(2026, 3, 1, 10, tzinfo=timezone.utc) + timedelta(days=day)))
        msgs = drain()
        assert [t for t, _ in templates(msgs)] == expected
        if expected:
            assert msgs[0]["variables"]["step_day"] == day

    @pytest.mark.parametrize("days,expected", [(13, []), (14, ["f2_nudge"])])
    def test_f2_nudge(self, api, days, expected):
        only(api, "f2_nudge")
        enrol_at(api, "f1", "2026-01-01T08:00:00Z", consents=PUSH)
        assert api.accrue("f1", 3000, now="2026-02-01T10:00:00Z").status == 201
        drain()
        job(api, "run-automations", f"2026-02-{1 + days:02d}T12:00:00Z")
        msgs = drain()
        assert [t for t, _ in templates(msgs)] == expected
        if expected:
            assert msgs[0]["channel"] == "push"
            job(api, "run-automations", "2026-02-20T12:00:00Z")  # once per member
            assert drain() == []

    def test_f2_nudge_not_after_a_second_order(self, api):
        only(api, "f2_nudge")
        enrol_at(api, "f2", "2026-01-01T08:00:00Z", consents=EMAIL)
        api.accrue("f2", 3000, now="2026-02-01T10:00:00Z")
        api.accrue("f2", 3000, now="2026-02-05T10:00:00Z")
        drain()
        job(api, "run-automations", "2026-03-01T12:00:00Z")
        assert drain() == []

    @pytest.mark.parametrize("days,expected", [(89, []), (90, ["dormant"])])
    def test_dormant(self, api, days, expected):
        only(api, "dormant")
        enrol_at(api, "d1", "2025-01-01T08:00:00Z", consents=EMAIL)
        api.accrue("d1", 3000, now="2026-01-01T10:00:00Z")
        drain()
        job(api, "run-automations", iso(datetime(2026, 1, 1, 12, tzinfo=timezone.utc) + timedelta(days=days)))
        assert [t for t, _ in templates(drain())] == expected

    def test_birthday_on_the_day_only(self, api):
        only(api, "birthday")
        enrol_at(api, "b1", "2025-01-01T08:00:00Z", consents=EMAIL, birthday="04-01")
        drain()
        job(api, "run-automations", "2026-03-31T09:00:00Z")
        assert drain() == []
        job(api, "run-automations", "2026-04-01T09:00:00Z")
        assert templates(drain()) == [("birthday", "b1")]
        job(api, "run-automations", "2026-04-02T09:00:00Z")
        assert drain() == []

    def test_points_expiring_within_30_days(self, api):
        only(api, "points_expiring")
        enrol_at(api, "e1", "2025-01-01T08:00:00Z", consents=EMAIL)
        api.accrue("e1", 10000, now="2025-01-20T10:00:00Z")  # 100 points expiring 2026-01-31T23:59:59Z
        drain()
        job(api, "run-automations", "2025-12-31T09:00:00Z")  # 31 days before
        assert drain() == []
        job(api, "run-automations", "2026-01-02T09:00:00Z")
        msgs = drain()
        assert templates(msgs) == [("points_expiring", "e1")]
        assert (msgs[0]["variables"]["expiring_points"], msgs[0]["variables"]["expiring_at"],
                msgs[0]["variables"]["points"]) == (100, "2026-01-31T23:59:59Z", 100)

    def test_near_next_tier_boundary(self, api):
        only(api, "near_next_tier")
        enrol_at(api, "n1", "2026-01-01T08:00:00Z", consents=EMAIL)
        enrol_at(api, "n2", "2026-01-01T08:00:00Z", consents=EMAIL)
        api.accrue("n1", 45000, now="2026-02-01T10:00:00Z")  # 5,000 to silver = 10% of 50,000
        api.accrue("n2", 44999, now="2026-02-01T10:00:00Z")  # 5,001 to go
        drain()
        job(api, "run-automations", "2026-02-02T09:00:00Z")
        msgs = drain()
        assert templates(msgs) == [("near_next_tier", "n1")]
        assert (msgs[0]["variables"]["next_tier"], msgs[0]["variables"]["spend_to_next_tier"]) == ("silver", 5000)

    def test_disabled_automation_sends_nothing(self, api):
        only(api, "birthday")
        enrol_at(api, "off", "2026-03-01T08:00:00Z", consents=EMAIL)
        drain()
        assert job(api, "run-automations", "2026-03-01T10:00:00Z")["counts"].get("queued", 0) == 0
        assert drain() == []


class TestFrequencyCap:
    def test_fourth_marketing_message_in_a_week_is_capped_and_transactional_is_not_counted(self, api):
        only(api, "birthday", "welcome", "back_in_stock")
        enrol_at(api, "cap", "2026-04-01T08:00:00Z", consents=EMAIL, birthday="04-01")
        assert api.post("/v1/members/cap/events", {"event_id": "fav-cap", "type": "favorite_added", "sku": "BAG"},
                        now="2026-04-01T08:01:00Z").status == 202
        r = api.accrue("cap", 50000, now="2026-04-01T09:00:00Z")  # silver: a transactional tier_changed
        assert r.body["tier_change"] == {"from": "bronze", "to": "silver"}
        assert [m["template"] for m in drain()] == ["tier_changed"]
        counts = job(api, "run-automations", "2026-04-01T10:00:00Z")["counts"]
        assert (counts["queued"], counts.get("capped", 0)) == (2, 0)
        sig = {"sku": "BAG", "type": "back_in_stock"}
        third = api.post("/v1/admin/product-signals", {"signal_id": "s1", **sig}, role="admin",
                         now="2026-04-01T11:00:00Z")
        fourth = api.post("/v1/admin/product-signals", {"signal_id": "s2", **sig}, role="admin",
                          now="2026-04-01T12:00:00Z")
        assert (third.body["queued"], fourth.body["queued"], fourth.body["capped"]) == (1, 0, 1)
        assert sorted(t for t, _ in templates(drain())) == ["back_in_stock", "birthday", "welcome"]
        # the rolling week: the first two sends are exactly 7 days old at 10:00, older at 10:00:01
        later = {"sku": "BAG", "type": "back_in_stock"}
        at_7d = api.post("/v1/admin/product-signals", {"signal_id": "s3", **later}, role="admin",
                         now="2026-04-08T10:00:00Z")
        after_7d = api.post("/v1/admin/product-signals", {"signal_id": "s4", **later}, role="admin",
                            now="2026-04-08T10:00:01Z")
        assert (at_7d.body["queued"], after_7d.body["queued"]) == (0, 1)

    def test_capped_automation_goes_out_on_a_later_day(self, api):
        only(api, "f2_nudge", "birthday", "welcome", "onboarding_step")
        settings(api, frequency_cap_per_week=1)
        enrol_at(api, "late", "2026-03-01T08:00:00Z", consents=EMAIL, birthday="03-15")
        api.accrue("late", 1000, now="2026-03-01T09:00:00Z")
        drain()
        job(api, "run-automations", "2026-03-01T10:00:00Z")  # welcome
        job(api, "run-automations", "2026-03-08T10:00:00Z")  # onboarding day 7 (welcome exactly 7 days old)
        assert [t for t, _ in templates(drain())] == ["welcome"]
        job(api, "run-automations", "2026-03-15T10:00:00Z")  # birthday and f2 due: the birthday wins
        job(api, "run-automations", "2026-03-23T10:00:00Z")  # the F2 nudge, held back, goes out now
        assert [t for t, _ in templates(drain())] == ["birthday", "f2_nudge"]


def test_partial_sqs_batch_failure_is_retried_and_nothing_is_lost(api):
    from chalicelib.messaging import sqs_client

    only(api, "welcome")
    for i in range(23):
        enrol_at(api, f"pf{i:02d}", "2026-03-01T08:00:00Z", consents=EMAIL)
    drain()
    client = sqs_client()
    state = {"calls": 0, "failed": 0, "batches": 0}
    lock, call = threading.Lock(), threading.local()  # batches are sent by several threads at once

    def drop_some(params, **kwargs):
        with lock:
            state["calls"] += 1
            if len(params["Entries"]) >= 3 and state["batches"] < 2:  # two batches lose two entries each
                state["batches"] += 1
                call.dropped = params["Entries"][:2]
                params["Entries"] = params["Entries"][2:]

    def report(parsed, **kwargs):
        dropped, call.dropped = getattr(call, "dropped", []), []
        for e in dropped:
            with lock:
                state["failed"] += 1
            parsed.setdefault("Failed", []).append({"Id": e["Id"], "SenderFault": False, "Code": "InternalError"})

    client.meta.events.register("provide-client-params.sqs.SendMessageBatch", drop_some, unique_id="drop")
    client.meta.events.register("after-call.sqs.SendMessageBatch", report, unique_id="report")
    try:
        counts = job(api, "run-automations", "2026-03-01T10:00:00Z")["counts"]
    finally:
        client.meta.events.unregister("provide-client-params.sqs.SendMessageBatch", unique_id="drop")
        client.meta.events.unregister("after-call.sqs.SendMessageBatch", unique_id="report")
    msgs = drain()
    assert state["failed"] == 4 and state["batches"] == 2
    assert sorted(m["member_id"] for m in msgs) == [f"pf{i:02d}" for i in range(23)]
    assert counts["queued"] == 23


def test_whole_batch_failed_before_the_call_is_retried(api):
    from chalicelib.messaging import sqs_client

    only(api, "welcome")
    for i in range(4):
        enrol_at(api, f"wb{i}", "2026-03-01T08:00:00Z", consents=EMAIL)
    drain()
    client = sqs_client()
    state = {"fail": 2}
    lock, call = threading.Lock(), threading.local()  # batches are sent by several threads at once

    class Http:
        status_code = 200

    def capture(params, **kwargs):
        call.ids = [e["Id"] for e in params["Entries"]]

    def fail(**kwargs):
        with lock:
            if not state["fail"]:
                return None
            state["fail"] -= 1
        return Http(), {"Successful": [], "Failed": [{"Id": i, "SenderFault": False, "Code": "ServiceUnavailable"}
                                                     for i in call.ids]}

    client.meta.events.register("provide-client-params.sqs.SendMessageBatch", capture, unique_id="capture")
    client.meta.events.register("before-call.sqs.SendMessageBatch", fail, unique_id="fail")
    try:
        job(api, "run-automations", "2026-03-01T10:00:00Z")
    finally:
        client.meta.events.unregister("provide-client-params.sqs.SendMessageBatch", unique_id="capture")
        client.meta.events.unregister("before-call.sqs.SendMessageBatch", unique_id="fail")
    assert state["fail"] == 0
    assert sorted(m["member_id"] for m in drain()) == ["wb0", "wb1", "wb2", "wb3"]


def test_crash_between_claim_and_send_is_recovered_by_run_triggers(api, monkeypatch):
    from chalicelib import messaging
    from chalicelib.store.marketing import PendingMessagesRecord

    only(api, "welcome")
    for i in range(3):
        enrol_at(api, f"cr{i}", "2026-03-01T08:00:00Z", consents=EMAIL)
    drain()
    real_send = messaging.send

    def down(messages, attempts=5):
        raise RuntimeError("SQS is down")

    monkeypatch.setattr(messaging, "send", down)
    job(api, "run-automations", "2026-03-01T10:00:00Z", expect="failed")
    pending = list(PendingMessagesRecord.scan())  # the job stopped at the first failed page
    claimed = sorted(m["member_id"] for p in pending for m in p.messages)
    assert len(pending) == 1 and len(claimed) >= 1 and drain() == []
    monkeypatch.setattr(messaging, "send", real_send)
    rerun = job(api, "run-automations", "2026-03-01T10:00:00Z")["counts"]
    assert (rerun["duplicate"], rerun.get("queued", 0)) == (len(claimed), 3 - len(claimed))  # no second claim
    first = drain()
    assert sorted(m["member_id"] for m in first) == sorted({"cr0", "cr1", "cr2"} - set(claimed))
    job(api, "run-triggers", "2026-03-01T10:00:30Z")  # within the grace minute: left alone
    assert drain() == []
    counts = job(api, "run-triggers", "2026-03-01T10:05:00Z")["counts"]
    msgs = drain()
    assert counts["pending_resent"] == len(claimed) and sorted(m["member_id"] for m in msgs) == claimed
    assert sorted(m["member_id"] for m in first + msgs) == ["cr0", "cr1", "cr2"]
    assert list(PendingMessagesRecord.scan()) == []
    job(api, "run-triggers", "2026-03-01T11:00:00Z")
    assert drain() == []


def test_claim_whose_answer_was_lost_is_recognised_and_sent_once(api):
    """The claim transaction commits but its answer is lost, and the SDK's retry sees every
    condition fail (the logs now carry the claim): the re-read recognises the claim as this
    delivery's own, so each message goes out exactly once and nothing is left pending."""
    import boto3

    from chalicelib.services.outreach import Candidate, deliver
    from chalicelib.store.base import dynamodb_client
    from chalicelib.store.marketing import OutreachRecord, PendingMessagesRecord
    from tests.integration.test_faults import Hook, aws_error

    ids = [f"lost-{i}" for i in range(4)]
    cands = [Candidate(m, {"consents": EMAIL, "name": "x"}, "promo", "promo-lost", "p1", {}) for m in ids]
    captured, calls = {}, []
    other = boto3.client("dynamodb", region_name="us-east-1")

    def capture(params, **kwargs):
        captured.update(params)

    def commit_then_lose(**kwargs):
        calls.append(1)
        if len(calls) > 1:
            return None
        other.transact_write_items(**captured)  # the write commits...
        reasons = [{"Code": "ConditionalCheckFailed" if "ConditionExpression" in item["Put"] else "None"}
                   for item in captured["TransactItems"]]  # the logs' conditions; the pending item has none
        return aws_error("TransactionCanceledException", CancellationReasons=reasons)  # ...the retry's answer

    events = dynamodb_client().meta.events
    events.register("provide-client-params.dynamodb.TransactWriteItems", capture, unique_id="capture")
    try:
        with Hook("before-call.dynamodb.TransactWriteItems", commit_then_lose):
            counts = deliver(cands, cap_per_week=3)
    finally:
        events.unregister("provide-client-params.dynamodb.TransactWriteItems", unique_id="capture")
    assert len(calls) == 1  # recognised by the re-read, not claimed a second time
    assert (counts["queued"], counts["duplicate"]) == (4, 0)
    assert sorted(m["member_id"] for m in drain()) == ids
    assert {r.member_id: r.version for r in OutreachRecord.scan()} == {m: 1 for m in ids}
    assert list(PendingMessagesRecord.scan()) == []
    assert deliver(cands, cap_per_week=3)["duplicate"] == 4 and drain() == []


def test_weekly_cap_holds_when_two_deliveries_race(locked_emulator):
    """Two jobs offer the same members three different marketing messages each at the same
    moment: every member gets exactly three (the cap), none twice."""
    from chalicelib import messaging
    from chalicelib.schemas.members import EnrolRequest
    from chalicelib.services import members
    from chalicelib.services.outreach import Candidate, deliver
    from tests.integration.test_marketing_helpers import drain as read_all

    tag = secrets.token_hex(3)
    ids = [f"race-{tag}-{i}" for i in range(5)]
    for m in ids:
        members.enrol(EnrolRequest(member_id=m, consents=EMAIL), "test")
    profile = {"consents": EMAIL, "name": "x"}
    barrier = threading.Barrier(2)
    results = [None, None]

    def run(k):
        cands = [Candidate(m, profile, f"promo{k}{j}", f"promo{k}{j}", "p1", {}) for m in ids for j in range(3)]
        barrier.wait()
        results[k] = deliver(cands, cap_per_week=3)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    msgs = [m for m in read_all() if m["member_id"] in ids]
    per_member = {m: sum(1 for x in msgs if x["member_id"] == m) for m in ids}
    assert per_member == {m: 3 for m in ids}
    assert len({x["message_id"] for x in msgs}) == len(msgs) == 15
    assert results[0]["queued"] + results[1]["queued"] == 15
    assert results[0]["capped"] + results[1]["capped"] == 15
    assert messaging.queue_url().endswith("campaign-messages")
