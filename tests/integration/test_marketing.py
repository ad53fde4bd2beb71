"""Events and behaviour triggers, product signals, feedback with NPS, and broadcasts (SPEC 2.12, 4.4)."""
from __future__ import annotations

import time

import pytest

from tests.integration.test_marketing_helpers import EMAIL, PUSH, drain, job, only, templates


NOW = "2026-06-01T00:00:00Z"


def cart(api, member, event_id, at, **extra):
    return api.post(f"/v1/members/{member}/events", {"event_id": event_id, "type": "cart_abandoned",
                                                     "occurred_at": at, **extra})


class TestEvents:
    def test_accepted_replayed_and_mismatched(self, api):
        api.enrol("ev", consents=EMAIL)
        r = cart(api, "ev", "e1", "2026-05-01T10:00:00Z", sku="SKU-1", cart={"total": 4200})
        assert r.status == 202 and r.body == {"event_id": "e1", "member_id": "ev", "type": "cart_abandoned",
                                              "accepted": True}
        again = cart(api, "ev", "e1", "2026-05-01T10:00:00Z", sku="SKU-1", cart={"total": 4200})
        assert again.status == 200 and again.body == r.body
        other = api.post("/v1/members/ev/events", {"event_id": "e1", "type": "product_viewed", "sku": "X"})
        assert other.status == 409 and other.error == "IDEMPOTENCY_MISMATCH"
        api.enrol("ev2")
        assert cart(api, "ev2", "e1", "2026-05-01T10:00:00Z", sku="SKU-1",
                    cart={"total": 4200}).error == "IDEMPOTENCY_MISMATCH"

    def test_validation_and_unknown_members(self, api):
        api.enrol("ev3")
        bad = [{"event_id": "x1", "type": "favorite_added"}, {"event_id": "x2", "type": "bought"},
               {"event_id": "x3", "type": "cart_abandoned", "occurred_at": "2026-05-01T10:00:00"},
               {"event_id": "x4", "type": "cart_abandoned", "cart": {"blob": "x" * 9000}},
               {"event_id": "x5", "type": "cart_abandoned", "extra": 1}]
        for body in bad:
            r = api.post("/v1/members/ev3/events", body)
            assert (r.status, r.error) == (400, "VALIDATION_ERROR"), body
        assert api.post("/v1/members/ghost/events", {"event_id": "g1", "type": "cart_abandoned"}).error == \
            "MEMBER_NOT_FOUND"
        assert api.post("/v1/members/ev3/events", {"event_id": "m1", "type": "cart_abandoned"},
                        role="member", sub="ev3").error == "FORBIDDEN"


class TestReminders:
    def test_cart_reminder_after_two_hours_unless_a_purchase_followed(self, api):
        api.enrol("t1", consents=EMAIL)
        api.enrol("t2", consents=EMAIL)
        for m in ("t1", "t2"):
            assert cart(api, m, f"ev-{m}", "2026-05-01T10:00:00Z", sku="SKU-1", cart={"items": 2}).status == 202
        api.accrue("t2", 5000, now="2026-05-01T11:00:00Z")
        drain()
        assert job(api, "run-triggers", "2026-05-01T11:59:59Z")["counts"].get("trigger_queued", 0) == 0
        assert drain() == []
        counts = job(api, "run-triggers", "2026-05-01T12:00:00Z")["counts"]
        msgs = drain()
        assert templates(msgs) == [("cart_reminder", "t1")]
        assert msgs[0]["variables"]["sku"] == "SKU-1" and msgs[0]["variables"]["cart"] == {"items": 2}
        assert (counts["trigger_queued"], counts["trigger_suppressed"]) == (1, 1)
        job(api, "run-triggers", "2026-05-01T13:00:00Z")
        assert drain() == []

    def test_one_cart_reminder_a_day_and_stale_events_expire(self, api):
        api.enrol("t3", consents=EMAIL)
        cart(api, "t3", "c1", "2026-05-01T08:00:00Z")
        cart(api, "t3", "c2", "2026-05-01T09:00:00Z")
        cart(api, "t3", "old", "2026-04-25T09:00:00Z")  # reported late: older than 48 hours
        drain()
        counts = job(api, "run-triggers", "2026-05-01T12:00:00Z")["counts"]
        assert templates(drain()) == [("cart_reminder", "t3")]
        assert (counts["trigger_queued"], counts["trigger_duplicate"], counts["trigger_expired"]) == (1, 1, 1)

    def test_switched_off_trigger_sends_nothing(self, api):
        only(api, "browse_reminder")
        api.enrol("t4", consents=EMAIL)
        cart(api, "t4", "c1", "2026-05-01T08:00:00Z")
        drain()
        assert job(api, "run-triggers", "2026-05-01T12:00:00Z")["counts"]["trigger_disabled"] == 1
        assert drain() == []

    def test_browse_reminder_after_a_day(self, api):
        api.enrol("bv", consents=EMAIL)
        api.post("/v1/members/bv/events", {"event_id": "pv1", "type": "product_viewed", "sku": "S9",
                                            "occurred_at": "2026-05-01T10:00:00Z"})
        drain()
        job(api, "run-triggers", "2026-05-02T09:59:59Z")
        assert drain() == []
        job(api, "run-triggers", "2026-05-02T10:00:00Z")
        msgs = drain()
        assert templates(msgs) == [("browse_reminder", "bv")] and msgs[0]["variables"]["sku"] == "S9"

    def test_outbox_leftovers_are_flushed(self, api):
        from chalicelib.store.models import OutboxRecord

        body = {"message_id": "left-1", "member_id": "x", "channel": "email", "template": "tier_changed",
                "locale": "ja-JP", "campaign_id": None, "variables": {}, "created_at": "2026-05-01T10:00:00Z"}
        OutboxRecord("left-1", body=body, created_at=body["created_at"]).save()
        assert job(api, "run-triggers", "2026-05-01T10:02:00Z")["counts"]["outbox_flushed"] == 1
        assert drain() == [body] and list(OutboxRecord.scan()) == []


