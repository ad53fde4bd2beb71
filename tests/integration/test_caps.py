"""Richer earning rules through the API (SPEC 2.20): each promotion condition, earning caps
(accruals, activities, preview; exact under concurrency on the locked emulator), the
last_activity expiry policy (job and expiring_soon), and contradictory settings → 400."""
from __future__ import annotations

import pytest

from tests.factories import assert_invariant, parallel

T0 = "2026-05-10T10:00:00Z"
MAY = {"starts_at": "2026-05-01T00:00:00Z", "ends_at": "2026-06-01T00:00:00Z"}


def promo(pid, **kw):
    return {"promotion_id": pid, "name": pid, **MAY, **kw}


def item(sku, amount, category=None, brand=None):
    return {"sku": sku, "amount": amount, **({"category": category} if category else {}),
            **({"brand": brand} if brand else {})}


def rules(body):
    return {b["rule"]: b["points"] for b in body["breakdown"]}


# --- conditions ------------------------------------------------------------------------------

class TestConditions:
    @pytest.fixture(autouse=True)
    def _setup(self, api):
        api.settings(promotions=[
            promo("acme", multiplier="2", brands=["acme"]),
            promo("sku9", multiplier=3, skus=["sku-9"]),  # a JSON number is accepted
            promo("app", multiplier="1.5", channels=["app"]),
            promo("ginza", bonus_points=50, stores=["ginza"]),
            promo("big", bonus_points=100, min_order_amount=20000),
            promo("acme-ginza", bonus_points=7, brands=["acme"], stores=["ginza"]),
        ])
        api.enrol("c1")

    def test_brand_multiplier_applies_to_its_lines_only(self, api):
        r = api.accrue("c1", 3000, items=[item("a", 1000, brand="acme"), item("b", 2000, brand="other")], now=T0)
        assert r.status == 201
        assert r.body["points_earned"] == 40 and rules(r.body) == {"base": 30, "promotion:acme": 10}

    def test_sku_multiplier(self, api):
        r = api.accrue("c1", 3000, items=[item("sku-9", 1000), item("x", 2000)], now=T0)
        assert rules(r.body) == {"base": 30, "promotion:sku9": 20}

    def test_channel_condition(self, api):
        assert rules(api.accrue("c1", 1000, channel="app", now=T0).body) == {"base": 10, "promotion:app": 5}
        assert rules(api.accrue("c1", 1000, channel="web", now=T0).body) == {"base": 10}

    def test_store_condition_and_store_id_field(self, api):
        assert rules(api.accrue("c1", 1000, store_id="ginza", now=T0).body) == {"base": 10,
                                                                                "promotion_bonus:ginza": 50}
        assert rules(api.accrue("c1", 1000, store_id="shibuya", now=T0).body) == {"base": 10}
        bad = api.accrue("c1", 1000, store_id="bad store!", now=T0)
        assert bad.status == 400 and bad.body["error"]["details"]["fields"][0]["field"] == "store_id"

    def test_min_order_amount(self, api):
        assert rules(api.accrue("c1", 20000, now=T0).body) == {"base": 200, "promotion_bonus:big": 100}
        assert rules(api.accrue("c1", 19999, now=T0).body) == {"base": 199}

    def test_item_and_order_conditions_together(self, api):
        r = api.accrue("c1", 1000, store_id="ginza", items=[item("a", 1000, brand="acme")], now=T0)
        assert rules(r.body) == {"base": 10, "promotion:acme": 10, "promotion_bonus:ginza": 50,
                                 "promotion_bonus:acme-ginza": 7}
        assert r.body["points_earned"] == 77 == sum(b["points"] for b in r.body["breakdown"])
        # the bonus needs an acme line
        r = api.accrue("c1", 1000, store_id="ginza", items=[item("a", 1000, brand="other")], now=T0)
        assert rules(r.body) == {"base": 10, "promotion_bonus:ginza": 50}

    def test_preview_shows_the_same_breakdown(self, api):
        body = {"order_id": "pv", "total_amount": 1000, "currency": "JPY", "store_id": "ginza",
                "items": [item("a", 1000, brand="acme")]}
        p = api.post("/v1/members/c1/accruals/preview", body, now=T0)
        assert p.status == 200 and p.body["points_earned"] == 77
        assert rules(p.body) == {"base": 10, "promotion:acme": 10, "promotion_bonus:ginza": 50,
                                 "promotion_bonus:acme-ginza": 7}
        assert api.member("c1", now=T0)["points"]["available"] == 0  # nothing written

    def test_new_fields_left_out_keep_the_idempotency_hash_of_before(self, api):
        """An order accrued before store_id and brand existed replays: they count only when sent."""
        from chalicelib.domain.hashing import canonical_hash
        from chalicelib.schemas.members import AccrualRequest
        from chalicelib.services.points import _hashed_body

        body = {"order_id": "h1", "total_amount": 1000, "currency": "JPY",
                "items": [{"sku": "a", "amount": 1000, "category": "x"}]}
        req = AccrualRequest.model_validate(body)
        old = req.model_dump(mode="json")
        old.pop("store_id")
        for i in old["items"]:
            i.pop("brand")
        assert canonical_hash(_hashed_body(req)) == canonical_hash(old)
        first = api.accrue("c1", 1000, order_id="h1", items=body["items"], now=T0)
        again = api.accrue("c1", 1000, order_id="h1", store_id=None, now=T0,
                           items=[{**body["items"][0], "brand": None}])
        assert (first.status, again.status) == (201, 200) and again.body == first.body
        assert api.accrue("c1", 1000, order_id="h1", store_id="ginza", items=body["items"],
                          now=T0).error == "IDEMPOTENCY_MISMATCH"

    def test_tier_condition_uses_the_tier_held_before_the_order(self, api):
        api.settings(promotions=[promo("silver", bonus_points=9, tiers=["silver"])])
        api.enrol("c2")
        first = api.accrue("c2", 60000, now=T0)  # makes the member silver: no bonus yet
        assert first.body["tier_change"] == {"from": "bronze", "to": "silver"}
        assert "promotion_bonus:silver" not in rules(first.body)
        assert rules(api.accrue("c2", 1000, now=T0).body)["promotion_bonus:silver"] == 9

    def test_brand_is_validated(self, api):
        r = api.accrue("c1", 1000, items=[{"sku": "a", "amount": 1000, "brand": ""}], now=T0)
        assert r.status == 400


