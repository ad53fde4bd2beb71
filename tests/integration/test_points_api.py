"""Points routes (SPEC 2.3–2.5, 4.4): accruals, preview, pending points, refunds, activities, referral."""

from tests.factories import assert_invariant

T0 = "2026-05-10T10:00:00Z"
MAY = {"starts_at": "2026-05-01T00:00:00Z", "ends_at": "2026-06-01T00:00:00Z"}


class TestAccrual:
    def test_created_then_replayed_with_the_same_body(self, api):
        api.enrol("a1")
        r = api.accrue("a1", 12345, order_id="a1-o1", now=T0)
        assert r.status == 201
        assert r.body == {"order_id": "a1-o1", "points_earned": 123, "pending": 0,
                          "breakdown": [{"rule": "base", "points": 123}],
                          "balance": {"available": 123, "pending": 0, "held": 0}, "tier_change": None,
                          "points_paid": 0}
        replay = api.accrue("a1", 12345, order_id="a1-o1", now="2026-05-11T10:00:00Z")
        assert replay.status == 200 and replay.body == r.body
        assert [(e["type"], e["points"], e["occurred_at"]) for e in api.ledger("a1")] == [("earn", 123, T0)]
        m = api.member("a1", now=T0)
        assert m["points"]["available"] == 123 and m["points"]["lifetime_earned"] == 123
        assert m["tier"]["qualifying_spend"] == 12345
        assert_invariant("a1")

    def test_same_order_id_with_another_payload_or_member_is_409(self, api):
        api.enrol("a2")
        api.enrol("a3")
        assert api.accrue("a2", 5000, order_id="shared").status == 201
        r = api.accrue("a2", 5001, order_id="shared")
        assert (r.status, r.error) == (409, "IDEMPOTENCY_MISMATCH")
        r = api.accrue("a3", 5000, order_id="shared")
        assert (r.status, r.error) == (409, "IDEMPOTENCY_MISMATCH")
        assert api.member("a2")["points"]["available"] == 50
        assert api.member("a3")["points"]["available"] == 0
        assert_invariant("a2")
        assert_invariant("a3")

    def test_business_errors(self, api):
        r = api.accrue("ghost", 1000)
        assert (r.status, r.error) == (404, "MEMBER_NOT_FOUND")
        api.enrol("a4")
        r = api.accrue("a4", 1000, currency="USD")
        assert (r.status, r.error) == (422, "CURRENCY_MISMATCH")
        assert r.body["error"]["details"] == {"expected": "JPY", "got": "USD"}
        api.patch("/v1/members/a4", {"status": "suspended"})
        assert (api.accrue("a4", 1000).status, api.accrue("a4", 1000).error) == (422, "MEMBER_INACTIVE")
        assert api.ledger("a4") == []

    INVALID = [
        ({"order_id": "o", "currency": "JPY"}, "total_amount"),
        ({"order_id": "o", "total_amount": -1, "currency": "JPY"}, "total_amount"),
        ({"order_id": "o", "total_amount": 1.5, "currency": "JPY"}, "total_amount"),
        ({"order_id": "o", "total_amount": 100, "currency": "jpy"}, "currency"),
        ({"order_id": "bad id!", "total_amount": 100, "currency": "JPY"}, "order_id"),
        ({"order_id": "o", "total_amount": 100, "currency": "JPY", "occurred_at": "2026-05-10T10:00:00"},
         "occurred_at"),
        ({"order_id": "o", "total_amount": 100, "currency": "JPY", "items": [{"sku": "s", "amount": -5}]},
         "items.0.amount"),
        ({"order_id": "o", "total_amount": 100, "currency": "JPY", "coupon": "X"}, "coupon"),
    ]

    def test_invalid_bodies_are_400_with_field_details(self, api, subtests):
        api.enrol("a5")
        for body, field in self.INVALID:
            with subtests.test(body=body):
                r = api.post("/v1/members/a5/accruals", body)
                assert (r.status, r.error) == (400, "VALIDATION_ERROR")
                assert field in {f["field"] for f in r.body["error"]["details"]["fields"]}, r.body
        assert api.ledger("a5") == []

    def test_only_service_and_admin_may_accrue(self, api):
        api.enrol("a6")
        body = {"order_id": "a6-o", "total_amount": 1000, "currency": "JPY"}
        r = api.post("/v1/members/a6/accruals", body, role="member", sub="a6")
        assert (r.status, r.error) == (403, "FORBIDDEN")
        assert api.post("/v1/members/a6/accruals", body, role="admin").status == 201

    def test_replay_after_the_member_was_suspended_still_answers_200(self, api):
        """A POS retrying an order that was credited must get its answer, not a new rule's refusal."""
        api.enrol("a7")
        first = api.accrue("a7", 3000, order_id="a7-o")
        api.patch("/v1/members/a7", {"status": "suspended"})
        replay = api.accrue("a7", 3000, order_id="a7-o")
        assert replay.status == 200 and replay.body == first.body
        assert api.accrue("a7", 3000, order_id="a7-new").error == "MEMBER_INACTIVE"
        api.settings(currency="USD")
        assert api.accrue("a7", 3000, order_id="a7-o").status == 200
        assert api.accrue("a7", 3000, order_id="a7-new").error == "CURRENCY_MISMATCH"

    def test_an_offset_timestamp_counts_in_its_utc_month(self, api):
        api.enrol("a8")
        r = api.accrue("a8", 10000, occurred_at="2026-01-31T23:30:00-05:00", now="2026-03-01T00:00:00Z")
        assert r.status == 201
        assert api.ledger("a8")[0]["occurred_at"] == "2026-02-01T04:30:00Z"
        # a February lot: expires at the end of 2027-02, not 2027-01
        m = api.member("a8", now="2027-02-10T00:00:00Z")
        assert m["points"]["expiring_soon"] == [{"points": 100, "expires_at": "2027-02-28T23:59:59Z"}]
        # and February's spend: out of the window ending 2027-02, inside the one ending 2027-01
        assert api.member("a8", now="2027-01-15T00:00:00Z")["tier"]["qualifying_spend"] == 10000
        assert api.member("a8", now="2027-02-01T00:00:00Z")["tier"]["qualifying_spend"] == 0


