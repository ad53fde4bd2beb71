"""Many threads against the locked emulator of `make run` (one AWS call at a time, each atomic as
in AWS), calling the services directly: replays credit once, parallel mutations of one member keep
the ledger invariant and the exact balance, limits hold. A 503 RETRY_LATER is retried as a client would."""
from __future__ import annotations

import threading

import pytest

from tests.factories import assert_invariant

pytestmark = pytest.mark.usefixtures("locked_emulator")

CLIENT_RETRIES = 20


def run_parallel(calls):
    """Start every call at the same moment (a barrier); each returns ("ok", (status, body)) or
    ("err", code). RETRY_LATER is retried, bounded, like a client honouring 503."""
    from chalicelib.errors import LoyaltyError

    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def worker(i, call):
        barrier.wait()
        for _ in range(CLIENT_RETRIES):
            try:
                results[i] = ("ok", call())
            except LoyaltyError as e:
                if e.code == "RETRY_LATER":
                    continue
                results[i] = ("err", e.code)
            return
        results[i] = ("err", "RETRY_LATER")

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(r is not None for r in results), "a worker did not finish"
    return results


def enrol(member_id, referral_code=None):
    from chalicelib.schemas.members import EnrolRequest
    from chalicelib.services import members

    return members.enrol(EnrolRequest(member_id=member_id, referral_code=referral_code), "test")


def accrual(order_id, total, **kw):
    from chalicelib.schemas.members import AccrualRequest

    return AccrualRequest(order_id=order_id, total_amount=total, currency="JPY", **kw)


def wallet(member_id):
    from chalicelib.store import members

    return members.get(member_id).wallet.to_dict()


def statuses(results):
    return sorted((str(r[1][0]) if r[0] == "ok" else r[1] for r in results), key=lambda s: (not s.isdigit(), s))


def test_parallel_replays_of_one_order_credit_once(locked_emulator):
    from chalicelib.services import points
    from chalicelib.store.members import ledger_sum
    from chalicelib.store.models import TierHistoryRecord

    enrol("cc1")
    body = accrual("cc1-order", 60000)  # also crosses silver: the upgrade must happen once
    results = run_parallel([lambda: points.accrue("cc1", body, "service:pos")] * 12)
    assert statuses(results) == ["200"] * 11 + ["201"]
    bodies = {repr(r[1][1]) for r in results}
    assert len(bodies) == 1  # every replay got the original response
    first = results[0][1][1]
    assert (first["points_earned"], first["tier_change"]) == (600, {"from": "bronze", "to": "silver"})
    assert wallet("cc1")["available"] == 600 and ledger_sum("cc1") == 600
    assert len(list(TierHistoryRecord.query("cc1"))) == 1
    assert_invariant("cc1")


def test_parallel_replays_of_one_refund_reverse_once(locked_emulator):
    from chalicelib.schemas.members import RefundRequest
    from chalicelib.services import points

    enrol("cc2")
    points.accrue("cc2", accrual("cc2-o", 10000), "svc")
    body = RefundRequest(refund_id="cc2-r", order_id="cc2-o", amount=2500)
    results = run_parallel([lambda: points.refund("cc2", body, "svc")] * 10)
    assert statuses(results) == ["200"] * 9 + ["201"]
    assert {r[1][1]["points_reversed"] for r in results} == {25}
    assert wallet("cc2")["available"] == 75
    assert_invariant("cc2")


def test_parallel_refunds_never_exceed_the_order(locked_emulator):
    from chalicelib.schemas.members import RefundRequest
    from chalicelib.services import points
    from chalicelib.store.models import OrderRecord

    enrol("cc3")
    points.accrue("cc3", accrual("cc3-o", 10000), "svc")
    calls = [lambda i=i: points.refund("cc3", RefundRequest(refund_id=f"cc3-r{i}", order_id="cc3-o", amount=2000),
                                       "svc") for i in range(8)]
    results = run_parallel(calls)
    assert statuses(results) == ["201"] * 5 + ["REFUND_EXCEEDS_ORDER"] * 3
    assert sum(r[1][1]["points_reversed"] for r in results if r[0] == "ok") == 100
    order = OrderRecord.get("cc3-o")
    assert (order.data["refunded_amount"], order.data["reversed_points"]) == (10000, 100)
    assert wallet("cc3")["available"] == 0
    assert_invariant("cc3")


