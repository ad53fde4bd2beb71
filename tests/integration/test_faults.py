"""Fault injection with botocore event hooks on the one DynamoDB client (and the SQS client):
throttling is a 503 with nothing written and the client's retry succeeds once; conflicts are
retried inside the request; a response lost after the commit is replayed on the client's retry;
an SQS failure parks the message in the outbox and never fails the committed write."""
from __future__ import annotations

import types

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectionClosedError

from tests.factories import assert_invariant


class Hook:
    """`handler` on `event` of a client (the DynamoDB one by default) for a `with` block."""

    def __init__(self, event, handler, client=None):
        from chalicelib.store.base import dynamodb_client

        self.events = (client or dynamodb_client()).meta.events
        self.event, self.handler = event, handler

    def __enter__(self):
        self.events.register(self.event, self.handler, unique_id="test-fault:" + self.event)
        return self

    def __exit__(self, *exc):
        self.events.unregister(self.event, unique_id="test-fault:" + self.event)


class Fault:
    """Return `response` (a botocore (http, parsed) pair) or raise `exc`, `times` times; counts calls."""

    def __init__(self, response=None, exc=None, times=1):
        self.response, self.exc, self.times, self.calls, self.fired = response, exc, times, 0, 0

    def __call__(self, **kwargs):
        self.calls += 1
        if self.fired >= self.times:
            return None
        self.fired += 1
        if self.exc is not None:
            raise self.exc
        return self.response


def aws_error(code, status=400, **extra):
    return AWSResponse("https://aws.test", status, {}, None), {"Error": {"Code": code, "Message": code}, **extra}


THROTTLED = aws_error("ProvisionedThroughputExceededException")


@pytest.fixture
def no_backoff(monkeypatch):
    """Keep the internal retry loops' jittered sleeps out of the test's time."""
    from chalicelib import messaging
    from chalicelib.store import base

    quiet = types.SimpleNamespace(sleep=lambda s: None)
    monkeypatch.setattr(base, "time", quiet)
    monkeypatch.setattr(messaging, "time", quiet)


def state(api, member_id):
    """Everything a failed write could have touched."""
    from chalicelib.store.models import IdempotencyRecord, OrderRecord

    return (api.member(member_id), api.ledger(member_id),
            sorted(r.order_id for r in OrderRecord.scan()), sorted(r.key for r in IdempotencyRecord.scan()))


# --- the operations under test: (prepare, call, expected 201 check) ---------------------------

def _accrual(api):
    api.enrol("f-acc")
    return "f-acc", lambda: api.accrue("f-acc", 60000, order_id="f-acc-o"), \
        lambda b: (b["points_earned"], b["tier_change"]) == (600, {"from": "bronze", "to": "silver"})


def _refund(api):
    api.enrol("f-ref")
    api.accrue("f-ref", 10000, order_id="f-ref-o")
    return "f-ref", lambda: api.refund("f-ref", "f-ref-o", 3000, refund_id="f-ref-r"), \
        lambda b: b["points_reversed"] == 30 and b["balance"] == {"available": 70, "pending": 0, "held": 0}


def _activity(api):
    api.enrol("f-act")
    return "f-act", lambda: api.activity("f-act", "app_install", activity_id="f-act-1"), \
        lambda b: b["points_earned"] == 100 and b["balance"]["available"] == 100


def _adjustment(api):
    api.enrol("f-adj")
    return "f-adj", lambda: api.adjust("f-adj", 70, adjustment_id="f-adj-1"), \
        lambda b: (b["points"], b["balance_after"]) == (70, 70)


OPERATIONS = {"accrual": _accrual, "refund": _refund, "activity": _activity, "adjustment": _adjustment}


def for_each_operation(api, subtests, scenario):
    """Run `scenario(name, member_id, call, check)` for every points mutation, each on its own
    member, each reported as a subtest."""
    for name, prepare in OPERATIONS.items():
        with subtests.test(operation=name):
            scenario(name, *prepare(api))