class TestEarningRules:
    def test_categories_promotions_and_cap_through_the_api(self, api):
        api.settings(category_multipliers={"giftcard": 0, "coffee": 2},
                     promotions=[{"promotion_id": "spring", "name": "Spring x2", "multiplier": "2", **MAY},
                                 {"promotion_id": "beans", "name": "Beans", "bonus_points": 30,
                                  "categories": ["coffee"], **MAY},
                                 {"promotion_id": "june", "name": "Later", "bonus_points": 999,
                                  "starts_at": "2026-06-01T00:00:00Z", "ends_at": "2026-07-01T00:00:00Z"}],
                     max_points_per_order=150)
        api.enrol("e1")
        items = [{"sku": "beans", "category": "coffee", "amount": 2000, "quantity": 2},
                 {"sku": "card", "category": "giftcard", "amount": 10000, "quantity": 1},
                 {"sku": "mug", "category": "home", "amount": 1500, "quantity": 1}]
        r = api.accrue("e1", 13500, items=items, now=T0)
        # eligible 4000 + 0 + 1500 = 5500 → 55, ×2 → 110, +30 bonus = 140 (under the cap)
        assert r.body["points_earned"] == 140
        assert r.body["breakdown"] == [{"rule": "base", "points": 55}, {"rule": "promotion:spring", "points": 55},
                                       {"rule": "promotion_bonus:beans", "points": 30}]
        r = api.accrue("e1", 20000, items=[{"sku": "beans", "category": "coffee", "amount": 20000}], now=T0)
        assert r.body["points_earned"] == 150  # 800 + 30 capped at 150
        assert r.body["breakdown"][-1] == {"rule": "cap", "points": -680}
        assert sum(b["points"] for b in r.body["breakdown"]) == 150
        assert api.member("e1", now=T0)["tier"]["qualifying_spend"] == 33500  # spend counts the whole order
        assert_invariant("e1")

    def test_promotions_are_judged_at_occurred_at(self, api):
        api.settings(promotions=[{"promotion_id": "may", "name": "May", "multiplier": "3", **MAY}])
        api.enrol("e2")
        late = api.accrue("e2", 1000, occurred_at="2026-05-31T23:59:59Z", now="2026-06-02T00:00:00Z")
        assert late.body["points_earned"] == 30
        after = api.accrue("e2", 1000, occurred_at="2026-06-01T00:00:00Z", now="2026-06-02T00:00:00Z")
        assert after.body["points_earned"] == 10

    def test_tier_multiplier_comes_from_the_tier_held_before_the_order(self, api):
        api.enrol("e3")
        r = api.accrue("e3", 60000, now=T0)
        assert r.body["points_earned"] == 600 and r.body["tier_change"] == {"from": "bronze", "to": "silver"}
        r = api.accrue("e3", 10000, now=T0)
        assert r.body["points_earned"] == 125 and r.body["tier_change"] is None
        assert r.body["breakdown"] == [{"rule": "base", "points": 100}, {"rule": "tier:silver", "points": 25}]
        r = api.accrue("e3", 500000, now=T0)  # silver → platinum in one order, at the silver rate
        assert r.body["tier_change"] == {"from": "silver", "to": "platinum"} and r.body["points_earned"] == 6250
        assert api.member("e3", now=T0)["tier"]["tier_id"] == "platinum"
        assert_invariant("e3")

    def test_first_purchase_and_birthday_promotions(self, api):
        api.settings(promotions=[
            {"promotion_id": "welcome", "name": "W", "bonus_points": 200, "first_purchase_only": True, **MAY},
            {"promotion_id": "bday", "name": "B", "multiplier": "2", "birthday_month_only": True, **MAY}])
        api.enrol("e4", birthday="05-20")
        api.enrol("e5", birthday="11-02")
        assert api.accrue("e4", 1000, now=T0).body["points_earned"] == 220
        assert api.accrue("e4", 1000, now=T0).body["points_earned"] == 20
        assert api.accrue("e5", 1000, now=T0).body["points_earned"] == 210


