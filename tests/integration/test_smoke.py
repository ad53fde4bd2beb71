from tests.factories import assert_invariant


def test_enrol_accrue_refund(api):
    api.enrol("alice", name="Alice")
    r = api.accrue("alice", 12345, order_id="o1")
    assert r.status == 201, r.body
    assert r.body["points_earned"] == 123
    assert sum(b["points"] for b in r.body["breakdown"]) == 123
    assert r.body["balance"] == {"available": 123, "pending": 0, "held": 0}
    replay = api.accrue("alice", 12345, order_id="o1")
    assert replay.status == 200 and replay.body == r.body
    r = api.post("/v1/members/alice/refunds", {"refund_id": "r1", "order_id": "o1", "amount": 12345})
    assert r.status == 201, r.body
    assert r.body["points_reversed"] == 123
    m = api.member("alice")
    assert m["points"]["available"] == 0
    assert_invariant("alice")
