"""Smoke tests of the benchmark harness (`make bench`), on in-process moto: the call
counter, the emulator's fidelity fixes (same results as moto, per-item cost) and the
shape of results.json. Benchmarks themselves never run in `make test`."""
from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from bench import report
from bench.common import CallCounter, entry
from bench.emulator import fidelity_fixes


@pytest.fixture
def ddb(aws_env):
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(TableName="t", KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                             AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                             BillingMode="PAY_PER_REQUEST")
        yield client


def _pages(client, segment: int, total: int, limit: int) -> list:
    out, kwargs = [], {"TableName": "t", "Segment": segment, "TotalSegments": total, "Limit": limit}
    while True:
        page = client.scan(**kwargs)
        out.append(([i["k"]["S"] for i in page["Items"]], page.get("LastEvaluatedKey")))
        if "LastEvaluatedKey" not in page:
            return out
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def test_call_counter_counts_every_call_by_operation_until_detached(ddb):
    counter = CallCounter().attach(ddb, "dynamodb")
    ddb.put_item(TableName="t", Item={"k": {"S": "a"}})
    ddb.put_item(TableName="t", Item={"k": {"S": "b"}})
    ddb.get_item(TableName="t", Key={"k": {"S": "a"}})
    assert counter.by_operation("dynamodb") == {"GetItem": 1, "PutItem": 2}
    assert counter.total("dynamodb") == 3 and counter.total("sqs") == 0
    counter.detach()
    ddb.get_item(TableName="t", Key={"k": {"S": "b"}})
    assert counter.total("dynamodb") == 3


def test_the_fixed_scan_returns_moto_s_own_pages(ddb):
    for start in range(0, 300, 25):
        ddb.batch_write_item(RequestItems={"t": [{"PutRequest": {"Item": {"k": {"S": f"k{j:04d}"}}}}
                                                 for j in range(start, start + 25)]})
    expected = [_pages(ddb, s, 4, 17) for s in range(4)]
    with fidelity_fixes():
        got = [_pages(ddb, s, 4, 17) for s in range(4)]
        ddb.delete_item(TableName="t", Key={"k": {"S": "k0005"}})
        ddb.put_item(TableName="t", Item={"k": {"S": "k0005x"}})
        changed = [_pages(ddb, s, 3, 50) for s in range(3)]
    assert got == expected
    assert sum(len(items) for seg in got for items, _ in seg) == 300
    assert changed == [_pages(ddb, s, 3, 50) for s in range(3)]  # moto again, after the fixes are undone


def test_a_cancelled_transaction_leaves_every_item_as_it_was(ddb):
    ddb.put_item(TableName="t", Item={"k": {"S": "a"}, "v": {"N": "1"}})
    with fidelity_fixes():
        with pytest.raises(ddb.exceptions.TransactionCanceledException):
            ddb.transact_write_items(TransactItems=[
                {"Put": {"TableName": "t", "Item": {"k": {"S": "new"}}}},
                {"Update": {"TableName": "t", "Key": {"k": {"S": "a"}}, "UpdateExpression": "SET v = :n",
                            "ExpressionAttributeValues": {":n": {"N": "2"}}}},
                {"ConditionCheck": {"TableName": "t", "Key": {"k": {"S": "missing"}},
                                    "ConditionExpression": "attribute_exists(k)"}}])
        assert "Item" not in ddb.get_item(TableName="t", Key={"k": {"S": "new"}})
        assert ddb.get_item(TableName="t", Key={"k": {"S": "a"}})["Item"]["v"] == {"N": "1"}
        ddb.transact_write_items(TransactItems=[
            {"Update": {"TableName": "t", "Key": {"k": {"S": "a"}}, "UpdateExpression": "SET v = :n",
                        "ExpressionAttributeValues": {":n": {"N": "3"}}}}])
    assert ddb.get_item(TableName="t", Key={"k": {"S": "a"}})["Item"]["v"] == {"N": "3"}


def test_results_json_keeps_exactly_the_spec_fields():
    results = {
        "cold_import_ratio": entry(120.0, 100.0, 1.2, "<= 1.2", "ms", runs=[1, 2]),
        "accrual_ratio": entry(80.0, 100.0, 0.8, ">= 0.85", "accruals/s"),
    }
    public, details = report.split(results)
    assert list(public) == ["cold_import_ratio", "accrual_ratio"]
    assert set(public["cold_import_ratio"]) == {"value", "floor", "ratio", "goal", "unit"}
    assert details["cold_import_ratio"] == {"runs": [1, 2]}
    assert report.verdicts(public) == {"cold_import_ratio": True, "accrual_ratio": False}


def test_fan_out_line_says_how_busy_the_emulator_was_and_the_ratio_it_allows():
    fan = entry(1500.0, 2500.0, 0.6, ">= 0.5", "messages/s", dynamodb_calls_per_1000=23.0,
                emulator_cpu_s_per_1000={"ours": 0.5, "floor": 0.25})
    fan["sqs_calls_per_1000"] = 100.0
    public, details = report.split({"fanout_ratio": fan})
    meta = {"finished_at": "now", "machine": "here", "seconds": 1.0}
    text = report.markdown(public, details, meta, None)
    # 1,500 msg/s × 0.5 ms of emulator CPU each = 75% busy; flat out it would do 2,000/s = 0.8 of 2,500
    assert "0.5 s for ours (busy 75% of the time), 0.25 s for the floor, so the ratio cannot pass 0.80" in text
    details["fanout_ratio"]["emulator_cpu_s_per_1000"] = {"ours": None, "floor": None}  # no /proc
    assert "23.0 DynamoDB calls per 1,000 messages.\n" in report.markdown(public, details, meta, None)


def test_recalculate_tiers_sends_its_messages_ten_per_batch(api):
    """The job's tier_changed messages go out ten per SendMessageBatch (a bench-driven fix), all of
    them: one segment, one page of 12 changes = a batch of 10 when full and one of 2 at the page end."""
    from chalicelib import clock
    from chalicelib.jobs import framework
    from chalicelib.messaging import queue_url, sqs_client

    for n in range(12):
        api.enrol(f"t{n}")
        assert api.accrue(f"t{n}", 60000, now="2025-01-15T10:00:00Z").body["tier_change"] == {
            "from": "bronze", "to": "silver"}
    sqs_client().purge_queue(QueueUrl=queue_url())
    job = framework.create("recalculate-tiers", clock.parse_instant("2026-03-01"), "test", segments=1)
    counter = CallCounter().attach(sqs_client(), "sqs")
    try:
        done = framework.execute(job["job_id"])
    finally:
        counter.detach()
    assert done["counts"]["changed"] == 12
    assert counter.by_operation("sqs") == {"SendMessageBatch": 2}
    msgs = []
    while batch := sqs_client().receive_message(QueueUrl=queue_url(), MaxNumberOfMessages=10).get("Messages"):
        msgs += [json.loads(m["Body"]) for m in batch]
    assert sorted(m["member_id"] for m in msgs) == sorted(f"t{n}" for n in range(12))
    assert {m["variables"]["tier"] for m in msgs} == {"bronze"}
