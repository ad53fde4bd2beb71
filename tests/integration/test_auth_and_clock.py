"""Bearer tokens and roles (SPEC 4.1) and the pinned clock (SPEC 2.13) through the HTTP wrapper."""
import time

import jwt

SECRET = "local-dev-secret"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def claims(**kw):
    return {"sub": "ops", "roles": ["admin"], "exp": int(time.time()) + 60, **kw}


class TestUnauthenticated:
    BAD = dict(zip(["none", "empty", "scheme-only", "scheme-space", "basic", "garbage", "alg-none", "expired",
                    "wrong-secret", "no-exp", "no-sub"], [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic b3BzOnNlY3JldA=="},
        {"Authorization": "Bearer not.a.jwt"},
        bearer(jwt.encode(claims(), None, algorithm="none")),
        bearer(jwt.encode(claims(exp=int(time.time()) - 5), SECRET, algorithm="HS256")),
        bearer(jwt.encode(claims(), "some-other-secret-that-is-long-enough", algorithm="HS256")),
        bearer(jwt.encode({"sub": "ops", "roles": ["admin"]}, SECRET, algorithm="HS256")),  # no exp
        bearer(jwt.encode({"roles": ["admin"], "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")),
    ]))

    def test_401_with_the_error_shape(self, api, subtests):
        for name, headers in self.BAD.items():
            with subtests.test(token=name):
                r = api.get("/v1/admin/settings", role=None, headers=headers)
                assert r.status == 401
                assert r.body["error"]["code"] == "UNAUTHENTICATED"
                assert set(r.body["error"]) == {"code", "message", "details"}

    def test_the_scheme_is_case_insensitive(self, api):
        token = jwt.encode(claims(), SECRET, algorithm="HS256")
        assert api.get("/v1/admin/settings", role=None, headers={"Authorization": f"bearer {token}"}).status == 200

    def test_a_token_without_a_known_role_is_403(self, api):
        token = jwt.encode(claims(roles=["superuser"]), SECRET, algorithm="HS256")
        r = api.get("/v1/tiers", role=None, headers=bearer(token))
        assert (r.status, r.error) == (403, "FORBIDDEN")


class TestRoles:
    def test_wrong_role_is_403(self, api):
        api.enrol("m1")
        body = {"order_id": "o", "total_amount": 100, "currency": "JPY"}
        cases = [
            api.post("/v1/members/m1/accruals", body, role="member", sub="m1"),
            api.post("/v1/members/m1/refunds", {"refund_id": "r", "order_id": "o", "amount": 1}, role="member",
                     sub="m1"),
            api.post("/v1/members/m1/activities", {"activity_id": "a", "type": "review"}, role="member", sub="m1"),
            api.get("/v1/admin/settings", role="service"),
            api.get("/v1/admin/audit", role="member", sub="m1"),
            api.post("/v1/admin/members/m1/adjustments", {"adjustment_id": "a", "points": 1, "reason": "r"},
                     role="service"),
            api.post("/v1/members/m1/close", role="service"),
        ]
        assert [(r.status, r.error) for r in cases] == [(403, "FORBIDDEN")] * len(cases)
        assert api.ledger("m1") == []

    def test_members_reach_only_their_own_data(self, api):
        api.enrol("m2")
        api.enrol("m3")
        api.accrue("m3", 5000)
        for method, path, body in [("GET", "/v1/members/m3", None), ("GET", "/v1/members/m3/ledger", None),
                                   ("PATCH", "/v1/members/m3", {"name": "x"}), ("POST", "/v1/members/m3/close", None),
                                   ("POST", "/v1/members/m3/accruals/preview",
                                    {"order_id": "o", "total_amount": 1, "currency": "JPY"})]:
            r = api.call(method, path, body, role="member", sub="m2")
            assert (r.status, r.error) == (403, "FORBIDDEN"), (method, path)
        assert api.member("m3")["status"] == "active" and api.member("m3")["name"] is None
        assert api.get("/v1/members/m2/ledger", role="member", sub="m2").status == 200

    def test_admin_may_call_service_routes(self, api):
        api.enrol("m4")
        assert api.accrue("m4", 1000).status == 201
        r = api.post("/v1/members/m4/activities", {"activity_id": "adm-a", "type": "review"}, role="admin")
        assert r.status == 201


class TestClock:
    def test_x_loyalty_now_pins_every_timestamp_of_the_request(self, api):
        r = api.post("/v1/members", {"member_id": "c1"}, now="2025-12-31T23:59:59Z")
        assert r.body["enrolled_at"] == "2025-12-31T23:59:59Z"
        api.accrue("c1", 1000, now="2026-01-05")  # a bare date is 00:00Z
        entry = api.ledger("c1")[0]
        assert (entry["occurred_at"], entry["recorded_at"]) == ("2026-01-05T00:00:00Z", "2026-01-05T00:00:00Z")
        # expiry and tier views are computed at the pinned moment
        m = api.member("c1", now="2027-01-10T00:00:00+09:00")
        assert m["points"]["expiring_soon"] == [{"points": 10, "expires_at": "2027-01-31T23:59:59Z"}]
        # the window is of UTC months: 08:59:59 in Tokyo on New Year's Day is still December
        assert api.member("c1", now="2027-01-01T08:59:59+09:00")["tier"]["qualifying_spend"] == 1000
        assert api.member("c1", now="2027-01-01T09:00:00+09:00")["tier"]["qualifying_spend"] == 0

    def test_an_unparseable_header_is_400(self, api):
        r = api.get("/v1/health", role=None, headers={"X-Loyalty-Now": "yesterday"})
        assert (r.status, r.error) == (400, "VALIDATION_ERROR")
        assert r.body["error"]["details"]["fields"][0]["field"] == "X-Loyalty-Now"

    def test_the_header_is_refused_outside_the_local_stage(self, api, monkeypatch):
        from cryptography.hazmat.primitives.asymmetric import rsa

        from chalicelib import auth
        from tests.factories import reset_caches

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwks = type("Jwks", (), {"get_signing_key_from_jwt": lambda self, t: type("K", (), {"key": key.public_key()})})
        monkeypatch.setattr(auth, "_jwks_client", lambda url: jwks())
        monkeypatch.setenv("LOYALTY_STAGE", "prod")
        monkeypatch.setenv("LOYALTY_JWKS_URL", "https://issuer.example/.well-known/jwks.json")
        reset_caches()
        r = api.get("/v1/health", role=None, headers={"X-Loyalty-Now": "2026-01-01T00:00:00Z"})
        assert (r.status, r.error) == (400, "VALIDATION_ERROR")
        assert r.body["error"]["details"]["fields"] == [{"field": "X-Loyalty-Now",
                                                         "message": "not allowed in this stage"}]
        assert api.get("/v1/health", role=None).status == 200
        # local HS256 tokens are not accepted there; the identity provider's RS256 ones are
        token = jwt.encode(claims(), SECRET, algorithm="HS256")
        r = api.get("/v1/tiers", role=None, headers=bearer(token))
        assert (r.status, r.error) == (401, "UNAUTHENTICATED")
        assert auth.verify_token("Bearer " + jwt.encode(claims(), key, algorithm="RS256")).sub == "ops"
