"""Issue 4: rewards catalogue, redemption, vouchers and gifting (SPEC 2.8, 2.10)."""
import json

import pytest

from tests.factories import assert_invariant, parallel


def reward(api, reward_id="latte", **fields):
    body = {"reward_id": reward_id, "name": "Free latte", "cost_points": 100, "kind": "voucher", **fields}
    r = api.post("/v1/admin/rewards", body, role="admin")
    assert r.status == 201, r.body
    return r.body


def member_with(api, member_id, points):
    api.enrol(member_id, consents={"email": False, "push": True, "sms": False})
    if points:
        r = api.post(f"/v1/admin/members/{member_id}/adjustments",
                     {"adjustment_id": f"seed-{member_id}", "points": points, "reason": "seed"}, role="admin")
        assert r.status == 201


def redeem(api, member_id, reward_id="latte", role="member", **kw):
    return api.post(f"/v1/members/{member_id}/redemptions", {"reward_id": reward_id}, role=role, sub=member_id, **kw)


class TestCatalogue:
    def test_crud_and_audit(self, api):
        created = reward(api, stock=5, per_member_limit=2)
        assert created["stock"] == 5 and created["active"] is True and created["voucher_valid_days"] == 30
        again = api.post("/v1/admin/rewards", {"reward_id": "latte", "name": "x", "cost_points": 1}, role="admin")
        assert again.status == 409 and again.error == "ALREADY_EXISTS"
        r = api.put("/v1/admin/rewards/latte", {"name": "Large latte", "cost_points": 150, "stock": 9}, role="admin")
        assert r.status == 200 and r.body["cost_points"] == 150 and r.body["stock"] == 9
        assert api.put("/v1/admin/rewards/nope", {"name": "n", "cost_points": 1}, role="admin").error == \
            "REWARD_NOT_FOUND"
        assert api.delete("/v1/admin/rewards/latte", role="admin").status == 204
        assert api.delete("/v1/admin/rewards/latte", role="admin").status == 404
        actions = [e["action"] for e in api.get("/v1/admin/audit", role="admin").body["items"]]
        assert actions[:3] == ["reward.delete", "reward.update", "reward.create"]

    def test_listing_shows_active_rewards_in_window_and_tier(self, api):
        reward(api, "a", cost_points=10)
        reward(api, "gold-only", cost_points=20, min_tier="gold")
        reward(api, "off", cost_points=30, active=False)
        reward(api, "later", cost_points=40, starts_at="2099-01-01T00:00:00Z")
        api.enrol("viewer")
        svc = api.get("/v1/rewards").body["items"]
        assert [r["reward_id"] for r in svc] == ["a", "gold-only"]
        mem = api.get("/v1/rewards", role="member", sub="viewer").body["items"]
        assert [r["reward_id"] for r in mem] == ["a"]
        page = api.get("/v1/rewards?limit=1").body
        assert len(page["items"]) == 1 and page["next_cursor"]
        nxt = api.get(f"/v1/rewards?limit=1&cursor={page['next_cursor']}").body
        assert [r["reward_id"] for r in nxt["items"]] == ["gold-only"] and nxt["next_cursor"] is None


