"""Jobs that survive Lambda: a bad record is counted and reported while the rest goes on; a
segment pauses before the invocation's deadline and continues from its checkpoint in a new
message; job records change only conditionally; the outbox stream relay reports per-record
failures."""
from __future__ import annotations

import contextlib

import json

import pytest

from tests.factories import assert_invariant


def _members(api, n, prefix="j"):
    for i in range(n):
        api.enrol(f"{prefix}{i:02d}")
        api.accrue(f"{prefix}{i:02d}", 10000, now="2025-01-20T00:00:00Z")


def test_one_bad_member_is_counted_and_reported_and_the_others_are_done(api, monkeypatch):
    from chalicelib.jobs import framework
    from chalicelib.services import lifecycle

    _members(api, 6)
    real = lifecycle.expire_points

    def broken_for_j03(row, as_of):
        if row.member_id == "j03":
            raise ValueError("corrupt wallet")
        return real(row, as_of)

    monkeypatch.setattr(lifecycle, "expire_points", broken_for_j03)
    job = framework.create("expire-points", framework.parse_as_of("2026-02-01"), actor="test", segments=2)
    done = framework.execute(job["job_id"])
    assert done["status"] == "succeeded"
    assert (done["counts"]["members_expired"], done["counts"]["failed"]) == (5, 1)
    [error] = framework.get_job(job["job_id"])["errors"]
    assert (error["key"], error["error"], error["message"]) == ("j03", "ValueError", "corrupt wallet")
    assert [e["type"] for e in api.ledger("j00")] == ["expire", "earn"]
    assert [e["type"] for e in api.ledger("j03")] == ["earn"]


def test_a_segment_pauses_at_its_deadline_and_resumes_in_a_new_message(api, monkeypatch):
    from chalicelib.jobs import framework
    from chalicelib.messaging import sqs_client

    _members(api, 9, "p")
    job = framework.create("expire-points", framework.parse_as_of("2026-02-01"), actor="test", segments=1)
    monkeypatch.setattr(framework, "PAGE_SIZE", 2)
    monkeypatch.setattr(framework, "WORKER_MARGIN_SECONDS", 10**6)  # the deadline is already past
    body = json.dumps({"job_id": job["job_id"], "segment": 0})
    framework.handle_worker_message(body, remaining_ms=1000)  # one page, then a pause
    assert framework.get_job(job["job_id"])["status"] == "running"
    url = sqs_client().get_queue_url(QueueName="loyalty-local-jobs")["QueueUrl"]
    [again] = sqs_client().receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert json.loads(again["Body"]) == {"job_id": job["job_id"], "segment": 0}  # its continuation
    expired_after_one_page = sum(1 for i in range(9) if api.ledger(f"p{i:02d}")[0]["type"] == "expire")
    assert expired_after_one_page == 2
    framework.handle_worker_message(again["Body"])  # no deadline: the rest
    done = framework.get_job(job["job_id"])
    assert done["status"] == "succeeded" and done["counts"]["members_expired"] == 9
    for i in range(9):
        assert [e["type"] for e in api.ledger(f"p{i:02d}")] == ["expire", "earn"]
        assert_invariant(f"p{i:02d}")


def test_a_late_writer_never_overwrites_a_finished_job(api):
    from chalicelib.jobs import framework
    from chalicelib.store.models import JobRecord

    job = framework.create("expire-points", framework.parse_as_of("2026-02-01"), actor="test", segments=1)
    framework.execute(job["job_id"])
    stale = JobRecord.get(job["job_id"])
    assert stale.data["status"] == "succeeded"
    version = int(stale.version)
    # a worker that read the record before it finished tries to write "running"
    from pynamodb.exceptions import PutError

    with pytest.raises(PutError):
        JobRecord(job["job_id"], version=version, data={**stale.data, "status": "running"}).save(
            JobRecord.version == version - 1)
    assert framework.get_job(job["job_id"])["status"] == "succeeded"


def _stream_event(messages):
    return {"Records": [{"eventID": str(i), "eventName": "INSERT", "eventSource": "aws:dynamodb",
                         "dynamodb": {"SequenceNumber": str(100 + i), "NewImage": {
                             "message_id": {"S": m["message_id"]}, "body": {"S": json.dumps(m)}}}}
                        for i, m in enumerate(messages)]}


