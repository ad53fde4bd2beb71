"""Coupon campaigns end to end through the HTTP API (SPEC 2.9, 2.10, 4.4)."""
from __future__ import annotations

import pytest

C = "/v1/admin/coupon-campaigns"
NOW = "2026-01-10T00:00:00Z"


def campaign(campaign_id="c1", **over) -> dict:
    body = {"campaign_id": campaign_id, "name": "Winter sale", "discount": {"type": "percent", "value": 10},
            "min_order_amount": 0, "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2026-01-31T23:59:59Z",
            "code_mode": "shared", "shared_code": "WINTER10", "status": "active"}
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


def unique_campaign(campaign_id="u1", **over) -> dict:
    return campaign(campaign_id, code_mode="unique", shared_code=None, **over)


def create(api, body) -> dict:
    r = api.post(C, body, role="admin", now=NOW)
    assert r.status == 201, r.body
    return r.body


def codes_for(api, campaign_id, count) -> dict:
    r = api.post(f"{C}/{campaign_id}/codes", {"count": count}, role="admin", now=NOW)
    assert r.status == 201, r.body
    return r.body


def issue(api, campaign_id, **body) -> dict:
    r = api.post(f"{C}/{campaign_id}/issue", body, role="admin", now=NOW)
    assert r.status == 200, r.body
    return r.body


def wallet(api, member_id, **kw) -> list:
    r = api.get(f"/v1/members/{member_id}/coupons", now=kw.pop("now", NOW), **kw)
    assert r.status == 200, r.body
    return r.body["items"]


def validate(api, code, member_id, total=10000, items=None, now=NOW):
    order = {"total_amount": total, **({"items": items} if items is not None else {})}
    return api.post("/v1/coupons/validate", {"code": code, "member_id": member_id, "order": order}, now=now)


def redeem(api, code, member_id, order_id, total=10000, items=None, now=NOW):
    order = {"total_amount": total, **({"items": items} if items is not None else {})}
    return api.post("/v1/coupons/redeem", {"code": code, "member_id": member_id, "order_id": order_id,
                                           "order": order}, now=now)


def rollback(api, redemption_id):
    return api.post(f"/v1/coupons/redemptions/{redemption_id}/rollback", now=NOW)


def stats(api, campaign_id) -> dict:
    r = api.get(f"{C}/{campaign_id}", role="admin", now=NOW)
    assert r.status == 200, r.body
    return r.body["stats"]


# --- campaigns ------------------------------------------------------------------------------

def test_create_get_list_and_conflicts(api):
    body = create(api, campaign())
    assert body["campaign_id"] == "c1" and body["status"] == "active" and body["max_per_member"] == 1
    assert body["max_redemptions"] is None and body["shared_code"] == "WINTER10"
    assert body["stats"] == {"codes": 1, "issued": 0, "redeemed": 0, "redemption_rate": 0.0, "discount_total": 0}
    r = api.post(C, campaign(), role="admin", now=NOW)
    assert r.status == 409 and r.error == "ALREADY_EXISTS"
    # the shared code is unique across campaigns, case-insensitively and ignoring dashes
    r = api.post(C, campaign("c2", shared_code="win-ter10"), role="admin", now=NOW)
    assert r.status == 409 and r.error == "ALREADY_EXISTS" and r.body["error"]["details"] == {"shared_code": "WINTER10"}
    create(api, unique_campaign("u1"))
    create(api, unique_campaign("u2"))
    r = api.get(C + "?limit=2", role="admin")
    assert r.status == 200 and [c["campaign_id"] for c in r.body["items"]] == ["u2", "u1"]
    r2 = api.get(C + "?limit=2&cursor=" + r.body["next_cursor"], role="admin")
    assert [c["campaign_id"] for c in r2.body["items"]] == ["c1"] and r2.body["next_cursor"] is None
    assert api.get(C + "/nope", role="admin").error == "NOT_FOUND"
    assert api.get(C, role="service").status == 403


