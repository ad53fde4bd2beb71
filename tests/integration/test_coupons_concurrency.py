"""Coupon limits under concurrency, on the locked emulator (each AWS call atomic, as in AWS):
threads call the services directly and race for the same campaign, code and member."""
from __future__ import annotations

import secrets
import threading
from collections import Counter

import pytest

from chalicelib.errors import CouponRejected, LoyaltyError


@pytest.fixture
def emulator(aws_env, monkeypatch):
    from chalicelib.bootstrap import bootstrap
    from chalicelib.emulator import start_in_thread
    from tests.factories import reset_caches

    server, url = start_in_thread("127.0.0.1", 0)
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    reset_caches()
    bootstrap()
    yield url
    server.shutdown()
    reset_caches()


def uid(prefix: str) -> str:  # the emulator's state outlives a test: keep ids apart
    return f"{prefix}-{secrets.token_hex(4)}"


def enrol(member_id: str) -> None:
    from chalicelib.schemas.members import EnrolRequest
    from chalicelib.services import members

    members.enrol(EnrolRequest(member_id=member_id), "test")


def make_campaign(**over) -> str:
    from chalicelib.schemas.coupons import CreateCampaignRequest
    from chalicelib.services import coupons

    body = {"campaign_id": uid("c"), "name": "Flash sale", "discount": {"type": "amount", "value": 500},
            "starts_at": "2020-01-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z", "code_mode": "shared",
            "shared_code": uid("FLASH").replace("-", "").upper()}
    body.update(over)
    coupons.create(CreateCampaignRequest.model_validate(body), "admin")
    return body["campaign_id"]


def redeem_body(code: str, member_id: str, order_id: str):
    from chalicelib.schemas.coupons import RedeemRequest

    return RedeemRequest.model_validate({"code": code, "member_id": member_id, "order_id": order_id,
                                         "order": {"total_amount": 5000}})


def race(calls) -> list:
    """Start every call at the same moment; returns (status, body) or the error code per call."""
    barrier = threading.Barrier(len(calls))
    out: list = [None] * len(calls)

    def run(i, fn):
        barrier.wait()
        try:
            out[i] = fn()
        except LoyaltyError as err:
            out[i] = err.code

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return out


def outcome(results) -> Counter:
    return Counter(r[0] if isinstance(r, tuple) else r for r in results)


def totals(campaign_id: str) -> dict:
    from chalicelib.store import coupons as store

    from chalicelib.services import coupons

    return store.shard_totals({campaign_id: coupons.require(campaign_id).shards})[campaign_id]


def test_a_limited_shared_code_never_oversells(emulator):
    from chalicelib.services import coupons

    members = [uid("m") for _ in range(24)]
    for m in members:
        enrol(m)
    cid = make_campaign(max_redemptions=7)
    code = coupons.get(cid)["shared_code"]
    results = race([lambda m=m: coupons.redeem(redeem_body(code, m, uid("o")), "pos") for m in members])
    assert outcome(results) == Counter({201: 7, "COUPON_LIMIT_REACHED": 17}), results
    assert totals(cid)["used"] == 7 and coupons.get(cid)["stats"]["redeemed"] == 7
    assert coupons.require(cid).caps == (1,) * 7 + (0,) * 9  # most racers had to look for another slice


def test_a_limit_above_the_shard_count_is_exact(emulator):
    from chalicelib.services import coupons

    members = [uid("m") for _ in range(40)]
    for m in members:
        enrol(m)
    cid = make_campaign(max_redemptions=33)
    code = coupons.get(cid)["shared_code"]
    results = race([lambda m=m: coupons.redeem(redeem_body(code, m, uid("o")), "pos") for m in members])
    assert outcome(results) == Counter({201: 33, "COUPON_LIMIT_REACHED": 7}), results
    assert totals(cid)["used"] == 33


