"""Faults where they really happen: at the transport, under the AWS SDK's own retry.

`LoseAnswer` is a botocore `before-send` handler, the last step before the HTTP request
leaves: it really sends the request (the store commits it), then raises a connection error
as if the answer was lost on the way back. botocore's retry then re-sends the very same
request, ClientRequestToken included — the path that the old `after-call` hooks skipped.
The in-process emulator ignores the token, so the re-send is cancelled by the conditions
the first attempt already spent: the unit of work must see, from its own records, that it
committed. After every fault, the tests check exactly-once effects (ledger, balances,
vouchers, stock), the first call's success status, and every message on the queue once.
"""
from __future__ import annotations

import json
import time

import pytest
import requests
from botocore.exceptions import ConnectionClosedError

from tests.factories import assert_invariant
from tests.integration.test_marketing_helpers import drain as _drain


class LoseAnswer:
    """Send the first `times` matching requests for real, then lose their answers."""

    def __init__(self, operation="TransactWriteItems", times=1, match=None, delay=0.0):
        self.operation, self.times, self.match, self.delay = operation, times, match, delay
        self.lost = 0
        self.sent = 0

    def __call__(self, request, **kwargs):
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else target
        if not target.endswith("." + self.operation):
            return None
        self.sent += 1
        body = request.body.decode() if isinstance(request.body, bytes) else (request.body or "")
        if self.lost >= self.times or (self.match and self.match not in body):
            if self.delay:
                time.sleep(self.delay)  # a slow answer: late, but it arrives
            return None
        self.lost += 1
        headers = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()}
        answer = requests.post(request.url, data=body, headers=headers, timeout=30)  # it reaches the store...
        assert answer.status_code == 200, answer.text  # ...and commits
        raise ConnectionClosedError(endpoint_url=request.url)  # ...and the answer never comes back


