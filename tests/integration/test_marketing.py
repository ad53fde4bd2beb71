"""Issue 6: segments, automations, triggers, feedback, signals and broadcasts (SPEC 2.11, 2.12)."""
import json

import pytest

EMAIL = {"email": True, "push": False, "sms": False}


def drain():
    from chalicelib.messaging import queue_url, sqs_client

    out = []
    while True:
        msgs = sqs_client().receive_message(QueueUrl=queue_url(), MaxNumberOfMessages=10).get("Messages", [])
        if not msgs:
            return out
        for m in msgs:
            out.append(json.loads(m["Body"]))
            sqs_client().delete_message(QueueUrl=queue_url(), ReceiptHandle=m["ReceiptHandle"])


def job(api, name, as_of):
    r = api.post("/v1/admin/jobs", {"job": name, "as_of": as_of}, role="admin")
    assert r.status == 202, r.body
    body = api.get(f"/v1/admin/jobs/{r.body['job_id']}", role="admin").body
    assert body["status"] == "succeeded", body
    return body


def templates(msgs, member=None):
    return sorted((m["template"], m["member_id"]) for m in msgs if member is None or m["member_id"] == member)


def enrol_at(api, member_id, at, **fields):
    r = api.post("/v1/members", {"member_id": member_id, **fields}, now=at)
    assert r.status == 201, r.body


def only(api, *names):
    """Switch every automation off but `names`."""
    current = api.get("/v1/admin/settings", role="admin").body
    autos = {k: {**v, "enabled": k in names} for k, v in current["automations"].items()}
    assert api.put("/v1/admin/settings", {**current, "automations": autos}, role="admin").status == 200