# --- caps ------------------------------------------------------------------------------------

class TestCaps:
    def test_daily_cap_on_accruals_and_activities(self, api):
        api.settings(earning_caps={"per_member_per_day": 100, "per_member_per_month": 250})
        api.enrol("k1")
        r = api.accrue("k1", 8000, now=T0)
        assert r.body["points_earned"] == 80
        r = api.accrue("k1", 5000, now=T0)
        assert r.body["points_earned"] == 20 and r.body["breakdown"] == [{"rule": "base", "points": 50},
                                                                         {"rule": "cap", "points": -30}]
        # preview tells the same: nothing left today
        p = api.post("/v1/members/k1/accruals/preview",
                     {"order_id": "p", "total_amount": 1000, "currency": "JPY"}, now=T0)
        assert p.body["points_earned"] == 0 and p.body["breakdown"][-1] == {"rule": "cap", "points": -10}
        # activities count and are capped too (the activity itself is recorded)
        a = api.activity("k1", "review", now=T0)
        assert a.status == 201 and a.body["points_earned"] == 0
        # the next UTC day has room again, up to the month's 250
        assert api.activity("k1", "review", now="2026-05-11T00:00:01Z").body["points_earned"] == 50
        assert api.accrue("k1", 10000, now="2026-05-11T01:00:00Z").body["points_earned"] == 50
        assert api.accrue("k1", 10000, now="2026-05-12T01:00:00Z").body["points_earned"] == 50  # month: 250
        r = api.accrue("k1", 10000, now="2026-05-13T01:00:00Z")
        assert r.body["points_earned"] == 0 and r.body["breakdown"][-1] == {"rule": "cap", "points": -100}
        assert api.accrue("k1", 10000, now="2026-06-01T00:00:00Z").body["points_earned"] == 100  # a new month
        m = api.member("k1", now="2026-06-01T00:00:00Z")
        assert m["points"]["available"] == 350
        assert_invariant("k1")

    def test_a_refund_loop_gains_no_room(self, api):
        """Buy, refund, buy again: the refund takes the points back, but the day's cap stays spent."""
        api.settings(earning_caps={"per_member_per_day": 100})
        api.enrol("k4")
        assert api.accrue("k4", 10000, order_id="k4-o1", now=T0).body["points_earned"] == 100
        assert api.refund("k4", "k4-o1", 10000, now=T0).body["points_reversed"] == 100
        again = api.accrue("k4", 10000, order_id="k4-o2", now=T0)
        assert again.body["points_earned"] == 0 and again.body["breakdown"][-1] == {"rule": "cap", "points": -100}
        assert api.member("k4", now=T0)["points"]["available"] == 0
        assert_invariant("k4")

    def test_cap_and_max_points_per_order_make_one_line(self, api):
        api.settings(max_points_per_order=60, earning_caps={"per_member_per_day": 50})
        api.enrol("k2")
        r = api.accrue("k2", 10000, now=T0)
        assert r.body["points_earned"] == 50 and r.body["breakdown"] == [{"rule": "base", "points": 100},
                                                                         {"rule": "cap", "points": -50}]

    def test_replay_answers_the_original_even_after_the_cap_filled(self, api):
        api.settings(earning_caps={"per_member_per_day": 100})
        api.enrol("k3")
        first = api.accrue("k3", 6000, order_id="k3-o1", now=T0)
        api.accrue("k3", 6000, now=T0)
        again = api.accrue("k3", 6000, order_id="k3-o1", now=T0)
        assert again.status == 200 and again.body == first.body and first.body["points_earned"] == 60

    @pytest.mark.parametrize("caps,field", [
        ({"per_member_per_day": 5000, "per_member_per_month": 100}, "earning_caps"),
        ({"per_member_per_day": 0}, "earning_caps.per_member_per_day"),
        ({"per_member_per_day": "100"}, "earning_caps.per_member_per_day"),
        ({"per_member_per_week": 1}, "earning_caps.per_member_per_week"),
    ])
    def test_bad_caps_are_400_with_the_field(self, api, caps, field):
        current = api.get("/v1/admin/settings", role="admin").body
        r = api.put("/v1/admin/settings", {**current, "earning_caps": caps}, role="admin")
        assert r.status == 400 and r.error == "VALIDATION_ERROR"
        assert field in [f["field"] for f in r.body["error"]["details"]["fields"]], r.body

    @pytest.mark.parametrize("bad,field", [
        (promo("p", multiplier="2", starts_at="2026-06-01T00:00:00Z"), "promotions.0"),
        (promo("p", multiplier="2", brands=[]), "promotions.0.brands"),
        (promo("p", multiplier="2", stores=[]), "promotions.0.stores"),
        (promo("p"), "promotions.0"),
        (promo("p", multiplier="2", min_order_amount=-1), "promotions.0.min_order_amount"),
    ])
    def test_contradictory_promotions_are_400(self, api, bad, field):
        current = api.get("/v1/admin/settings", role="admin").body
        r = api.put("/v1/admin/settings", {**current, "promotions": [bad]}, role="admin")
        assert r.status == 400 and field in [f["field"] for f in r.body["error"]["details"]["fields"]], r.body

    def test_settings_round_trip(self, api):
        s = api.settings(earning_caps={"per_member_per_day": 10, "per_member_per_month": 10},
                         points_expiry_policy="last_activity",
                         promotions=[promo("p", multiplier=1.5, skus=["a"], channels=["app"])])
        assert s["earning_caps"] == {"per_member_per_day": 10, "per_member_per_month": 10}
        assert s["promotions"][0]["multiplier"] == "1.5" and s["points_expiry_policy"] == "last_activity"
        assert api.put("/v1/admin/settings", s, role="admin").status == 200  # GET body is a PUT body
        current = api.get("/v1/admin/settings", role="admin").body
        r = api.put("/v1/admin/settings", {**current, "points_expiry_months": None}, role="admin")
        assert r.status == 400  # last_activity needs an expiry period


