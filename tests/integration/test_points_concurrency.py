"""Parallel requests against the locked emulator: replays credit once, parallel mutations keep
the invariant and the exact balance, activity limits hold."""
from tests.factories import assert_invariant, parallel


def _enrol(member_id):
    from chalicelib.schemas.members import EnrolRequest
    from chalicelib.services import members

    members.enrol(EnrolRequest(member_id=member_id), "test")


def test_parallel_replays_of_one_order_credit_once(locked_emulator):
    from chalicelib.schemas.members import AccrualRequest
    from chalicelib.services import points
    from chalicelib.store import members

    _enrol("c1")
    body = AccrualRequest(order_id="same-order", total_amount=12345, currency="JPY")
    results = parallel(10, lambda i: points.accrue("c1", body, "svc"))
    statuses = sorted(r[1][0] for r in results)
    assert statuses == [200] * 9 + [201]
    assert len({str(r[1][1]) for r in results}) == 1  # every replay got the original body
    assert members.get("c1").wallet.to_dict()["available"] == 123
    assert_invariant("c1")


def test_parallel_mutations_keep_the_exact_balance(locked_emulator):
    from chalicelib.schemas.members import AccrualRequest, ActivityRequest, AdjustmentRequest, RefundRequest
    from chalicelib.services import points
    from chalicelib.store import members

    _enrol("c2")
    points.accrue("c2", AccrualRequest(order_id="base", total_amount=100000, currency="JPY"), "svc")

    def op(i):
        kind = i % 4
        if kind == 0:
            return points.accrue("c2", AccrualRequest(order_id=f"o{i}", total_amount=1000 * (i + 1),
                                                      currency="JPY"), "svc")
        if kind == 1:
            return points.refund("c2", RefundRequest(refund_id=f"r{i}", order_id="base", amount=5000), "svc")
        if kind == 2:
            return points.adjust("c2", AdjustmentRequest(adjustment_id=f"a{i}", points=-7, reason="t"), "admin")
        return points.record_activity("c2", ActivityRequest(activity_id=f"act{i}", type="app_install"), "svc")

    results = parallel(16, op)
    assert all(k == "ok" or v == "ACTIVITY_LIMIT_REACHED" for k, v in results), results
    # the 100,000 base order made the member silver (×1.25) before the parallel accruals
    accrued = sum((1000 * (i + 1)) * 125 // 10000 for i in range(16) if i % 4 == 0)
    refunds = 4 * 50  # each refund of 5,000 on a 100,000 order reverses 50 of its 1,000 points
    expected = 1000 + accrued - refunds - 4 * 7 + 100  # app_install pays once (max_total 1)
    assert sum(1 for k, v in results if v == "ACTIVITY_LIMIT_REACHED") == 3
    assert members.get("c2").wallet.to_dict()["available"] == expected
    assert_invariant("c2")