class TestPreview:
    def test_preview_computes_and_writes_nothing(self, api):
        api.enrol("v1")
        body = {"order_id": "v1-o", "total_amount": 250000, "currency": "JPY"}
        r = api.post("/v1/members/v1/accruals/preview", body, role="member", sub="v1", now=T0)
        assert r.status == 200
        assert r.body == {"points_earned": 2500, "pending": 0, "breakdown": [{"rule": "base", "points": 2500}],
                          "tier_after": "gold"}
        m = api.member("v1", now=T0)
        assert (m["points"]["available"], m["tier"]["tier_id"], m["tier"]["qualifying_spend"]) == (0, "bronze", 0)
        assert api.ledger("v1") == []
        again = api.post("/v1/members/v1/accruals/preview", body, now=T0)
        assert again.body == r.body  # still bronze: nothing was applied
        real = api.accrue("v1", 250000, order_id="v1-o", now=T0)  # the order id was not consumed
        assert real.status == 201 and real.body["points_earned"] == 2500
        assert_invariant("v1")

    def test_preview_rules(self, api):
        api.settings(pending_days=7)
        api.enrol("v2")
        body = {"order_id": "v2-o", "total_amount": 1000, "currency": "JPY"}
        assert api.post("/v1/members/v2/accruals/preview", body).body["pending"] == 10
        assert api.post("/v1/members/v2/accruals/preview", body, role="member", sub="v3").status == 403
        assert api.post("/v1/members/ghost/accruals/preview", body).error == "MEMBER_NOT_FOUND"
        assert api.post("/v1/members/v2/accruals/preview", {**body, "currency": "EUR"}).error == "CURRENCY_MISMATCH"