class Throttle:
    """Answer the first `times` matching calls with a throttling error, before they reach the store."""

    def __init__(self, operation="TransactWriteItems", times=1):
        self.operation, self.times, self.fired = operation, times, 0

    def __call__(self, request, **kwargs):
        from botocore.awsrequest import AWSResponse

        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else target
        if not target.endswith("." + self.operation) or self.fired >= self.times:
            return None
        self.fired += 1
        # botocore runs every before-send handler and uses the first answer; the in-process
        # emulator's own handler would still apply the request unless it no longer sees it as AWS.
        request.url = "https://throttled.invalid/"
        body = json.dumps({"__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                           "message": "slow down"}).encode()
        return AWSResponse(request.url, 400, {"x-amzn-RequestId": "throttled"}, _Raw(body))


class _Raw:
    def __init__(self, body):
        self.body = body

    def stream(self, **kwargs):
        yield self.body

    def read(self, *args, **kwargs):
        body, self.body = self.body, b""
        return body


class transport:
    """Register a `before-send` fault on the app's DynamoDB client, ahead of moto's own stub."""

    def __init__(self, handler):
        from chalicelib.store.base import dynamodb_client

        self.events = dynamodb_client().meta.events
        self.handler = handler

    def __enter__(self):
        self.events.register_first("before-send.dynamodb", self.handler, unique_id="transport-fault")
        return self.handler

    def __exit__(self, *exc):
        self.events.unregister("before-send.dynamodb", unique_id="transport-fault")


@pytest.fixture
def fast_retries(monkeypatch):
    """botocore's backoff between attempts is real time; keep it short."""
    import botocore.retries.standard as standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.0)


def _reward(api, reward_id="t-cup", stock=5):
    r = api.post("/v1/admin/rewards", {"reward_id": reward_id, "name": "Cup", "cost_points": 100, "kind": "voucher",
                                       "stock": stock}, role="admin")
    assert r.status == 201, r.body


def _redemptions(api, member_id):
    return api.get(f"/v1/members/{member_id}/redemptions", role="member", sub=member_id).body["items"]


# --- every write path: (prepare → member, call, check of the 201/200 body) --------------

def _accrual(api):
    api.enrol("t-acc")
    return "t-acc", lambda: api.accrue("t-acc", 60000, order_id="t-acc-o"), 201, \
        lambda b: (b["points_earned"], b["tier_change"]) == (600, {"from": "bronze", "to": "silver"})


def _refund(api):
    api.enrol("t-ref")
    api.accrue("t-ref", 10000, order_id="t-ref-o")
    return "t-ref", lambda: api.refund("t-ref", "t-ref-o", 3000, refund_id="t-ref-r"), 201, \
        lambda b: b["points_reversed"] == 30 and b["balance"]["available"] == 70


def _activity(api):
    api.enrol("t-act")
    return "t-act", lambda: api.activity("t-act", "app_install", activity_id="t-act-1"), 201, \
        lambda b: b["points_earned"] == 100


def _adjustment(api):
    api.enrol("t-adj")
    return "t-adj", lambda: api.adjust("t-adj", 70, adjustment_id="t-adj-1"), 201, \
        lambda b: (b["points"], b["balance_after"]) == (70, 70)


def _redemption(api):
    _reward(api)
    api.enrol("t-red")
    api.accrue("t-red", 20000, order_id="t-red-o")
    return "t-red", lambda: api.post("/v1/members/t-red/redemptions", {"reward_id": "t-cup"}, role="member",
                                     sub="t-red"), 201, lambda b: b["points_spent"] == 100


def _keyed_redemption(api):
    _reward(api, "t-mug")
    api.enrol("t-key")
    api.accrue("t-key", 20000, order_id="t-key-o")
    return "t-key", lambda: api.post("/v1/members/t-key/redemptions", {"reward_id": "t-mug"}, role="member",
                                     sub="t-key", headers={"Idempotency-Key": "t-key-1"}), 201, \
        lambda b: b["points_spent"] == 100


def _enrol(api):
    return "t-enr", lambda: api.post("/v1/members", {"member_id": "t-enr", "name": "Ann"}), 201, \
        lambda b: b["member_id"] == "t-enr" and b["status"] == "active"


def _patch(api):
    api.enrol("t-pat")
    return "t-pat", lambda: api.patch("/v1/members/t-pat", {"name": "Bea"}), 200, lambda b: b["name"] == "Bea"


def _cancel(api):
    _reward(api, "t-pen")
    api.enrol("t-can")
    api.accrue("t-can", 20000, order_id="t-can-o")
    rid = api.post("/v1/members/t-can/redemptions", {"reward_id": "t-pen"}, role="member", sub="t-can").body[
        "redemption_id"]
    return "t-can", lambda: api.post(f"/v1/members/t-can/redemptions/{rid}/cancel", role="member", sub="t-can"), \
        200, lambda b: b["status"] == "cancelled"


def _coupon(api):
    r = api.post("/v1/admin/coupon-campaigns", {
        "campaign_id": "t-camp", "name": "Ten", "discount": {"type": "percent", "value": 10},
        "starts_at": "2020-01-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z", "code_mode": "shared",
        "shared_code": "TENOFF", "max_redemptions": 5, "max_per_member": 1}, role="admin")
    assert r.status == 201, r.body
    api.enrol("t-cou")
    return "t-cou", lambda: api.post("/v1/coupons/redeem", {"code": "TENOFF", "member_id": "t-cou",
                                                            "order_id": "t-cou-o", "order": {"total_amount": 5000}}), \
        201, lambda b: b["discount_amount"] == 500


def _hold(api):
    api.enrol("t-hol")
    api.adjust("t-hol", 500)
    return "t-hol", lambda: api.post("/v1/members/t-hol/point-holds", {"hold_id": "t-hol-1", "points": 200}), 201, \
        lambda b: (b["status"], b["points"]) == ("held", 200)


def _capture(api):
    api.enrol("t-cap")
    api.adjust("t-cap", 500)
    assert api.post("/v1/members/t-cap/point-holds", {"hold_id": "t-cap-1", "points": 200}).status == 201
    return "t-cap", lambda: api.post("/v1/members/t-cap/point-holds/t-cap-1/capture", {"points": 150}), 200, \
        lambda b: (b["status"], b["captured_points"]) == ("captured", 150)


def _release(api):
    api.enrol("t-rel")
    api.adjust("t-rel", 500)
    assert api.post("/v1/members/t-rel/point-holds", {"hold_id": "t-rel-1", "points": 200}).status == 201
    return "t-rel", lambda: api.post("/v1/members/t-rel/point-holds/t-rel-1/release"), 200, \
        lambda b: b["status"] == "released"


def _paid_accrual(api):
    api.enrol("t-pay")
    api.adjust("t-pay", 500)
    assert api.post("/v1/members/t-pay/point-holds", {"hold_id": "t-pay-1", "points": 200}).status == 201
    return "t-pay", lambda: api.accrue("t-pay", 10000, order_id="t-pay-o", points_payment={"hold_id": "t-pay-1"}), \
        201, lambda b: (b["points_paid"], b["points_earned"]) == (200, 98)


def _transfer(api):
    api.enrol("t-tra")
    api.enrol("t-trb")
    api.adjust("t-tra", 500)
    return "t-tra", lambda: api.post("/v1/members/t-tra/transfers", {"transfer_id": "t-tra-1", "to_member_id": "t-trb",
                                                                      "points": 200}), 201, \
        lambda b: (b["points"], b["balance"]["available"]) == (200, 300)


def _merge(api):
    api.enrol("t-mga")
    api.enrol("t-mgb")
    api.adjust("t-mga", 100)
    api.adjust("t-mgb", 250)
    return "t-mga", lambda: api.post("/v1/admin/members/t-mga/merge", {"merge_id": "t-mg-1",
                                                                        "source_member_id": "t-mgb"}, role="admin"), \
        200, lambda b: b["points"]["available"] == 350


def _voucher(api, member_id, reward_id):
    _reward(api, reward_id)
    api.enrol(member_id)
    api.accrue(member_id, 20000, order_id=f"{member_id}-o")
    return api.post(f"/v1/members/{member_id}/redemptions", {"reward_id": reward_id}, role="member",
                    sub=member_id).body


def _gift(api):
    v = _voucher(api, "t-gif", "t-bag")
    api.enrol("t-gif-friend")
    return "t-gif", lambda: api.post(f"/v1/members/t-gif/redemptions/{v['redemption_id']}/gift",
                                     {"to_member_id": "t-gif-friend"}, role="member", sub="t-gif"), 200, \
        lambda b: b["member_id"] == "t-gif-friend" and b["code"] != v["code"]


def _use(api):
    v = _voucher(api, "t-use", "t-hat")
    return "t-use", lambda: api.post(f"/v1/vouchers/{v['code']}/use", {"order_id": "t-use-pos"}), 200, \
        lambda b: b["status"] == "used"


def _rollback(api):
    member_id, redeem, _, _ = _coupon(api)
    rid = redeem().body["coupon_redemption_id"]
    return member_id, lambda: api.post(f"/v1/coupons/redemptions/{rid}/rollback"), 200, \
        lambda b: b["status"] == "rolled_back"


def _close(api):
    api.enrol("t-clo")
    return "t-clo", lambda: api.post("/v1/members/t-clo/close", role="admin"), 200, lambda b: b["status"] == "closed"


WRITES = {"gift": _gift, "use": _use, "rollback": _rollback, "close": _close, "transfer": _transfer, "merge": _merge, "hold": _hold, "capture": _capture, "release": _release, "paid_accrual": _paid_accrual,
          "accrual": _accrual, "refund": _refund, "activity": _activity, "adjustment": _adjustment,
          "redemption": _redemption, "keyed_redemption": _keyed_redemption, "enrol": _enrol, "patch": _patch,
          "cancel": _cancel, "coupon_redeem": _coupon}


def _effects(api, member_id):
    """What an operation could have done twice: the member, the ledger, vouchers, coupon stats."""
    from chalicelib.store.coupons import CounterRecord

    member = api.get(f"/v1/members/{member_id}").body
    used = sum(int(c.used or 0) for c in CounterRecord.scan())
    return member.get("points"), len(api.ledger(member_id)), len(_redemptions(api, member_id)), used


@pytest.mark.parametrize("name", sorted(WRITES))
def test_answer_lost_after_commit_and_resent_by_the_sdk_is_exactly_once(api, fast_retries, name):
    member_id, call, ok, check = WRITES[name](api)
    _drain()
    fault = LoseAnswer()
    with transport(fault):
        first = call()
    assert fault.lost == 1 and fault.sent >= 2  # committed, answer lost, re-sent by botocore
    assert first.status == ok and check(first.body), first.body  # the first call still succeeds
    after = _effects(api, member_id)
    if name not in ("redemption", "enrol"):  # without an id or a key, a second call is a new request
        again = call()  # the client's own retry: a replay, or a refusal that changes nothing
        assert again.status in (200, ok) or (name, again.error) == ("cancel", "VOUCHER_NOT_ISSUED"), again.body
        assert _effects(api, member_id) == after  # nothing happened twice
    ids = [m["message_id"] for m in _drain()]
    assert len(ids) == len(set(ids))  # each message once
    if name == "accrual":
        assert [m for m in ids] and len(ids) == 1  # the tier_changed message went out, once
    if name in ("redemption", "keyed_redemption"):
        assert len(_redemptions(api, member_id)) == 1 and after[0]["available"] == 100
    assert_invariant(member_id)


@pytest.mark.parametrize("name", sorted(WRITES))
def test_throttled_before_the_store_is_retried_by_the_sdk(api, fast_retries, name):
    member_id, call, ok, check = WRITES[name](api)
    fault = Throttle(times=1)
    with transport(fault):
        first = call()
    assert fault.fired == 1
    assert first.status == ok and check(first.body), first.body
    assert_invariant(member_id)


@pytest.mark.parametrize("name", ["accrual", "redemption", "enrol"])
def test_throttled_beyond_the_sdk_retries_is_503_with_nothing_written(api, fast_retries, name):
    member_id, call, ok, check = WRITES[name](api)
    before = api.get(f"/v1/members/{member_id}").body if name != "enrol" else None
    fault = Throttle(times=50)
    with transport(fault):
        first = call()
    assert (first.status, first.error) == (503, "RETRY_LATER")
    if before is not None:
        assert api.get(f"/v1/members/{member_id}").body == before
    else:
        assert api.get(f"/v1/members/{member_id}").status == 404
    retry = call()
    assert retry.status == ok and check(retry.body), retry.body
    assert_invariant(member_id)


def test_a_slow_answer_is_not_a_lost_one(api):
    member_id, call, ok, check = _accrual(api)
    fault = LoseAnswer(times=0, delay=0.3)
    with transport(fault):
        first = call()
    assert first.status == 201 and check(first.body)
    assert len(api.ledger(member_id)) == 1


def test_the_resent_redemption_never_issues_a_second_voucher_nor_takes_a_second_unit(api, fast_retries):
    """The review's reproduction: one POST /redemptions without a key, its answer lost."""
    from chalicelib.store.rewards import RewardRecord, remaining

    member_id, call, ok, check = _redemption(api)
    with transport(LoseAnswer()):
        first = call()
    assert first.status == 201
    assert [r["redemption_id"] for r in _redemptions(api, member_id)] == [first.body["redemption_id"]]
    assert api.member(member_id)["points"]["available"] == 100  # 200 earned, 100 spent once
    assert remaining(RewardRecord.get("t-cup")) == 4
    assert_invariant(member_id)


def test_a_lost_claim_of_an_idempotency_key_still_runs_the_request_once(api, fast_retries):
    """The claim itself is a write: its lost answer is resolved like any other."""
    body = {"member_id": "t-claim", "name": "Cid"}
    key = {"Idempotency-Key": "t-claim-1"}
    with transport(LoseAnswer(match="in_progress")):
        first = api.post("/v1/members", body, headers=key)
    assert first.status == 201, first.body
    again = api.post("/v1/members", body, headers=key)
    assert again.status == 200 and again.body == first.body