@pytest.mark.parametrize("bad", [
    {"discount": {"type": "percent", "value": 101}},
    {"discount": {"type": "percent", "value": 0}},
    {"discount": {"type": "amount", "value": 0}},
    {"discount": {"type": "bogus", "value": 1}},
    {"shared_code": "AB"},
    {"shared_code": "ÄBCDE"},
    {"shared_code": "A" * 33},
    {"ends_at": "2025-12-31T00:00:00Z"},
    {"starts_at": "2026-01-01T00:00:00"},
    {"code_mode": "unique"},  # with a shared_code
    {"max_redemptions": 0},
    {"max_per_member": 0},
    {"campaign_id": "has space"},
    {"unknown_field": 1},
    {"min_order_amount": 1.5},
])
def test_create_rejects_bad_input(api, bad):
    r = api.post(C, campaign(**bad), role="admin")
    assert r.status == 400 and r.error == "VALIDATION_ERROR", r.body


def test_create_is_audited(api):
    create(api, campaign())
    items = api.get("/v1/admin/audit", role="admin", sub="alice").body["items"]
    assert [(a["action"], a["target"]) for a in items] == [("coupon_campaign.create", "c1")]


def test_patch_pause_resume_end_and_immutables(api):
    api.enrol("m1")
    create(api, campaign())
    r = api.patch(f"{C}/c1", {"status": "paused"}, role="admin", now=NOW)
    assert r.status == 200 and r.body["status"] == "paused"
    assert validate(api, "winter10", "m1").body == {"valid": False, "discount_amount": 0, "reason": "COUPON_INACTIVE"}
    assert redeem(api, "WINTER10", "m1", "o1").error == "COUPON_INACTIVE"
    r = api.patch(f"{C}/c1", {"status": "active", "name": "Winter sale II", "discount": {"type": "amount", "value": 500}},
                  role="admin", now=NOW)
    assert r.status == 200 and r.body["name"] == "Winter sale II" and r.body["discount"] == {"type": "amount", "value": 500}
    assert validate(api, "WINTER10", "m1").body["discount_amount"] == 500
    r = api.patch(f"{C}/c1", {"shared_code": "OTHER1"}, role="admin")
    assert r.status == 400 and r.error == "VALIDATION_ERROR"
    r = api.patch(f"{C}/c1", {"shared_code": "winter10", "code_mode": "shared"}, role="admin")  # unchanged: fine
    assert r.status == 200
    body = api.get(f"{C}/c1", role="admin").body  # a GET body is a valid PATCH body
    r = api.patch(f"{C}/c1", {**body, "name": "Renamed"}, role="admin")
    assert r.status == 200 and r.body["name"] == "Renamed" and r.body["created_at"] == body["created_at"]
    r = api.patch(f"{C}/c1", {"ends_at": "2025-01-01T00:00:00Z"}, role="admin")
    assert r.status == 400
    assert api.patch(f"{C}/c1", {"status": "ended"}, role="admin").body["status"] == "ended"
    r = api.patch(f"{C}/c1", {"status": "active"}, role="admin")
    assert r.status == 400 and r.error == "VALIDATION_ERROR"
    assert redeem(api, "WINTER10", "m1", "o2").error == "COUPON_INACTIVE"
    assert api.patch(f"{C}/nope", {"status": "paused"}, role="admin").error == "NOT_FOUND"
    actions = [a["action"] for a in api.get("/v1/admin/audit", role="admin").body["items"]]
    assert actions.count("coupon_campaign.update") == 5


# --- validate and redeem: the rejection codes ---------------------------------------------------