def test_max_per_member_holds_under_concurrency(emulator):
    from chalicelib.services import coupons

    member = uid("m")
    enrol(member)
    cid = make_campaign(max_per_member=2)
    code = coupons.get(cid)["shared_code"]
    results = race([lambda: coupons.redeem(redeem_body(code, member, uid("o")), "pos") for _ in range(10)])
    assert outcome(results) == Counter({201: 2, "COUPON_MEMBER_LIMIT_REACHED": 8}), results
    assert totals(cid)["used"] == 2


def test_a_unique_code_is_used_once_and_replays_agree(emulator):
    from chalicelib import clock
    from chalicelib.services import coupons

    member = uid("m")
    enrol(member)
    cid = make_campaign(code_mode="unique", shared_code=None, max_per_member=5)
    with clock.pinned(clock.parse_instant("2026-01-01")):
        coupons.generate_codes(cid, 1)
        [code] = coupons.issue_codes(cid, [member]).values()
    results = race([lambda: coupons.redeem(redeem_body(code, member, uid("o")), "pos") for _ in range(8)])
    assert outcome(results) == Counter({201: 1, "COUPON_ALREADY_USED": 7}), results
    # the same order sent eight times at once: one redemption, seven replays of it
    shared_cid = make_campaign()
    shared = coupons.get(shared_cid)["shared_code"]
    other = uid("m")
    enrol(other)
    body = redeem_body(shared, other, uid("o"))
    results = race([lambda: coupons.redeem(body, "pos") for _ in range(8)])
    assert outcome(results) == Counter({201: 1, 200: 7}), results
    assert len({r[1]["coupon_redemption_id"] for r in results}) == 1
    assert totals(shared_cid)["used"] == 1


def test_redemptions_and_rollbacks_interleave_exactly(emulator):
    """Rollbacks give uses back while others redeem: the limit still holds at every moment and
    the counters end where the surviving redemptions say."""
    from chalicelib.services import coupons

    members = [uid("m") for _ in range(12)]
    for m in members:
        enrol(m)
    cid = make_campaign(max_redemptions=6)
    code = coupons.get(cid)["shared_code"]
    first = [coupons.redeem(redeem_body(code, m, uid("o")), "pos")[1] for m in members[:6]]
    calls = [lambda r=r: coupons.rollback(r["coupon_redemption_id"], "pos") for r in first[:3]]
    calls += [lambda m=m: coupons.redeem(redeem_body(code, m, uid("o")), "pos") for m in members[6:]]
    results = race(calls)
    won = sum(1 for r in results[3:] if isinstance(r, tuple) and r[0] == 201)
    assert all(isinstance(r, dict) and r["status"] == "rolled_back" for r in results[:3])
    assert 0 <= won <= 3 and all(r == "COUPON_LIMIT_REACHED" for r in results[3:] if not isinstance(r, tuple))
    assert totals(cid)["used"] == 3 + won <= 6


def test_stale_definition_in_another_process_is_never_trusted(emulator):
    """Another container still caches the old definition: a pause must stop it at once, and a
    resume must not be refused on the stale copy."""
    from chalicelib.schemas.coupons import PatchCampaignRequest
    from chalicelib.services import coupons

    a, b = uid("m"), uid("m")
    enrol(a)
    enrol(b)
    cid = make_campaign()
    code = coupons.get(cid)["shared_code"]
    assert coupons.redeem(redeem_body(code, a, uid("o")), "pos")[0] == 201
    stale_active = coupons._c()["campaigns"][cid]
    coupons.patch(cid, PatchCampaignRequest(status="paused"), "admin")
    coupons._remember(stale_active[1])  # this process forgets the pause
    with pytest.raises(CouponRejected) as err:
        coupons.redeem(redeem_body(code, b, uid("o")), "pos")
    assert err.value.code == "COUPON_INACTIVE"
    stale_paused = coupons._c()["campaigns"][cid]
    assert stale_paused[1].rules.status == "paused"
    coupons.patch(cid, PatchCampaignRequest(status="active", discount={"type": "amount", "value": 700}), "admin")
    coupons._remember(stale_paused[1])
    status, body = coupons.redeem(redeem_body(code, b, uid("o")), "pos")
    assert status == 201 and body["discount_amount"] == 700
