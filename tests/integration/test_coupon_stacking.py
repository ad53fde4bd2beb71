"""Coupon stacking and money budgets (SPEC 2.20): through the HTTP API on moto, and under
concurrency on the locked emulator (a hot shared code whose counters are sharded)."""
from __future__ import annotations

import threading
from collections import Counter

from tests.integration.test_coupons import NOW, campaign, create, redeem, rollback, stats, validate
from tests.integration.test_coupons_concurrency import emulator, enrol, make_campaign, race, uid  # noqa: F401

C = "/v1/admin/coupon-campaigns"


def shared(cid, code, **over):
    return campaign(cid, shared_code=code, max_per_member=100, **over)


# --- stacking ---------------------------------------------------------------------------------

class TestStacking:
    def test_a_non_stackable_coupon_stands_alone(self, api):
        api.enrol("m1")
        create(api, shared("a", "AAAA1"))  # non-stackable (the default)
        create(api, shared("b", "BBBB1", stackable=True))
        create(api, shared("c", "CCCC1"))
        assert api.get(f"{C}/a", role="admin").body["stackable"] is False
        assert redeem(api, "AAAA1", "m1", "o1").status == 201
        # nothing joins an order holding a non-stackable coupon, stackable or not
        for code in ("BBBB1", "CCCC1"):
            r = redeem(api, code, "m1", "o1")
            assert (r.status, r.error) == (422, "COUPON_NOT_STACKABLE")
        # another order is free
        assert redeem(api, "BBBB1", "m1", "o2").status == 201

    def test_stackable_coupons_stack_but_a_non_stackable_one_cannot_join(self, api):
        api.enrol("m1")
        create(api, shared("s1", "STACK1", stackable=True, discount={"type": "amount", "value": 100}))
        create(api, shared("s2", "STACK2", stackable=True, discount={"type": "amount", "value": 200}))
        create(api, shared("x", "XCLU1"))
        r1, r2 = redeem(api, "STACK1", "m1", "o1"), redeem(api, "STACK2", "m1", "o1")
        assert (r1.status, r2.status) == (201, 201)
        assert r1.body["coupon_redemption_id"] != r2.body["coupon_redemption_id"]
        assert (r1.body["discount_amount"], r2.body["discount_amount"]) == (100, 200)
        assert redeem(api, "XCLU1", "m1", "o1").error == "COUPON_NOT_STACKABLE"
        # each stays a replay of its own campaign's redemption
        again = redeem(api, "STACK2", "m1", "o1")
        assert again.status == 200 and again.body == r2.body
        assert redeem(api, "STACK2", "m1", "o1", total=9999).error == "IDEMPOTENCY_MISMATCH"

    def test_a_rolled_back_redemption_no_longer_counts(self, api):
        api.enrol("m1")
        create(api, shared("a", "AAAA1"))
        create(api, shared("b", "BBBB1"))
        first = redeem(api, "AAAA1", "m1", "o1")
        assert redeem(api, "BBBB1", "m1", "o1").error == "COUPON_NOT_STACKABLE"
        assert rollback(api, first.body["coupon_redemption_id"]).status == 200
        assert redeem(api, "BBBB1", "m1", "o1").status == 201
        # and the rolled-back one cannot come back beside it: its replay says rolled_back
        replay = redeem(api, "AAAA1", "m1", "o1")
        assert (replay.status, replay.body["status"], replay.body["discount_amount"]) == (200, "rolled_back", 0)

    def test_stackable_can_be_patched(self, api):
        api.enrol("m1")
        create(api, shared("a", "AAAA1"))
        create(api, shared("b", "BBBB1"))
        r = api.patch(f"{C}/a", {"stackable": True}, role="admin", now=NOW)
        assert r.status == 200 and r.body["stackable"] is True
        assert api.patch(f"{C}/b", {"stackable": True}, role="admin", now=NOW).status == 200
        assert redeem(api, "AAAA1", "m1", "o1").status == 201
        assert redeem(api, "BBBB1", "m1", "o1").status == 201
        assert api.patch(f"{C}/b", {"stackable": "yes"}, role="admin", now=NOW).status == 400


    def test_an_order_redeemed_before_stacking_existed_still_replays(self, api):
        """Redemptions written under the old one-per-order id (no order record) replay, and
        count as the order's only coupon."""
        from chalicelib.store import coupons as store

        api.enrol("m1")
        create(api, shared("a", "AAAA1", stackable=True))
        create(api, shared("b", "BBBB1", stackable=True))
        first = redeem(api, "AAAA1", "m1", "o1")
        rec = store.RedemptionRecord.get(first.body["coupon_redemption_id"], consistent_read=True)
        legacy = store.redemption_id("o1")
        store.RedemptionRecord(legacy, order_id=rec.order_id, member_id=rec.member_id, campaign_id=rec.campaign_id,
                               code=rec.code, shard=rec.shard, status=rec.status, request_hash=rec.request_hash,
                               response={**rec.response, "coupon_redemption_id": legacy},
                               data={k: v for k, v in rec.data.items() if k not in ("order_tracked", "stackable")}).save()
        rec.delete()
        store.OrderCouponsRecord(store.order_key("o1")).delete()
        again = redeem(api, "AAAA1", "m1", "o1")
        assert again.status == 200 and again.body["coupon_redemption_id"] == legacy
        assert redeem(api, "BBBB1", "m1", "o1").error == "COUPON_NOT_STACKABLE"
        assert rollback(api, legacy).status == 200
        assert stats(api, "a")["redeemed"] == 0


# --- budgets ------------------------------------------------------------------------------------

