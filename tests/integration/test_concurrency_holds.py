"""Holds under concurrency on the locked emulator (SPEC 3): parallel holds never reserve
more than is available, a capture racing a release ends in exactly one of them."""
import pytest

from tests.factories import assert_invariant
from tests.integration.test_concurrency import accrual, enrol, run_parallel, wallet

pytestmark = pytest.mark.usefixtures("locked_emulator")


def _hold(hold_id, points):
    from chalicelib.schemas.holds import HoldRequest

    return HoldRequest(hold_id=hold_id, points=points)


def test_parallel_holds_never_reserve_more_than_available(locked_emulator):
    from chalicelib.services import holds, points

    enrol("ch1")
    points.accrue("ch1", accrual("ch1-o", 10000), "svc")  # 100 points
    results = run_parallel([lambda i=i: holds.create("ch1", _hold(f"ch1-h{i}", 30), "svc") for i in range(6)])
    ok = [r for r in results if r[0] == "ok"]
    assert len(ok) == 3  # 3 × 30 ≤ 100 < 4 × 30
    assert sorted(r[1] for r in results if r[0] == "err") == ["INSUFFICIENT_POINTS"] * 3
    w = wallet("ch1")
    assert (w["available"], w["held"]) == (10, 90)
    assert_invariant("ch1")


def test_two_holds_racing_for_the_same_points(locked_emulator):
    from chalicelib.services import holds, points

    enrol("ch2")
    points.accrue("ch2", accrual("ch2-o", 10000), "svc")
    results = run_parallel([lambda: holds.create("ch2", _hold("ch2-a", 80), "svc"),
                            lambda: holds.create("ch2", _hold("ch2-b", 80), "svc")])
    assert sorted(r[0] for r in results) == ["err", "ok"]
    assert wallet("ch2")["held"] == 80
    assert_invariant("ch2")


def test_a_capture_racing_a_release_ends_in_exactly_one(locked_emulator):
    from chalicelib.schemas.holds import CaptureRequest
    from chalicelib.services import holds, points
    from chalicelib.store.holds import get_hold

    enrol("ch3")
    points.accrue("ch3", accrual("ch3-o", 20000), "svc")  # 200 points: three captures of 50 fit
    for round_ in range(3):
        hold_id = f"ch3-h{round_}"
        holds.create("ch3", _hold(hold_id, 50), "svc")
        results = run_parallel([lambda: holds.capture("ch3", hold_id, CaptureRequest(), "svc"),
                                lambda: holds.release("ch3", hold_id, "svc")])
        ok = [r for r in results if r[0] == "ok"]
        assert len(ok) == 1 and [r[1] for r in results if r[0] == "err"] == ["HOLD_NOT_ACTIVE"], results
        assert get_hold(hold_id).status == ok[0][1]["status"]
        assert wallet("ch3")["held"] == 0
    assert_invariant("ch3")