class TestPending:
    def test_pending_until_the_return_window_closes_then_available(self, api):
        api.settings(pending_days=14)
        api.enrol("pd1")
        r = api.accrue("pd1", 10000, order_id="pd1-o", now="2026-03-01T10:00:00Z")
        assert (r.body["points_earned"], r.body["pending"]) == (100, 100)
        assert r.body["balance"] == {"available": 0, "pending": 100, "held": 0}
        assert api.ledger("pd1")[0]["note"] == "pending"
        m = api.member("pd1", now="2026-03-15T09:59:59Z")["points"]
        assert (m["available"], m["pending"]) == (0, 100)
        m = api.member("pd1", now="2026-03-15T10:00:00Z")["points"]  # reads show the current split
        assert (m["available"], m["pending"]) == (100, 0)
        # a later write of the member stores the maturation
        r = api.activity("pd1", "review", now="2026-03-16T00:00:00Z")
        assert r.status == 201 and r.body["balance"] == {"available": 150, "pending": 0, "held": 0}
        assert_invariant("pd1")

    def test_an_order_older_than_the_window_is_available_at_once(self, api):
        api.settings(pending_days=14)
        api.enrol("pd2")
        r = api.accrue("pd2", 10000, occurred_at="2026-02-01T00:00:00Z", now="2026-03-01T00:00:00Z")
        assert (r.body["pending"], r.body["balance"]) == (0, {"available": 100, "pending": 0, "held": 0})


class TestRefunds:
    def test_refund_created_replayed_and_mismatched(self, api):
        api.enrol("r1")
        api.accrue("r1", 10000, order_id="r1-o")
        r = api.refund("r1", "r1-o", 4000, refund_id="r1-r1")
        assert r.status == 201
        assert r.body == {"refund_id": "r1-r1", "order_id": "r1-o", "points_reversed": 40, "points_returned": 0,
                          "balance": {"available": 60, "pending": 0, "held": 0}}
        replay = api.refund("r1", "r1-o", 4000, refund_id="r1-r1")
        assert replay.status == 200 and replay.body == r.body
        other = api.refund("r1", "r1-o", 4001, refund_id="r1-r1")
        assert (other.status, other.error) == (409, "IDEMPOTENCY_MISMATCH")
        ledger = api.ledger("r1")
        assert [(e["type"], e["points"], e["balance_after"]) for e in ledger] == [("reversal", -40, 60),
                                                                                  ("earn", 100, 100)]
        assert ledger[0]["reference"] == {"order_id": "r1-o", "refund_id": "r1-r1"}
        assert_invariant("r1")

    def test_cumulative_partial_refunds_reverse_exactly_the_order(self, api):
        api.enrol("r2")
        api.accrue("r2", 10000, order_id="r2-o", now=T0)
        reversed_ = [api.refund("r2", "r2-o", amount, now=T0).body["points_reversed"] for amount in (3333, 3333, 3334)]
        assert reversed_ == [33, 33, 34]
        m = api.member("r2", now=T0)
        assert (m["points"]["available"], m["points"]["lifetime_earned"], m["tier"]["qualifying_spend"]) == (0, 0, 0)
        r = api.refund("r2", "r2-o", 1)
        assert (r.status, r.error) == (422, "REFUND_EXCEEDS_ORDER")
        assert r.body["error"]["details"] == {"order_total": 10000, "refunded_so_far": 10000, "requested": 1}
        assert_invariant("r2")

    def test_refund_errors(self, api):
        api.enrol("r3")
        api.enrol("r4")
        api.accrue("r4", 5000, order_id="r4-o")
        assert (api.refund("r3", "nope", 100).status, api.refund("r3", "nope", 100).error) == (404, "ORDER_NOT_FOUND")
        assert api.refund("r3", "r4-o", 100).error == "ORDER_NOT_FOUND"  # another member's order
        assert api.refund("ghost", "r4-o", 100).error == "MEMBER_NOT_FOUND"
        r = api.refund("r4", "r4-o", 5001)
        assert (r.status, r.error) == (422, "REFUND_EXCEEDS_ORDER")
        r = api.post("/v1/members/r4/refunds", {"refund_id": "x", "order_id": "r4-o", "amount": 0})
        assert (r.status, r.error) == (400, "VALIDATION_ERROR")
        assert api.member("r4")["points"]["available"] == 50
        assert_invariant("r4")

    def test_refund_of_spent_points_goes_negative_blocks_redemption_and_is_covered_first(self, api):
        r = api.post("/v1/admin/rewards", {"reward_id": "mug", "name": "Mug", "cost_points": 100}, role="admin")
        assert r.status == 201
        api.enrol("r5")
        api.accrue("r5", 10000, order_id="r5-o")
        assert api.post("/v1/members/r5/redemptions", {"reward_id": "mug"}, role="member", sub="r5").status == 201
        r = api.refund("r5", "r5-o", 10000)
        assert r.status == 201 and r.body["points_reversed"] == 100
        assert r.body["balance"] == {"available": -100, "pending": 0, "held": 0}
        r = api.post("/v1/members/r5/redemptions", {"reward_id": "mug"}, role="member", sub="r5")
        assert (r.status, r.error) == (422, "INSUFFICIENT_POINTS")
        r = api.accrue("r5", 15000)
        assert r.body["points_earned"] == 150 and r.body["balance"] == {"available": 50, "pending": 0, "held": 0}
        m = api.member("r5")["points"]
        assert (m["available"], m["lifetime_earned"], m["lifetime_spent"]) == (50, 150, 100)
        assert [(e["type"], e["points"], e["balance_after"]) for e in api.ledger("r5")] == [
            ("earn", 150, 50), ("reversal", -100, -100), ("redeem", -100, 0), ("earn", 100, 100)]
        assert_invariant("r5")

    def test_refund_during_the_return_window_takes_pending_points(self, api):
        api.settings(pending_days=30)
        api.enrol("r6")
        api.accrue("r6", 5000, order_id="r6-old", occurred_at="2026-01-01T00:00:00Z", now="2026-03-01T00:00:00Z")
        api.accrue("r6", 10000, order_id="r6-o", now="2026-03-01T00:00:00Z")
        r = api.refund("r6", "r6-o", 2500, now="2026-03-02T00:00:00Z")
        assert r.body == {"refund_id": r.body["refund_id"], "order_id": "r6-o", "points_reversed": 25, "points_returned": 0,
                          "balance": {"available": 50, "pending": 75, "held": 0}}
        assert_invariant("r6")

    def test_refunds_work_for_a_suspended_member(self, api):
        api.enrol("r7")
        api.accrue("r7", 10000, order_id="r7-o")
        api.patch("/v1/members/r7", {"status": "suspended"})
        assert api.refund("r7", "r7-o", 10000).body["balance"] == {"available": 0, "pending": 0, "held": 0}