def test_every_rejection_code(api):
    api.enrol("m1")
    api.enrol("m2")
    create(api, campaign("s1", shared_code="SHARED1", min_order_amount=3000, max_per_member=1))
    create(api, campaign("future", shared_code="FUTURE1", starts_at="2026-02-01T00:00:00Z",
                         ends_at="2026-03-01T00:00:00Z"))
    create(api, campaign("past", shared_code="PAST1", starts_at="2025-11-01T00:00:00Z",
                         ends_at="2025-12-01T00:00:00Z"))
    create(api, campaign("draft", shared_code="DRAFT1", status="draft"))
    create(api, campaign("lim", shared_code="LIMIT1", max_redemptions=1, max_per_member=5))
    create(api, campaign("gold", shared_code="GOLDONLY", audience={"tiers": ["gold"]}))
    create(api, campaign("cat", shared_code="COFFEE1", categories=["coffee"]))
    create(api, unique_campaign("u1"))
    codes_for(api, "u1", 3)
    issued = issue(api, "u1", member_ids=["m1"])
    assert issued["issued"] == 1
    code_m1 = wallet(api, "m1")[0]["code"]

    def reason(code, member="m1", total=10000, items=None):
        v = validate(api, code, member, total, items)
        assert v.status == 200 and v.body["valid"] is False and v.body["discount_amount"] == 0, v.body
        return v.body["reason"]

    assert reason("NOPE1234") == "COUPON_NOT_FOUND"
    assert reason("!!") == "COUPON_NOT_FOUND"
    assert reason("FUTURE1") == "COUPON_NOT_STARTED"
    assert reason("PAST1") == "COUPON_EXPIRED"
    assert reason("DRAFT1") == "COUPON_INACTIVE"
    assert reason("SHARED1", total=2999) == "COUPON_MIN_ORDER"
    assert reason("GOLDONLY") == "COUPON_NOT_ELIGIBLE"
    assert reason("COFFEE1", items=[{"sku": "t", "category": "tea", "amount": 10000}]) == "COUPON_NOT_ELIGIBLE"
    assert reason(code_m1, member="m2") == "COUPON_NOT_ELIGIBLE"  # issued to someone else

    assert redeem(api, "LIMIT1", "m1", "o-lim").status == 201
    assert reason("LIMIT1", member="m2") == "COUPON_LIMIT_REACHED"
    assert redeem(api, "SHARED1", "m1", "o-s1").status == 201
    assert reason("SHARED1") == "COUPON_MEMBER_LIMIT_REACHED"
    assert redeem(api, code_m1, "m1", "o-u1").status == 201
    assert reason(code_m1) == "COUPON_ALREADY_USED"

    # redeem answers the same codes as 422 (404 for an unknown code)
    cases = [("NOPE1234", "m1", 10000, None, 404, "COUPON_NOT_FOUND"),
             ("FUTURE1", "m1", 10000, None, 422, "COUPON_NOT_STARTED"),
             ("PAST1", "m1", 10000, None, 422, "COUPON_EXPIRED"),
             ("DRAFT1", "m1", 10000, None, 422, "COUPON_INACTIVE"),
             ("SHARED1", "m2", 100, None, 422, "COUPON_MIN_ORDER"),
             ("GOLDONLY", "m1", 10000, None, 422, "COUPON_NOT_ELIGIBLE"),
             ("COFFEE1", "m1", 10000, [{"sku": "t", "category": "tea", "amount": 1}], 422, "COUPON_NOT_ELIGIBLE"),
             (code_m1, "m2", 10000, None, 422, "COUPON_ALREADY_USED"),
             ("LIMIT1", "m2", 10000, None, 422, "COUPON_LIMIT_REACHED"),
             ("SHARED1", "m1", 10000, None, 422, "COUPON_MEMBER_LIMIT_REACHED")]
    for i, (code, member, total, items, status, error) in enumerate(cases):
        r = redeem(api, code, member, f"bad-{i}", total, items)
        assert (r.status, r.error) == (status, error), (code, r.body)


def test_member_errors(api):
    create(api, campaign())
    assert validate(api, "WINTER10", "ghost").error == "MEMBER_NOT_FOUND"
    r = redeem(api, "WINTER10", "ghost", "o1")
    assert r.status == 404 and r.error == "MEMBER_NOT_FOUND"
    api.enrol("m1")
    assert api.patch("/v1/members/m1", {"status": "suspended"}).status == 200
    r = redeem(api, "WINTER10", "m1", "o1")
    assert r.status == 422 and r.error == "MEMBER_INACTIVE"
    assert validate(api, "WINTER10", "m1").body == {"valid": False, "discount_amount": 0, "reason": "MEMBER_INACTIVE"}
    r = api.post("/v1/coupons/redeem", {"code": "WINTER10", "member_id": "m1", "order_id": "o1",
                                        "order": {"total_amount": 100, "currency": "USD"}})
    assert r.status == 422 and r.error == "CURRENCY_MISMATCH"
    r = api.post("/v1/coupons/redeem", {"code": "WINTER10", "member_id": "m1", "order": {"total_amount": 1}})
    assert r.status == 400 and r.error == "VALIDATION_ERROR"
    assert api.post("/v1/coupons/validate", {"code": "X", "member_id": "m1", "order": {}}).status == 400


