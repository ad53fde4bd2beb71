"""Fault injection on the points write path with botocore event hooks."""
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectionClosedError

from tests.factories import assert_invariant


class Hook:
    """Register a handler on the one DynamoDB client for the length of a `with` block."""

    def __init__(self, event, handler):
        from chalicelib.store.base import dynamodb_client

        self.events, self.event, self.handler = dynamodb_client().meta.events, event, handler

    def __enter__(self):
        self.events.register(self.event, self.handler, unique_id="fault")
        return self

    def __exit__(self, *exc):
        self.events.unregister(self.event, unique_id="fault")


def once(response_or_exc):
    state = {"fired": False}

    def handler(**kwargs):
        if state["fired"]:
            return None
        state["fired"] = True
        if isinstance(response_or_exc, Exception):
            raise response_or_exc
        return response_or_exc

    handler.state = state
    return handler


def test_throttled_accrual_is_503_with_nothing_written_then_the_retry_succeeds(api):
    api.enrol("f1")
    throttled = (AWSResponse("https://dynamodb", 400, {}, None),
                 {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}})
    with Hook("before-call.dynamodb.TransactWriteItems", once(throttled)):
        r = api.accrue("f1", 10000, order_id="f1-o")
        assert r.status == 503 and r.error == "RETRY_LATER"
        assert api.get("/v1/members/f1/ledger").body["items"] == []
        assert api.member("f1")["points"]["available"] == 0
        r = api.accrue("f1", 10000, order_id="f1-o")
    assert r.status == 201 and r.body["points_earned"] == 100
    assert_invariant("f1")


def test_a_conflicting_transaction_is_retried_inside_the_request(api):
    api.enrol("f2")
    conflict = (AWSResponse("https://dynamodb", 400, {}, None),
                {"Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                 "CancellationReasons": [{"Code": "TransactionConflict"}, {"Code": "None"}, {"Code": "None"}]})
    with Hook("before-call.dynamodb.TransactWriteItems", once(conflict)) as hook:
        r = api.accrue("f2", 10000, order_id="f2-o")
    assert hook.handler.state["fired"]
    assert r.status == 201 and r.body["balance"]["available"] == 100
    assert len(api.get("/v1/members/f2/ledger").body["items"]) == 1
    assert_invariant("f2")


def test_response_lost_after_commit_then_retry_replays_without_double_credit(api):
    api.enrol("f3")
    lost = ConnectionClosedError(endpoint_url="https://dynamodb")
    with Hook("after-call.dynamodb.TransactWriteItems", once(lost)):
        first = api.accrue("f3", 25000, order_id="f3-o")
    assert first.status == 503 and first.error == "RETRY_LATER"  # the client cannot know it committed
    retry = api.accrue("f3", 25000, order_id="f3-o")
    assert retry.status == 200 and retry.body["points_earned"] == 250
    ledger = api.get("/v1/members/f3/ledger").body["items"]
    assert [(e["type"], e["points"]) for e in ledger] == [("earn", 250)]
    assert api.member("f3")["points"]["available"] == 250
    assert_invariant("f3")


def test_refund_response_lost_after_commit_is_replayed(api):
    api.enrol("f4")
    api.accrue("f4", 10000, order_id="f4-o")
    with Hook("after-call.dynamodb.TransactWriteItems", once(ConnectionClosedError(endpoint_url="x"))):
        first = api.post("/v1/members/f4/refunds", {"refund_id": "f4-r", "order_id": "f4-o", "amount": 5000})
    assert first.status == 503
    retry = api.post("/v1/members/f4/refunds", {"refund_id": "f4-r", "order_id": "f4-o", "amount": 5000})
    assert retry.status == 200 and retry.body["points_reversed"] == 50
    assert api.member("f4")["points"]["available"] == 50
    assert_invariant("f4")