class TestActivities:
    def test_per_day_limit_replay_and_errors(self, api):
        api.enrol("ac1")
        day1 = "2026-05-10T09:00:00Z"
        first = api.activity("ac1", "review", activity_id="rv-1", now=day1)
        assert first.status == 201
        assert first.body == {"activity_id": "rv-1", "points_earned": 50, "balance": {"available": 50, "pending": 0, "held": 0}}
        assert [api.activity("ac1", "review", now=day1).status for _ in range(2)] == [201, 201]
        r = api.activity("ac1", "review", now=day1)
        assert (r.status, r.error) == (422, "ACTIVITY_LIMIT_REACHED")
        assert r.body["error"]["details"] == {"type": "review", "max_per_day": 3}
        replay = api.activity("ac1", "review", activity_id="rv-1", now=day1)  # limit reached, still a replay
        assert replay.status == 200 and replay.body == first.body
        mismatch = api.activity("ac1", "survey", activity_id="rv-1", now=day1)
        assert (mismatch.status, mismatch.error) == (409, "IDEMPOTENCY_MISMATCH")
        assert api.activity("ac1", "review", now="2026-05-11T00:00:00Z").status == 201  # a new UTC day
        r = api.activity("ac1", "tiktok_dance")
        assert (r.status, r.error) == (422, "UNKNOWN_ACTIVITY")
        assert api.activity("ghost", "review").error == "MEMBER_NOT_FOUND"
        r = api.post("/v1/members/ac1/activities", {"activity_id": "x"})
        assert (r.status, r.error) == (400, "VALIDATION_ERROR")
        assert api.member("ac1")["points"]["available"] == 200
        assert [e["type"] for e in api.ledger("ac1")] == ["activity"] * 4
        assert_invariant("ac1")

    def test_max_total_and_replay_after_it(self, api):
        api.enrol("ac2")
        first = api.activity("ac2", "app_install", activity_id="inst-1")
        assert first.body["points_earned"] == 100
        r = api.activity("ac2", "app_install", activity_id="inst-2")
        assert (r.status, r.error) == (422, "ACTIVITY_LIMIT_REACHED")
        assert r.body["error"]["details"] == {"type": "app_install", "max_total": 1}
        assert api.activity("ac2", "app_install", activity_id="inst-1").status == 200
        assert api.member("ac2")["points"]["available"] == 100
        assert_invariant("ac2")

    def test_a_late_report_counts_against_its_own_day(self, api):
        api.enrol("ac3")
        back = "2026-05-01T12:00:00Z"
        statuses = [api.activity("ac3", "review", occurred_at=back, now="2026-05-20T00:00:00Z").status
                    for _ in range(4)]
        assert statuses == [201, 201, 201, 422]
        # today's limit is separate; and the old day stays counted after other days' activity
        assert api.activity("ac3", "review", now="2026-05-20T00:00:00Z").status == 201
        r = api.activity("ac3", "review", occurred_at=back, now="2026-05-21T00:00:00Z")
        assert r.error == "ACTIVITY_LIMIT_REACHED"
        assert api.ledger("ac3")[-1]["occurred_at"] == back
        assert_invariant("ac3")

    def test_suspended_member_and_custom_rules(self, api):
        api.settings(activity_rules={"quiz": {"points": 7, "max_per_day": 2, "max_total": 3}})
        api.enrol("ac4")
        assert api.activity("ac4", "review").error == "UNKNOWN_ACTIVITY"  # the rules were replaced
        got = [api.activity("ac4", "quiz", now=f"2026-05-{d:02d}T00:00:00Z").status for d in (1, 1, 1, 2, 3)]
        assert got == [201, 201, 422, 201, 422]
        api.patch("/v1/members/ac4", {"status": "suspended"})
        assert api.activity("ac4", "quiz", now="2026-05-04T00:00:00Z").error == "MEMBER_INACTIVE"
        assert api.member("ac4")["points"]["available"] == 21
        assert_invariant("ac4")


