"""Merging a duplicate account (SPEC 2.15): everything the source holds moves to the survivor
in one step, the source is closed with `merged_into`, its orders and vouchers are still
reachable through either id, the survivor's tier is the highest of the three."""
from tests.factories import assert_invariant
from tests.integration.test_events import tap  # noqa: F401
from tests.integration.test_transport_faults import fast_retries  # noqa: F401

NOW = "2026-03-10T10:00:00Z"


def merge(api, survivor, source, merge_id="mg-1", role="admin", now=NOW):
    return api.post(f"/v1/admin/members/{survivor}/merge", {"merge_id": merge_id, "source_member_id": source},
                    role=role, sub="cs-1", now=now)


def wallet(member_id):
    from chalicelib.store import members

    return members.get(member_id).wallet.to_dict()


def reward(api, reward_id="mg-cup", cost=100):
    r = api.post("/v1/admin/rewards", {"reward_id": reward_id, "name": "Cup", "cost_points": cost, "kind": "voucher"},
                 role="admin")
    assert r.status == 201, r.body


class TestMerge:
    def test_everything_moves_and_the_source_is_closed(self, api):
        api.settings(pending_days=14)
        api.enrol("sv1", name="Hanako", email="h@example.com")
        api.enrol("so1", name="Hanako Y", email="h2@example.com")
        api.adjust("sv1", 100, now="2025-05-01T00:00:00Z")
        api.adjust("so1", 200, now="2025-04-01T00:00:00Z")
        api.adjust("so1", 300, now="2025-07-01T00:00:00Z")
        assert api.accrue("so1", 20000, order_id="so1-o", occurred_at="2026-03-09T10:00:00Z", now=NOW).status == 201
        assert api.post("/v1/members/so1/point-holds", {"hold_id": "so1-h", "points": 150}, now=NOW).status == 201
        before = api.member("so1", now=NOW)["points"]
        assert (before["available"], before["pending"], before["held"]) == (350, 200, 150)

        r = merge(api, "sv1", "so1")
        assert r.status == 200, r.body
        assert r.body["member_id"] == "sv1" and r.body["status"] == "active" and "merged_into" not in r.body
        pts = r.body["points"]
        assert (pts["available"], pts["pending"], pts["held"]) == (450, 200, 150)
        assert (pts["lifetime_earned"], pts["lifetime_spent"]) == (800, 0)
        w = wallet("sv1")
        assert w["lots"] == {"2025-04": 50, "2025-05": 100, "2025-07": 300}  # the hold took the oldest 150
        assert [p[0] for p in w["pending_lots"]] == ["so1-o"]  # stored as [order_id, points, month, release_at]
        assert set(w["holds"]) == {"so1-h"}
        # the source: closed, empty, pointing at the survivor; its reads still answer
        src = api.get("/v1/members/so1")
        assert src.status == 200 and (src.body["status"], src.body["merged_into"]) == ("closed", "sv1")
        sp = src.body["points"]
        assert (sp["available"], sp["pending"], sp["held"]) == (0, 0, 0)
        out = api.ledger("so1")[0]
        assert (out["type"], out["points"], out["reference"], out["balance_after"]) == \
            ("merge_out", -700, {"merge_id": "mg-1"}, 0)
        in_ = api.ledger("sv1")[0]
        assert (in_["type"], in_["points"], in_["reference"], in_["balance_after"]) == \
            ("merge_in", 700, {"merge_id": "mg-1"}, 800)
        # qualifying spend and order statistics moved as well
        assert r.body["tier"]["qualifying_spend"] == 20000
        from chalicelib.store import members

        survivor = members.get("sv1")
        assert survivor.orders.count == 1 and survivor.merged_from == ["so1"]
        assert_invariant("sv1")
        assert_invariant("so1")

    def test_the_moved_hold_is_captured_or_released_through_the_survivor(self, api):
        api.enrol("sv2")
        api.enrol("so2")
        api.adjust("so2", 500)
        assert api.post("/v1/members/so2/point-holds", {"hold_id": "so2-h", "points": 200}).status == 201
        assert api.post("/v1/members/so2/point-holds", {"hold_id": "so2-k", "points": 100}).status == 201
        assert merge(api, "sv2", "so2").status == 200
        listed = api.get("/v1/members/sv2/point-holds").body["items"]
        assert sorted(h["hold_id"] for h in listed) == ["so2-h", "so2-k"]
        cap = api.post("/v1/members/sv2/point-holds/so2-h/capture", {"points": 120})
        assert cap.status == 200 and cap.body["captured_points"] == 120
        rel = api.post("/v1/members/sv2/point-holds/so2-k/release")
        assert rel.status == 200 and rel.body["status"] == "released"
        pts = api.member("sv2")["points"]
        assert (pts["available"], pts["held"], pts["lifetime_spent"]) == (380, 0, 120)
        assert_invariant("sv2")

    def test_a_refund_of_a_source_order_addressed_to_either_id_reaches_the_survivor(self, api):
        api.enrol("sv3")
        api.enrol("so3")
        assert api.accrue("so3", 10000, order_id="so3-o").status == 201  # 100 points
        assert merge(api, "sv3", "so3").status == 200
        r = api.refund("so3", "so3-o", 3000, refund_id="so3-r1")
        assert r.status == 201, r.body
        assert (r.body["points_reversed"], r.body["balance"]["available"]) == (30, 70)
        r = api.refund("sv3", "so3-o", 2000, refund_id="so3-r2")
        assert r.status == 201, r.body
        assert (r.body["points_reversed"], r.body["balance"]["available"]) == (20, 50)
        assert api.refund("sv3", "so3-o", 6000).error == "REFUND_EXCEEDS_ORDER"  # cumulative, across both ids
        assert api.member("sv3")["points"]["available"] == 50
        assert [e["type"] for e in api.ledger("sv3")] == ["reversal", "reversal", "merge_in"]
        assert [e["type"] for e in api.ledger("so3")][0] == "merge_out"  # nothing after it at the source
        assert api.refund("sv3", "so3-o", 10, refund_id="so3-r1").status == 409  # its id, another payload
        # someone else's order is still not found
        api.enrol("x3")
        api.accrue("x3", 10000, order_id="x3-o")
        assert api.refund("sv3", "x3-o", 100).error == "ORDER_NOT_FOUND"
        assert_invariant("sv3")
        assert_invariant("so3")

    def test_a_chain_of_merges_still_reaches_the_last_survivor(self, api):
        for m in ("ch-a", "ch-b", "ch-c"):
            api.enrol(m)
        assert api.accrue("ch-a", 10000, order_id="ch-a-o").status == 201  # 100 points
        assert merge(api, "ch-b", "ch-a", merge_id="ch-m1").status == 200
        assert merge(api, "ch-c", "ch-b", merge_id="ch-m2").status == 200
        for i, addressed in enumerate(("ch-a", "ch-b", "ch-c")):
            r = api.refund(addressed, "ch-a-o", 1000, refund_id=f"ch-r{i}")
            assert r.status == 201 and r.body["points_reversed"] == 10, (addressed, r.body)
        assert api.member("ch-c")["points"]["available"] == 70
        assert (api.member("ch-a")["merged_into"], api.member("ch-b")["merged_into"]) == ("ch-b", "ch-c")
        for m in ("ch-a", "ch-b", "ch-c"):
            assert_invariant(m)

    def test_vouchers_of_the_source_belong_to_the_survivor(self, api):
        reward(api)
        api.enrol("sv4")
        api.enrol("so4")
        api.adjust("so4", 300)
        codes = []
        for _ in range(3):
            r = api.post("/v1/members/so4/redemptions", {"reward_id": "mg-cup"}, role="member", sub="so4")
            assert r.status == 201, r.body
            codes.append((r.body["redemption_id"], r.body["code"]))
        assert merge(api, "sv4", "so4").status == 200
        mine = api.get("/v1/members/sv4/redemptions", role="member", sub="sv4").body["items"]
        assert sorted(v["redemption_id"] for v in mine) == sorted(rid for rid, _ in codes)
        assert all(v["member_id"] == "sv4" for v in mine)
        used = api.post(f"/v1/vouchers/{codes[0][1]}/use", {"order_id": "shop-1"})
        assert used.status == 200 and used.body["status"] == "used"
        # a cancel addressed to the old id or the new one: points go back to the survivor
        c1 = api.post(f"/v1/members/so4/redemptions/{codes[1][0]}/cancel", role="admin")
        assert c1.status == 200 and c1.body["status"] == "cancelled", c1.body
        c2 = api.post(f"/v1/members/sv4/redemptions/{codes[2][0]}/cancel", role="member", sub="sv4")
        assert c2.status == 200, c2.body
        assert api.member("sv4")["points"]["available"] == 200
        assert api.member("so4")["points"]["available"] == 0
        assert_invariant("sv4")
        assert_invariant("so4")

    def test_more_vouchers_than_one_transaction_holds_all_move(self, api):
        reward(api, "mg-pin", cost=1)
        api.enrol("sv5")
        api.enrol("so5")
        api.adjust("so5", 120)
        for _ in range(110):
            assert api.post("/v1/members/so5/redemptions", {"reward_id": "mg-pin"}, role="member",
                            sub="so5").status == 201
        r = merge(api, "sv5", "so5")
        assert r.status == 200, r.body
        from chalicelib.store.rewards import RedemptionRecord

        assert sum(1 for _ in RedemptionRecord.by_owner.query("sv5")) == 110
        assert sum(1 for _ in RedemptionRecord.by_owner.query("so5")) == 0
        assert r.body["points"]["available"] == 10
        assert_invariant("sv5")

    def test_the_coupon_wallet_moves(self, api):
        r = api.post("/v1/admin/coupon-campaigns", {
            "campaign_id": "mg-camp", "name": "Welcome", "discount": {"type": "amount", "value": 500},
            "starts_at": "2020-01-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z", "code_mode": "unique",
            "max_per_member": 1}, role="admin")
        assert r.status == 201, r.body
        assert api.post("/v1/admin/coupon-campaigns/mg-camp/codes", {"count": 5}, role="admin").status == 201
        api.enrol("sv6")
        api.enrol("so6")
        r = api.post("/v1/admin/coupon-campaigns/mg-camp/issue", {"member_ids": ["so6"]}, role="admin")
        assert r.status == 200 and r.body["issued"] == 1, r.body
        [code] = [c["code"] for c in api.get("/v1/members/so6/coupons").body["items"]]
        assert merge(api, "sv6", "so6").status == 200
        assert [c["code"] for c in api.get("/v1/members/sv6/coupons").body["items"]] == [code]
        assert api.get("/v1/members/so6/coupons").body["items"] == []
        # the unique code is the survivor's to redeem now (and only once: its per-member use moved with it)
        order = {"total_amount": 5000}
        r = api.post("/v1/coupons/redeem", {"code": code, "member_id": "sv6", "order_id": "sv6-c1", "order": order})
        assert r.status == 201 and r.body["discount_amount"] == 500, r.body
        r = api.post("/v1/coupons/redeem", {"code": code, "member_id": "sv6", "order_id": "sv6-c2", "order": order})
        assert r.status == 422, r.body

    def test_new_earning_or_spending_on_the_source_is_member_inactive(self, api):
        reward(api, "mg-mug")
        api.enrol("sv7")
        api.enrol("so7")
        api.adjust("so7", 500)
        assert merge(api, "sv7", "so7").status == 200
        assert api.accrue("so7", 1000).error == "MEMBER_INACTIVE"
        r = api.post("/v1/members/so7/redemptions", {"reward_id": "mg-mug"}, role="member", sub="so7")
        assert (r.status, r.error) == (422, "MEMBER_INACTIVE")
        assert api.post("/v1/members/so7/point-holds", {"hold_id": "so7-h", "points": 1}).error == "MEMBER_INACTIVE"
        r = api.post("/v1/members/so7/transfers", {"transfer_id": "so7-t", "to_member_id": "sv7", "points": 1})
        assert r.error == "MEMBER_INACTIVE"
        assert api.member("sv7")["points"]["available"] == 500

    def test_replay_mismatch_and_refusals(self, api):
        api.enrol("sv8")
        api.enrol("so8")
        api.enrol("so8b")
        api.adjust("so8", 40)
        first = merge(api, "sv8", "so8", merge_id="mg-8")
        again = merge(api, "sv8", "so8", merge_id="mg-8")
        assert (first.status, again.status) == (200, 200) and again.body == first.body
        assert len(api.ledger("sv8")) == 1
        assert merge(api, "sv8", "so8b", merge_id="mg-8").error == "IDEMPOTENCY_MISMATCH"
        assert merge(api, "sv8", "so8", merge_id="mg-8b").error == "MEMBER_INACTIVE"  # merged already
        assert merge(api, "sv8", "sv8", merge_id="mg-8c").error == "VALIDATION_ERROR"
        assert merge(api, "sv8", "ghost", merge_id="mg-8d").error == "MEMBER_NOT_FOUND"
        assert merge(api, "ghost", "so8b", merge_id="mg-8e").error == "MEMBER_NOT_FOUND"
        assert merge(api, "so8", "so8b", merge_id="mg-8f").error == "MEMBER_INACTIVE"  # a closed survivor
        r = api.post("/v1/admin/members/sv8/merge", {"merge_id": "x", "source_member_id": "so8b"}, role="service")
        assert (r.status, r.error) == (403, "FORBIDDEN")
        r = api.post("/v1/admin/members/sv8/merge", {"merge_id": "x"}, role="admin")
        assert (r.status, r.error) == (400, "VALIDATION_ERROR")
        assert api.member("so8b")["status"] == "active"

    def test_audited_with_member_merged_events(self, api, tap):
        api.enrol("sv9")
        api.enrol("so9")
        api.adjust("so9", 70)
        tap()
        assert merge(api, "sv9", "so9", merge_id="mg-9").status == 200
        got = {e["member_id"]: e for e in tap()}
        assert sorted(got) == ["so9", "sv9"] and {e["type"] for e in got.values()} == {"member.merged"}
        # a member.* event holds the Member as the API returns it
        assert (got["so9"]["data"]["status"], got["so9"]["data"]["merged_into"]) == ("closed", "sv9")
        assert got["sv9"]["data"]["points"]["available"] == 70 and got["sv9"]["data"]["status"] == "active"
        audit = api.get("/v1/admin/audit", role="admin").body["items"]
        [entry] = [a for a in audit if a["action"] == "member.merge"]
        assert (entry["actor"], entry["target"], entry["details"]["source_member_id"]) == ("admin:cs-1", "sv9", "so9")
        assert merge(api, "sv9", "so9", merge_id="mg-9").status == 200
        assert tap() == []