@contextlib.contextmanager
def count_calls():
    """AWS calls made by the DynamoDB and SQS clients the app uses, by "service.Operation"."""
    from chalicelib.messaging import sqs_client
    from chalicelib.store.base import dynamodb_client

    calls: dict = {}

    def count(model, **kw):
        key = f"{model.service_model.service_name}.{model.name}"
        calls[key] = calls.get(key, 0) + 1

    clients = [dynamodb_client(), sqs_client()]
    for c in clients:
        c.meta.events.register("before-call", count, unique_id="count-calls")
    try:
        yield calls
    finally:
        for c in clients:
            c.meta.events.unregister("before-call", unique_id="count-calls")


def test_the_stream_relay_sends_new_rows_and_reports_the_ones_it_could_not(api):
    from chalicelib import relay
    from chalicelib.messaging import queue_url, sqs_client
    from chalicelib.store import outbox
    from chalicelib.store.models import OutboxRecord
    from chalicelib.store import tx

    messages = [{"message_id": f"m-{i}", "member_id": "x", "template": "t", "created_at": "2026-01-01T00:00:00Z"}
                for i in range(3)]
    tx.write([outbox.put_op(m) for m in messages])
    with count_calls() as calls:
        assert relay.handle_stream_event(_stream_event(messages)) == {"batchItemFailures": []}
    assert calls.get("sqs.SendMessageBatch") == 1  # the batch's rows go out together
    assert calls.get("dynamodb.BatchWriteItem") == 1  # and are removed together
    got = sqs_client().receive_message(QueueUrl=queue_url(), MaxNumberOfMessages=10)["Messages"]
    assert sorted(json.loads(m["Body"])["message_id"] for m in got) == ["m-0", "m-1", "m-2"]
    assert list(OutboxRecord.scan()) == []  # sent rows are removed

    # messages and events are two parts: when the bus refuses, the events' records are
    # reported (the stream retries from there) and keep their rows; the messages are sent
    envelope = {"event_id": "ev-1", "type": "points.earned", "occurred_at": "2026-01-01T00:00:00Z",
                "member_id": "x", "sequence": 100, "data": {}}
    rows = [*messages, outbox.event_row(envelope)]
    tx.write([outbox.put_op(m) for m in rows])
    real = relay.events.publish

    def bus_down(envelopes, **kw):
        raise RuntimeError("EventBridge is down")

    relay.events.publish = bus_down
    try:
        out = relay.handle_stream_event(_stream_event(rows))
    finally:
        relay.events.publish = real
    assert out == {"batchItemFailures": [{"itemIdentifier": "103"}]}
    assert [r.message_id for r in OutboxRecord.scan()] == ["event#ev-1"]


def test_with_the_stream_relay_a_job_leaves_its_rows_to_the_stream(api, monkeypatch):
    """Production: the outbox stream's function sends what a job's commits wrote; the job
    itself sends nothing (it used to send its tier_changed messages too: twice each)."""
    from chalicelib.messaging import queue_url, sqs_client
    from chalicelib.store.models import OutboxRecord
    from tests.factories import reset_caches

    api.enrol("sr-1")
    api.accrue("sr-1", 60000, order_id="sr-1-o", now="2025-01-10T00:00:00Z")  # silver, retained to 2026-01
    while sqs_client().receive_message(QueueUrl=queue_url(), MaxNumberOfMessages=10).get("Messages"):
        pass  # the accrual's own messages (inline relay)
    monkeypatch.setenv("LOYALTY_RELAY", "stream")
    reset_caches()
    with count_calls() as calls:
        job = api.post("/v1/admin/jobs", {"job": "recalculate-tiers", "as_of": "2026-03-01"}, role="admin").body
        assert api.get(f"/v1/admin/jobs/{job['job_id']}", role="admin").body["counts"]["changed"] == 1
    assert not [k for k in calls if k.startswith("sqs.Send")], calls
    kinds = sorted((r.body.get("event") or {}).get("type", r.body.get("template")) for r in OutboxRecord.scan())
    assert kinds == ["tier.changed", "tier_changed"], kinds  # the event and the message wait for the stream
