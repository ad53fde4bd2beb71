"""POST /v1/admin/settings/simulate (SPEC 4.5): candidate settings against sample orders and the
last days' recorded orders, with totals; validated like PUT settings; nothing written."""
from __future__ import annotations

import botocore.client
import pytest

NOW = "2026-05-20T12:00:00Z"
MAY = {"starts_at": "2026-05-01T00:00:00Z", "ends_at": "2026-06-01T00:00:00Z"}
URL = "/v1/admin/settings/simulate"
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems", "SendMessage",
          "SendMessageBatch", "PutEvents", "PutObject"}


@pytest.fixture
def aws_calls(monkeypatch):
    """Every AWS API call by operation name (PynamoDB and boto3 both go through botocore)."""
    calls: list = []
    real = botocore.client.BaseClient._make_api_call

    def spy(self, operation_name, params):
        calls.append(operation_name)
        return real(self, operation_name, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", spy)
    return calls


def settings_with(api, **changes):
    current = api.get("/v1/admin/settings", role="admin").body
    return {**current, **changes}


def order(member_id, order_id, total, **kw):
    return {"member_id": member_id, "order_id": order_id, "total_amount": total, "currency": "JPY",
            "occurred_at": kw.pop("at", "2026-05-10T10:00:00Z"), **kw}


def by_id(body):
    return {o["order_id"]: (o["current"], o["candidate"]) for o in body["orders"]}


def test_sample_orders_current_against_candidate(api, aws_calls):
    api.enrol("s1")
    api.enrol("s2")
    candidate = settings_with(api, promotions=[
        {"promotion_id": "app3", "name": "App x3", "multiplier": "3", "channels": ["app"], **MAY},
        {"promotion_id": "acme", "name": "Acme bonus", "bonus_points": 20, "brands": ["acme"], **MAY}],
        earning_caps={"per_member_per_day": 100, "per_member_per_month": None})
    orders = [order("s1", "a", 5000, channel="app"),
              order("s1", "b", 6000, channel="app"),  # same day: the candidate's cap stops it at 100
              order("s2", "c", 1000, items=[{"sku": "x", "amount": 1000, "brand": "acme"}]),
              order("ghost", "d", 1000)]
    aws_calls.clear()
    r = api.post(URL, {"settings": candidate, "orders": orders}, role="admin", now=NOW)
    assert r.status == 200, r.body
    assert by_id(r.body) == {"a": (50, 100), "b": (60, 0), "c": (10, 30)}
    assert r.body["totals"] == {"current": 120, "candidate": 130}
    assert r.body["skipped"] == [{"order_id": "d", "member_id": "ghost", "reason": "MEMBER_NOT_FOUND"}]
    a = next(o for o in r.body["orders"] if o["order_id"] == "a")
    assert a["breakdown"]["candidate"] == [{"rule": "base", "points": 50}, {"rule": "promotion:app3", "points": 100},
                                           {"rule": "cap", "points": -50}]
    for o in r.body["orders"]:
        for side in ("current", "candidate"):
            assert sum(b["points"] for b in o["breakdown"][side]) == o[side]
    # nothing written: no write call of any kind reached AWS, and no member changed
    assert aws_calls and not WRITES & set(aws_calls), aws_calls
    assert api.member("s1", now=NOW)["points"]["available"] == 0
    assert api.get("/v1/members/s1/ledger", now=NOW).body["items"] == []
    # the live settings are untouched
    assert api.get("/v1/admin/settings", role="admin").body["promotions"] == []


def test_last_days_reads_recorded_orders(api, aws_calls):
    api.enrol("r1")
    api.accrue("r1", 10000, order_id="old", now="2026-04-01T10:00:00Z")
    api.accrue("r1", 4000, order_id="new1", store_id="ginza", now="2026-05-18T10:00:00Z")
    api.accrue("r1", 3000, order_id="new2", items=[{"sku": "k", "category": "coffee", "amount": 3000}],
               now="2026-05-19T10:00:00Z")
    candidate = settings_with(api, category_multipliers={"coffee": "2"}, promotions=[
        {"promotion_id": "ginza", "name": "Ginza", "bonus_points": 5, "stores": ["ginza"], **MAY}])
    aws_calls.clear()
    r = api.post(URL, {"settings": candidate, "last_days": 7}, role="admin", now=NOW)
    assert r.status == 200, r.body
    assert by_id(r.body) == {"new1": (40, 45), "new2": (30, 60)}  # "old" is outside the 7 days
    assert {o["source"] for o in r.body["orders"]} == {"recorded"}
    assert r.body["totals"] == {"current": 70, "candidate": 105} and r.body["truncated"] is False
    assert not WRITES & set(aws_calls), aws_calls
    # sample and recorded orders together
    r = api.post(URL, {"settings": candidate, "last_days": 90,
                       "orders": [order("r1", "extra", 1000, at="2026-05-20T11:00:00Z")]}, role="admin", now=NOW)
    assert by_id(r.body) == {"old": (100, 100), "new1": (40, 45), "new2": (30, 60), "extra": (10, 10)}


def test_inactive_members_sample_orders_are_skipped(api):
    api.enrol("i1")
    assert api.patch("/v1/members/i1", {"status": "suspended"}).status == 200
    r = api.post(URL, {"settings": settings_with(api), "orders": [order("i1", "z", 1000)]}, role="admin", now=NOW)
    assert r.status == 200 and r.body["orders"] == [] and r.body["totals"] == {"current": 0, "candidate": 0}
    assert r.body["skipped"] == [{"order_id": "z", "member_id": "i1", "reason": "MEMBER_INACTIVE"}]


def test_first_purchase_promotion_in_a_sample(api):
    api.enrol("f1")
    candidate = settings_with(api, promotions=[
        {"promotion_id": "welcome", "name": "Welcome", "bonus_points": 100, "first_purchase_only": True, **MAY}])
    r = api.post(URL, {"settings": candidate, "orders": [order("f1", "x1", 1000, at="2026-05-10T10:00:00Z"),
                                                         order("f1", "x2", 1000, at="2026-05-11T10:00:00Z")]},
                 role="admin", now=NOW)
    assert by_id(r.body) == {"x1": (10, 110), "x2": (10, 10)}


@pytest.mark.parametrize("body,field", [
    ({"settings": {"earning_caps": {"per_member_per_day": 9, "per_member_per_month": 1}}, "orders": []},
     "settings.earning_caps"),
    ({"settings": {"promotions": [{"promotion_id": "p", "name": "P", "multiplier": "2",
                                   "starts_at": "2026-06-01T00:00:00Z", "ends_at": "2026-05-01T00:00:00Z"}]},
      "last_days": 7}, "settings.promotions.0"),
    ({"settings": {"base_rate": {"points": "1"}}, "last_days": 7}, "settings.base_rate.points"),
    ({"settings": {"bogus": 1}, "last_days": 7}, "settings.bogus"),
    ({"settings": {}, "last_days": 0}, "last_days"),
    ({"settings": {}, "last_days": 91}, "last_days"),
    ({"settings": {}}, ""),
    ({"last_days": 7}, "settings"),
    ({"settings": {}, "orders": [{"order_id": "o", "total_amount": 1, "currency": "JPY"}]}, "orders.0.member_id"),
])
def test_invalid_requests_are_400_with_field_errors(api, body, field):
    r = api.post(URL, body, role="admin", now=NOW)
    assert r.status == 400 and r.error == "VALIDATION_ERROR", r.body
    fields = [f["field"] for f in r.body["error"]["details"]["fields"]]
    assert any(f == field or f.startswith(field + ".") or (field == "" and f in ("", "body")) for f in fields), fields


def test_admin_only(api):
    body = {"settings": {}, "last_days": 7}
    assert api.post(URL, body, role="service").status == 403
    assert api.post(URL, body, role="member", sub="m").status == 403
    assert api.post(URL, body, role=None).status == 401
    assert api.get(URL, role="admin").status == 405