class TestTier:
    def test_the_higher_of_the_two_with_its_retained_until(self, api):
        api.enrol("sv10")
        api.enrol("so10")
        assert api.accrue("so10", 60000, order_id="so10-o", now="2025-11-20T00:00:00Z").status == 201  # silver
        r = merge(api, "sv10", "so10")
        assert (r.body["tier"]["tier_id"], r.body["tier"]["retained_until"]) == ("silver", "2026-11-30T23:59:59Z")

    def test_the_later_retained_until_when_both_held_the_tier(self, api):
        api.enrol("sv11")
        api.enrol("so11")
        api.accrue("sv11", 60000, order_id="sv11-o", now="2025-06-20T00:00:00Z")
        api.accrue("so11", 60000, order_id="so11-o", now="2025-09-20T00:00:00Z")
        r = merge(api, "sv11", "so11")
        assert (r.body["tier"]["tier_id"], r.body["tier"]["retained_until"]) == ("silver", "2026-09-30T23:59:59Z")

    def test_the_tier_earned_on_the_merged_window(self, api):
        from chalicelib.store.models import TierHistoryRecord

        api.enrol("sv12")
        api.enrol("so12")
        api.accrue("sv12", 30000, order_id="sv12-o", now="2026-02-01T00:00:00Z")
        api.accrue("so12", 30000, order_id="so12-o", now="2026-02-02T00:00:00Z")
        r = merge(api, "sv12", "so12")
        assert (r.body["tier"]["tier_id"], r.body["tier"]["retained_until"]) == ("silver", "2027-03-31T23:59:59Z")
        assert r.body["tier"]["qualifying_spend"] == 60000
        assert [(h.change["from"], h.change["to"]) for h in TierHistoryRecord.query("sv12")] == [
            ("bronze", "silver")]


def test_a_lost_answer_after_the_commit_merges_once(api, fast_retries):
    from tests.integration.test_transport_faults import LoseAnswer, transport

    reward(api, "mg-lost", cost=10)
    api.enrol("sv13")
    api.enrol("so13")
    api.adjust("so13", 100)
    api.post("/v1/members/so13/redemptions", {"reward_id": "mg-lost"}, role="member", sub="so13")
    fault = LoseAnswer()
    with transport(fault):
        first = merge(api, "sv13", "so13", merge_id="mg-13")
    assert fault.lost == 1 and first.status == 200, first.body
    assert first.body["points"]["available"] == 90
    again = merge(api, "sv13", "so13", merge_id="mg-13")
    assert again.status == 200 and again.body["points"] == first.body["points"]
    assert [e["type"] for e in api.ledger("sv13")] == ["merge_in"]
    assert [e["type"] for e in api.ledger("so13")][0] == "merge_out"
    assert len(api.get("/v1/members/sv13/redemptions", role="admin").body["items"]) == 1
    assert_invariant("sv13")
    assert_invariant("so13")