class TestRedemption:
    def test_redeem_debits_points_takes_stock_and_issues_a_voucher(self, api):
        reward(api, stock=2)
        member_with(api, "r1", 250)
        r = redeem(api, "r1")
        assert r.status == 201, r.body
        v = r.body
        assert v["status"] == "issued" and v["points_spent"] == 100 and v["member_id"] == "r1"
        assert len(v["code"]) == 16 and set(v["code"]) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
        assert api.member("r1")["points"]["available"] == 150
        assert api.member("r1")["points"]["lifetime_spent"] == 100
        ledger = api.get("/v1/members/r1/ledger").body["items"]
        assert ledger[0]["type"] == "redeem" and ledger[0]["points"] == -100
        assert ledger[0]["reference"] == {"reward_id": "latte", "redemption_id": v["redemption_id"]}
        assert api.get("/v1/rewards").body["items"][0]["remaining"] == 1
        listed = api.get("/v1/members/r1/redemptions", role="member", sub="r1").body["items"]
        assert [x["redemption_id"] for x in listed] == [v["redemption_id"]]
        assert_invariant("r1")

    def test_reward_redeemed_message(self, api):
        from chalicelib.messaging import queue_url, sqs_client

        reward(api)
        member_with(api, "r2", 100)
        v = redeem(api, "r2").body
        msgs = [json.loads(m["Body"]) for m in sqs_client().receive_message(
            QueueUrl=queue_url(), MaxNumberOfMessages=10).get("Messages", [])]
        assert [(m["template"], m["channel"], m["variables"]["voucher_code"]) for m in msgs] == [
            ("reward_redeemed", "push", v["code"])]

    def test_idempotency_key_replays(self, api):
        reward(api)
        member_with(api, "r3", 300)
        h = {"Idempotency-Key": "k-1"}
        first = redeem(api, "r3", headers=h)
        again = redeem(api, "r3", headers=h)
        assert first.status == 201 and again.status == 200 and again.body == first.body
        other = api.post("/v1/members/r3/redemptions", {"reward_id": "other"}, role="member", sub="r3", headers=h)
        assert other.status == 409 and other.error == "IDEMPOTENCY_MISMATCH"
        assert api.member("r3")["points"]["available"] == 200
        assert_invariant("r3")

    @pytest.mark.parametrize("case,code,status", [
        ("unknown", "REWARD_NOT_FOUND", 404), ("inactive", "REWARD_NOT_FOUND", 404),
        ("poor", "INSUFFICIENT_POINTS", 422), ("stock", "OUT_OF_STOCK", 422),
        ("limit", "REWARD_LIMIT_REACHED", 422), ("tier", "TIER_REQUIRED", 422),
        ("suspended", "MEMBER_INACTIVE", 422), ("nobody", "MEMBER_NOT_FOUND", 404),
    ])
    def test_rejections(self, api, case, code, status):
        reward(api, "latte", stock=1 if case == "stock" else None, per_member_limit=1 if case == "limit" else None,
               min_tier="gold" if case == "tier" else None, active=case != "inactive")
        member_with(api, "rx", 50 if case == "poor" else 1000)
        if case in ("stock", "limit"):
            assert redeem(api, "rx").status == 201
        if case == "suspended":
            assert api.patch("/v1/members/rx", {"status": "suspended"}).status == 200
        target = "ghost" if case == "nobody" else "rx"
        r = redeem(api, target, "missing" if case == "unknown" else "latte", role="service")
        assert (r.status, r.error) == (status, code), r.body
        if case != "nobody":
            assert_invariant("rx")

    def test_negative_balance_blocks_redemption(self, api):
        reward(api, cost_points=10)
        api.enrol("neg")
        api.accrue("neg", 10000, order_id="neg-o")
        assert redeem(api, "neg").status == 201
        api.post("/v1/members/neg/refunds", {"refund_id": "neg-r", "order_id": "neg-o", "amount": 10000})
        assert api.member("neg")["points"]["available"] == -10
        r = redeem(api, "neg")
        assert r.status == 422 and r.error == "INSUFFICIENT_POINTS"
        assert_invariant("neg")

    def test_pending_points_are_not_redeemable(self, api):
        current = api.get("/v1/admin/settings", role="admin").body
        api.put("/v1/admin/settings", {**current, "pending_days": 14}, role="admin")
        reward(api, cost_points=10)
        api.enrol("pend")
        api.accrue("pend", 100000)
        r = redeem(api, "pend")
        assert r.status == 422 and r.error == "INSUFFICIENT_POINTS"


