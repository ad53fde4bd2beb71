"""Admin and system routes (SPEC 4.4): settings, tiers, adjustments, audit; health, OpenAPI, tiers."""
import pytest

from chalicelib.schemas.program import DEFAULT_TIERS
from tests.factories import assert_invariant

NOW = "2026-06-01T08:00:00Z"
POINTS_DEFAULTS = {
    "currency": "JPY", "base_rate": {"points": 1, "per_amount": 100}, "category_multipliers": {}, "promotions": [],
    "activity_rules": {"review": {"points": 50, "max_per_day": 3, "max_total": None},
                       "survey": {"points": 20, "max_per_day": 1, "max_total": None},
                       "app_install": {"points": 100, "max_per_day": None, "max_total": 1},
                       "referral": {"points": 500, "max_per_day": None, "max_total": None}},
    "max_points_per_order": None, "pending_days": 0, "points_expiry_months": 12, "expiry_warning_days": 30,
    "tier_window_months": 12, "tier_retention_months": 12, "tier_soft_landing": True, "frequency_cap_per_week": 3,
    # paying with points (SPEC 2.14) and webhooks (2.16)
    "point_value": 1, "min_points_per_use": 1, "max_points_share": "1.0", "hold_ttl_minutes": 30,
    "earn_on_points_paid": False, "webhook_retry_base_seconds": 30,
    "transfers": {"enabled": True, "min_points": 1, "max_points_per_month": None},  # SPEC 2.15
    "earning_caps": {"per_member_per_day": None, "per_member_per_month": None},  # SPEC 2.20
    "points_expiry_policy": "earned_month",
    "attribution_days": 7,  # SPEC 2.18
}


def audit(api, **kw):
    r = api.get("/v1/admin/audit?limit=100", role="admin", **kw)
    assert r.status == 200, r.body
    return r.body["items"]


class TestSettings:
    def test_defaults_and_get_body_is_a_valid_put_body(self, api):
        r = api.get("/v1/admin/settings", role="admin")
        assert r.status == 200
        assert {k: r.body[k] for k in POINTS_DEFAULTS} == POINTS_DEFAULTS
        assert set(r.body) == set(POINTS_DEFAULTS) | {"automations"}
        put = api.put("/v1/admin/settings", r.body, role="admin")
        assert put.status == 200 and put.body == r.body
        assert api.get("/v1/admin/settings", role="admin").body == r.body

    def test_put_replaces_the_whole_object(self, api):
        full = api.settings(category_multipliers={"coffee": 2, "tea": "1.50"}, pending_days=7,
                            max_points_per_order=500, tier_soft_landing=False,
                            promotions=[{"promotion_id": "p", "name": "P", "bonus_points": 5,
                                         "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2026-02-01T00:00:00Z"}])
        assert full["category_multipliers"] == {"coffee": "2", "tea": "1.50"}
        assert (full["pending_days"], full["max_points_per_order"], full["tier_soft_landing"]) == (7, 500, False)
        assert api.put("/v1/admin/settings", full, role="admin").body == full  # the GET shape round-trips
        r = api.put("/v1/admin/settings", {"pending_days": 3}, role="admin", sub="ops", now="2099-01-01T00:00:00Z")
        assert r.status == 200
        assert r.body == {**api.get("/v1/admin/settings", role="admin").body}
        assert {k: r.body[k] for k in POINTS_DEFAULTS} == {**POINTS_DEFAULTS, "pending_days": 3}
        entries = [a for a in audit(api) if a["action"] == "settings.replace"]
        assert (entries[0]["actor"], entries[0]["at"], entries[0]["target"]) == \
            ("admin:ops", "2099-01-01T00:00:00Z", "settings")
        assert entries[0]["details"]["body"]["pending_days"] == 3

    def test_new_settings_apply_at_once(self, api):
        api.enrol("s1")
        api.settings(currency="USD", base_rate={"points": 3, "per_amount": 1000})
        assert api.accrue("s1", 1000).error == "CURRENCY_MISMATCH"
        r = api.accrue("s1", 12345, currency="USD")
        assert r.status == 201 and r.body["points_earned"] == 37
        assert_invariant("s1")

    INVALID = [
        ({"pending_days": -1}, "pending_days"),
        ({"currency": "yen"}, "currency"),
        ({"base_rate": {"points": 1, "per_amount": 0}}, "base_rate.per_amount"),
        ({"category_multipliers": {"coffee": -1}}, "category_multipliers.coffee"),
        ({"points_expiry_months": 0}, "points_expiry_months"),
        ({"max_points_per_order": 0}, "max_points_per_order"),
        ({"activity_rules": {"Bad Name": {"points": 1}}}, "activity_rules.Bad Name.[key]"),
        ({"promotions": [{"promotion_id": "p", "name": "P", "starts_at": "2026-02-01T00:00:00Z",
                          "ends_at": "2026-01-01T00:00:00Z"}]}, "promotions.0"),
        ({"max_point_per_order": 5}, "max_point_per_order"),
    ]

    def test_invalid_settings_are_400_and_change_nothing(self, api, subtests):
        before = api.settings(pending_days=5)
        for body, field in self.INVALID:
            with subtests.test(body=body):
                r = api.put("/v1/admin/settings", body, role="admin")
                assert (r.status, r.error) == (400, "VALIDATION_ERROR"), r.body
                assert field in {f["field"] for f in r.body["error"]["details"]["fields"]}, r.body
        assert api.get("/v1/admin/settings", role="admin").body == before

    def test_admin_only(self, api):
        assert api.get("/v1/admin/settings", role="service").status == 403
        assert api.put("/v1/admin/settings", {}, role="member", sub="m").status == 403


