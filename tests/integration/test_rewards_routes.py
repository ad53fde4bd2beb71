"""Issue 4, the remaining corners of every rewards route: windows, tiers, validation, roles,
Idempotency-Key on cancel, gifting rules, expiry before and after the job, call counts."""
import pytest

from tests.factories import assert_invariant
from tests.integration.test_rewards import member_with, redeem, reward


def cancel(api, member_id, redemption_id, role="member", **kw):
    return api.post(f"/v1/members/{member_id}/redemptions/{redemption_id}/cancel", role=role, sub=member_id, **kw)


def gift(api, member_id, redemption_id, to, **kw):
    return api.post(f"/v1/members/{member_id}/redemptions/{redemption_id}/gift", {"to_member_id": to},
                    role="member", sub=member_id, **kw)


class TestCatalogueRules:
    @pytest.mark.parametrize("body", [
        {"reward_id": "r", "name": "n", "cost_points": 0},
        {"reward_id": "r", "name": "n", "cost_points": 1.5},
        {"reward_id": "r", "name": "n", "cost_points": 10, "kind": "gift"},
        {"reward_id": "r", "name": "n", "cost_points": 10, "stock": -1},
        {"reward_id": "r", "name": "n", "cost_points": 10, "min_tier": "diamond"},
        {"reward_id": "r", "name": "n", "cost_points": 10, "voucher_valid_days": 0},
        {"reward_id": "r", "name": "n", "cost_points": 10, "starts_at": "2026-02-01T00:00:00Z",
         "ends_at": "2026-01-01T00:00:00Z"},
        {"reward_id": "r", "name": "n", "cost_points": 10, "surprise": True},
        {"reward_id": "bad id", "name": "n", "cost_points": 10},
        {"name": "n", "cost_points": 10},
    ])
    def test_invalid_rewards_are_400(self, api, body):
        r = api.post("/v1/admin/rewards", body, role="admin")
        assert (r.status, r.error) == (400, "VALIDATION_ERROR"), r.body

    def test_admin_only(self, api):
        body = {"reward_id": "r", "name": "n", "cost_points": 10}
        assert api.post("/v1/admin/rewards", body, role="service").status == 403
        assert api.post("/v1/admin/rewards", body, role="member", sub="m").status == 403
        assert api.put("/v1/admin/rewards/r", body, role="service").status == 403
        assert api.delete("/v1/admin/rewards/r", role="service").status == 403

    def test_put_replaces_the_whole_reward_and_path_wins(self, api):
        reward(api, stock=5, per_member_limit=2, description="hot")
        r = api.put("/v1/admin/rewards/latte", {"reward_id": "other", "name": "x", "cost_points": 1}, role="admin")
        assert (r.status, r.error) == (400, "VALIDATION_ERROR")
        r = api.put("/v1/admin/rewards/latte", {"name": "Latte", "cost_points": 120}, role="admin")
        assert r.status == 200
        assert (r.body["reward_id"], r.body["stock"], r.body["per_member_limit"], r.body["description"]) == \
            ("latte", None, None, None)

    def test_window_bounds(self, api):
        reward(api, "early", starts_at="2026-01-10T00:00:00Z")
        reward(api, "ended", ends_at="2026-01-05T00:00:00Z")
        member_with(api, "w1", 500)
        ids = lambda now: [x["reward_id"] for x in api.get("/v1/rewards", now=now).body["items"]]  # noqa: E731
        assert ids("2026-01-01T00:00:00Z") == ["ended"]
        assert ids("2026-01-10T00:00:00Z") == ["early"]
        assert redeem(api, "w1", "early", now="2026-01-09T23:59:59Z").error == "REWARD_NOT_FOUND"
        assert redeem(api, "w1", "ended", now="2026-01-05T00:00:00Z").error == "REWARD_NOT_FOUND"
        assert redeem(api, "w1", "early", now="2026-01-10T00:00:00Z").status == 201

    def test_deleted_reward_cannot_be_redeemed_but_its_voucher_stays_valid(self, api):
        reward(api, stock=3)
        member_with(api, "d1", 300)
        v = redeem(api, "d1").body
        assert api.delete("/v1/admin/rewards/latte", role="admin").status == 204
        assert redeem(api, "d1").error == "REWARD_NOT_FOUND"
        assert api.get("/v1/rewards").body["items"] == []
        r = cancel(api, "d1", v["redemption_id"])
        assert r.status == 200 and r.body["status"] == "cancelled"
        assert api.member("d1")["points"]["available"] == 300
        assert_invariant("d1")