def test_audiences(api):
    for m in ("a", "b", "c"):
        api.enrol(m)
    api.accrue("b", 60000, now=NOW)  # → silver
    create(api, campaign("t", shared_code="SILVER1", audience={"tiers": ["silver", "gold"]}))
    create(api, campaign("i", shared_code="VIPONLY", audience={"member_ids": ["c"]}))
    create(api, campaign("x", shared_code="MIXED1", audience={"tiers": ["silver"], "member_ids": ["a"]}))
    assert [validate(api, "SILVER1", m).body["valid"] for m in "abc"] == [False, True, False]
    assert [validate(api, "VIPONLY", m).body["valid"] for m in "abc"] == [False, False, True]
    assert [validate(api, "MIXED1", m).body["valid"] for m in "abc"] == [True, True, False]
    # segments (set by the RFM job) are matched on state.segment.label
    from chalicelib.store import members as member_store
    from chalicelib.store import tx

    scored = member_store.get("c")
    scored.segment = {"label": "champions"}
    tx.write([member_store.save_op(scored)])
    create(api, campaign("seg", shared_code="CHAMPS1", audience={"segments": ["champions"]}))
    assert [validate(api, "CHAMPS1", m).body["valid"] for m in "abc"] == [False, False, True]


# --- discounts --------------------------------------------------------------------------------

def test_discount_math_through_the_api(api):
    api.enrol("m1")
    create(api, campaign("p", shared_code="PCT15", discount={"type": "percent", "value": 15}))
    create(api, campaign("a", shared_code="AMT700", discount={"type": "amount", "value": 700}))
    create(api, campaign("f", shared_code="SHIPFREE", discount={"type": "free_shipping"}))
    create(api, campaign("pc", shared_code="COFFEE15", discount={"type": "percent", "value": 15},
                         categories=["coffee"]))
    items = [{"sku": "c1", "category": "coffee", "amount": 999}, {"sku": "t1", "category": "tea", "amount": 1000},
             {"sku": "s", "category": "shipping", "amount": 350}]
    assert validate(api, "PCT15", "m1", 999).body["discount_amount"] == 149  # floor(149.85)
    assert validate(api, "AMT700", "m1", 500).body["discount_amount"] == 500  # capped at the total
    assert validate(api, "AMT700", "m1", 5000).body["discount_amount"] == 700
    assert validate(api, "SHIPFREE", "m1", 2349, items).body["discount_amount"] == 350
    assert validate(api, "SHIPFREE", "m1", 2000, items[:2]).body == {"valid": True, "discount_amount": 0,
                                                                     "reason": None, "campaign_id": "f"}
    assert validate(api, "COFFEE15", "m1", 2349, items).body["discount_amount"] == 149  # 15% of the coffee line
    r = redeem(api, "AMT700", "m1", "o1", 300)
    assert r.status == 201 and r.body["discount_amount"] == 300


# --- redeem: idempotency, rollback, reuse --------------------------------------------------------

def test_redeem_replay_mismatch_and_rollback(api):
    api.enrol("m1")
    create(api, campaign(max_redemptions=10, max_per_member=1))
    r = redeem(api, "winter-10", "m1", "order-1", 5000)
    assert r.status == 201 and (r.body["discount_amount"], r.body["status"]) == (500, "redeemed")
    rid = r.body["coupon_redemption_id"]
    again = redeem(api, "WINTER10", "m1", "order-1", 5000)
    assert again.status == 200 and again.body == r.body
    other = redeem(api, "WINTER10", "m1", "order-1", 6000)
    assert other.status == 409 and other.error == "IDEMPOTENCY_MISMATCH"
    assert stats(api, "c1") == {"codes": 1, "issued": 0, "redeemed": 1, "redemption_rate": 1.0, "discount_total": 500}
    assert redeem(api, "WINTER10", "m1", "order-2").error == "COUPON_MEMBER_LIMIT_REACHED"

    rb = rollback(api, rid)
    assert rb.status == 200 and rb.body["status"] == "rolled_back" and rb.body["coupon_redemption_id"] == rid
    assert rollback(api, rid).body == rb.body  # idempotent
    assert stats(api, "c1")["redeemed"] == 0
    # a replay of the redeem after the rollback reserves nothing and says so (SPEC 2.9)
    replay = redeem(api, "WINTER10", "m1", "order-1", 5000)
    assert (replay.status, replay.body["status"], replay.body["discount_amount"]) == (200, "rolled_back", 0)
    assert stats(api, "c1")["redeemed"] == 0
    assert redeem(api, "WINTER10", "m1", "order-2").status == 201  # the use came back
    assert rollback(api, "cr_nope").error == "NOT_FOUND"
    assert api.post(f"/v1/coupons/redemptions/{rid}/rollback", role="member", sub="m1").status == 403