class TestTiers:
    NEW = [{"tier_id": "base", "name": "Base", "threshold": 0, "multiplier": "1", "benefits": []},
           {"tier_id": "vip", "name": "VIP", "threshold": 1000, "multiplier": "3", "benefits": ["lounge"]}]

    def test_get_defaults_and_round_trip(self, api):
        r = api.get("/v1/admin/tiers", role="admin")
        assert r.status == 200 and r.body == {"items": DEFAULT_TIERS}
        assert api.put("/v1/admin/tiers", r.body, role="admin").body == r.body
        assert api.get("/v1/tiers", role="member", sub="anyone").body == {"items": DEFAULT_TIERS}

    @pytest.mark.parametrize("wrap", [lambda items: items, lambda items: {"items": items}])
    def test_put_bare_list_or_items_replaces_the_list(self, api, wrap):
        r = api.put("/v1/admin/tiers", wrap(self.NEW), role="admin")
        assert r.status == 200 and r.body == {"items": self.NEW}
        assert api.get("/v1/admin/tiers", role="admin").body == {"items": self.NEW}
        assert api.get("/v1/tiers", role="service").body == {"items": self.NEW}
        api.enrol("t1")
        r = api.accrue("t1", 1000)
        assert r.body["tier_change"] == {"from": "base", "to": "vip"} and r.body["points_earned"] == 10
        assert api.accrue("t1", 1000).body["points_earned"] == 30
        assert api.member("t1")["tier"] == {"tier_id": "vip", "name": "VIP", "multiplier": "3",
                                            "qualifying_spend": 2000, "next_tier": None, "spend_to_next_tier": None,
                                            "retained_until": api.member("t1")["tier"]["retained_until"]}
        assert any(a["action"] == "tiers.replace" for a in audit(api))

    INVALID = [
        [],
        [{"tier_id": "a", "name": "A", "threshold": 10}],
        [{"tier_id": "a", "name": "A", "threshold": 0}, {"tier_id": "b", "name": "B", "threshold": 0}],
        [{"tier_id": "a", "name": "A", "threshold": 0}, {"tier_id": "a", "name": "A2", "threshold": 5}],
        [{"tier_id": "A!", "name": "A", "threshold": 0}],
        [{"tier_id": "a", "name": "A", "threshold": 0, "multiplier": "-1"}],
        {"items": [{"tier_id": "a", "name": "A", "threshold": 0}], "extra": 1},
    ]

    def test_invalid_tier_lists_are_400(self, api, subtests):
        for items in self.INVALID:
            with subtests.test(items=items):
                r = api.put("/v1/admin/tiers", items, role="admin")
                assert (r.status, r.error) == (400, "VALIDATION_ERROR"), r.body
        assert api.get("/v1/admin/tiers", role="admin").body == {"items": DEFAULT_TIERS}

    def test_roles(self, api):
        assert api.put("/v1/admin/tiers", self.NEW, role="service").status == 403
        assert api.get("/v1/tiers", role=None).status == 401