class TestTiers:
    def test_gold_member_sees_and_redeems_gold_rewards(self, api):
        reward(api, "gold-only", cost_points=10, min_tier="silver")
        reward(api, "plat-only", cost_points=10, min_tier="platinum")
        api.enrol("goldie")
        api.accrue("goldie", 200000)  # 2,000 points, gold
        assert api.member("goldie")["tier"]["tier_id"] == "gold"
        seen = [x["reward_id"] for x in api.get("/v1/rewards", role="member", sub="goldie").body["items"]]
        assert seen == ["gold-only"]
        assert redeem(api, "goldie", "gold-only").status == 201
        r = redeem(api, "goldie", "plat-only")
        assert (r.status, r.error) == (422, "TIER_REQUIRED")
        assert api.member("goldie")["points"]["available"] == 1990

    def test_a_min_tier_that_left_the_tier_list_reaches_nobody(self, api):
        reward(api, "gold-only", cost_points=10, min_tier="gold")
        tiers = api.get("/v1/admin/tiers", role="admin").body["items"]
        assert api.put("/v1/admin/tiers", {"items": [t for t in tiers if t["tier_id"] != "gold"]},
                       role="admin").status == 200
        api.enrol("rich")
        api.accrue("rich", 600000)
        assert api.member("rich")["tier"]["tier_id"] == "platinum"
        assert api.get("/v1/rewards", role="member", sub="rich").body["items"] == []
        assert redeem(api, "rich", "gold-only").error == "TIER_REQUIRED"


class TestRedemptionRoutes:
    def test_roles_and_body(self, api):
        reward(api)
        member_with(api, "o1", 500)
        api.enrol("o2")
        r = api.post("/v1/members/o1/redemptions", {"reward_id": "latte"}, role="member", sub="o2")
        assert (r.status, r.error) == (403, "FORBIDDEN")
        assert api.post("/v1/members/o1/redemptions", {}, role="service").error == "VALIDATION_ERROR"
        assert api.post("/v1/members/o1/redemptions", {"reward_id": "latte", "x": 1},
                        role="service").error == "VALIDATION_ERROR"
        assert api.get("/v1/members/o1/redemptions", role="member", sub="o2").status == 403
        assert api.get("/v1/members/ghost/redemptions").error == "MEMBER_NOT_FOUND"
        assert api.member("o1")["points"]["available"] == 500

    def test_list_newest_first_paginated_for_admin(self, api):
        reward(api, cost_points=10)
        member_with(api, "l1", 100)
        ids = [redeem(api, "l1", now=f"2026-01-0{d}T00:00:00Z").body["redemption_id"] for d in (1, 2, 3)]
        first = api.get("/v1/members/l1/redemptions?limit=2", role="admin").body
        assert [x["redemption_id"] for x in first["items"]] == ids[::-1][:2] and first["next_cursor"]
        rest = api.get(f"/v1/members/l1/redemptions?limit=2&cursor={first['next_cursor']}", role="admin").body
        assert [x["redemption_id"] for x in rest["items"]] == [ids[0]] and rest["next_cursor"] is None
        assert api.get("/v1/members/l1/redemptions?limit=0").error == "VALIDATION_ERROR"

    def test_stock_returned_by_cancel_can_be_redeemed_again(self, api):
        reward(api, stock=1, per_member_limit=1)
        member_with(api, "s1", 300)
        v = redeem(api, "s1").body
        assert redeem(api, "s1").error == "REWARD_LIMIT_REACHED"
        assert cancel(api, "s1", v["redemption_id"], role="service").status == 200
        again = redeem(api, "s1")
        assert again.status == 201 and again.body["code"] != v["code"]
        assert api.get("/v1/rewards").body["items"][0]["remaining"] == 0
        assert api.member("s1")["points"]["available"] == 200
        assert_invariant("s1")

    def test_redemption_spends_oldest_points_first(self, api):
        reward(api, cost_points=100)
        api.enrol("fifo")
        api.accrue("fifo", 10000, order_id="jan", now="2026-01-10T00:00:00Z")  # 100 points, expire 2027-01-31
        api.accrue("fifo", 10000, order_id="mar", now="2026-03-10T00:00:00Z")  # 100 points, expire 2027-03-31
        assert redeem(api, "fifo", now="2026-04-01T00:00:00Z").status == 201
        soon = api.member("fifo", now="2027-03-15T00:00:00Z")["points"]["expiring_soon"]
        assert [(x["points"], x["expires_at"][:10]) for x in soon] == [(100, "2027-03-31")]
        assert_invariant("fifo")

    def test_one_read_and_one_transaction(self, api, monkeypatch):
        from chalicelib.config import reset_settings
        from chalicelib.store.base import dynamodb_client
        from chalicelib.store.models import OutboxRecord

        # As in production: the stream relay sends the outbox rows, the request makes no call for it.
        monkeypatch.setenv("LOYALTY_RELAY", "stream")
        reset_settings()

        reward(api, stock=10)
        member_with(api, "cost", 1000)
        assert redeem(api, "cost").status == 201  # warm the settings and tiers caches
        calls = []
        events = dynamodb_client().meta.events
        events.register("before-call.dynamodb", lambda model, **kw: calls.append(model.name), unique_id="count-rw")
        try:
            assert redeem(api, "cost").status == 201
            plain = list(calls)
            calls.clear()
            assert redeem(api, "cost", headers={"Idempotency-Key": "cost-1"}).status == 201
            keyed = list(calls)
            calls.clear()
            assert redeem(api, "cost", headers={"Idempotency-Key": "cost-1"}).status == 200
            replay = list(calls)
        finally:
            events.unregister("before-call.dynamodb", unique_id="count-rw")
        # the reward_redeemed messages are outbox rows of the same transaction: no third call
        assert plain == ["TransactGetItems", "TransactWriteItems"]
        assert len([r for r in OutboxRecord.scan() if r.body.get("template") == "reward_redeemed"]) == 3
        assert keyed == ["TransactGetItems", "TransactWriteItems"]
        assert replay == ["TransactGetItems"]
        assert api.member("cost")["points"]["available"] == 700