class TestVoucherLifecycle:
    def test_cancel_returns_points_and_stock(self, api):
        reward(api, stock=1)
        member_with(api, "c1", 100)
        v = redeem(api, "c1").body
        r = api.post(f"/v1/members/c1/redemptions/{v['redemption_id']}/cancel", role="member", sub="c1")
        assert r.status == 200 and r.body["status"] == "cancelled"
        assert api.member("c1")["points"]["available"] == 100
        assert api.member("c1")["points"]["lifetime_spent"] == 0
        assert api.get("/v1/rewards").body["items"][0]["remaining"] == 1
        ledger = api.get("/v1/members/c1/ledger").body["items"]
        assert (ledger[0]["type"], ledger[0]["points"]) == ("refund_redemption", 100)
        again = api.post(f"/v1/members/c1/redemptions/{v['redemption_id']}/cancel", role="member", sub="c1")
        assert (again.status, again.error) == (422, "VOUCHER_NOT_ISSUED")
        assert again.body["error"]["details"] == {"status": "cancelled"}
        assert api.member("c1")["points"]["available"] == 100  # not refunded twice
        assert_invariant("c1")

    def test_cancelling_does_not_extend_the_life_of_the_points(self, api):
        """The points come back to the month they were earned in and expire on time."""
        from tests.integration.test_tiers_expiry import run_job

        reward(api)
        api.enrol("c9")
        api.accrue("c9", 10000, order_id="c9-o", now="2025-01-20T00:00:00Z")  # 100 points of 2025-01
        v = redeem(api, "c9", now="2026-01-20T00:00:00Z").body
        r = api.post(f"/v1/members/c9/redemptions/{v['redemption_id']}/cancel", role="member", sub="c9",
                     now="2026-01-25T00:00:00Z")
        assert r.status == 200
        soon = api.member("c9", now="2026-01-25T00:00:00Z")["points"]["expiring_soon"]
        assert soon == [{"points": 100, "expires_at": "2026-01-31T23:59:59Z"}]
        assert run_job(api, "expire-points", "2026-02-01")["counts"]["points_expired"] == 100
        assert api.member("c9", now="2026-02-01T00:00:00Z")["points"]["available"] == 0
        assert_invariant("c9")

    def test_use_once_case_insensitive_dashes_ignored(self, api):
        reward(api)
        member_with(api, "u1", 100)
        v = redeem(api, "u1").body
        messy = "-".join([v["code"][:4], v["code"][4:8], v["code"][8:]]).lower()
        r = api.post(f"/v1/vouchers/{messy}/use", {"order_id": "store-1"})
        assert r.status == 200 and r.body["status"] == "used" and r.body["used_at"]
        assert api.post(f"/v1/vouchers/{v['code']}/use", {"order_id": "store-1"}).status == 200  # replay
        r = api.post(f"/v1/vouchers/{v['code']}/use", {"order_id": "store-2"})
        assert r.status == 422 and r.error == "VOUCHER_NOT_ISSUED"
        r = api.post(f"/v1/members/u1/redemptions/{v['redemption_id']}/cancel", role="member", sub="u1")
        assert r.status == 422 and r.error == "VOUCHER_NOT_ISSUED"
        assert api.post("/v1/vouchers/NOSUCHCODE0000/use", {}).status == 404

    def test_gift_to_a_friend(self, api):
        reward(api)
        member_with(api, "giver", 100)
        api.enrol("friend")
        v = redeem(api, "giver").body
        path = f"/v1/members/giver/redemptions/{v['redemption_id']}/gift"
        assert api.post(path, {"to_member_id": "giver"}, role="member", sub="giver").status == 400
        assert api.post(path, {"to_member_id": "nobody"}, role="member", sub="giver").error == "MEMBER_NOT_FOUND"
        assert api.post(path, {"to_member_id": "friend"}, role="service").status == 403  # owner only
        r = api.post(path, {"to_member_id": "friend"}, role="member", sub="giver")
        assert r.status == 200 and r.body["member_id"] == "friend" and r.body["gifted_from"] == "giver"
        assert api.get("/v1/members/giver/redemptions", role="member", sub="giver").body["items"] == []
        mine = api.get("/v1/members/friend/redemptions", role="member", sub="friend").body["items"]
        assert [x["redemption_id"] for x in mine] == [v["redemption_id"]]
        # the friend cancels: the points go back to whoever paid
        r = api.post(f"/v1/members/friend/redemptions/{v['redemption_id']}/cancel", role="member", sub="friend")
        assert r.status == 200
        assert api.member("giver")["points"]["available"] == 100
        assert api.member("friend")["points"]["available"] == 0
        assert_invariant("giver")
        assert_invariant("friend")

    def test_gift_to_inactive_member_refused(self, api):
        reward(api)
        member_with(api, "g2", 100)
        api.enrol("closed-friend")
        api.post("/v1/members/closed-friend/close", role="admin")
        v = redeem(api, "g2").body
        r = api.post(f"/v1/members/g2/redemptions/{v['redemption_id']}/gift", {"to_member_id": "closed-friend"},
                     role="member", sub="g2")
        assert r.status == 422 and r.error == "MEMBER_INACTIVE"

    def test_expire_vouchers_job(self, api):
        reward(api, voucher_valid_days=10)
        member_with(api, "x1", 300)
        old = redeem(api, "x1", now="2026-01-01T00:00:00Z").body
        fresh = redeem(api, "x1", now="2026-01-09T00:00:00Z").body
        r = api.post("/v1/admin/jobs", {"job": "expire-vouchers", "as_of": "2026-01-12T00:00:00Z"}, role="admin")
        job = api.get(f"/v1/admin/jobs/{r.body['job_id']}", role="admin").body
        assert job["status"] == "succeeded" and job["counts"]["vouchers_expired"] == 1
        items = {x["redemption_id"]: x["status"] for x in
                 api.get("/v1/members/x1/redemptions", now="2026-01-12T00:00:00Z").body["items"]}
        assert items == {old["redemption_id"]: "expired", fresh["redemption_id"]: "issued"}
        r = api.post(f"/v1/vouchers/{old['code']}/use", {}, now="2026-01-12T00:00:00Z")
        assert r.error == "VOUCHER_NOT_ISSUED"
        assert api.member("x1")["points"]["available"] == 100  # expiry does not return points


