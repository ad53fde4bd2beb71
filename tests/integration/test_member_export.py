"""Data-subject access (SPEC 2.17): `GET /v1/members/{id}/export` holds everything about the
member, nothing about anyone else, and every table of the stack has a decision about it."""
from __future__ import annotations

NOW = "2026-01-15T10:00:00Z"
C = "/v1/admin/coupon-campaigns"


def _ok(resp, status=201):
    assert resp.status == status, resp.body
    return resp.body


def rich_member(api, member_id="dx", other="dy"):
    """A member with something in every table that holds member data."""
    api.enrol(member_id, email="dx@example.com", name="Dee", birthday="02-03",
              consents={"email": True, "push": False, "sms": False})
    api.enrol(other, email="dy@example.com", name="Why")
    _ok(api.accrue(member_id, 50000, order_id="dx-o1", now=NOW))
    _ok(api.accrue(other, 70000, order_id="dy-o1", now=NOW))
    _ok(api.post("/v1/admin/rewards", {"reward_id": "x-cup", "name": "Cup", "cost_points": 100, "kind": "voucher"},
                 role="admin"))
    voucher = _ok(api.post(f"/v1/members/{member_id}/redemptions", {"reward_id": "x-cup"}, now=NOW))
    _ok(api.post(f"/v1/members/{other}/redemptions", {"reward_id": "x-cup"}, now=NOW))
    _ok(api.post(C, {"campaign_id": "x-c1", "name": "Winter", "discount": {"type": "percent", "value": 10},
                     "min_order_amount": 0, "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2026-01-31T23:59:59Z",
                     "code_mode": "shared", "shared_code": "XWINTER10", "status": "active"}, role="admin", now=NOW))
    _ok(api.post(f"{C}/x-c1/issue", {"member_ids": [member_id, other]}, role="admin", now=NOW), 200)
    _ok(api.post(f"/v1/members/{member_id}/point-holds", {"hold_id": "dx-h1", "points": 50}, now=NOW))
    _ok(api.post(f"/v1/members/{member_id}/events", {"event_id": "dx-e1", "type": "product_viewed", "sku": "SKU-1",
                                                     "occurred_at": NOW}, now=NOW), 202)
    _ok(api.post(f"/v1/members/{member_id}/feedback", {"feedback_id": "dx-f1", "score": 9, "comment": "nice"},
                 now=NOW))
    _ok(api.post(f"/v1/members/{other}/feedback", {"feedback_id": "dy-f1", "score": 3, "comment": "meh"}, now=NOW))
    _ok(api.post("/v1/coupons/redeem", {"code": "XWINTER10", "member_id": member_id, "order_id": "dx-o1",
                                        "order": {"total_amount": 50000}}, now=NOW))
    api.enrol("dz", email="dz@example.com")
    _ok(api.adjust("dz", 30, now=NOW))
    _ok(api.post(f"/v1/admin/members/{member_id}/merge", {"merge_id": "dx-m1", "source_member_id": "dz"},
                 role="admin", now=NOW), 200)
    from chalicelib.store import transfers
    from chalicelib.store import tx
    from chalicelib.store.marketing import OutreachRecord

    line = {"transfer_id": "dx-t1", "from_member_id": member_id, "to_member_id": other, "points": 10,
            "direction": "out", "created_at": NOW}
    tx.write([transfers.line_op(member_id, "2026-01-15T10:00:00.000000Z", "dx-t1", line)])
    OutreachRecord(member_id, version=1, sent={"msg-1": NOW}, marketing=[NOW]).save()
    return voucher


def test_the_export_holds_everything_about_the_member(api):
    voucher = rich_member(api)
    r = api.get("/v1/members/dx/export", role="member", sub="dx", now=NOW)
    assert r.status == 200, r.body
    doc = r.body
    assert doc["member_id"] == "dx" and doc["exported_at"] == NOW
    m = doc["member"]
    assert (m["name"], m["email"], m["birthday"], m["consents"]["email"]) == ("Dee", "dx@example.com", "02-03", True)
    assert (m["points"]["available"], m["points"]["held"]) == (500 - 100 + 20 - 50 + 30, 50)
    assert doc["account"]["profile"]["email"] == "dx@example.com"
    assert doc["account"]["state"]["wallet"]["holds"]["dx-h1"]["points"] == 50
    assert [e["type"] for e in doc["ledger"]] == ["earn", "redeem", "activity", "merge_in"]  # oldest first
    assert sum(e["points"] for e in doc["ledger"]) == m["points"]["available"] + m["points"]["held"]
    assert [o["order_id"] for o in doc["orders"]] == ["dx-o1"]
    assert [v["redemption_id"] for v in doc["redemptions"]] == [voucher["redemption_id"]]
    assert [(c["campaign_id"], c["code"]) for c in doc["coupons"]] == [("x-c1", "XWINTER10")]
    assert [(h["hold_id"], h["status"]) for h in doc["holds"]] == [("dx-h1", "held")]
    assert [t["transfer_id"] for t in doc["transfers"]] == ["dx-t1"]
    assert [(e["event_id"], e["sku"]) for e in doc["events"]] == [("dx-e1", "SKU-1")]
    assert [(f["feedback_id"], f["score"], f["comment"]) for f in doc["feedback"]] == [("dx-f1", 9, "nice")]
    assert doc["messages"] == {"sent": {"msg-1": NOW}, "marketing_sends": [NOW]}
    assert [(h["from"], h["to"], h["reason"]) for h in doc["tier_history"]] == [("bronze", "silver", "order:dx-o1")]
    assert [(g["merge_id"], g["source_id"]) for g in doc["merges"]] == [("dx-m1", "dz")]
    assert [(c["order_id"], c["code"]) for c in doc["coupon_redemptions"]] == [("dx-o1", "XWINTER10")]
    assert doc["experiments"] == []
    # nothing of the other member
    text = str(doc)
    for foreign in ("dy@example.com", "Why", "dy-o1", "dy-f1", "meh"):
        assert foreign not in text, foreign


