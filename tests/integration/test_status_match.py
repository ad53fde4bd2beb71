"""Status match (SPEC 2.15): PUT /v1/admin/members/{id}/tier."""
from tests.factories import assert_invariant

T0 = "2026-03-10T10:00:00Z"


def put_tier(api, member_id, body, role="admin"):
    return api.put(f"/v1/admin/members/{member_id}/tier", body, role=role, sub="cs-1", now=T0)


def test_the_member_holds_the_tier_until_the_date_with_history_message_and_audit(api, monkeypatch):
    from chalicelib.config import reset_settings
    from chalicelib.store.models import OutboxRecord, TierHistoryRecord

    monkeypatch.setenv("LOYALTY_RELAY", "stream")  # the outbox rows stay for the stream relay to send
    reset_settings()

    api.enrol("sm1")
    r = put_tier(api, "sm1", {"tier_id": "gold", "until": "2027-03-31T23:59:59Z", "reason": "competitor status"})
    assert r.status == 200, r.body
    assert (r.body["tier"]["tier_id"], r.body["tier"]["retained_until"]) == ("gold", "2027-03-31T23:59:59Z")
    assert api.member("sm1", now=T0)["tier"]["tier_id"] == "gold"
    history = [h.change for h in TierHistoryRecord.query("sm1")]
    assert [(h["from"], h["to"], h["reason"]) for h in history] == [("bronze", "gold", "status_match")]
    assert [o.body.get("template") for o in OutboxRecord.scan()
            if o.body.get("member_id") == "sm1" and o.body.get("template")] == ["tier_changed"]
    audit = api.get("/v1/admin/audit", role="admin").body["items"]
    assert any(a["action"] == "member.tier" and a["target"] == "sm1" and a["details"]["reason"] == "competitor status"
               for a in audit)
    again = put_tier(api, "sm1", {"tier_id": "gold", "until": "2027-03-31T23:59:59Z", "reason": "competitor status"})
    assert again.status == 200 and len(list(TierHistoryRecord.query("sm1"))) == 1  # the same PUT: no change
    down = put_tier(api, "sm1", {"tier_id": "silver", "until": "2026-12-31T23:59:59Z", "reason": "correction"})
    assert down.body["tier"]["tier_id"] == "silver"
    assert_invariant("sm1")


def test_rules_and_roles(api):
    api.enrol("sm2")
    body = {"tier_id": "gold", "until": "2027-01-01T00:00:00Z", "reason": "cs"}
    assert put_tier(api, "sm2", {**body, "tier_id": "diamond"}).error == "VALIDATION_ERROR"
    assert put_tier(api, "sm2", {"tier_id": "gold", "reason": "cs"}).error == "VALIDATION_ERROR"
    assert put_tier(api, "sm2", body, role="service").status == 403
    assert put_tier(api, "nobody", body).error == "MEMBER_NOT_FOUND"
