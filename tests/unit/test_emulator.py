"""The shared embedded emulator (`chalicelib/emulator.py`) at the transport: boto3 over HTTP
against the locked moto server, as `make run`, the tests and the bench use it."""
from __future__ import annotations

import uuid

import boto3
import pytest
from botocore.config import Config


@pytest.fixture
def emulator(aws_env):
    from chalicelib.emulator import start_in_thread

    server, url = start_in_thread()
    try:
        yield url
    finally:
        server.shutdown()


@pytest.fixture
def ddb(emulator):
    client = boto3.client("dynamodb", endpoint_url=emulator, region_name="us-east-1",
                          config=Config(retries={"max_attempts": 1}))
    name = "t-" + uuid.uuid4().hex[:8]
    client.create_table(TableName=name, KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                        BillingMode="PAY_PER_REQUEST")
    client.table = name
    return client


def _add(client, token: str, by: int = 1, extra: str = "o1") -> dict:
    return client.transact_write_items(ClientRequestToken=token, TransactItems=[
        {"Update": {"TableName": client.table, "Key": {"k": {"S": "m"}}, "UpdateExpression": "ADD n :one",
                    "ExpressionAttributeValues": {":one": {"N": str(by)}}}},
        {"Put": {"TableName": client.table, "Item": {"k": {"S": extra}},
                 "ConditionExpression": "attribute_not_exists(k)"}}])


def _n(client) -> int:
    return int(client.get_item(TableName=client.table, Key={"k": {"S": "m"}}, ConsistentRead=True)["Item"]["n"]["N"])


def test_an_identical_resend_with_the_same_token_succeeds_without_effect(ddb):
    token = str(uuid.uuid4())
    first = _add(ddb, token)
    again = _add(ddb, token)  # the SDK re-sending after a lost answer: not a condition failure
    assert first["ResponseMetadata"]["HTTPStatusCode"] == again["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert _n(ddb) == 1
    with pytest.raises(ddb.exceptions.TransactionCanceledException):
        _add(ddb, str(uuid.uuid4()))  # another token is another request: the order exists
    assert _n(ddb) == 1


def test_the_same_token_with_other_parameters_is_a_mismatch(ddb):
    token = str(uuid.uuid4())
    _add(ddb, token)
    with pytest.raises(ddb.exceptions.IdempotentParameterMismatchException) as err:
        _add(ddb, token, by=5)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert _n(ddb) == 1


def test_a_token_is_forgotten_after_ten_minutes(ddb, monkeypatch):
    import time

    token = str(uuid.uuid4())
    _add(ddb, token, extra="o1")
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 601)
    _add(ddb, token, extra="o1-b")  # not the same request any more: a new one, applied
    assert _n(ddb) == 2


def test_a_cancelled_transaction_keeps_no_token_and_writes_nothing(ddb):
    ddb.put_item(TableName=ddb.table, Item={"k": {"S": "o1"}})
    token = str(uuid.uuid4())
    with pytest.raises(ddb.exceptions.TransactionCanceledException):
        _add(ddb, token)  # the order exists: cancelled, the member's update undone
    assert "Item" not in ddb.get_item(TableName=ddb.table, Key={"k": {"S": "m"}}, ConsistentRead=True)
    ddb.delete_item(TableName=ddb.table, Key={"k": {"S": "o1"}})
    _add(ddb, token)  # the retry of a failed transaction runs
    assert _n(ddb) == 1


def test_the_no_table_copy_patch_keeps_transactions_atomic(ddb):
    from moto.dynamodb import models

    assert not isinstance(models.copy, type(__import__("copy")))  # the patch is on: no table deep copy
    for i in range(50):
        ddb.put_item(TableName=ddb.table, Item={"k": {"S": f"x{i}"}, "v": {"N": "1"}})
    before = sorted((i["k"]["S"], i["v"]["N"]) for i in ddb.scan(TableName=ddb.table)["Items"])
    with pytest.raises(ddb.exceptions.TransactionCanceledException):
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": ddb.table, "Item": {"k": {"S": "new"}, "v": {"N": "9"}}}},
            {"Update": {"TableName": ddb.table, "Key": {"k": {"S": "x1"}}, "UpdateExpression": "SET v = :n",
                        "ExpressionAttributeValues": {":n": {"N": "2"}}}},
            {"Delete": {"TableName": ddb.table, "Key": {"k": {"S": "x2"}}}},
            {"ConditionCheck": {"TableName": ddb.table, "Key": {"k": {"S": "x3"}},
                                "ConditionExpression": "v = :two",
                                "ExpressionAttributeValues": {":two": {"N": "2"}}}}])
    after = sorted((i["k"]["S"], i["v"]["N"]) for i in ddb.scan(TableName=ddb.table)["Items"])
    assert after == before


def test_state_saved_and_loaded_round_trips(emulator, tmp_path):
    from chalicelib import emulator as emu

    sqs = boto3.client("sqs", endpoint_url=emulator, region_name="us-east-1")
    ddb = boto3.client("dynamodb", endpoint_url=emulator, region_name="us-east-1")
    ddb.create_table(TableName="persisted", KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    ddb.put_item(TableName="persisted", Item={"k": {"S": "a"}})
    url = sqs.create_queue(QueueName="persisted-q")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    path = str(tmp_path / "state.pickle")
    assert emu.save_state(path) > 0
    ddb.delete_table(TableName="persisted")
    sqs.delete_queue(QueueUrl=url)
    assert emu.load_state(path)
    assert ddb.get_item(TableName="persisted", Key={"k": {"S": "a"}})["Item"] == {"k": {"S": "a"}}
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "hello"
    assert not emu.load_state(str(tmp_path / "missing.pickle"))