class TestAutomations:
    def test_welcome_consent_and_rerun_dedupe(self, api):
        only(api, "welcome")
        enrol_at(api, "w1", "2026-03-01T08:00:00Z", name="Ann", consents=EMAIL)
        enrol_at(api, "w2", "2026-03-01T09:00:00Z")  # no consent
        enrol_at(api, "w3", "2026-02-28T09:00:00Z", consents=EMAIL)  # yesterday
        drain()
        counts = job(api, "run-automations", "2026-03-01T10:00:00Z")["counts"]
        msgs = drain()
        assert templates(msgs) == [("welcome", "w1")]
        m = msgs[0]
        assert m["channel"] == "email" and m["locale"] == "ja-JP" and m["variables"]["name"] == "Ann"
        assert m["variables"]["tier"] == "bronze" and m["variables"]["points"] == 0
        assert counts["queued"] == 1 and counts["no_consent"] == 1
        job(api, "run-automations", "2026-03-01T10:00:00Z")
        assert drain() == []  # same day again: nothing twice

    @pytest.mark.parametrize("day,expected", [(6, []), (7, ["onboarding_step"]), (8, []), (30, ["onboarding_step"])])
    def test_onboarding_days(self, api, day, expected):
        only(api, "onboarding_step")
        enrol_at(api, "o1", "2026-03-01T08:00:00Z", consents=EMAIL)
        drain()
        job(api, "run-automations", f"2026-03-{1 + day:02d}T10:00:00Z" if day < 30 else "2026-03-31T10:00:00Z")
        assert [t for t, _ in templates(drain())] == expected

    @pytest.mark.parametrize("days,expected", [(13, []), (14, ["f2_nudge"])])
    def test_f2_nudge(self, api, days, expected):
        only(api, "f2_nudge")
        enrol_at(api, "f1", "2026-01-01T08:00:00Z", consents={"email": False, "push": True, "sms": False})
        api.accrue("f1", 3000, now="2026-02-01T10:00:00Z")
        drain()
        day = 1 + days
        job(api, "run-automations", f"2026-02-{day:02d}T12:00:00Z")
        msgs = drain()
        assert [t for t, _ in templates(msgs)] == expected
        if expected:
            assert msgs[0]["channel"] == "push"

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
        from datetime import datetime, timedelta, timezone

        only(api, "dormant")
        enrol_at(api, "d1", "2025-01-01T08:00:00Z", consents=EMAIL)
        api.accrue("d1", 3000, now="2026-01-01T10:00:00Z")
        drain()
        at = datetime(2026, 1, 1, 12, tzinfo=timezone.utc) + timedelta(days=days)
        job(api, "run-automations", at.strftime("%Y-%m-%dT%H:%M:%SZ"))
        assert [t for t, _ in templates(drain())] == expected

    def test_birthday_on_the_day_only(self, api):
        only(api, "birthday")
        enrol_at(api, "b1", "2025-01-01T08:00:00Z", consents=EMAIL, birthday="04-01")
        drain()
        job(api, "run-automations", "2026-03-31T09:00:00Z")
        assert drain() == []
        job(api, "run-automations", "2026-04-01T09:00:00Z")
        assert templates(drain()) == [("birthday", "b1")]

    def test_points_expiring_within_30_days(self, api):
        only(api, "points_expiring")
        enrol_at(api, "e1", "2025-01-01T08:00:00Z", consents=EMAIL)
        api.accrue("e1", 10000, now="2025-01-20T10:00:00Z")  # 100 points expiring 2026-01-31
        drain()
        job(api, "run-automations", "2025-12-31T09:00:00Z")  # 31 days before
        assert drain() == []
        job(api, "run-automations", "2026-01-02T09:00:00Z")
        msgs = drain()
        assert templates(msgs) == [("points_expiring", "e1")]
        assert msgs[0]["variables"]["expiring_points"] == 100
        assert msgs[0]["variables"]["expiring_at"] == "2026-01-31T23:59:59Z"

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
        assert msgs[0]["variables"]["next_tier"] == "silver" and msgs[0]["variables"]["spend_to_next_tier"] == 5000

    def test_weekly_frequency_cap(self, api):
        only(api, "birthday", "welcome", "onboarding_step", "near_next_tier")
        current = api.get("/v1/admin/settings", role="admin").body
        api.put("/v1/admin/settings", {**current, "frequency_cap_per_week": 2}, role="admin")
        enrol_at(api, "cap", "2026-04-01T08:00:00Z", consents=EMAIL, birthday="04-01")
        api.accrue("cap", 46000, now="2026-04-01T09:00:00Z")  # near the next tier too
        drain()
        counts = job(api, "run-automations", "2026-04-01T10:00:00Z")["counts"]
        assert [t for t, _ in templates(drain())] == ["birthday", "welcome"] and counts["capped"] == 1
        job(api, "run-automations", "2026-04-08T10:00:00Z")  # day 7: the two sends are exactly 7 days old
        assert drain() == []
        job(api, "run-automations", "2026-04-08T10:00:01Z")  # the rolling week has moved on
        assert [t for t, _ in templates(drain())] == ["near_next_tier", "onboarding_step"]