class TestProductSignals:
    def test_reaches_followers_with_consent_once(self, api):
        api.enrol("fa", consents=EMAIL)
        api.enrol("fb")  # no consent
        api.enrol("fc", consents=EMAIL)
        api.enrol("fd", consents=PUSH)
        for m in ("fa", "fb", "fc", "fd"):
            api.post(f"/v1/members/{m}/events", {"event_id": f"fav-{m}", "type": "favorite_added", "sku": "BAG",
                                                 "occurred_at": "2026-05-01T10:00:00Z"})
        api.post("/v1/members/fc/events", {"event_id": "unfav-fc", "type": "favorite_removed", "sku": "BAG",
                                            "occurred_at": "2026-05-02T10:00:00Z"})
        # a late, older "added" does not undo the newer removal
        api.post("/v1/members/fc/events", {"event_id": "late-fc", "type": "favorite_added", "sku": "BAG",
                                            "occurred_at": "2026-05-01T12:00:00Z"})
        drain()
        body = {"signal_id": "sig1", "sku": "BAG", "type": "back_in_stock", "variables": {"price": 12000}}
        r = api.post("/v1/admin/product-signals", body, role="admin")
        assert r.status == 202
        assert (r.body["followers"], r.body["queued"], r.body["no_consent"]) == (3, 2, 1)
        msgs = drain()
        assert templates(msgs) == [("back_in_stock", "fa"), ("back_in_stock", "fd")]
        assert {m["channel"] for m in msgs} == {"email", "push"}
        assert msgs[0]["variables"]["sku"] == "BAG" and msgs[0]["variables"]["price"] == 12000
        replay = api.post("/v1/admin/product-signals", body, role="admin")
        assert replay.status == 200 and replay.body == r.body and drain() == []
        changed = api.post("/v1/admin/product-signals", {**body, "type": "price_drop"}, role="admin")
        assert changed.status == 409 and changed.error == "IDEMPOTENCY_MISMATCH"
        assert api.post("/v1/admin/product-signals", {**body, "signal_id": "s2", "type": "soon"},
                        role="admin").error == "VALIDATION_ERROR"
        assert api.post("/v1/admin/product-signals", {**body, "signal_id": "s3"}).error == "FORBIDDEN"

    def test_switched_off_signal_queues_nothing(self, api):
        only(api, "back_in_stock")
        api.enrol("fx", consents=EMAIL)
        api.post("/v1/members/fx/events", {"event_id": "fav-fx", "type": "favorite_added", "sku": "HAT"})
        r = api.post("/v1/admin/product-signals", {"signal_id": "lo", "sku": "HAT", "type": "low_stock"},
                     role="admin")
        assert r.status == 202 and (r.body["enabled"], r.body["queued"]) == (False, 0) and drain() == []