def test_throttled_write_is_503_with_nothing_written_then_the_retry_succeeds_once(api, subtests):
    def scenario(name, member_id, call, check):
        before = state(api, member_id)
        fault = Fault(THROTTLED)
        with Hook("before-call.dynamodb.TransactWriteItems", fault):
            r = call()
            assert (r.status, r.error) == (503, "RETRY_LATER")
            assert r.body["error"]["message"]
            assert state(api, member_id) == before
            retry = call()
        assert fault.fired == 1
        assert retry.status == 201 and check(retry.body), retry.body
        again = call()
        assert again.status == 200 and again.body == retry.body
        assert len(api.ledger(member_id)) == len(before[1]) + 1
        assert_invariant(member_id)

    for_each_operation(api, subtests, scenario)


def test_a_throttled_read_is_503_with_nothing_written(api, subtests):
    def scenario(name, member_id, call, check):
        before = state(api, member_id)
        fault = Fault(aws_error("ThrottlingException"), times=10)
        with Hook("before-call.dynamodb.GetItem", fault), Hook("before-call.dynamodb.TransactGetItems", fault):
            r = call()
        assert (r.status, r.error) == (503, "RETRY_LATER") and fault.fired >= 1
        assert state(api, member_id) == before
        retry = call()
        assert retry.status == 201 and check(retry.body), retry.body
        assert_invariant(member_id)

    for_each_operation(api, subtests, scenario)


def test_a_transaction_cancelled_for_throttling_is_503_not_500(api):
    api.enrol("f-tc")
    cancelled = aws_error("TransactionCanceledException", CancellationReasons=[
        {"Code": "ThrottlingError", "Message": "throttled"}, {"Code": "None"}, {"Code": "None"}])
    with Hook("before-call.dynamodb.TransactWriteItems", Fault(cancelled)):
        r = api.accrue("f-tc", 10000, order_id="f-tc-o")
    assert (r.status, r.error) == (503, "RETRY_LATER")
    assert api.ledger("f-tc") == []
    assert api.accrue("f-tc", 10000, order_id="f-tc-o").body["points_earned"] == 100
    assert_invariant("f-tc")


def test_a_conflict_is_retried_inside_the_request(api, subtests, no_backoff):
    conflict = aws_error("TransactionCanceledException", CancellationReasons=[
        {"Code": "TransactionConflict"}, {"Code": "None"}, {"Code": "None"}])

    def scenario(name, member_id, call, check):
        fault = Fault(conflict, times=2)
        with Hook("before-call.dynamodb.TransactWriteItems", fault):
            r = call()
        assert r.status == 201 and check(r.body), r.body
        assert (fault.fired, fault.calls) == (2, 3)  # two conflicts, then the write that commits
        assert len(api.ledger(member_id)) == (2 if name == "refund" else 1)
        assert_invariant(member_id)

    for_each_operation(api, subtests, scenario)


def test_endless_conflicts_give_up_with_503_and_nothing_written(api, no_backoff):
    member_id, call, check = _accrual(api)
    before = state(api, member_id)
    conflict = aws_error("TransactionCanceledException", CancellationReasons=[{"Code": "TransactionConflict"}])
    fault = Fault(conflict, times=1000)
    with Hook("before-call.dynamodb.TransactWriteItems", fault):
        r = call()
    assert (r.status, r.error) == (503, "RETRY_LATER")
    assert fault.calls == 8  # bounded
    assert state(api, member_id) == before
    assert call().status == 201


def test_answer_lost_after_commit_is_resolved_by_reading_the_write_back(api, subtests):
    def scenario(name, member_id, call, check):
        before = len(api.ledger(member_id))
        lost = Fault(exc=ConnectionClosedError(endpoint_url="https://dynamodb.test"))
        with Hook("after-call.dynamodb.TransactWriteItems", lost):
            first = call()
        assert lost.fired == 1
        assert first.status == 201 and check(first.body), first.body  # it committed: the read-back says so
        retry = call()
        assert retry.status == 200 and retry.body == first.body
        assert len(api.ledger(member_id)) == before + 1  # credited once
        assert_invariant(member_id)

    for_each_operation(api, subtests, scenario)