class TestTriggers:
    def test_cart_reminder_after_two_hours_unless_a_purchase_followed(self, api):
        api.enrol("t1", consents=EMAIL)
        api.enrol("t2", consents=EMAIL)
        for m in ("t1", "t2"):
            r = api.post(f"/v1/members/{m}/events", {"event_id": f"ev-{m}", "type": "cart_abandoned",
                                                     "occurred_at": "2026-05-01T10:00:00Z", "sku": "SKU-1"})
            assert r.status == 202
        again = api.post("/v1/members/t1/events", {"event_id": "ev-t1", "type": "cart_abandoned",
                                                   "occurred_at": "2026-05-01T10:00:00Z", "sku": "SKU-1"})
        assert again.status == 200
        other = api.post("/v1/members/t1/events", {"event_id": "ev-t1", "type": "product_viewed"})
        assert other.status == 409 and other.error == "IDEMPOTENCY_MISMATCH"
        api.accrue("t2", 5000, now="2026-05-01T11:00:00Z")
        drain()
        job(api, "run-triggers", "2026-05-01T11:59:00Z")
        assert drain() == []
        counts = job(api, "run-triggers", "2026-05-01T12:00:00Z")["counts"]
        msgs = drain()
        assert templates(msgs) == [("cart_reminder", "t1")] and msgs[0]["variables"]["sku"] == "SKU-1"
        assert counts["trigger_queued"] == 1 and counts["trigger_suppressed"] == 1
        job(api, "run-triggers", "2026-05-01T13:00:00Z")
        assert drain() == []

    def test_browse_reminder_after_a_day(self, api):
        api.enrol("bv", consents=EMAIL)
        api.post("/v1/members/bv/events", {"event_id": "pv1", "type": "product_viewed", "sku": "S9",
                                            "occurred_at": "2026-05-01T10:00:00Z"})
        drain()
        job(api, "run-triggers", "2026-05-02T09:00:00Z")
        assert drain() == []
        job(api, "run-triggers", "2026-05-02T10:00:00Z")
        assert templates(drain()) == [("browse_reminder", "bv")]

    def test_product_signal_reaches_followers_with_consent(self, api):
        api.enrol("fa", consents=EMAIL)
        api.enrol("fb")  # no consent
        api.enrol("fc", consents=EMAIL)
        for m in ("fa", "fb", "fc"):
            api.post(f"/v1/members/{m}/events", {"event_id": f"fav-{m}", "type": "favorite_added", "sku": "BAG"})
        api.post("/v1/members/fc/events", {"event_id": "unfav-fc", "type": "favorite_removed", "sku": "BAG"})
        drain()
        r = api.post("/v1/admin/product-signals", {"signal_id": "sig1", "sku": "BAG", "type": "back_in_stock",
                                                   "variables": {"price": 12000}}, role="admin")
        assert r.status == 202 and r.body["queued"] == 1 and r.body["followers"] == 2
        msgs = drain()
        assert templates(msgs) == [("back_in_stock", "fa")]
        assert msgs[0]["variables"]["sku"] == "BAG" and msgs[0]["variables"]["price"] == 12000
        replay = api.post("/v1/admin/product-signals", {"signal_id": "sig1", "sku": "BAG", "type": "back_in_stock",
                                                        "variables": {"price": 12000}}, role="admin")
        assert replay.status == 200 and replay.body == r.body and drain() == []


def test_partial_sqs_batch_failure_is_retried(api):
    from chalicelib.messaging import sqs_client

    only(api, "welcome")
    for i in range(12):
        enrol_at(api, f"pf{i:02d}", "2026-03-01T08:00:00Z", consents=EMAIL)
    drain()
    client = sqs_client()
    state = {"failed_once": False}

    def fail_some(params, **kwargs):
        if not state["failed_once"]:
            state["failed_once"] = True
            state["dropped"] = params["Entries"][:1]  # the first entry of the first batch fails
            params["Entries"] = params["Entries"][1:] or params["Entries"]

    def report(parsed, **kwargs):
        if state.get("dropped"):
            parsed.setdefault("Failed", []).extend(
                {"Id": e["Id"], "SenderFault": False, "Code": "InternalError"} for e in state.pop("dropped"))

    client.meta.events.register("provide-client-params.sqs.SendMessageBatch", fail_some, unique_id="fail")
    client.meta.events.register("after-call.sqs.SendMessageBatch", report, unique_id="report")
    try:
        counts = job(api, "run-automations", "2026-03-01T10:00:00Z")["counts"]
    finally:
        client.meta.events.unregister("provide-client-params.sqs.SendMessageBatch", unique_id="fail")
        client.meta.events.unregister("after-call.sqs.SendMessageBatch", unique_id="report")
    msgs = drain()
    assert state["failed_once"]
    assert sorted(m["member_id"] for m in msgs) == [f"pf{i:02d}" for i in range(12)]
    assert counts["queued"] == 12


