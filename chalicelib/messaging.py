"""Campaign messages (SPEC 2.12): composition and batched SQS sends.

Messages caused by a points write (tier_changed, reward_redeemed, ...) are put
in the outbox inside that write's transaction and sent right after it; if the
send fails they stay in the outbox and the next `run-triggers` flushes them, so
nothing is silently dropped.
"""
from __future__ import annotations

import hashlib
import json
import logging
import random
import time
import uuid
from typing import Iterable, Optional

from chalicelib import clients, clock
from chalicelib.config import get_settings
from chalicelib.errors import RetryLater

log = logging.getLogger("loyalty.messaging")

CHANNELS = ("email", "push", "sms")
CAMPAIGN_QUEUE = "campaign-messages"
_state: dict = {"client": None, "urls": {}}


def sqs_client():
    client = clients.client("sqs")
    if _state["client"] is not client:  # a new client (new settings): look the queues up again
        _state.update(client=client, urls={})
    return client


def queue_url(queue: str = CAMPAIGN_QUEUE) -> str:
    """The URL of one of the stack's queues (a `registry.QUEUES` name), looked up once."""
    client = sqs_client()
    urls = _state["urls"]
    if queue not in urls:
        urls[queue] = client.get_queue_url(QueueName=get_settings().resource_name(queue))["QueueUrl"]
    return urls[queue]


def message_id(source: str, member_id: str, period: str) -> str:
    """Deterministic per source, member and period: a re-run produces the same id."""
    digest = hashlib.sha256(f"{source}|{member_id}|{period}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=5))


def first_consented(consents: Optional[dict]) -> Optional[str]:
    for channel in CHANNELS:
        if (consents or {}).get(channel):
            return channel
    return None


def transactional_channel(consents: Optional[dict]) -> str:
    return first_consented(consents) or "email"


def compose(*, template: str, member_id: str, profile: dict, channel: str, variables: dict,
            source: str, period: str, campaign_id: Optional[str] = None, mid: Optional[str] = None) -> dict:
    """A message body; `mid`: its `message_id(source, member_id, period)` when already known."""
    return {
        "message_id": mid or message_id(source, member_id, period),
        "member_id": member_id,
        "channel": channel,
        "template": template,
        "locale": profile.get("locale") or "ja-JP",
        "campaign_id": campaign_id,
        "variables": {"name": profile.get("name"), **variables},
        "created_at": clock.iso(clock.now().replace(microsecond=0)),
    }


def send(messages: Iterable[dict], attempts: int = 5, queue: str = CAMPAIGN_QUEUE) -> int:
    """SendMessageBatch in batches of 10 to `queue`; failed entries are retried with backoff.

    Raises RetryLater when entries still fail after `attempts` (never drops them).
    """
    client = sqs_client()
    url = queue_url(queue)
    batch: list[dict] = []
    sent = 0
    for msg in messages:
        batch.append(msg)
        if len(batch) == 10:
            sent += _send_batch(client, url, batch, attempts)
            batch = []
    if batch:
        sent += _send_batch(client, url, batch, attempts)
    return sent


def _send_batch(client, url: str, batch: list[dict], attempts: int) -> int:
    pending = {str(i): m for i, m in enumerate(batch)}
    for attempt in range(attempts):
        entries = [{"Id": i, "MessageBody": json.dumps(m, separators=(",", ":"))} for i, m in pending.items()]
        resp = client.send_message_batch(QueueUrl=url, Entries=entries)
        for ok in resp.get("Successful", []):
            pending.pop(ok["Id"], None)
        if not pending:
            return len(batch)
        time.sleep(random.uniform(0, 0.05 * (2 ** attempt)))
    raise RetryLater(f"{len(pending)} messages could not be queued")