def test_unique_code_lifecycle_wallet_and_stats(api):
    api.enrol("m1")
    api.enrol("m2")
    create(api, unique_campaign("u1", discount={"type": "amount", "value": 1000}))
    r = codes_for(api, "u1", 5)
    assert r == {"campaign_id": "u1", "generated": 5, "codes_total": 5}
    assert issue(api, "u1", member_ids=["m1", "m2", "ghost", "m1"]) == {
        "issued": 2, "already_issued": 0, "not_found": 1, "inactive": 0, "ineligible": 0, "out_of_codes": 0,
        "notified": 0}
    assert issue(api, "u1", member_ids=["m1"])["issued"] == 0  # re-issuing is a no-op
    [w1] = wallet(api, "m1")
    assert w1["status"] == "issued" and w1["campaign_id"] == "u1" and w1["name"] == "Winter sale"
    assert len(w1["code"]) == 12 and set(w1["code"]) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
    assert w1["issued_at"] == NOW and w1["ends_at"] == "2026-01-31T23:59:59Z"
    assert stats(api, "u1") == {"codes": 5, "issued": 2, "redeemed": 0, "redemption_rate": 0.0, "discount_total": 0}

    r = redeem(api, w1["code"].lower(), "m1", "o1", 5000)
    assert r.status == 201 and r.body["discount_amount"] == 1000
    assert wallet(api, "m1")[0]["status"] == "redeemed"
    assert stats(api, "u1") == {"codes": 5, "issued": 2, "redeemed": 1, "redemption_rate": 0.5, "discount_total": 1000}
    assert redeem(api, w1["code"], "m1", "o2").error == "COUPON_ALREADY_USED"

    rollback(api, r.body["coupon_redemption_id"])
    assert wallet(api, "m1")[0]["status"] == "issued"
    assert stats(api, "u1")["redeemed"] == 0
    assert redeem(api, w1["code"], "m1", "o3").status == 201  # the code is usable again
    # a member sees only their own wallet; the wallet expires with the campaign
    assert api.get("/v1/members/m2/coupons", role="member", sub="m1").status == 403
    assert wallet(api, "m2", role="member", sub="m2")[0]["status"] == "issued"
    assert wallet(api, "m2", now="2026-02-01T00:00:00Z")[0]["status"] == "expired"
    assert api.get("/v1/members/ghost/coupons").error == "MEMBER_NOT_FOUND"


def test_unissued_unique_code_can_be_redeemed_once(api):
    """Codes handed out offline (flyers) work for anyone in the audience, once."""
    api.enrol("m1")
    api.enrol("m2")
    create(api, unique_campaign("u1"))
    codes_for(api, "u1", 1)
    from chalicelib.store.coupons import CodeRecord

    [code] = [c.code for c in CodeRecord.scan() if c.campaign_id == "u1"]
    assert redeem(api, code, "m2", "o1").status == 201
    assert redeem(api, code, "m1", "o2").error == "COUPON_ALREADY_USED"
    assert stats(api, "u1") == {"codes": 1, "issued": 1, "redeemed": 1, "redemption_rate": 1.0, "discount_total": 1000}
    assert issue(api, "u1", member_ids=["m1"])["out_of_codes"] == 1