class LostThenUnreadable:
    """The transaction's answer is lost, and the store stays unreachable for the next
    `reads` GetItem calls (the read-back)."""

    def __init__(self, reads=1):
        self.reads, self.armed = reads, 0

    def lose(self, **kwargs):
        self.armed = self.reads
        raise ConnectionClosedError(endpoint_url="https://dynamodb.test")

    def read(self, **kwargs):
        if self.armed:
            self.armed -= 1
            raise ConnectionClosedError(endpoint_url="https://dynamodb.test")


def test_answer_lost_and_store_unreadable_is_503_then_the_retry_replays(api, subtests):
    def scenario(name, member_id, call, check):
        before = len(api.ledger(member_id))
        fault = LostThenUnreadable()
        with Hook("after-call.dynamodb.TransactWriteItems", fault.lose), \
                Hook("before-call.dynamodb.GetItem", fault.read):
            first = call()
        assert (first.status, first.error) == (503, "RETRY_LATER")  # the client cannot know it committed
        retry = call()
        assert retry.status == 200 and check(retry.body), retry.body
        assert len(api.ledger(member_id)) == before + 1  # credited once
        assert_invariant(member_id)

    for_each_operation(api, subtests, scenario)


def test_enrol_whose_answer_was_lost(api):
    """Read back: 201 even without a key. Store unreadable too: 503, and with an
    Idempotency-Key the retry is a replay (without one the id now exists)."""
    lost = Fault(exc=ConnectionClosedError(endpoint_url="https://dynamodb.test"))
    with Hook("after-call.dynamodb.TransactWriteItems", lost):
        first = api.post("/v1/members", {"member_id": "f-enr0", "name": "Ann"})
    assert lost.fired == 1 and first.status == 201 and first.body == api.member("f-enr0")

    body = {"member_id": "f-enr", "name": "Eve"}
    key = {"Idempotency-Key": "enrol-f-enr"}
    fault = LostThenUnreadable()
    writes = []

    def lose_the_enrolment(**kwargs):  # the first transaction claims the key; the second enrols
        writes.append(1)
        if len(writes) == 2:
            fault.lose()

    with Hook("after-call.dynamodb.TransactWriteItems", lose_the_enrolment), \
            Hook("before-call.dynamodb.GetItem", fault.read):
        assert api.post("/v1/members", body, headers=key).status == 503
    retry = api.post("/v1/members", body, headers=key)
    assert retry.status == 200, retry.body
    assert retry.body == api.member("f-enr")
    assert api.post("/v1/members", {**body, "name": "Mallory"}, headers=key).error == "IDEMPOTENCY_MISMATCH"
    assert api.post("/v1/members", body).error == "ALREADY_EXISTS"  # without the key: the id exists


def _drain():
    from chalicelib.messaging import queue_url, sqs_client

    out = []
    while True:
        msgs = sqs_client().receive_message(QueueUrl=queue_url(), MaxNumberOfMessages=10).get("Messages", [])
        if not msgs:
            return out
        out += msgs
        for m in msgs:
            sqs_client().delete_message(QueueUrl=queue_url(), ReceiptHandle=m["ReceiptHandle"])