def test_caps_hold_exactly_under_concurrent_accruals(locked_emulator):
    """16 parallel accruals of 100 points each against a daily cap of 1,000: exactly 1,000 earned,
    the ledger and the counters agree."""
    from chalicelib.schemas.members import AccrualRequest, ActivityRequest, EnrolRequest
    from chalicelib.schemas.program import ProgramSettings
    from chalicelib.services import members, points, program
    from chalicelib.store import members as member_store

    program.put_settings(ProgramSettings.model_validate(
        {"earning_caps": {"per_member_per_day": 1000, "per_member_per_month": 1000}}), "admin")
    members.enrol(EnrolRequest(member_id="cap1"), "test")

    def op(i):
        if i % 4 == 3:
            return points.record_activity("cap1", ActivityRequest(activity_id=f"cap-a{i}", type="review"), "svc")
        return points.accrue("cap1", AccrualRequest(order_id=f"cap-o{i}", total_amount=10000, currency="JPY"), "svc")

    results = parallel(16, op)
    ok = [r for k, r in results if k == "ok"]
    assert len(ok) == 16 - sum(1 for k, v in results if v == "ACTIVITY_LIMIT_REACHED")
    earned = sum(r[1]["points_earned"] for r in ok)
    assert earned == 1000
    row = member_store.get("cap1")
    assert row.wallet.available == 1000
    assert list(row.earned["days"].values()) == [1000]
    assert_invariant("cap1")
    # every capped accrual's breakdown still adds up
    for r in ok:
        if "breakdown" in r[1]:
            assert sum(b["points"] for b in r[1]["breakdown"]) == r[1]["points_earned"]