def test_parallel_mixed_mutations_and_their_replays_give_the_exact_balance(locked_emulator):
    from chalicelib.schemas.members import ActivityRequest, AdjustmentRequest
    from chalicelib.services import points

    enrol("cc4")
    day = "2026-05-10T10:00:00Z"
    ops = []
    for i in range(6):
        ops.append(lambda i=i: points.accrue("cc4", accrual(f"cc4-o{i}", 1000 * (i + 1)), "svc"))
        ops.append(lambda i=i: points.record_activity(
            "cc4", ActivityRequest(activity_id=f"cc4-a{i}", type="review", occurred_at=day), "svc"))
        ops.append(lambda i=i: points.adjust(
            "cc4", AdjustmentRequest(adjustment_id=f"cc4-j{i}", points=(-1) ** i * (i + 1), reason="t"), "admin:x"))
    results = run_parallel(ops + ops)  # every operation twice, concurrently: once in effect
    oks = [r[1] for r in results if r[0] == "ok"]
    errors = sorted(r[1] for r in results if r[0] == "err")
    accrued = sum(10 * (i + 1) for i in range(6))            # 210: all below silver, ×1.0
    reviews = 3 * 50                                          # max_per_day 3 for one UTC day
    adjusted = sum((-1) ** i * (i + 1) for i in range(6))     # -3
    assert wallet("cc4")["available"] == accrued + reviews + adjusted == 357
    assert sum(1 for s, _ in oks if s == 201) == 6 + 3 + 6
    # the three refused reviews are refused twice; an accepted one replays with 200 even once
    # the day's limit is reached
    assert errors == ["ACTIVITY_LIMIT_REACHED"] * 6
    assert_invariant("cc4")


def test_parallel_activities_never_exceed_max_total(locked_emulator):
    from chalicelib.schemas.members import ActivityRequest
    from chalicelib.schemas.program import ProgramSettings
    from chalicelib.services import points, program

    program.put_settings(ProgramSettings(activity_rules={"quiz": {"points": 7, "max_total": 5}}), "admin:test")
    enrol("cc5")
    calls = [lambda i=i: points.record_activity("cc5", ActivityRequest(activity_id=f"cc5-q{i}", type="quiz"), "svc")
             for i in range(14)]
    results = run_parallel(calls)
    assert statuses(results) == ["201"] * 5 + ["ACTIVITY_LIMIT_REACHED"] * 9
    assert wallet("cc5")["available"] == 35
    assert_invariant("cc5")


def test_referral_bonuses_and_the_referrers_own_accruals_in_parallel(locked_emulator):
    """Each referred member's first purchase also writes the referrer: those transactions contend
    with each other and with the referrer's own accruals, and every bonus still lands once."""
    from chalicelib.services import points

    code = enrol("cc6")["referral_code"]
    friends = [f"cc6-f{i}" for i in range(5)]
    for f in friends:
        enrol(f, referral_code=code)
    calls = [lambda f=f: points.accrue(f, accrual(f"{f}-o1", 2000), "svc") for f in friends]
    calls += [lambda i=i: points.accrue("cc6", accrual(f"cc6-o{i}", 3000), "svc") for i in range(5)]
    calls += calls  # and every request once more, as a retrying client would
    results = run_parallel(calls)
    assert all(r[0] == "ok" for r in results), results
    assert sum(1 for r in results if r[1][0] == 201) == 10
    assert wallet("cc6")["available"] == 5 * 30 + 5 * 500
    for f in friends:
        assert wallet(f)["available"] == 20 + 500
        assert_invariant(f)
    assert_invariant("cc6")
