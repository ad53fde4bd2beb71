"""Paying with points at checkout (SPEC 2.14): hold at the basket, capture at payment,
release on failure; expiry; accruals paying with a hold; refunds giving points back."""
import pytest

from tests.factories import assert_invariant

H = "/v1/members/{}/point-holds"
T0 = "2026-03-10T10:00:00Z"


def hold(api, member_id, hold_id, points, role="service", now=T0, **fields):
    return api.post(H.format(member_id), {"hold_id": hold_id, "points": points, **fields}, role=role,
                    sub=member_id if role == "member" else "svc", now=now)


def capture(api, member_id, hold_id, points=None, now=T0):
    body = {} if points is None else {"points": points}
    return api.post(f"{H.format(member_id)}/{hold_id}/capture", body, now=now)


def release(api, member_id, hold_id, role="service", now=T0):
    return api.post(f"{H.format(member_id)}/{hold_id}/release", role=role,
                    sub=member_id if role == "member" else "svc", now=now)


def member_with(api, member_id, total=100000, now=T0):
    """A bronze member with total/100 available points earned in `now`'s month."""
    api.enrol(member_id)
    r = api.adjust(member_id, total // 100, now=now)
    assert r.status == 201, r.body
    return total // 100


class TestHoldCaptureRelease:
    def test_a_hold_moves_points_from_available_to_held(self, api):  # noqa: D102
        member_with(api, "h1")  # 1000 points
        r = hold(api, "h1", "h1-a", 300, order_id="h1-o", order_total=5000)
        assert r.status == 201, r.body
        assert {k: r.body[k] for k in ("hold_id", "member_id", "order_id", "points", "amount", "captured_points",
                                       "status", "created_at", "expires_at")} == {
            "hold_id": "h1-a", "member_id": "h1", "order_id": "h1-o", "points": 300, "amount": 300,
            "captured_points": 0, "status": "held", "created_at": T0, "expires_at": "2026-03-10T10:30:00Z"}
        pts = api.member("h1", now=T0)["points"]
        assert (pts["available"], pts["held"]) == (700, 300)
        assert len(api.ledger("h1")) == 1  # a hold writes no ledger entry
        assert_invariant("h1")

    def test_replay_answers_200_with_the_same_body_and_a_different_payload_is_409(self, api):
        member_with(api, "h2")
        first = hold(api, "h2", "h2-a", 100)
        again = hold(api, "h2", "h2-a", 100)
        assert (first.status, again.status) == (201, 200) and again.body == first.body
        assert api.member("h2", now=T0)["points"]["held"] == 100
        assert hold(api, "h2", "h2-a", 101).error == "IDEMPOTENCY_MISMATCH"
        assert capture(api, "h2", "h2-a").status == 200
        assert hold(api, "h2", "h2-a", 100).status == 200  # still the stored answer once captured

    def test_full_capture_writes_one_spend_entry(self, api):
        member_with(api, "h3")
        hold(api, "h3", "h3-a", 250)
        r = capture(api, "h3", "h3-a")
        assert r.status == 200 and (r.body["status"], r.body["captured_points"]) == ("captured", 250)
        entry = api.ledger("h3")[0]
        assert (entry["type"], entry["points"], entry["reference"]["hold_id"]) == ("spend", -250, "h3-a")
        pts = api.member("h3", now=T0)["points"]
        assert (pts["available"], pts["held"], pts["lifetime_spent"]) == (750, 0, 250)
        assert capture(api, "h3", "h3-a").body == r.body  # the same capture again: 200, same body
        assert len(api.ledger("h3")) == 2
        assert_invariant("h3")

    def test_partial_capture_returns_the_rest_and_more_than_held_is_400(self, api):
        member_with(api, "h4")
        hold(api, "h4", "h4-a", 300)
        over = capture(api, "h4", "h4-a", 301)
        assert (over.status, over.error) == (400, "VALIDATION_ERROR")
        r = capture(api, "h4", "h4-a", 120)
        assert r.status == 200 and r.body["captured_points"] == 120
        pts = api.member("h4", now=T0)["points"]
        assert (pts["available"], pts["held"]) == (880, 0)
        assert capture(api, "h4", "h4-a", 120).status == 200  # repeated: same answer
        assert capture(api, "h4", "h4-a", 50).error == "HOLD_NOT_ACTIVE"  # another capture: not held
        assert_invariant("h4")

    def test_release_returns_the_points_with_no_entry_and_repeats_answer_200(self, api):
        member_with(api, "h5")
        hold(api, "h5", "h5-a", 400)
        r = release(api, "h5", "h5-a", role="member")
        assert r.status == 200 and r.body["status"] == "released"
        assert release(api, "h5", "h5-a").body == r.body
        assert capture(api, "h5", "h5-a").error == "HOLD_NOT_ACTIVE"
        pts = api.member("h5", now=T0)["points"]
        assert (pts["available"], pts["held"]) == (1000, 0)
        assert [e["type"] for e in api.ledger("h5")] == ["adjust"]
        assert_invariant("h5")

    def test_release_of_a_captured_hold_is_not_active_and_unknown_is_404(self, api):
        member_with(api, "h6")
        api.enrol("h6-other")
        hold(api, "h6", "h6-a", 10)
        capture(api, "h6", "h6-a")
        assert (release(api, "h6", "h6-a").status, release(api, "h6", "h6-a").error) == (422, "HOLD_NOT_ACTIVE")
        assert (capture(api, "h6", "nope").status, capture(api, "h6", "nope").error) == (404, "HOLD_NOT_FOUND")
        assert release(api, "h6-other", "h6-a").error == "HOLD_NOT_FOUND"  # another member's hold

    def test_list_newest_first(self, api):
        member_with(api, "h7")
        hold(api, "h7", "h7-a", 10, now="2026-03-10T10:00:00Z")
        hold(api, "h7", "h7-b", 20, now="2026-03-10T10:01:00Z")
        r = api.get(H.format("h7"), role="member", sub="h7", now="2026-03-10T10:02:00Z")
        assert r.status == 200 and [h["hold_id"] for h in r.body["items"]] == ["h7-b", "h7-a"]
        assert api.get(H.format("h7"), role="admin").status == 200


class TestHoldRules:
    def test_only_available_points_can_be_held(self, api):
        member_with(api, "r1", total=10000)  # 100 points
        r = hold(api, "r1", "r1-a", 101)
        assert (r.status, r.error) == (422, "INSUFFICIENT_POINTS")
        hold(api, "r1", "r1-b", 60)
        assert hold(api, "r1", "r1-c", 41).error == "INSUFFICIENT_POINTS"  # held points are not available

    def test_pending_points_cannot_pay(self, api):
        api.settings(pending_days=14)
        api.enrol("r2")
        assert api.accrue("r2", 10000, now=T0).body["pending"] == 100
        assert hold(api, "r2", "r2-a", 1).error == "INSUFFICIENT_POINTS"

    def test_minimum_per_use(self, api):
        api.settings(min_points_per_use=100)
        member_with(api, "r3")
        r = hold(api, "r3", "r3-a", 99)
        assert (r.status, r.error) == (422, "POINTS_BELOW_MINIMUM")
        assert hold(api, "r3", "r3-b", 100).status == 201

    def test_share_of_the_order_and_point_value(self, api):
        api.settings(max_points_share="0.5", point_value=2)
        member_with(api, "r4")
        r = hold(api, "r4", "r4-a", 251, order_total=1001)  # 502 > floor(1001 × 0.5) = 500
        assert (r.status, r.error) == (422, "POINTS_EXCEED_ORDER")
        ok = hold(api, "r4", "r4-b", 250, order_total=1001)
        assert ok.status == 201 and ok.body["amount"] == 500

    def test_inactive_member_and_roles(self, api):
        member_with(api, "r5")
        assert hold(api, "r5", "r5-a", 10, role="member").status == 201
        assert api.post(H.format("r5"), {"hold_id": "x", "points": 1}, role="member", sub="someone").status == 403
        assert api.post(f"{H.format('r5')}/r5-a/capture", {}, role="member", sub="r5").status == 403
        api.patch("/v1/members/r5", {"status": "suspended"})
        assert hold(api, "r5", "r5-b", 10).error == "MEMBER_INACTIVE"

    @pytest.mark.parametrize("body", [{"hold_id": "x", "points": 0}, {"hold_id": "x", "points": "5"},
                                      {"points": 5}, {"hold_id": "x", "points": 5, "extra": 1},
                                      {"hold_id": "x", "points": 5, "order_total": -1}])
    def test_bodies_are_validated(self, api, body):
        api.enrol("r6")
        assert api.post(H.format("r6"), body).error == "VALIDATION_ERROR"


class TestExpiry:
    def test_reads_show_an_expired_hold_released_and_the_next_write_releases_it(self, api):
        member_with(api, "e1")
        hold(api, "e1", "e1-a", 300)
        later = "2026-03-10T10:31:00Z"
        pts = api.member("e1", now=later)["points"]
        assert (pts["available"], pts["held"]) == (1000, 0)
        listed = api.get(H.format("e1"), now=later).body["items"]
        assert listed[0]["status"] == "released"
        assert capture(api, "e1", "e1-a", now=later).error == "HOLD_NOT_ACTIVE"
        api.accrue("e1", 1000, now=later)  # the next write of that member
        from chalicelib.store.holds import get_hold

        rec = get_hold("e1-a")
        assert (rec.status, rec.closed_by) == ("released", "expiry")
        assert_invariant("e1")

    def test_the_release_holds_job(self, api):
        from chalicelib.store.holds import get_hold

        member_with(api, "e2")
        hold(api, "e2", "e2-a", 300)
        hold(api, "e2", "e2-b", 100, now="2026-03-10T10:20:00Z")
        r = api.post("/v1/admin/jobs", {"job": "release-holds", "as_of": "2026-03-10T10:40:00Z"}, role="admin",
                     now="2026-03-10T10:40:00Z")
        assert r.status == 202, r.body
        job = api.get(f"/v1/admin/jobs/{r.body['job_id']}", role="admin").body
        assert job["status"] == "succeeded" and job["counts"].get("points_released") == 300, job
        assert get_hold("e2-a").status == "released" and get_hold("e2-b").status == "held"
        assert_invariant("e2")


class TestPayingAnOrder:
    def test_accrual_captures_the_hold_and_earns_on_the_cash_part(self, api):
        member_with(api, "p1")  # 1000 points
        hold(api, "p1", "p1-h", 500, order_id="p1-o", order_total=10000)
        r = api.accrue("p1", 10000, order_id="p1-o", points_payment={"hold_id": "p1-h"}, now=T0)
        assert r.status == 201, r.body
        assert (r.body["points_paid"], r.body["points_earned"]) == (500, 95)  # 9500 cash → 95
        assert r.body["balance"] == {"available": 595, "pending": 0, "held": 0}
        types = [e["type"] for e in api.ledger("p1")]
        assert types == ["earn", "spend", "adjust"]
        listed = api.get(H.format("p1")).body["items"][0]
        assert (listed["status"], listed["captured_points"]) == ("captured", 500)
        again = api.accrue("p1", 10000, order_id="p1-o", points_payment={"hold_id": "p1-h"}, now=T0)
        assert again.status == 200 and again.body == r.body
        assert_invariant("p1")

    def test_earning_uses_exact_fractions_with_one_floor(self, api):
        member_with(api, "p2")
        hold(api, "p2", "p2-h", 333)
        items = [{"sku": "a", "category": "coffee", "amount": 700}, {"sku": "b", "amount": 300}]
        r = api.accrue("p2", 1000, points_payment={"hold_id": "p2-h"}, items=items, now=T0,
                       order_id="p2-o")
        api.settings(category_multipliers={"coffee": "2"})
        # (700×1 + 300×1) × 667/1000 / 100 = 6.67 → 6 with coffee at 1 (settings changed after)
        assert r.body["points_earned"] == 6

    def test_earn_on_points_paid(self, api):
        api.settings(earn_on_points_paid=True)
        member_with(api, "p3")
        hold(api, "p3", "p3-h", 500)
        r = api.accrue("p3", 10000, points_payment={"hold_id": "p3-h"}, now=T0)
        assert (r.body["points_paid"], r.body["points_earned"]) == (500, 100)

    def test_a_hold_captured_before_counts_once(self, api):
        member_with(api, "p4")
        hold(api, "p4", "p4-h", 200)
        capture(api, "p4", "p4-h", 150)
        r = api.accrue("p4", 10000, order_id="p4-o", points_payment={"hold_id": "p4-h"}, now=T0)
        assert r.status == 201 and r.body["points_paid"] == 150
        other = api.accrue("p4", 10000, order_id="p4-o2", points_payment={"hold_id": "p4-h"}, now=T0)
        assert other.error == "HOLD_NOT_ACTIVE"  # it paid for p4-o already
        assert [e["type"] for e in api.ledger("p4")].count("spend") == 1

    def test_released_expired_or_another_members_hold_is_not_active(self, api):
        member_with(api, "p5")
        member_with(api, "p5-b")
        hold(api, "p5", "p5-r", 10)
        release(api, "p5", "p5-r")
        hold(api, "p5", "p5-x", 10)
        hold(api, "p5-b", "p5-b-h", 10)
        for hold_id, now in [("p5-r", T0), ("p5-x", "2026-03-10T11:00:00Z"), ("p5-b-h", T0)]:
            r = api.accrue("p5", 1000, points_payment={"hold_id": hold_id}, now=now)
            assert (r.status, r.error) == (422, "HOLD_NOT_ACTIVE"), hold_id
        assert api.accrue("p5", 1000, points_payment={"hold_id": "nope"}, now=T0).error == "HOLD_NOT_FOUND"
        assert_invariant("p5")

    def test_without_a_payment_points_paid_is_zero(self, api):
        api.enrol("p6")
        assert api.accrue("p6", 1000).body["points_paid"] == 0


class TestRefunds:
    def test_refunds_return_paid_points_in_proportion_cumulatively(self, api):
        member_with(api, "f1", now="2026-01-15T00:00:00Z")  # 1000 points earned in January
        api.adjust("f1", 200, now="2026-02-15T00:00:00Z")  # 200 in February
        hold(api, "f1", "f1-h", 1001, order_total=3000)
        r = api.accrue("f1", 3000, order_id="f1-o", points_payment={"hold_id": "f1-h"}, now=T0)
        assert r.body["points_paid"] == 1001 and r.body["points_earned"] == 19  # 1999 cash
        first = api.refund("f1", "f1-o", 1000, now=T0)
        assert first.status == 201 and first.body["points_returned"] == 333  # floor(1001 × 1/3)
        second = api.refund("f1", "f1-o", 2000, now=T0)
        assert second.body["points_returned"] == 668  # 1001 in all
        refunds = [e for e in api.ledger("f1") if e["type"] == "refund_spend"]
        assert [e["points"] for e in refunds] == [668, 333]
        assert refunds[0]["reference"]["refund_id"] and refunds[0]["reference"]["order_id"] == "f1-o"
        # The paid points went back to their own lots: January's still expire at the end of January
        # 2027 (1000 less the 13 points of the second reversal, which takes the oldest lot first).
        soon = api.member("f1", now="2027-01-20T00:00:00Z")["points"]["expiring_soon"]
        assert soon == [{"points": 987, "expires_at": "2027-01-31T23:59:59Z"}]
        assert api.member("f1", now=T0)["points"]["available"] == 1200
        assert_invariant("f1")

    def test_a_plain_refund_returns_nothing(self, api):
        api.enrol("f2")
        api.accrue("f2", 1000, order_id="f2-o")
        assert api.refund("f2", "f2-o", 500).body["points_returned"] == 0


def test_hold_and_capture_cost_one_read_and_one_transaction(api, monkeypatch):
    from chalicelib.config import reset_settings
    from chalicelib.store.base import dynamodb_client

    monkeypatch.setenv("LOYALTY_RELAY", "stream")
    reset_settings()
    member_with(api, "c1")
    hold(api, "c1", "c1-warm", 1)
    calls = []
    events = dynamodb_client().meta.events
    events.register("before-call.dynamodb", lambda model, **kw: calls.append(model.name), unique_id="count-h")
    try:
        assert hold(api, "c1", "c1-a", 10).status == 201
        held = list(calls)
        calls.clear()
        assert capture(api, "c1", "c1-a").status == 200
        captured = list(calls)
        calls.clear()
        assert release(api, "c1", "c1-warm").status == 200
        released = list(calls)
    finally:
        events.unregister("before-call.dynamodb", unique_id="count-h")
    assert held == ["GetItem", "TransactWriteItems"]
    assert captured == ["GetItem", "TransactWriteItems"]
    assert released == ["GetItem", "TransactWriteItems"]
