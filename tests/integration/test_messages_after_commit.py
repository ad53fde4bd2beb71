"""Messages caused by a committed write: outbox rows of its own transaction, sent and removed
right after it; kept in the outbox when SQS fails and re-sent by the sweep (run-triggers). The
write itself never fails for a notification."""
from tests.integration.test_marketing_helpers import drain as _queue


def test_sqs_outage_parks_the_tier_message_and_the_flush_sends_it(api, monkeypatch):
    from datetime import timedelta

    from chalicelib import relay
    from chalicelib.messaging import sqs_client
    from chalicelib.store.models import OutboxRecord

    api.enrol("ob1", consents={"email": True, "push": False, "sms": False})

    def down(**kwargs):
        from botocore.awsrequest import AWSResponse

        return (AWSResponse("https://sqs", 500, {}, None),
                {"Error": {"Code": "InternalError", "Message": "SQS is down"}})

    events = sqs_client().meta.events
    events.register("before-call.sqs.SendMessageBatch", down, unique_id="sqs-down")
    try:
        r = api.accrue("ob1", 60000, order_id="ob1-o", now="2026-05-01T10:00:00Z")
    finally:
        events.unregister("before-call.sqs.SendMessageBatch", unique_id="sqs-down")
    assert r.status == 201 and r.body["tier_change"] == {"from": "bronze", "to": "silver"}
    parked = [rec.body for rec in OutboxRecord.scan()]
    assert [(m["template"], m["member_id"]) for m in parked] == [("tier_changed", "ob1")]
    assert _queue() == []
    monkeypatch.setattr(relay, "STALE_AFTER", timedelta(0))  # the sweep takes rows past their grace
    job = api.post("/v1/admin/jobs", {"job": "run-triggers", "as_of": "2026-05-01T11:00:00Z"}, role="admin").body
    assert api.get(f"/v1/admin/jobs/{job['job_id']}", role="admin").body["counts"]["outbox_flushed"] == 1
    sent = _queue()
    assert [(m["template"], m["message_id"]) for m in sent] == [("tier_changed", parked[0]["message_id"])]
    assert list(OutboxRecord.scan()) == []


def test_common_case_sends_and_leaves_the_outbox_empty(api):
    from chalicelib.store.models import OutboxRecord

    api.enrol("ob2")
    assert api.accrue("ob2", 60000).status == 201
    assert [m["template"] for m in _queue()] == ["tier_changed"]
    assert list(OutboxRecord.scan()) == []