class TestCancelAndGift:
    def test_cancel_with_idempotency_key_replays(self, api):
        reward(api)
        member_with(api, "ck", 100)
        v = redeem(api, "ck").body
        h = {"Idempotency-Key": "cancel-1"}
        first = cancel(api, "ck", v["redemption_id"], headers=h)
        again = cancel(api, "ck", v["redemption_id"], headers=h)
        assert (first.status, again.status) == (200, 200) and again.body == first.body
        assert api.member("ck")["points"]["available"] == 100
        assert_invariant("ck")

    def test_cancel_errors(self, api):
        reward(api, voucher_valid_days=1)
        member_with(api, "ce", 100)
        api.enrol("other")
        v = redeem(api, "ce", now="2026-01-01T00:00:00Z").body
        assert cancel(api, "ce", "rd_nope").error == "NOT_FOUND"
        assert cancel(api, "other", v["redemption_id"]).error == "NOT_FOUND"  # not theirs: not revealed
        assert api.post(f"/v1/members/ce/redemptions/{v['redemption_id']}/cancel", role="member",
                        sub="other").status == 403
        late = cancel(api, "ce", v["redemption_id"], role="admin", now="2026-01-02T00:00:00Z")
        assert (late.status, late.error) == (422, "VOUCHER_NOT_ISSUED")  # past expires_at
        assert api.member("ce")["points"]["available"] == 0

    def test_gift_rules(self, api):
        reward(api)
        member_with(api, "ga", 200)
        api.enrol("gb")
        api.enrol("gc")
        used = redeem(api, "ga").body
        api.post(f"/v1/vouchers/{used['code']}/use", {"order_id": "pos-1"})
        r = gift(api, "ga", used["redemption_id"], "gb")
        assert (r.status, r.error) == (422, "VOUCHER_NOT_ISSUED")
        v = redeem(api, "ga").body
        assert gift(api, "gb", v["redemption_id"], "gc").error == "NOT_FOUND"  # not gb's to give
        assert api.post(f"/v1/members/ga/redemptions/{v['redemption_id']}/gift", {}, role="member",
                        sub="ga").error == "VALIDATION_ERROR"
        assert gift(api, "ga", v["redemption_id"], "gb").status == 200
        # the giver no longer holds it: cannot cancel or gift it again
        assert cancel(api, "ga", v["redemption_id"]).error == "NOT_FOUND"
        assert gift(api, "ga", v["redemption_id"], "gc").error == "NOT_FOUND"
        # the recipient may pass it on; gifted_from names the last giver
        r = gift(api, "gb", v["redemption_id"], "gc")
        assert r.status == 200 and (r.body["member_id"], r.body["gifted_from"]) == ("gc", "gb")
        # every gift gives the voucher a new code: the codes a giver saw no longer work (SPEC 2.8)
        new_code = r.body["code"]
        assert new_code != v["code"]
        old = api.post(f"/v1/vouchers/{v['code']}/use", {})
        assert (old.status, old.error) == (404, "NOT_FOUND")
        used_by_friend = api.post(f"/v1/vouchers/{new_code}/use", {})
        assert used_by_friend.status == 200 and used_by_friend.body["member_id"] == "gc"
        assert api.member("ga")["points"]["available"] == 0
        for m in ("ga", "gb", "gc"):
            assert_invariant(m)

    def test_gift_from_a_suspended_member_is_refused(self, api):
        reward(api)
        member_with(api, "gs", 100)
        api.enrol("gt")
        v = redeem(api, "gs").body
        api.patch("/v1/members/gs", {"status": "suspended"})
        r = gift(api, "gs", v["redemption_id"], "gt")
        assert (r.status, r.error) == (422, "MEMBER_INACTIVE")


