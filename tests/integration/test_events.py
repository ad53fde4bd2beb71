"""Domain events (SPEC 2.16): written in the transaction of their effect (outbox rows),
published to the `loyalty-local-events` bus with source `loyalty` and the type as
detail-type, one per type per effect, ids deterministic, sequence increasing per member."""
from __future__ import annotations

import json

import pytest

from tests.integration.test_transport_faults import LoseAnswer, fast_retries, transport  # noqa: F401


@pytest.fixture
def tap(api):
    """An SQS queue subscribed to everything on the events bus."""
    import boto3

    events = boto3.client("events", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="events-tap")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="tap", EventBusName="loyalty-local-events", EventPattern=json.dumps({"source": ["loyalty"]}))
    events.put_targets(Rule="tap", EventBusName="loyalty-local-events", Targets=[{"Id": "q", "Arn": arn}])

    def drain() -> list[dict]:
        out = []
        while True:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return out
            for m in got:
                body = json.loads(m["Body"])
                assert (body["source"], body["detail-type"]) == ("loyalty", body["detail"]["type"])
                out.append(body["detail"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    return drain


def test_an_upgrading_accrual_publishes_points_earned_and_tier_changed_once(api, tap):
    api.enrol("ev1")
    tap()
    r = api.accrue("ev1", 60000, order_id="ev1-o")
    assert r.status == 201
    got = tap()
    assert [e["type"] for e in got] == ["points.earned", "tier.changed"]
    earned, tier = got
    assert earned["member_id"] == "ev1" and earned["data"]["points"] == 600
    assert earned["data"]["balance"]["available"] == 600
    assert earned["data"]["reference"] == {"order_id": "ev1-o"}
    assert tier["data"]["from"] == "bronze" and tier["data"]["to"] == "silver"
    assert earned["sequence"] < tier["sequence"]
    assert api.accrue("ev1", 60000, order_id="ev1-o").status == 200  # a replay
    assert tap() == []  # makes no second event
    api.accrue("ev1", 1000, order_id="ev1-o2")
    [later] = tap()
    assert later["type"] == "points.earned" and later["sequence"] > tier["sequence"]
    assert later["event_id"] != earned["event_id"]


def test_a_redemption_publishes_points_spent_and_reward_redeemed_and_a_use_voucher_used(api, tap):
    assert api.post("/v1/admin/rewards", {"reward_id": "ev-cup", "name": "Cup", "cost_points": 100,
                                          "kind": "voucher"}, role="admin").status == 201
    api.enrol("ev2")
    api.accrue("ev2", 20000, order_id="ev2-o")
    tap()
    red = api.post("/v1/members/ev2/redemptions", {"reward_id": "ev-cup"}, role="member", sub="ev2").body
    got = tap()
    assert [e["type"] for e in got] == ["points.spent", "reward.redeemed"]
    assert got[0]["data"]["points"] == -100 and got[1]["data"]["redemption_id"] == red["redemption_id"]
    assert api.post(f"/v1/vouchers/{red['code']}/use", {"order_id": "pos-1"}).status == 200
    [used] = tap()
    assert used["type"] == "voucher.used" and used["data"]["status"] == "used"
    assert used["sequence"] > got[1]["sequence"]


def test_member_lifecycle_events(api, tap):
    api.enrol("ev3")
    api.patch("/v1/members/ev3", {"name": "New"})
    api.post("/v1/members/ev3/close", role="admin")
    got = tap()
    assert [e["type"] for e in got] == ["member.enrolled", "member.updated", "member.closed"]
    assert [e["data"]["status"] for e in got] == ["active", "active", "closed"]
    assert got[0]["sequence"] < got[1]["sequence"] < got[2]["sequence"]


def test_events_of_a_write_whose_answer_was_lost_are_published_once(api, tap, fast_retries):
    api.enrol("ev4")
    tap()
    with transport(LoseAnswer()):
        assert api.accrue("ev4", 60000, order_id="ev4-o").status == 201
    got = tap()
    assert sorted(e["type"] for e in got) == ["points.earned", "tier.changed"]
    assert len({e["event_id"] for e in got}) == 2


def test_holds_publish_created_captured_and_released(api, tap):
    api.enrol("ev5")
    api.accrue("ev5", 50000, order_id="ev5-o")
    tap()
    assert api.post("/v1/members/ev5/point-holds", {"hold_id": "ev5-h1", "points": 100}).status == 201
    assert api.post("/v1/members/ev5/point-holds/ev5-h1/capture", {"points": 60}).status == 200
    assert api.post("/v1/members/ev5/point-holds", {"hold_id": "ev5-h2", "points": 50}).status == 201
    assert api.post("/v1/members/ev5/point-holds/ev5-h2/release").status == 200
    got = tap()
    assert [e["type"] for e in got] == ["hold.created", "points.spent", "hold.captured", "hold.created",
                                        "hold.released"]
    assert got[1]["data"]["points"] == -60 and got[2]["data"]["captured_points"] == 60
    assert [e["sequence"] for e in got] == sorted(e["sequence"] for e in got)


def test_a_referred_first_purchase_publishes_the_bonus_of_both_members(api, tap):
    code = api.enrol("ref-ev-a")["referral_code"]
    assert api.post("/v1/members", {"member_id": "ref-ev-b", "referral_code": code}).status == 201
    tap()
    assert api.accrue("ref-ev-b", 1000, order_id="ref-ev-o").status == 201
    got = tap()
    by_member = {}
    for e in got:
        by_member.setdefault(e["member_id"], []).append((e["type"], e["data"]["points"]))
    assert sorted(by_member["ref-ev-b"]) == [("points.earned", 10), ("points.earned", 500)]
    assert by_member["ref-ev-a"] == [("points.earned", 500)]  # the referrer's bonus has its event
    [referrer] = [e for e in got if e["member_id"] == "ref-ev-a"]
    assert referrer["data"]["balance"]["available"] == 500
    assert len({e["event_id"] for e in got}) == 3