class TestSegments:
    def _population(self, api):
        # a frequent big spender, a one-off small buyer, a lapsed big buyer, and a no-purchase member
        api.enrol("big", consents=EMAIL)
        for i in range(6):
            api.accrue("big", 90000, order_id=f"big-{i}", now=f"2026-0{i + 1}-10T10:00:00Z")
        api.enrol("small", consents=EMAIL)
        api.accrue("small", 1000, order_id="small-1", now="2026-06-01T10:00:00Z")
        api.enrol("lapsed", consents=EMAIL)
        for i in range(3):
            api.accrue("lapsed", 60000, order_id=f"lapsed-{i}", now=f"2025-0{i + 7}-10T10:00:00Z")
        api.enrol("none", consents=EMAIL)

    def test_scoring_orders_customers_sensibly(self, api):
        self._population(api)
        counts = job(api, "score-rfm", "2026-06-15T00:00:00Z")["counts"]
        assert counts["scored"] == 4
        seg = {m: api.member(m)["segment"] for m in ("big", "small", "lapsed", "none")}
        assert seg["none"]["label"] == "new" and seg["none"]["ltv_12m"] == 0
        assert seg["big"]["ltv_12m"] > seg["lapsed"]["ltv_12m"] > seg["small"]["ltv_12m"] > 0
        assert seg["big"]["touch"] == "high_touch"
        assert seg["big"]["label"] == "champions"
        assert seg["lapsed"]["label"] in ("at_risk", "cant_lose", "hibernating", "lost")
        report = api.get("/v1/admin/segments", role="admin").body
        assert report["as_of"] == "2026-06-15T00:00:00Z"
        assert sum(report["segments"].values()) == 4 and sum(report["touch"].values()) == 4
        assert report["f2_rate"] == pytest.approx(2 / 3, abs=1e-3)
        members = api.get("/v1/admin/segments/new/members", role="admin").body["items"]
        assert [m["member_id"] for m in members] == ["none"]
        assert api.get("/v1/admin/segments/nonsense/members", role="admin").status == 404

    def test_churn_risk_goes_to_customer_success_for_high_touch(self, api):
        only(api, "churn_risk")
        api.enrol("vip", consents=EMAIL)
        for i in range(5):
            api.accrue("vip", 100000, order_id=f"vip-{i}", now=f"2025-0{i + 1}-10T10:00:00Z")
        for i in range(10):
            api.enrol(f"filler{i}", consents=EMAIL)
            api.accrue(f"filler{i}", 2000, order_id=f"fill-{i}", now="2025-03-20T10:00:00Z")
            api.accrue(f"filler{i}", 2000, order_id=f"fill2-{i}", now="2025-12-20T10:00:00Z")
        job(api, "score-rfm", "2025-06-01T00:00:00Z")  # vip is a champion then
        assert api.member("vip")["segment"]["label"] == "champions"
        job(api, "score-rfm", "2026-01-15T00:00:00Z")  # months without an order
        seg = api.member("vip")["segment"]
        assert seg["label"] in ("at_risk", "cant_lose") and seg["touch"] == "high_touch"
        drain()
        job(api, "run-automations", "2026-01-15T09:00:00Z")
        msgs = [m for m in drain() if m["member_id"] == "vip"]
        assert [(m["template"], m["channel"]) for m in msgs] == [("churn_risk", "cs_alert")]