class TestAdjustments:
    def test_adjustment_entry_replay_and_audit(self, api):
        api.enrol("ad1")
        body = {"adjustment_id": "adj-1", "points": 200, "reason": "lost receipt"}
        r = api.post("/v1/admin/members/ad1/adjustments", body, role="admin", sub="ops", now=NOW)
        assert r.status == 201
        assert r.body == {"entry_id": "le_ad1_1", "member_id": "ad1", "type": "adjust", "points": 200,
                          "balance_after": 200, "occurred_at": NOW, "recorded_at": NOW,
                          "reference": {"adjustment_id": "adj-1"}, "actor": "admin:ops", "note": "lost receipt"}
        replay = api.post("/v1/admin/members/ad1/adjustments", body, role="admin", sub="ops")
        assert replay.status == 200 and replay.body == r.body
        r = api.post("/v1/admin/members/ad1/adjustments", {**body, "points": 201}, role="admin")
        assert (r.status, r.error) == (409, "IDEMPOTENCY_MISMATCH")
        r = api.adjust("ad1", -250, adjustment_id="adj-2", reason="fraud reversal", now="2026-06-01T08:05:00Z")
        assert r.status == 201 and (r.body["points"], r.body["balance_after"]) == (-250, -50)
        assert api.member("ad1")["points"]["available"] == -50
        entries = [a for a in audit(api) if a["action"] == "member.adjust"]
        assert [(a["actor"], a["target"], a["at"], a["details"]) for a in entries] == [
            ("admin:ops", "ad1", "2026-06-01T08:05:00Z",
             {"adjustment_id": "adj-2", "points": -250, "reason": "fraud reversal"}),
            ("admin:ops", "ad1", NOW, {"adjustment_id": "adj-1", "points": 200, "reason": "lost receipt"}),
        ]
        assert_invariant("ad1")

    def test_adjustment_errors(self, api):
        api.enrol("ad2")
        assert api.adjust("ghost", 10).error == "MEMBER_NOT_FOUND"
        for body in ({"adjustment_id": "a", "points": 0, "reason": "x"},
                     {"adjustment_id": "a", "points": 5, "reason": ""},
                     {"adjustment_id": "a", "points": 5},
                     {"adjustment_id": "a", "points": "5x", "reason": "x"}):
            r = api.post("/v1/admin/members/ad2/adjustments", body, role="admin")
            assert (r.status, r.error) == (400, "VALIDATION_ERROR"), body
        body = {"adjustment_id": "a", "points": 5, "reason": "x"}
        assert api.post("/v1/admin/members/ad2/adjustments", body, role="service").status == 403
        assert api.ledger("ad2") == []
        assert [a for a in audit(api) if a["action"] == "member.adjust"] == []


class TestAudit:
    def test_newest_first_with_pagination(self, api):
        api.enrol("au1")
        for i, minute in enumerate(("01", "02", "03")):
            assert api.adjust("au1", i + 1, adjustment_id=f"au-{i}", now=f"2026-06-01T08:{minute}:00Z").status == 201
        r = api.get("/v1/admin/audit?limit=2", role="admin")
        assert [a["details"]["adjustment_id"] for a in r.body["items"]] == ["au-2", "au-1"]
        assert [a["at"] for a in r.body["items"]] == ["2026-06-01T08:03:00Z", "2026-06-01T08:02:00Z"]
        rest = api.get(f"/v1/admin/audit?limit=2&cursor={r.body['next_cursor']}", role="admin")
        assert [a["details"]["adjustment_id"] for a in rest.body["items"]] == ["au-0"]
        assert rest.body["next_cursor"] is None
        assert set(rest.body["items"][0]) == {"audit_id", "actor", "action", "target", "details", "at"}

    def test_bad_queries_are_400(self, api, subtests):
        # e30 is {}; the other a key of another partition ({"pk": {"S": "x"}})
        for query in ("limit=0", "limit=101", "cursor=e30", "cursor=eyJwayI6eyJTIjoieCJ9fQ"):
            with subtests.test(query=query):
                r = api.get(f"/v1/admin/audit?{query}", role="admin")
                assert (r.status, r.error) == (400, "VALIDATION_ERROR"), r.body

    def test_admin_only(self, api):
        assert api.get("/v1/admin/audit", role="service").status == 403


class TestSystem:
    def test_health_needs_no_token(self, api):
        r = api.get("/v1/health", role=None)
        assert (r.status, r.body) == (200, {"status": "ok"})

    def test_openapi_documents_the_routes(self, api):
        r = api.get("/v1/openapi.json", role=None)
        assert r.status == 200 and r.body["openapi"].startswith("3.1")
        paths = r.body["paths"]
        for path, method in [("/v1/members", "post"), ("/v1/members/{member_id}/accruals", "post"),
                             ("/v1/members/{member_id}/ledger", "get"), ("/v1/admin/settings", "put"),
                             ("/v1/admin/members/{member_id}/adjustments", "post"), ("/v1/tiers", "get")]:
            assert method in paths[path], (path, method)