def test_issue_by_audience_and_notify(api):
    from chalicelib.messaging import queue_url, sqs_client

    api.enrol("m1", consents={"email": True})
    api.enrol("m2", consents={"push": True})
    api.enrol("m3")  # no consent: issued, not messaged
    api.enrol("m4")
    api.accrue("m4", 60000, now=NOW)  # silver
    create(api, unique_campaign("u1", audience={"tiers": ["bronze"]}))
    codes_for(api, "u1", 10)
    r = issue(api, "u1", audience={"tiers": ["bronze", "silver"]}, notify=True)
    assert r["issued"] == 3 and r["ineligible"] == 1 and r["notified"] == 2
    msgs = []
    for _ in range(5):
        got = sqs_client().receive_message(QueueUrl=queue_url(), MaxNumberOfMessages=10).get("Messages", [])
        msgs += got
        if not got:
            break
    import json

    bodies = {b["member_id"]: b for b in (json.loads(m["Body"]) for m in msgs) if b["template"] == "coupon_issued"}
    assert set(bodies) == {"m1", "m2"}
    assert bodies["m1"]["channel"] == "email" and bodies["m2"]["channel"] == "push"
    assert bodies["m1"]["variables"]["coupon_code"] == wallet(api, "m1")[0]["code"]
    assert bodies["m1"]["campaign_id"] == "u1"
    # re-issuing queues nothing new and issues nothing
    assert issue(api, "u1", audience={"tiers": ["bronze"]}, notify=True)["issued"] == 0
    assert api.post(f"{C}/u1/issue", {}, role="admin").status == 400
    assert api.post(f"{C}/nope/issue", {"member_ids": ["m1"]}, role="admin").error == "NOT_FOUND"


def test_shared_issue_puts_the_code_in_wallets(api):
    api.enrol("m1")
    create(api, campaign(max_per_member=2))
    assert issue(api, "c1", member_ids=["m1"])["issued"] == 1
    [w] = wallet(api, "m1")
    assert w["code"] == "WINTER10" and w["status"] == "issued"
    redeem(api, "WINTER10", "m1", "o1")
    assert wallet(api, "m1")[0]["status"] == "issued"  # one use of two left
    redeem(api, "WINTER10", "m1", "o2")
    assert wallet(api, "m1")[0]["status"] == "redeemed"
    assert stats(api, "c1") == {"codes": 1, "issued": 1, "redeemed": 2, "redemption_rate": 1.0, "discount_total": 2000}


def test_issue_codes_for_message_campaigns(api):
    from chalicelib.services.coupons import issue_codes

    for m in ("m1", "m2", "m3"):
        api.enrol(m)
    create(api, unique_campaign("u1", audience={"member_ids": ["m1", "m2"]}))
    codes_for(api, "u1", 5)
    from chalicelib import clock

    with clock.pinned(clock.parse_instant(NOW)):
        first = issue_codes("u1", ["m1"])
        got = issue_codes("u1", ["m1", "m2", "m3", "ghost"], actor="marketing")
    assert set(got) == {"m1", "m2"} and got["m1"] == first["m1"] and got["m1"] != got["m2"]


def test_lowering_max_redemptions_reslices_the_limit(api):
    for m in ("m1", "m2", "m3"):
        api.enrol(m)
    create(api, campaign(max_redemptions=100))
    assert redeem(api, "WINTER10", "m1", "o1").status == 201
    assert redeem(api, "WINTER10", "m2", "o2").status == 201
    assert api.patch(f"{C}/c1", {"max_redemptions": 2}, role="admin").status == 200
    assert redeem(api, "WINTER10", "m3", "o3").error == "COUPON_LIMIT_REACHED"
    assert api.patch(f"{C}/c1", {"max_redemptions": 3}, role="admin").status == 200
    assert redeem(api, "WINTER10", "m3", "o3").status == 201
    assert api.patch(f"{C}/c1", {"max_redemptions": None}, role="admin").body["max_redemptions"] is None
    api.enrol("m4")
    assert redeem(api, "WINTER10", "m4", "o4").status == 201
    assert stats(api, "c1")["redeemed"] == 4


