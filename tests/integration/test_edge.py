"""The edge (SPEC 3, 4.1-4.3): strict types, bounded dates, keys, path parameters, bodies
and cursors; every unhandled case in the 4.2 error shape; nothing echoes a token.

Given a client of the app (chalice.test.Client over moto), when a request is malformed,
then it answers the documented 4xx with the documented code, never a 5xx.
"""
from __future__ import annotations

import json

import pytest

NOW = "2026-06-01T12:00:00Z"


def assert_error(r, status: int, code: str) -> dict:
    assert r.status == status, (r.status, r.body)
    assert isinstance(r.body, dict) and set(r.body) == {"error"}, r.body
    assert set(r.body["error"]) == {"code", "message", "details"}, r.body
    assert r.body["error"]["code"] == code, r.body
    return r.body["error"]


def accrual(**fields) -> dict:
    return {"order_id": "o-1", "total_amount": 10000, "currency": "JPY", **fields}


@pytest.fixture
def member(api):
    api.enrol("edge-1")
    return "edge-1"


class TestStrictTypes:
    @pytest.mark.parametrize("amount", ["12800", True, 12800.0, None, [1]])
    def test_an_amount_must_be_a_json_integer(self, api, member, amount):
        r = api.post(f"/v1/members/{member}/accruals", accrual(total_amount=amount), now=NOW)
        err = assert_error(r, 400, "VALIDATION_ERROR")
        assert [f["field"] for f in err["details"]["fields"]] == ["total_amount"]
        assert api.ledger(member, now=NOW) == []

    def test_a_consent_must_be_a_json_bool(self, api):
        r = api.post("/v1/members", {"member_id": "edge-2", "consents": {"email": "yes"}})
        err = assert_error(r, 400, "VALIDATION_ERROR")
        assert err["details"]["fields"][0]["field"] == "consents.email"
        assert api.get("/v1/members/edge-2").status == 404

    def test_a_count_must_be_a_json_integer(self, api):
        r = api.post("/v1/admin/coupon-campaigns/any/codes", {"count": "10"}, role="admin")
        assert_error(r, 400, "VALIDATION_ERROR")

    def test_decimal_fields_take_strings_and_numbers(self, api):
        tiers = api.get("/v1/admin/tiers", role="admin").body["items"]
        tiers[1]["multiplier"] = "1.5"
        tiers[2]["multiplier"] = 2
        r = api.put("/v1/admin/tiers", tiers, role="admin")  # a bare list is accepted too
        assert r.status == 200, r.body
        assert [t["multiplier"] for t in r.body["items"]][1:3] == ["1.5", "2"]
        settings = api.get("/v1/admin/settings", role="admin").body
        settings["category_multipliers"] = {"coffee": "2.5", "tea": 3}
        assert api.put("/v1/admin/settings", settings, role="admin").status == 200
        settings["tier_soft_landing"] = "true"
        assert_error(api.put("/v1/admin/settings", settings, role="admin"), 400, "VALIDATION_ERROR")

    def test_items_worth_more_than_the_order_are_refused(self, api, member):
        body = accrual(total_amount=100, items=[{"sku": "X", "category": "c", "amount": 500000, "quantity": 1}])
        assert_error(api.post(f"/v1/members/{member}/accruals", body, now=NOW), 400, "VALIDATION_ERROR")
        ok = accrual(total_amount=500, items=[{"sku": "X", "amount": 200}, {"sku": "Y", "amount": 300}])
        assert api.post(f"/v1/members/{member}/accruals", ok, now=NOW).status == 201


