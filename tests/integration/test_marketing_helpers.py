"""Helpers shared by the marketing, automations and segments tests (no tests here)."""
from __future__ import annotations

import json

EMAIL = {"email": True, "push": False, "sms": False}
PUSH = {"email": False, "push": True, "sms": False}


def drain() -> list:
    """Every message on the campaign queue (read and deleted)."""
    from chalicelib.messaging import queue_url, sqs_client

    out = []
    while True:
        msgs = sqs_client().receive_message(QueueUrl=queue_url(), MaxNumberOfMessages=10).get("Messages", [])
        if not msgs:
            return out
        for m in msgs:
            out.append(json.loads(m["Body"]))
            sqs_client().delete_message(QueueUrl=queue_url(), ReceiptHandle=m["ReceiptHandle"])


def job(api, name: str, as_of: str, expect: str = "succeeded") -> dict:
    r = api.post("/v1/admin/jobs", {"job": name, "as_of": as_of}, role="admin")
    assert r.status == 202, r.body
    body = api.get(f"/v1/admin/jobs/{r.body['job_id']}", role="admin").body
    assert body["status"] == expect, body
    return body


def templates(msgs: list, member: str = None) -> list:
    return sorted((m["template"], m["member_id"]) for m in msgs if member is None or m["member_id"] == member)


def enrol_at(api, member_id: str, at: str, **fields) -> None:
    r = api.post("/v1/members", {"member_id": member_id, **fields}, now=at)
    assert r.status == 201, r.body


def settings(api, **changes) -> None:
    current = api.get("/v1/admin/settings", role="admin").body
    r = api.put("/v1/admin/settings", {**current, **changes}, role="admin")
    assert r.status == 200, r.body


def only(api, *names: str, **params) -> None:
    """Switch every automation and trigger off but `names` (with `params[name]` merged)."""
    current = api.get("/v1/admin/settings", role="admin").body
    autos = {k: {**v, "enabled": k in names, **params.get(k, {})} for k, v in current["automations"].items()}
    settings(api, automations=autos)