class TestReferral:
    def test_bonus_paid_once_to_both_on_the_first_purchase(self, api):
        code = api.enrol("ref-a")["referral_code"]
        b = api.post("/v1/members", {"member_id": "ref-b", "referral_code": f"{code[:4].lower()}-{code[4:]}"})
        assert b.status == 201 and b.body["referred_by"] == "ref-a"
        r = api.accrue("ref-b", 10000, order_id="ref-b-o1", now=T0)
        assert r.body["points_earned"] == 100
        assert r.body["balance"] == {"available": 600, "pending": 0, "held": 0}
        assert api.accrue("ref-b", 10000, order_id="ref-b-o1", now=T0).status == 200  # replay: no second bonus
        assert api.accrue("ref-b", 10000, order_id="ref-b-o2", now=T0).body["balance"]["available"] == 700
        assert [(e["type"], e["points"]) for e in api.ledger("ref-b")] == [("earn", 100), ("bonus", 500),
                                                                            ("earn", 100)]
        a_ledger = api.ledger("ref-a")
        assert [(e["type"], e["points"], e["reference"], e["actor"]) for e in a_ledger] == [
            ("bonus", 500, {"order_id": "ref-b-o1"}, "system")]
        assert api.member("ref-a")["points"]["available"] == 500
        assert_invariant("ref-a")
        assert_invariant("ref-b")

    def test_inactive_referrer_gets_nothing_the_new_member_still_does(self, api):
        code = api.enrol("ref-c")["referral_code"]
        api.post("/v1/members", {"member_id": "ref-d", "referral_code": code})
        api.patch("/v1/members/ref-c", {"status": "suspended"})
        assert api.accrue("ref-d", 1000).body["balance"]["available"] == 510
        assert api.ledger("ref-c") == []
