"""End to end through the real `make run` stack: chalice local + the locked emulator."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import requests

from tests.e2e.conftest import ROOT


def cli(*args: str, emulator: str) -> str:
    env = {**os.environ, "LOYALTY_STAGE": "local", "AWS_ENDPOINT_URL": emulator,
           "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
    out = subprocess.run([sys.executable, "-m", "chalicelib.cli", *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_a_members_day_over_http(live_server):
    base, emulator = live_server["base"] + "/v1", live_server["emulator"]
    svc = {"Authorization": "Bearer " + cli("token", "--role", "service", "--sub", "pos", emulator=emulator)}
    member = {"Authorization": "Bearer " + cli("token", "--role", "member", "--sub", "e2e-1", emulator=emulator)}
    other = {"Authorization": "Bearer " + cli("token", "--role", "member", "--sub", "e2e-2", emulator=emulator)}
    admin = {"Authorization": "Bearer " + cli("token", "--role", "admin", "--sub", "ops", emulator=emulator)}
    # the session's server may have been fuzzed before: back to the documented defaults
    from chalicelib.schemas.program import DEFAULT_TIERS

    assert requests.put(f"{base}/admin/settings", headers=admin, json={}).status_code == 200
    assert requests.put(f"{base}/admin/tiers", headers=admin, json=DEFAULT_TIERS).status_code == 200

    r = requests.post(f"{base}/members", headers=member, json={"member_id": "e2e-1", "name": "E2E",
                                                                "consents": {"email": True}})
    assert r.status_code == 201, r.text
    assert requests.post(f"{base}/members", headers=member, json={"member_id": "e2e-1"}).json()["error"]["code"] \
        == "ALREADY_EXISTS"
    order = {"order_id": "e2e-o1", "total_amount": 61000, "currency": "JPY"}
    r = requests.post(f"{base}/members/e2e-1/accruals", headers=svc, json=order)
    assert r.status_code == 201, r.text
    assert r.json()["points_earned"] == 610 and r.json()["tier_change"] == {"from": "bronze", "to": "silver"}
    replay = requests.post(f"{base}/members/e2e-1/accruals", headers=svc, json=order)
    assert replay.status_code == 200 and replay.json() == r.json()

    view = requests.get(f"{base}/members/e2e-1", headers=member).json()
    assert view["points"]["available"] == 610 and view["tier"]["tier_id"] == "silver"
    assert requests.get(f"{base}/members/e2e-1", headers=other).status_code == 403
    ledger = requests.get(f"{base}/members/e2e-1/ledger", headers=member).json()
    assert [(e["type"], e["points"], e["balance_after"]) for e in ledger["items"]] == [("earn", 610, 610)]

    # the tier_changed message sits on the emulator's queue, for the delivery service
    import boto3

    sqs = boto3.client("sqs", endpoint_url=emulator, region_name="us-east-1",
                       aws_access_key_id="local", aws_secret_access_key="local")
    url = sqs.get_queue_url(QueueName="loyalty-local-campaign-messages")["QueueUrl"]
    bodies = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            break
        bodies += [json.loads(m["Body"]) for m in batch]
    mine = [(b["template"], b["channel"], b["variables"]["tier"]) for b in bodies if b["member_id"] == "e2e-1"]
    assert mine == [("tier_changed", "email", "silver")]

    # a job run from the CLI against the same emulator, then read through the API
    out = json.loads(cli("job", "expire-points", "--as-of", "2099-01-01", emulator=emulator).splitlines()[-1])
    assert out["status"] == "succeeded" and out["counts"]["points_expired"] == 610
    assert requests.get(f"{base}/members/e2e-1", headers=member).json()["points"]["available"] == 0