# --- expiry policy ---------------------------------------------------------------------------

class TestLastActivityExpiry:
    def run_job(self, api, as_of):
        r = api.post("/v1/admin/jobs", {"job": "expire-points", "as_of": as_of}, role="admin")
        assert r.status == 202, r.body
        job = api.get(f"/v1/admin/jobs/{r.body['job_id']}", role="admin").body
        assert job["status"] == "succeeded", job
        return job

    def test_all_points_expire_together_after_the_last_activity(self, api):
        api.settings(points_expiry_policy="last_activity", points_expiry_months=6)
        api.enrol("x1")
        api.accrue("x1", 10000, now="2026-01-10T00:00:00Z")  # 100 in January
        api.accrue("x1", 5000, now="2026-03-10T00:00:00Z")  # 50 in March: the last activity
        m = api.member("x1", now="2026-09-15T00:00:00Z")
        assert m["points"]["expiring_soon"] == [{"points": 150, "expires_at": "2026-09-30T23:59:59Z"}]
        # under earned_month January's 100 would have gone at the end of July; not here
        self.run_job(api, "2026-08-01T00:00:00Z")
        assert api.member("x1", now="2026-08-01T00:00:00Z")["points"]["available"] == 150
        self.run_job(api, "2026-10-01T00:00:00Z")
        m = api.member("x1", now="2026-10-01T00:00:00Z")
        assert m["points"]["available"] == 0
        assert [(e["type"], e["points"]) for e in api.ledger("x1")][0] == ("expire", -150)
        assert_invariant("x1")

    def test_spending_counts_as_activity(self, api):
        api.settings(points_expiry_policy="last_activity", points_expiry_months=6)
        api.enrol("x2")
        api.accrue("x2", 10000, now="2026-01-10T00:00:00Z")
        hold = api.post("/v1/members/x2/point-holds", {"hold_id": "h1", "points": 10}, now="2026-05-20T00:00:00Z")
        assert hold.status == 201, hold.body
        cap = api.post("/v1/members/x2/point-holds/h1/capture", {}, now="2026-05-20T00:01:00Z")
        assert cap.status == 200, cap.body
        m = api.member("x2", now="2026-11-10T00:00:00Z")
        assert m["points"]["expiring_soon"] == [{"points": 90, "expires_at": "2026-11-30T23:59:59Z"}]
        self.run_job(api, "2026-11-30T00:00:00Z")
        assert api.member("x2", now="2026-11-30T00:00:00Z")["points"]["available"] == 90
        self.run_job(api, "2026-12-01T00:00:00Z")
        assert api.member("x2", now="2026-12-01T00:00:00Z")["points"]["available"] == 0

    def test_earned_month_stays_the_default(self, api):
        api.settings(points_expiry_months=6)
        api.enrol("x3")
        api.accrue("x3", 10000, now="2026-01-10T00:00:00Z")
        api.accrue("x3", 5000, now="2026-03-10T00:00:00Z")
        self.run_job(api, "2026-08-01T00:00:00Z")
        assert api.member("x3", now="2026-08-01T00:00:00Z")["points"]["available"] == 50