def test_control_group_exposures_and_their_attributed_orders_are_in_the_export(api):
    from chalicelib.store.attribution import AttributionRecord, ExposureRecord

    api.enrol("ex1")
    api.enrol("ex2")
    for member_id in ("ex1", "ex2"):
        ExposureRecord(member_id, "broadcast:b1#2026-01-15", source="broadcast:b1", period="2026-01-15",
                       group="control" if member_id == "ex1" else "treatment", at=NOW, day="2026-01-15",
                       message_id=f"msg-{member_id}").save()
        AttributionRecord(f"{member_id}|broadcast:b1|2026-01-15", f"{member_id}-o", net=1200, occurred_at=NOW).save()
    doc = api.get("/v1/members/ex1/export", role="admin").body
    assert [(x["source"], x["group"], x["message_id"]) for x in doc["experiments"]] == [
        ("broadcast:b1", "control", "msg-ex1")]
    assert [(o["order_id"], o["net"]) for o in doc["experiments"][0]["attributed_orders"]] == [("ex1-o", 1200)]
    assert "ex2" not in str(doc["experiments"])


def test_tier_history_is_in_the_export(api):
    api.enrol("tx1")
    _ok(api.accrue("tx1", 60000, order_id="tx1-o", now=NOW))  # crosses silver (50,000)
    doc = api.get("/v1/members/tx1/export", role="admin").body
    assert [(h["from"], h["to"]) for h in doc["tier_history"]] == [("bronze", "silver")]
    assert doc["member"]["tier"]["tier_id"] == "silver"


def test_a_closed_member_exports_no_personal_data(api):
    api.enrol("cx", email="cx@example.com", name="Cee")
    _ok(api.post("/v1/members/cx/feedback", {"feedback_id": "cx-f", "score": 8, "comment": "secret words"}, now=NOW))
    _ok(api.post("/v1/members/cx/close", role="admin"), 200)
    doc = api.get("/v1/members/cx/export", role="admin").body
    assert doc["member"]["status"] == "closed" and doc["member"]["email"] is None
    assert "cx@example.com" not in str(doc) and "secret words" not in str(doc)


def test_export_roles_and_4xx(api):
    api.enrol("own")
    assert api.get("/v1/members/own/export", role="member", sub="own").status == 200
    assert api.get("/v1/members/own/export", role="admin").status == 200
    assert api.get("/v1/members/own/export", role="member", sub="someone").error == "FORBIDDEN"
    assert api.get("/v1/members/own/export", role="service").error == "FORBIDDEN"
    assert api.get("/v1/members/own/export", role=None).error == "UNAUTHENTICATED"
    assert api.get("/v1/members/ghost/export", role="admin").error == "MEMBER_NOT_FOUND"
    assert api.get("/v1/members/own/export?full=1", role="admin").error == "VALIDATION_ERROR"
    assert api.get("/v1/members/" + "x" * 65 + "/export", role="admin").error == "VALIDATION_ERROR"
    assert api.post("/v1/members/own/export", role="admin").status == 405


def test_every_table_has_a_decision_about_member_data():
    """A new table must say whether it holds member data and how the export finds it (or
    why not): this fails until `services/finance.MEMBER_DATA` names it."""
    from chalicelib.services.finance import MEMBER_DATA
    from chalicelib.store.registry import all_models

    resources = {m.Meta.resource for m in all_models()}
    assert resources - set(MEMBER_DATA) == set(), "tables without a data-subject access decision"
    exported = {r for r, how in MEMBER_DATA.items() if how.startswith("exported")}
    assert {"members", "ledger", "holds", "redemptions", "coupon-wallets", "member-events", "feedback",
            "outreach", "tier-history", "transfer-lines"} <= exported