class TestVouchers:
    def test_use_roles_and_unknown_codes(self, api):
        reward(api)
        member_with(api, "vu", 100)
        v = redeem(api, "vu").body
        assert api.post(f"/v1/vouchers/{v['code']}/use", {}, role="member", sub="vu").status == 403
        assert api.post("/v1/vouchers/----/use", {}).error == "NOT_FOUND"
        assert api.post(f"/v1/vouchers/{v['code']}/use", {"order_id": ""}).error == "VALIDATION_ERROR"
        r = api.post(f"/v1/vouchers/{v['code']}/use", {})
        assert r.status == 200 and r.body["status"] == "used"
        assert api.post(f"/v1/vouchers/{v['code']}/use", {}).error == "VOUCHER_NOT_ISSUED"  # no order to match

    def test_use_past_expiry_before_the_job_ran(self, api):
        reward(api, voucher_valid_days=2)
        member_with(api, "vx", 100)
        v = redeem(api, "vx", now="2026-01-01T00:00:00Z").body
        assert v["expires_at"] == "2026-01-03T00:00:00Z"
        ok = api.post(f"/v1/vouchers/{v['code']}/use", {}, now="2026-01-03T00:00:00Z")
        assert (ok.status, ok.error) == (422, "VOUCHER_NOT_ISSUED")
        listed = api.get("/v1/members/vx/redemptions", now="2026-01-03T00:00:00Z").body["items"]
        assert listed[0]["status"] == "expired"

    def test_expire_job_is_safe_to_rerun_and_skips_used_and_cancelled(self, api):
        reward(api, voucher_valid_days=5)
        member_with(api, "vj", 300)
        t0 = "2026-01-01T00:00:00Z"
        used = redeem(api, "vj", now=t0).body
        cancelled = redeem(api, "vj", now=t0).body
        stale = redeem(api, "vj", now=t0).body
        api.post(f"/v1/vouchers/{used['code']}/use", {}, now=t0)
        cancel(api, "vj", cancelled["redemption_id"], now=t0)

        def run():
            r = api.post("/v1/admin/jobs", {"job": "expire-vouchers", "as_of": "2026-02-01"}, role="admin")
            return api.get(f"/v1/admin/jobs/{r.body['job_id']}", role="admin").body

        first, second = run(), run()
        assert first["status"] == second["status"] == "succeeded"
        assert first["counts"].get("vouchers_expired") == 1 and not second["counts"].get("vouchers_expired")
        status = {x["redemption_id"]: x["status"] for x in api.get("/v1/members/vj/redemptions").body["items"]}
        assert status == {used["redemption_id"]: "used", cancelled["redemption_id"]: "cancelled",
                          stale["redemption_id"]: "expired"}
        assert cancel(api, "vj", stale["redemption_id"]).error == "VOUCHER_NOT_ISSUED"
        assert api.member("vj")["points"]["available"] == 100
        assert_invariant("vj")