def test_idempotency_key_on_code_generation(api):
    create(api, unique_campaign("u1"))
    h = {"Idempotency-Key": "gen-1"}
    r1 = api.post(f"{C}/u1/codes", {"count": 3}, role="admin", headers=h)
    r2 = api.post(f"{C}/u1/codes", {"count": 3}, role="admin", headers=h)
    assert (r1.status, r2.status) == (201, 200) and r1.body == r2.body
    assert stats(api, "u1")["codes"] == 3
    assert api.post(f"{C}/c9/codes", {"count": 3}, role="admin").error == "NOT_FOUND"
    assert api.post(f"{C}/u1/codes", {"count": 0}, role="admin").status == 400
    assert api.post(f"{C}/u1/codes", {"count": 1_000_001}, role="admin").status == 400
    create(api, campaign("s1"))
    assert api.post(f"{C}/s1/codes", {"count": 3}, role="admin").status == 400


def test_a_warm_redemption_costs_one_read_and_one_transaction(api, monkeypatch):
    """SPEC 3 / 6: TransactGetItems + TransactWriteItems, for shared and unique codes alike
    (with the stream relay, as in production: the coupon.redeemed event is an outbox row of
    that transaction and the request makes no call to relay it)."""
    from chalicelib.config import reset_settings
    from chalicelib.store.base import dynamodb_client

    monkeypatch.setenv("LOYALTY_RELAY", "stream")
    reset_settings()

    for m in ("m1", "m2", "m3", "m4"):
        api.enrol(m)
    create(api, campaign(max_redemptions=100))
    create(api, unique_campaign("u1"))
    codes_for(api, "u1", 4)
    got = api.post(f"{C}/u1/issue", {"member_ids": ["m1", "m2", "m3"]}, role="admin", now=NOW).body
    assert got["issued"] == 3
    redeem(api, "WINTER10", "m1", "warm-1")  # warms the caches (settings, definition, shared code)
    redeem(api, wallet(api, "m1")[0]["code"], "m1", "warm-2")
    code_m3 = wallet(api, "m3")[0]["code"]
    calls: list = []
    hook = lambda model, **kw: calls.append(model.name)  # noqa: E731
    client = dynamodb_client()
    client.meta.events.register("before-call.dynamodb.*", hook)
    try:
        assert redeem(api, "WINTER10", "m2", "o-shared").status == 201
        shared_calls = list(calls)
        calls.clear()
        assert redeem(api, code_m3, "m3", "o-unique").status == 201
        unique_calls = list(calls)
    finally:
        client.meta.events.unregister("before-call.dynamodb.*", hook)
    assert shared_calls == ["TransactGetItems", "TransactWriteItems"]
    assert unique_calls == ["TransactGetItems", "TransactWriteItems"]


def test_wallet_paginates_newest_first_and_refuses_forged_cursors(api):
    import base64
    import json

    api.enrol("m1")
    for i, day in enumerate(("2026-01-02", "2026-01-03", "2026-01-04")):
        create(api, campaign(f"c{i}", shared_code=f"CODE{i}X"))
        r = api.post(f"{C}/c{i}/issue", {"member_ids": ["m1"]}, role="admin", now=f"{day}T00:00:00Z")
        assert r.body["issued"] == 1
    page = api.get("/v1/members/m1/coupons?limit=2", now=NOW).body
    assert [w["campaign_id"] for w in page["items"]] == ["c2", "c1"]
    rest = api.get("/v1/members/m1/coupons?limit=2&cursor=" + page["next_cursor"], now=NOW).body
    assert [w["campaign_id"] for w in rest["items"]] == ["c0"] and rest["next_cursor"] is None

    def forged(key):
        return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")

    for key in ({"a": 1}, {"member_id": {"S": "m2"}, "campaign_id": {"S": "c1"}, "issued_sk": {"S": "x"}},
                {"member_id": {"N": "1"}, "campaign_id": {"S": "c1"}, "issued_sk": {"S": "x"}}):
        r = api.get("/v1/members/m1/coupons?cursor=" + forged(key))
        assert r.status == 400 and r.error == "VALIDATION_ERROR", r.body
    r = api.get(C + "?cursor=" + forged({"campaign_id": {"S": "c1"}}), role="admin")
    assert r.status == 400 and r.error == "VALIDATION_ERROR"
    r = api.post(C, campaign("old", shared_code="OLDDATE1", starts_at="0001-01-01T00:00:00+01:00"), role="admin")
    assert r.status == 400 and r.error == "VALIDATION_ERROR"