class TestDates:
    @pytest.mark.parametrize("when", ["9999-12-31T23:00:00Z", "2099-01-01T00:00:00Z", "2026-06-01T12:05:01Z",
                                      "0001-01-01T00:00:00Z", "1999-12-31T23:59:59Z", "2026-06-01T12:00:00"])
    def test_occurred_at_is_not_after_now_plus_5_minutes_nor_before_2000(self, api, member, when):
        r = api.post(f"/v1/members/{member}/accruals", accrual(occurred_at=when), now=NOW)
        err = assert_error(r, 400, "VALIDATION_ERROR")
        assert err["details"]["fields"][0]["field"] == "occurred_at"
        assert api.get(f"/v1/members/{member}", now=NOW).status == 200

    def test_occurred_at_up_to_5_minutes_ahead_is_accepted(self, api, member):
        r = api.post(f"/v1/members/{member}/accruals", accrual(occurred_at="2026-06-01T12:05:00Z"), now=NOW)
        assert r.status == 201, r.body

    def test_activity_and_event_dates_are_bounded_too(self, api, member):
        r = api.post(f"/v1/members/{member}/activities",
                     {"activity_id": "a-1", "type": "review", "occurred_at": "2999-01-01T00:00:00Z"}, now=NOW)
        assert_error(r, 400, "VALIDATION_ERROR")
        r = api.post(f"/v1/members/{member}/events",
                     {"event_id": "e-1", "type": "product_viewed", "sku": "S", "occurred_at": "2030-01-01T00:00:00Z"},
                     now=NOW)
        assert_error(r, 400, "VALIDATION_ERROR")

    @pytest.mark.parametrize("now", ["9999-12-31T23:59:59Z", "2100-01-01T00:00:00Z", "1999-12-31T23:59:59Z",
                                     "0001-01-01", "garbage", "2026-13-01T00:00:00Z"])
    def test_x_loyalty_now_is_within_2000_to_2099(self, api, member, now):
        r = api.get(f"/v1/members/{member}", now=now)
        err = assert_error(r, 400, "VALIDATION_ERROR")
        assert err["details"]["fields"][0]["field"] == "X-Loyalty-Now"

    def test_x_loyalty_now_at_the_edges_of_the_range_works(self, api, member):
        assert api.get(f"/v1/members/{member}", now="2099-12-31T23:59:59Z").status == 200
        assert api.get(f"/v1/members/{member}", now="2000-01-01T00:00:00Z").status == 200

    @pytest.mark.parametrize("as_of", ["0001-01-01", "1999-12-31", "2100-01-01", "9999-12-31T00:00:00Z", "soon"])
    def test_a_job_as_of_outside_2000_to_2099_is_a_400(self, api, as_of):
        r = api.post("/v1/admin/jobs", {"job": "expire-points", "as_of": as_of}, role="admin")
        err = assert_error(r, 400, "VALIDATION_ERROR")
        assert err["details"]["fields"][0]["field"] == "as_of"

    def test_promotion_and_reward_dates_far_in_the_future_are_refused(self, api):
        r = api.post("/v1/admin/rewards", {"reward_id": "r-far", "name": "far", "cost_points": 5,
                                           "ends_at": "9999-12-31T00:00:00Z"}, role="admin")
        assert_error(r, 400, "VALIDATION_ERROR")


class TestKeysAndPaths:
    @pytest.mark.parametrize("method,path", [
        ("GET", "/v1/members//ledger"),
        ("POST", "/v1/members//accruals"),
        ("GET", "/v1/members/"  + "x" * 65),
        ("POST", "/v1/coupons/redemptions//rollback"),
        ("POST", "/v1/admin/coupon-campaigns//codes"),
        ("POST", "/v1/admin/members//adjustments"),
        ("GET", "/v1/admin/jobs/" + "j" * 129),
        ("POST", "/v1/members/edge-1/redemptions//cancel"),
    ])
    def test_an_empty_or_overlong_path_parameter_is_a_400(self, api, method, path):
        r = api.call(method, path, {}, role="admin")
        err = assert_error(r, 400, "VALIDATION_ERROR")
        assert err["details"]["fields"][0]["field"].startswith("path.")

    @pytest.mark.parametrize("key", ["", "k" * 129, "k" * 5000, "with space", "caf\u00e9"])
    def test_an_idempotency_key_is_1_to_128_visible_ascii(self, api, member, key):
        r = api.post(f"/v1/members/{member}/redemptions", {"reward_id": "none"}, role="service",
                     headers={"Idempotency-Key": key.encode("utf-8").decode("latin-1")})
        err = assert_error(r, 400, "VALIDATION_ERROR")
        assert err["details"]["fields"][0]["field"] == "Idempotency-Key"

    def test_a_128_character_key_is_fine(self, api):
        r = api.post("/v1/members", {"member_id": "edge-3"}, headers={"Idempotency-Key": "k" * 128})
        assert r.status == 201, r.body