class TestFeedback:
    def test_survey_points_limits_replay_and_nps(self, api):
        T = "2026-05-01T10:00:00Z"
        api.enrol("fb1", consents=EMAIL)
        r = api.post("/v1/members/fb1/feedback", {"feedback_id": "f-1", "score": 9, "comment": "great"},
                     role="member", sub="fb1", now=T)
        assert r.status == 201 and r.body == {"feedback_id": "f-1", "points_earned": 20}
        replay = api.post("/v1/members/fb1/feedback", {"feedback_id": "f-1", "score": 9, "comment": "great"},
                          role="member", sub="fb1", now=T)
        assert replay.status == 200 and replay.body == r.body
        assert api.post("/v1/members/fb1/feedback", {"feedback_id": "f-1", "score": 3}, now=T).error == "IDEMPOTENCY_MISMATCH"
        r2 = api.post("/v1/members/fb1/feedback", {"feedback_id": "f-2", "score": 3}, now=T)
        assert r2.status == 201 and r2.body["points_earned"] == 0  # survey: once a day; still stored
        api.post("/v1/members/fb1/feedback", {"feedback_id": "f-3", "score": 7}, now=T)
        assert api.member("fb1", now=T)["points"]["available"] == 20
        report = api.get("/v1/admin/segments", role="admin", now="2026-07-29T23:00:00Z").body  # day 90
        assert report["nps"] == pytest.approx(0.0)  # 1 promoter, 1 passive, 1 detractor
        assert report["nps_responses"] == {"promoters": 1, "passives": 1, "detractors": 1, "total": 3}
        later = api.get("/v1/admin/segments", role="admin", now="2026-07-30T00:00:00Z").body
        assert later["nps"] is None  # day 91: out of the window
        assert api.post("/v1/members/fb1/feedback", {"feedback_id": "f-4", "score": 3},
                        role="member", sub="other").error == "FORBIDDEN"
        assert api.post("/v1/members/fb1/feedback", {"feedback_id": "f-5", "score": 11}).error == "VALIDATION_ERROR"
        assert api.post("/v1/members/ghost/feedback", {"feedback_id": "f-6", "score": 5}).error == "MEMBER_NOT_FOUND"

    def test_no_survey_rule_means_no_points(self, api):
        current = api.get("/v1/admin/settings", role="admin").body
        rules = {k: v for k, v in current["activity_rules"].items() if k != "survey"}
        assert api.put("/v1/admin/settings", {**current, "activity_rules": rules}, role="admin").status == 200
        api.enrol("fb2")
        r = api.post("/v1/members/fb2/feedback", {"feedback_id": "g-1", "score": 10})
        assert r.status == 201 and r.body["points_earned"] == 0

    def test_closing_erases_the_member_s_comments_and_keeps_the_scores(self, api):
        from chalicelib.store.marketing import FeedbackRecord

        api.enrol("fb3")
        api.enrol("fb4")
        for fid, member, comment in (("h-1", "fb3", "too slow"), ("h-2", "fb3", None), ("h-3", "fb3", "ok"),
                                     ("h-4", "fb4", "mine")):
            body = {"feedback_id": fid, "score": 4, **({"comment": comment} if comment else {})}
            assert api.post(f"/v1/members/{member}/feedback", body).status == 201
        assert api.post("/v1/members/fb3/close", role="admin").status == 200
        kept = {r.feedback_id: (r.member_id, r.score, r.comment, r.commenter) for r in FeedbackRecord.scan()}
        assert kept == {"h-1": ("fb3", 4, None, None), "h-2": ("fb3", 4, None, None),
                        "h-3": ("fb3", 4, None, None), "h-4": ("fb4", 4, "mine", "fb4")}
        assert api.post("/v1/members/fb3/close", role="admin").status == 200  # a repeat finds nothing left

    def test_detractor_from_a_high_touch_member_alerts_customer_success(self, api):
        from chalicelib.store import members as store
        from chalicelib.store import tx

        api.enrol("vip", name="Vera")  # no marketing consent needed for cs_alert
        api.enrol("reg", consents=EMAIL)
        for member, touch in (("vip", "high_touch"), ("reg", "low_touch")):
            row = store.get(member)
            row.segment = {"rfm": "555", "label": "champions", "touch": touch, "ltv_12m": 500000}
            tx.write([store.save_op(row)])
        drain()
        api.post("/v1/members/reg/feedback", {"feedback_id": "d-0", "score": 2})
        api.post("/v1/members/vip/feedback", {"feedback_id": "d-1", "score": 7})  # passive: no alert
        api.post("/v1/members/vip/feedback", {"feedback_id": "d-2", "score": 2, "comment": "late delivery"})
        api.post("/v1/members/vip/feedback", {"feedback_id": "d-2", "score": 2, "comment": "late delivery"})
        msgs = drain()
        assert [(m["template"], m["channel"], m["member_id"]) for m in msgs] == [("cs_alert", "cs_alert", "vip")]
        assert msgs[0]["variables"]["comment"] == "late delivery" and msgs[0]["variables"]["score"] == 2
        assert msgs[0]["variables"]["name"] == "Vera"