def test_messages_of_a_write_whose_answer_was_lost_are_sent_once(api, subtests):
    """tier_changed and reward_redeemed go out after the commit: a lost answer resolved by
    the read-back still sends them, and the client's later replay sends nothing more. A
    redemption without an Idempotency-Key is not made twice."""
    import json

    r = api.post("/v1/admin/rewards", {"reward_id": "f-cup", "name": "Cup", "cost_points": 100, "kind": "voucher"},
                 role="admin")
    assert r.status == 201, r.body

    def accrual():
        api.enrol("f-msg-a")
        return lambda: api.accrue("f-msg-a", 60000, order_id="f-msg-a-o"), "tier_changed", "f-msg-a"

    def redemption():
        api.enrol("f-msg-r")
        api.accrue("f-msg-r", 20000, order_id="f-msg-r-o")
        return (lambda: api.post("/v1/members/f-msg-r/redemptions", {"reward_id": "f-cup"}, role="member",
                                 sub="f-msg-r"), "reward_redeemed", "f-msg-r")

    for name, prepare in (("accrual", accrual), ("redemption", redemption)):
        with subtests.test(operation=name):
            call, template, member = prepare()
            _drain()
            before = api.member(member)["points"]["available"]
            lost = Fault(exc=ConnectionClosedError(endpoint_url="https://dynamodb.test"))
            with Hook("after-call.dynamodb.TransactWriteItems", lost):
                first = call()
            assert lost.fired == 1 and first.status == 201, first.body
            sent = [json.loads(m["Body"]) for m in _drain()]
            assert [(m["template"], m["member_id"]) for m in sent] == [(template, member)]
            if name == "accrual":
                assert call().status == 200 and _drain() == []  # the replay: no second message
                assert api.member(member)["points"]["available"] == before + 600
            else:
                items = api.get(f"/v1/members/{member}/redemptions", role="member", sub=member).body["items"]
                assert [i["redemption_id"] for i in items] == [first.body["redemption_id"]]
                assert api.member(member)["points"]["available"] == before - 100
            assert_invariant(member)


def test_sqs_failing_every_entry_parks_the_tier_message_in_the_outbox(api, no_backoff):
    from chalicelib.messaging import sqs_client
    from chalicelib.store.models import OutboxRecord

    api.enrol("f-sqs", consents={"push": True})
    failed = (AWSResponse("https://sqs.test", 200, {}, None),
              {"Successful": [], "Failed": [{"Id": "0", "SenderFault": False, "Code": "InternalError"}]})
    fault = Fault(failed, times=100)
    with Hook("before-call.sqs.SendMessageBatch", fault, client=sqs_client()):
        r = api.accrue("f-sqs", 60000, order_id="f-sqs-o", now="2026-05-01T10:00:00Z")
    assert r.status == 201 and r.body["tier_change"] == {"from": "bronze", "to": "silver"}
    assert fault.fired == 5  # the batch's entries were retried before parking
    parked = [rec.body for rec in OutboxRecord.scan()]
    assert [(m["template"], m["member_id"], m["channel"], m["variables"]["tier"], m["variables"]["points"])
            for m in parked] == [("tier_changed", "f-sqs", "push", "silver", 600)]
    assert _drain() == []
    m = api.member("f-sqs", now="2026-05-01T10:00:00Z")
    assert (m["tier"]["tier_id"], m["points"]["available"]) == ("silver", 600)
    assert_invariant("f-sqs")


def test_sqs_and_outbox_both_down_still_keep_the_committed_accrual(api, no_backoff):
    from chalicelib.messaging import sqs_client
    from chalicelib.store.models import OutboxRecord

    api.enrol("f-down")
    with Hook("before-call.sqs.SendMessageBatch", Fault(aws_error("InternalError", 500), times=100),
              client=sqs_client()), \
            Hook("before-call.dynamodb.BatchWriteItem", Fault(THROTTLED, times=100)):
        r = api.accrue("f-down", 60000, order_id="f-down-o")
    assert r.status == 201 and r.body["tier_change"] == {"from": "bronze", "to": "silver"}
    # the message was committed with the accrual: still in the outbox, not lost
    messages = [rec.body for rec in OutboxRecord.scan() if "event" not in rec.body]  # events were published
    assert [(m["template"], m["member_id"]) for m in messages] == [("tier_changed", "f-down")]
    assert api.accrue("f-down", 60000, order_id="f-down-o").status == 200
    assert_invariant("f-down")
