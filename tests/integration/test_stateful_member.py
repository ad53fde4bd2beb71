"""A hypothesis state machine of a member's life against a simple in-memory model.

After every step: the balance equals the model's, Σ ledger = available + pending =
Σ lots, and no order is credited twice."""
from __future__ import annotations

import itertools

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.factories import assert_invariant

_ids = itertools.count()


def test_member_life(api):
    # One tier (multiplier 1) keeps the model small; tier maths has its own tests.
    r = api.put("/v1/admin/tiers", [{"tier_id": "base", "name": "Base", "threshold": 0, "multiplier": "1"}],
                role="admin")
    assert r.status == 200

    class MemberLife(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.member = f"sm-{next(_ids)}"
            api.enrol(self.member)
            self.available = 0
            self.orders: dict[str, dict] = {}
            self.reviews = 0

        @rule(amount=st.integers(0, 200_000))
        def accrue(self, amount):
            order_id = f"{self.member}-o{len(self.orders)}"
            r = api.accrue(self.member, amount, order_id=order_id)
            assert r.status == 201, r.body
            assert r.body["points_earned"] == amount // 100
            self.orders[order_id] = {"total": amount, "points": amount // 100, "refunded": 0, "body": r.body}
            self.available += amount // 100
            assert r.body["balance"]["available"] == self.available

        @precondition(lambda self: self.orders)
        @rule(data=st.data())
        def replay(self, data):
            order_id = data.draw(st.sampled_from(sorted(self.orders)))
            r = api.accrue(self.member, self.orders[order_id]["total"], order_id=order_id)
            assert r.status == 200 and r.body == self.orders[order_id]["body"]

        @precondition(lambda self: self.orders)
        @rule(data=st.data(), fraction=st.floats(0.0, 1.3))
        def refund(self, data, fraction):
            order_id = data.draw(st.sampled_from(sorted(self.orders)))
            o = self.orders[order_id]
            amount = max(1, int(o["total"] * fraction))
            r = api.post(f"/v1/members/{self.member}/refunds",
                         {"refund_id": f"{order_id}-r{o['refunded']}-{amount}", "order_id": order_id,
                          "amount": amount})
            if o["refunded"] + amount > o["total"]:
                assert r.status == 422 and r.error == "REFUND_EXCEEDS_ORDER"
                return
            assert r.status == 201, r.body
            before = o["points"] * o["refunded"] // o["total"]
            after = o["points"] * (o["refunded"] + amount) // o["total"]
            assert r.body["points_reversed"] == after - before
            o["refunded"] += amount
            self.available -= after - before

        @rule(points=st.integers(-500, 500).filter(bool))
        def adjust(self, points):
            r = api.post(f"/v1/admin/members/{self.member}/adjustments",
                         {"adjustment_id": f"{self.member}-a{next(_ids)}", "points": points, "reason": "test"},
                         role="admin")
            assert r.status == 201, r.body
            self.available += points
            assert r.body["balance_after"] == self.available

        @rule()
        def review(self):
            r = api.post(f"/v1/members/{self.member}/activities",
                         {"activity_id": f"{self.member}-act{next(_ids)}", "type": "review"},
                         now="2026-06-01T12:00:00Z")
            if self.reviews >= 3:
                assert r.status == 422 and r.error == "ACTIVITY_LIMIT_REACHED"
                return
            assert r.status == 201, r.body
            self.reviews += 1
            self.available += 50

        @invariant()
        def balances_match(self):
            m = api.member(self.member)
            assert m["points"]["available"] == self.available
            assert m["points"]["pending"] == 0
            assert_invariant(self.member)

        @invariant()
        def no_order_credited_twice(self):
            entries = api.get(f"/v1/members/{self.member}/ledger?limit=100").body["items"]
            earned = [e["reference"].get("order_id") for e in entries if e["type"] == "earn"]
            assert len(earned) == len(set(earned))

    MemberLife.TestCase.settings = settings(max_examples=15, stateful_step_count=12, deadline=None,
                                            suppress_health_check=list(HealthCheck))
    MemberLife.TestCase().runTest()