class TestBudget:
    def test_budget_stops_the_redemption_that_would_pass_it(self, api):
        api.enrol("m1")
        create(api, shared("b", "BUDG1", budget_amount=1200, discount={"type": "amount", "value": 500}))
        assert api.get(f"{C}/b", role="admin").body["budget_amount"] == 1200
        assert redeem(api, "BUDG1", "m1", "o1").status == 201
        assert redeem(api, "BUDG1", "m1", "o2").status == 201
        r = redeem(api, "BUDG1", "m1", "o3")
        assert (r.status, r.error) == (422, "COUPON_BUDGET_EXHAUSTED")
        v = validate(api, "BUDG1", "m1").body
        assert v == {"valid": False, "discount_amount": 0, "reason": "COUPON_BUDGET_EXHAUSTED"}
        # a smaller discount still fits the 200 left (spread over the budget's slices)
        small = redeem(api, "BUDG1", "m1", "o4", total=200)
        assert small.status == 201 and small.body["discount_amount"] == 200
        s = stats(api, "b")
        assert s["discount_total"] == 1200 and s["redeemed"] == 3
        assert redeem(api, "BUDG1", "m1", "o5", total=1).error == "COUPON_BUDGET_EXHAUSTED"

    def test_rollback_gives_the_budget_back(self, api):
        api.enrol("m1")
        create(api, shared("b", "BUDG1", budget_amount=1000, discount={"type": "amount", "value": 600}))
        r = redeem(api, "BUDG1", "m1", "o1")
        assert redeem(api, "BUDG1", "m1", "o2").error == "COUPON_BUDGET_EXHAUSTED"
        rollback(api, r.body["coupon_redemption_id"])
        assert stats(api, "b")["discount_total"] == 0
        assert redeem(api, "BUDG1", "m1", "o2").status == 201
        assert stats(api, "b")["discount_total"] == 600

    def test_patching_the_budget_reslices_it(self, api):
        api.enrol("m1")
        create(api, shared("b", "BUDG1", budget_amount=500, discount={"type": "amount", "value": 500}))
        assert redeem(api, "BUDG1", "m1", "o1").status == 201
        assert redeem(api, "BUDG1", "m1", "o2").error == "COUPON_BUDGET_EXHAUSTED"
        assert api.patch(f"{C}/b", {"budget_amount": 1000}, role="admin", now=NOW).status == 200
        assert redeem(api, "BUDG1", "m1", "o2").status == 201
        assert redeem(api, "BUDG1", "m1", "o3").error == "COUPON_BUDGET_EXHAUSTED"
        assert api.patch(f"{C}/b", {"budget_amount": None}, role="admin", now=NOW).status == 200
        assert redeem(api, "BUDG1", "m1", "o3").status == 201
        assert stats(api, "b")["discount_total"] == 1500

    def test_budget_is_validated(self, api):
        for bad in (0, -5, "1000", 1.5):
            r = api.post(C, shared("b", "BUDG1", budget_amount=bad), role="admin", now=NOW)
            assert r.status == 400, bad


# --- under concurrency (locked emulator) ----------------------------------------------------------

def _redeem(code, member_id, order_id, total=5000):
    from chalicelib.schemas.coupons import RedeemRequest
    from chalicelib.services import coupons

    body = RedeemRequest.model_validate({"code": code, "member_id": member_id, "order_id": order_id,
                                         "order": {"total_amount": total}})
    return lambda: coupons.redeem(body, "svc")


def _totals(cid):
    from chalicelib.services import coupons

    return coupons.get(cid)["stats"]


def test_budget_holds_exactly_on_a_hot_shared_code(emulator):
    """40 concurrent redemptions of 300 against a budget of 5,000 sliced over 16 shards (312 or 313
    each: no single slice holds one whole discount twice): exactly 16 succeed (4,800), the rest are
    COUPON_BUDGET_EXHAUSTED (a discount of 200 still fits what is left), never more."""
    members = [uid("m") for _ in range(40)]
    for m in members:
        enrol(m)
    code = uid("HOT").replace("-", "").upper()
    cid = make_campaign(shared_code=code, budget_amount=5000, max_per_member=5,
                        discount={"type": "amount", "value": 300})
    results = race([_redeem(code, m, uid("o")) for m in members])
    got = Counter(r[0] if isinstance(r, tuple) else r for r in results)
    assert got == {201: 16, "COUPON_BUDGET_EXHAUSTED": 24}, got
    s = _totals(cid)
    assert (s["redeemed"], s["discount_total"]) == (16, 4800)
    # the 200 left can still be given, across slices, and then nothing more
    assert _redeem(code, members[0], uid("o"), total=200)()[0] == 201
    assert _totals(cid)["discount_total"] == 5000
    again = race([_redeem(code, m, uid("o"), total=100) for m in members[:6]])
    assert set(again) == {"COUPON_BUDGET_EXHAUSTED"}


def test_stacking_holds_under_concurrency(emulator):
    """Two non-stackable campaigns race for the same order, many times: exactly one wins each."""
    member = uid("m")
    enrol(member)
    codes = []
    for _ in range(2):
        code = uid("NS").replace("-", "").upper()
        make_campaign(shared_code=code, max_per_member=1000)
        codes.append(code)
    wins = Counter()
    for i in range(8):
        order = uid("o")
        results = race([_redeem(codes[0], member, order), _redeem(codes[1], member, order)])
        statuses = sorted(str(r[0]) if isinstance(r, tuple) else r for r in results)
        assert statuses == ["201", "COUPON_NOT_STACKABLE"], statuses
        wins[statuses[0]] += 1
    assert wins["201"] == 8