class TestBodies:
    @pytest.mark.parametrize("depth", [300, 1000, 20000])
    def test_deep_nesting_is_a_400(self, api, member, depth):
        body = '{"event_id":"e","type":"product_viewed","cart":' + "[" * depth + "]" * depth + "}"
        r = api.post(f"/v1/members/{member}/events", body, role="service", now=NOW)
        assert_error(r, 400, "VALIDATION_ERROR")
        r = api.post(f"/v1/members/{member}/accruals/preview", "[" * depth + "]" * depth, role="member",
                     sub=member, now=NOW)
        assert_error(r, 400, "VALIDATION_ERROR")

    def test_a_huge_body_is_a_400(self, api, member):
        body = json.dumps(accrual(channel="x" * 300_000))
        assert_error(api.post(f"/v1/members/{member}/accruals", body, now=NOW), 400, "VALIDATION_ERROR")

    @pytest.mark.parametrize("raw", [b"\xff\xfe", b"{", b"null", b"[]", b'"x"', b"{\"order_id\": 1}"])
    def test_not_an_object_or_not_json_is_a_400(self, api, member, raw):
        assert_error(api.post(f"/v1/members/{member}/accruals", raw, now=NOW), 400, "VALIDATION_ERROR")

    def test_any_content_type_is_read_as_json(self, api, member):
        r = api.post(f"/v1/members/{member}/accruals", accrual(), headers={"Content-Type": "application/xml"},
                     now=NOW)
        assert r.status == 201, r.body


class TestCursors:
    def test_a_cursor_works_only_on_the_list_that_issued_it(self, api, member):
        for i in range(3):
            assert api.post(f"/v1/members/{member}/accruals", accrual(order_id=f"o-{i}"), now=NOW).status == 201
        page = api.get(f"/v1/members/{member}/ledger?limit=1", now=NOW).body
        cursor = page["next_cursor"]
        assert cursor
        nxt = api.get(f"/v1/members/{member}/ledger?limit=1&cursor={cursor}", now=NOW)
        assert nxt.status == 200 and nxt.body["items"][0]["entry_id"] != page["items"][0]["entry_id"]
        api.enrol("edge-other")
        other = api.get(f"/v1/members/edge-other/ledger?limit=1&cursor={cursor}", now=NOW)
        assert_error(other, 400, "VALIDATION_ERROR")
        assert_error(api.get(f"/v1/admin/audit?cursor={cursor}", role="admin"), 400, "VALIDATION_ERROR")
        assert_error(api.get(f"/v1/rewards?cursor={cursor}"), 400, "VALIDATION_ERROR")

    @pytest.mark.parametrize("cursor", ["eyJvZmZzZXQiOiJ4In0", "eyJvZmZzZXQiOiJ4In0.AAAA", "%00", "." * 3000,
                                        "eyJvZmZzZXQiOjF9.bad"])
    def test_a_crafted_cursor_is_a_400(self, api, cursor):
        assert_error(api.get(f"/v1/rewards?cursor={cursor}"), 400, "VALIDATION_ERROR")