class TestBroadcasts:
    def coupon_campaign(self, api, codes=10):
        r = api.post("/v1/admin/coupon-campaigns", {
            "campaign_id": "spring", "name": "Spring", "discount": {"type": "amount", "value": 500},
            "min_order_amount": 0, "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2027-01-01T00:00:00Z",
            "code_mode": "unique"}, role="admin", now=NOW)
        assert r.status == 201, r.body
        assert api.post("/v1/admin/coupon-campaigns/spring/codes", {"count": codes}, role="admin", now=NOW).status == 201

    def test_dry_run_then_send_with_personal_coupon_codes(self, api):
        api.enrol("bc1", consents=EMAIL, name="A")
        api.enrol("bc2", consents=PUSH)
        api.enrol("bc3", consents=EMAIL, name="C")
        api.enrol("bc4", consents=EMAIL)
        assert api.patch("/v1/members/bc4", {"status": "suspended"}).status == 200
        self.coupon_campaign(api)
        drain()
        body = {"name": "Spring sale", "template": "spring_sale", "channel": "email",
                "audience": {"member_ids": ["bc1", "bc2", "bc3", "bc4", "ghost"]}, "coupon_campaign_id": "spring",
                "variables": {"headline": "Spring!", "name": "not yours"}}
        dry = api.post("/v1/admin/message-campaigns", {**body, "dry_run": True}, role="admin", now=NOW)
        assert dry.status == 201, dry.body
        assert (dry.body["audience_size"], dry.body["eligible"], dry.body["queued"]) == (3, 2, 0)
        assert dry.body["status"] == "dry_run" and drain() == []
        assert api.get("/v1/members/bc1/coupons").body["items"] == []  # a dry run issues no code
        sent = api.post("/v1/admin/message-campaigns", {**body, "campaign_id": "spring-1"}, role="admin", now=NOW)
        assert sent.status == 201 and sent.body["status"] == "sent"
        assert (sent.body["audience_size"], sent.body["eligible"], sent.body["queued"]) == (3, 2, 2)
        msgs = drain()
        assert sorted(m["member_id"] for m in msgs) == ["bc1", "bc3"]
        for m in msgs:
            wallet = api.get(f"/v1/members/{m['member_id']}/coupons").body["items"]
            assert m["variables"]["coupon_code"] == wallet[0]["code"]
            assert (m["campaign_id"], m["template"], m["channel"]) == ("spring-1", "spring_sale", "email")
            assert m["variables"]["headline"] == "Spring!" and m["variables"]["name"] in ("A", "C")
        assert msgs[0]["variables"]["coupon_code"] != msgs[1]["variables"]["coupon_code"]
        assert api.get("/v1/members/bc2/coupons").body["items"] == []  # not eligible: no code either
        got = api.get("/v1/admin/message-campaigns/spring-1", role="admin").body
        assert (got["queued"], got["coupon_campaign_id"], got["created_by"]) == (2, "spring", "admin:svc")
        again = api.post("/v1/admin/message-campaigns", {**body, "campaign_id": "spring-1"}, role="admin", now=NOW)
        assert again.status == 409 and again.error == "ALREADY_EXISTS"

    def test_members_without_a_code_left_get_no_message(self, api):
        for i in range(3):
            api.enrol(f"nc{i}", consents=EMAIL)
        self.coupon_campaign(api, codes=2)
        drain()
        r = api.post("/v1/admin/message-campaigns", {
            "name": "x", "template": "t", "channel": "email", "coupon_campaign_id": "spring",
            "audience": {"member_ids": ["nc0", "nc1", "nc2"]}}, role="admin", now=NOW)
        assert (r.body["eligible"], r.body["queued"], r.body["no_code"]) == (3, 2, 1)
        assert len(drain()) == 2

    def test_audiences_by_tier_segment_and_touch(self, api):
        api.enrol("tier-a", consents=EMAIL)
        api.enrol("tier-b", consents=EMAIL)
        api.accrue("tier-a", 60000, now="2026-05-01T00:00:00Z")
        job(api, "score-rfm", "2026-05-02T00:00:00Z")
        drain()
        by_tier = api.post("/v1/admin/message-campaigns", {"name": "Silver perks", "template": "perks",
                                                           "channel": "email", "audience": {"tiers": ["silver"]}},
                           role="admin")
        assert (by_tier.body["audience_size"], by_tier.body["queued"]) == (1, 1)
        assert templates(drain()) == [("perks", "tier-a")]
        by_segment = api.post("/v1/admin/message-campaigns", {
            "name": "Hello", "template": "hello", "channel": "email",
            "audience": {"segments": ["new"], "member_ids": ["tier-a"]}}, role="admin")
        assert by_segment.body["audience_size"] == 2 and templates(drain()) == [("hello", "tier-a"),
                                                                                ("hello", "tier-b")]
        both = api.post("/v1/admin/message-campaigns", {
            "name": "VIP", "template": "vip", "channel": "email",
            "audience": {"touch": ["high_touch"], "tiers": ["silver", "bronze"]}}, role="admin")
        assert both.body["audience_size"] == 1 and templates(drain()) == [("vip", "tier-a")]

    def test_validation(self, api):
        base = {"name": "x", "template": "t", "channel": "email"}
        cases = [({**base, "audience": {}}, 400), ({**base, "audience": {"segments": ["vips"]}}, 400),
                 ({**base, "audience": {"tiers": ["diamond"]}}, 400),
                 ({**base, "channel": "fax", "audience": {"member_ids": ["a"]}}, 400),
                 ({**base, "audience": {"member_ids": ["a"]}, "coupon_campaign_id": "nope"}, 404)]
        for body, status in cases:
            assert api.post("/v1/admin/message-campaigns", body, role="admin").status == status, body
        assert api.get("/v1/admin/message-campaigns/nope", role="admin").error == "NOT_FOUND"

    def test_list_is_newest_first_and_paginated(self, api):
        api.enrol("l1", consents=EMAIL)
        for i, at in enumerate(("2026-05-01T00:00:00Z", "2026-05-03T00:00:00Z", "2026-05-02T00:00:00Z")):
            assert api.post("/v1/admin/message-campaigns", {
                "campaign_id": f"mc{i}", "name": "x", "template": "t", "channel": "email",
                "audience": {"member_ids": ["l1"]}}, role="admin", now=at).status == 201
        page = api.get("/v1/admin/message-campaigns?limit=2", role="admin").body
        assert [c["campaign_id"] for c in page["items"]] == ["mc1", "mc2"] and page["next_cursor"]
        rest = api.get(f"/v1/admin/message-campaigns?limit=2&cursor={page['next_cursor']}", role="admin").body
        assert [c["campaign_id"] for c in rest["items"]] == ["mc0"] and rest["next_cursor"] is None

    def test_large_audience_runs_as_a_job(self, api, monkeypatch):
        from chalicelib.services import marketing

        monkeypatch.setattr(marketing, "INLINE_LIMIT", 2)
        for i in range(5):
            api.enrol(f"big{i}", consents=EMAIL if i != 4 else None)
        drain()
        r = api.post("/v1/admin/message-campaigns", {"campaign_id": "wide", "name": "All bronze", "template": "hi",
                                                     "channel": "email", "audience": {"tiers": ["bronze"]}},
                     role="admin")
        assert r.status == 201 and r.body["status"] == "queued" and r.body["job_id"].startswith("send-message")
        for _ in range(100):
            got = api.get("/v1/admin/message-campaigns/wide", role="admin").body
            if got["status"] == "sent":
                break
            time.sleep(0.05)
        assert (got["status"], got["audience_size"], got["eligible"], got["queued"]) == ("sent", 5, 4, 4)
        assert api.get(f"/v1/admin/jobs/{r.body['job_id']}", role="admin").body["status"] == "succeeded"
        assert sorted(m["member_id"] for m in drain()) == ["big0", "big1", "big2", "big3"]
        ids = api.post("/v1/admin/message-campaigns", {"campaign_id": "ids", "name": "n", "template": "hi",
                                                       "channel": "email",
                                                       "audience": {"member_ids": [f"big{i}" for i in range(5)]}},
                       role="admin")
        assert ids.body["status"] == "queued"
        for _ in range(100):
            got = api.get("/v1/admin/message-campaigns/ids", role="admin").body
            if got["status"] == "sent":
                break
            time.sleep(0.05)
        assert (got["audience_size"], got["queued"]) == (5, 4) and len(drain()) == 4