class TestFeedback:
    def test_survey_points_and_detractor_alert(self, api):
        from chalicelib.store import members as store

        api.enrol("fb1", consents=EMAIL)
        r = api.post("/v1/members/fb1/feedback", {"feedback_id": "f-1", "score": 9, "comment": "great"},
                     role="member", sub="fb1")
        assert r.status == 201 and r.body == {"feedback_id": "f-1", "points_earned": 20}
        replay = api.post("/v1/members/fb1/feedback", {"feedback_id": "f-1", "score": 9, "comment": "great"},
                          role="member", sub="fb1")
        assert replay.status == 200 and replay.body == r.body
        r2 = api.post("/v1/members/fb1/feedback", {"feedback_id": "f-2", "score": 3})
        assert r2.status == 201 and r2.body["points_earned"] == 0  # survey: 1 a day
        assert api.member("fb1")["points"]["available"] == 20
        # a detractor from a high-touch member alerts customer success
        row = store.get("fb1")
        row.state["segment"] = {"label": "champions", "touch": "high_touch", "ltv_12m": 500000}
        from chalicelib.store import tx

        tx.write([store.save_op(row, row.version)])
        drain()
        api.post("/v1/members/fb1/feedback", {"feedback_id": "f-3", "score": 2, "comment": "late delivery"})
        msgs = drain()
        assert [(m["template"], m["channel"]) for m in msgs] == [("cs_alert", "cs_alert")]
        report = api.get("/v1/admin/segments", role="admin").body
        assert report["nps"] == pytest.approx(round(100 * (1 - 2) / 3, 1))


class TestBroadcasts:
    def test_dry_run_then_send_with_personal_coupon_codes(self, api):
        api.enrol("bc1", consents=EMAIL)
        api.enrol("bc2", consents={"email": False, "push": True, "sms": False})
        api.enrol("bc3", consents=EMAIL)
        r = api.post("/v1/admin/coupon-campaigns", {
            "campaign_id": "spring", "name": "Spring", "discount": {"type": "amount", "value": 500},
            "min_order_amount": 0, "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2027-01-01T00:00:00Z",
            "code_mode": "unique"}, role="admin")
        assert r.status == 201, r.body
        assert api.post("/v1/admin/coupon-campaigns/spring/codes", {"count": 10}, role="admin").status == 201
        drain()
        body = {"name": "Spring sale", "template": "spring_sale", "channel": "email",
                "audience": {"member_ids": ["bc1", "bc2", "bc3", "ghost"]}, "coupon_campaign_id": "spring"}
        dry = api.post("/v1/admin/message-campaigns", {**body, "dry_run": True}, role="admin")
        assert dry.status == 201, dry.body
        assert (dry.body["audience_size"], dry.body["eligible"], dry.body["queued"]) == (3, 2, 0)
        assert drain() == []
        sent = api.post("/v1/admin/message-campaigns", {**body, "campaign_id": "spring-1"}, role="admin")
        assert (sent.body["audience_size"], sent.body["eligible"], sent.body["queued"]) == (3, 2, 2)
        msgs = drain()
        assert sorted(m["member_id"] for m in msgs) == ["bc1", "bc3"]
        for m in msgs:
            wallet = api.get(f"/v1/members/{m['member_id']}/coupons").body["items"]
            assert m["variables"]["coupon_code"] == wallet[0]["code"]
            assert m["campaign_id"] == "spring-1" and m["template"] == "spring_sale"
        assert msgs[0]["variables"]["coupon_code"] != msgs[1]["variables"]["coupon_code"]
        listed = api.get("/v1/admin/message-campaigns", role="admin").body["items"]
        assert [c["campaign_id"] for c in listed][:1] == ["spring-1"]
        assert api.get("/v1/admin/message-campaigns/spring-1", role="admin").body["queued"] == 2
        again = api.post("/v1/admin/message-campaigns", {**body, "campaign_id": "spring-1"}, role="admin")
        assert again.status == 409

    def test_audience_by_tier(self, api):
        api.enrol("tier-a", consents=EMAIL)
        api.enrol("tier-b", consents=EMAIL)
        api.accrue("tier-a", 60000)
        drain()
        r = api.post("/v1/admin/message-campaigns", {"name": "Silver perks", "template": "perks", "channel": "email",
                                                     "audience": {"tiers": ["silver"]}}, role="admin")
        assert r.body["audience_size"] == 1 and r.body["queued"] == 1
        assert templates(drain()) == [("perks", "tier-a")]