class TestRouting:
    @pytest.mark.parametrize("path", ["/", "/nope", "/v1", "/v1/nope", "/v1/members/x/nope", "/v2/members",
                                      "/v1/members/x/ledger/extra/a/b/c"])
    @pytest.mark.parametrize("role", [None, "admin"])
    def test_an_unknown_route_is_404_with_or_without_a_token(self, api, path, role):
        r = api.get(path, role=role)
        assert_error(r, 404, "NOT_FOUND")
        assert "Bearer" not in json.dumps(r.body)

    @pytest.mark.parametrize("method,path", [("PUT", "/v1/health"), ("DELETE", "/v1/members/x"),
                                             ("GET", "/v1/coupons/redeem"), ("PATCH", "/v1/admin/audit"),
                                             ("OPTIONS", "/v1/members"), ("POST", "/v1/openapi.json")])
    @pytest.mark.parametrize("role", [None, "member"])
    def test_a_known_route_with_a_wrong_method_is_405(self, api, method, path, role):
        r = api.call(method, path, role=role)
        err = assert_error(r, 405, "METHOD_NOT_ALLOWED")
        assert err["details"]["allowed"] and method not in err["details"]["allowed"]
        assert r.headers.get("Allow")

    def test_an_error_never_echoes_the_token(self, api):
        secret = "Bearer not-a-jwt-SECRET-VALUE"
        for method, path in (("GET", "/nope"), ("GET", "/v1/members/x"), ("PUT", "/v1/health")):
            r = api.call(method, path, role=None, headers={"Authorization": secret})
            assert r.status in (401, 404, 405)
            assert "SECRET-VALUE" not in json.dumps(r.body) and "SECRET-VALUE" not in json.dumps(r.headers)

    def test_a_chalice_own_error_leaves_in_the_spec_shape(self):
        from chalice import Response

        from chalicelib.api.http import spec_shaped_errors

        chalice_answer = Response(body={"Code": "MethodNotAllowedError", "Message": "Unsupported method: TRACE"},
                                  status_code=405, headers={"Allow": "GET"})
        out = spec_shaped_errors(None, lambda event: chalice_answer)
        assert json.loads(out.body) == {"error": {"code": "METHOD_NOT_ALLOWED", "message": "MethodNotAllowedError",
                                                  "details": {}}}
        crash = Response(body={"Code": "InternalServerError", "Message": "An internal server error occurred."},
                         status_code=500)
        assert json.loads(spec_shaped_errors(None, lambda event: crash).body)["error"]["code"] == "INTERNAL_ERROR"


class TestDocs:
    def test_the_reference_page_and_its_assets_come_from_the_app(self, api):
        page = api.raw.http.request("GET", "/v1/docs")
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
        html = page.body.decode()
        assert "http://" not in html and "https://" not in html  # nothing from a third party
        assert "default-src 'self'" in page.headers["Content-Security-Policy"]
        for asset, kind in (("swagger-ui-bundle.js", "javascript"), ("swagger-ui.css", "css"), ("init.js", "javascript")):
            assert f"docs/{asset}" in html
            r = api.raw.http.request("GET", f"/v1/docs/{asset}")
            assert r.status_code == 200 and kind in r.headers["Content-Type"] and len(r.body) > 100
        init = api.raw.http.request("GET", "/v1/docs/init.js").body.decode()
        assert "validatorUrl: null" in init and 'url: "openapi.json"' in init

    def test_every_operation_has_a_description_and_examples_and_lists_are_typed(self, api):
        doc = api.get("/v1/openapi.json", role=None).body
        schemas = doc["components"]["schemas"]
        for path, ops in doc["paths"].items():
            for method, op in ops.items():
                assert op["summary"] and len(op["description"]) > len(op["summary"]), (method, path)
                if "requestBody" in op:
                    assert op["requestBody"]["content"]["application/json"]["example"], (method, path)
                ok = next(v for k, v in op["responses"].items() if k.startswith("2"))
                if "content" in ok:
                    media = ok["content"]["application/json"]
                    assert "example" in media, (method, path)
                    ref = media["schema"].get("$ref", "")
                    name = ref.rsplit("/", 1)[-1]
                    if name and "next_cursor" in schemas[name].get("properties", {}):
                        items = schemas[name]["properties"]["items"]["items"]
                        assert "$ref" in items, (method, path, items)  # typed, not {"type": "object"}
        for example_op in (doc["paths"]["/v1/members/{member_id}/accruals"]["post"],):
            assert example_op["requestBody"]["content"]["application/json"]["example"]["total_amount"] == 12800


def test_a_query_parameter_the_route_does_not_take_is_a_400(api):
    err = assert_error(api.get("/v1/rewards?limit=5&colour=red"), 400, "VALIDATION_ERROR")
    assert err["details"]["fields"] == [{"field": "query.colour", "message": "not a parameter of this route"}]
    assert_error(api.get("/v1/health?x=1", role=None), 400, "VALIDATION_ERROR")
    assert api.get("/v1/rewards?limit=5").status == 200