class TestConcurrency:
    def _setup(self, stock, balance, members=1, per_member_limit=None):
        from chalicelib.schemas.members import AdjustmentRequest, EnrolRequest
        from chalicelib.schemas.rewards import Reward
        from chalicelib.services import members as msvc
        from chalicelib.services import points, rewards

        rewards.create_reward(Reward(reward_id="hot", name="Hot", cost_points=100, stock=stock,
                                     per_member_limit=per_member_limit), "test")
        for i in range(members):
            msvc.enrol(EnrolRequest(member_id=f"p{i}"), "test")
            points.adjust(f"p{i}", AdjustmentRequest(adjustment_id=f"seed{i}", points=balance, reason="seed"), "t")

    def test_small_balance_never_overdraws(self, locked_emulator):
        from chalicelib.services import rewards

        self._setup(stock=None, balance=350)
        results = parallel(10, lambda i: rewards.redeem("p0", "hot", "test"))
        assert sum(1 for k, _ in results if k == "ok") == 3
        assert {v for k, v in results if k == "err"} == {"INSUFFICIENT_POINTS"}
        from chalicelib.store import members

        assert members.get("p0").wallet.to_dict()["available"] == 50
        assert_invariant("p0")

    def test_stock_of_one_is_never_oversold(self, locked_emulator):
        from chalicelib.services import rewards
        from chalicelib.store.rewards import RewardRecord

        self._setup(stock=1, balance=1000, members=8)
        results = parallel(8, lambda i: rewards.redeem(f"p{i}", "hot", "test"))
        assert sum(1 for k, _ in results if k == "ok") == 1
        assert {v for k, v in results if k == "err"} == {"OUT_OF_STOCK"}
        from chalicelib.store.rewards import remaining
        assert remaining(RewardRecord.get("hot")) == 0 and RewardRecord.get("hot").stock == 1
        for i in range(8):
            assert_invariant(f"p{i}")

    def test_per_member_limit_holds(self, locked_emulator):
        from chalicelib.services import rewards

        self._setup(stock=None, balance=5000, per_member_limit=2)
        results = parallel(8, lambda i: rewards.redeem("p0", "hot", "test"))
        assert sum(1 for k, _ in results if k == "ok") == 2
        assert {v for k, v in results if k == "err"} == {"REWARD_LIMIT_REACHED"}
        assert_invariant("p0")


def test_throttled_redemption_writes_nothing_and_retry_succeeds(api):
    from chalicelib.store.base import dynamodb_client

    reward(api, stock=3)
    member_with(api, "t1", 500)
    calls = {"n": 0}

    def throttle(**kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            from botocore.awsrequest import AWSResponse

            return (AWSResponse("https://dynamodb", 400, {}, None),
                    {"Error": {"Code": "ThrottlingException", "Message": "slow down"}})
        return None

    events = dynamodb_client().meta.events
    events.register("before-call.dynamodb.TransactWriteItems", throttle, unique_id="throttle-redeem")
    try:
        r = redeem(api, "t1")
        assert r.status == 503 and r.error == "RETRY_LATER"
        assert api.member("t1")["points"]["available"] == 500
        assert api.get("/v1/members/t1/redemptions", role="member", sub="t1").body["items"] == []
        assert api.get("/v1/rewards").body["items"][0]["remaining"] == 3
        r = redeem(api, "t1")
        assert r.status == 201
    finally:
        events.unregister("before-call.dynamodb.TransactWriteItems", unique_id="throttle-redeem")
    assert api.member("t1")["points"]["available"] == 400
    assert_invariant("t1")
