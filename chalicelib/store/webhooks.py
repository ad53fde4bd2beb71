"""PynamoDB models of webhooks and their deliveries (SPEC 2.16). Key formats live here.

- webhooks:            webhook_id → url, events, active, the signing secret.
- webhook-deliveries:  (webhook_id, event_id) → one delivery of one event to one webhook. The
                       key is the dedupe: enqueueing the same event twice writes nothing new.
  - `by-webhook`: a webhook's deliveries, newest first (`created_key` = sortable time # event).
  - `by-status`:  the same, for one status (`webhook_status` = `{webhook_id}#{status}`): the
                  dead-letter view is `#failed`.
  - `due`:        sparse, only pending deliveries carry `due` ("pending") and
                  `next_attempt_at`: the sender queries what is due, oldest first. Every
                  state change moves `next_attempt_at`, so a claim conditional on the
                  value read acts on the version read.
"""
from __future__ import annotations

from typing import Optional

from pynamodb.attributes import BooleanAttribute, JSONAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError, UpdateError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex

from chalicelib.store import tx
from chalicelib.store.base import Record, error_code

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


class WebhookRecord(Record):
    class Meta(Record.Meta):
        resource = "webhooks"

    webhook_id = UnicodeAttribute(hash_key=True)
    url = UnicodeAttribute()
    events = JSONAttribute()  # event types, or ["*"]
    active = BooleanAttribute()
    # Stored to sign with. In production it would be encrypted at rest with a KMS key (or kept
    # in Secrets Manager) and decrypted by the delivery function only.
    secret = UnicodeAttribute()
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()


class DeliveriesByWebhook(GlobalSecondaryIndex):
    class Meta:
        index_name = "by-webhook"
        projection = AllProjection()

    webhook_id = UnicodeAttribute(hash_key=True)
    created_key = UnicodeAttribute(range_key=True)


class DeliveriesByStatus(GlobalSecondaryIndex):
    class Meta:
        index_name = "by-status"
        projection = AllProjection()

    webhook_status = UnicodeAttribute(hash_key=True)
    created_key = UnicodeAttribute(range_key=True)


class DueDeliveries(GlobalSecondaryIndex):
    class Meta:
        index_name = "due"
        projection = AllProjection()  # the sender needs no second read

    due = UnicodeAttribute(hash_key=True)
    next_attempt_at = UnicodeAttribute(range_key=True)


class DeliveryRecord(Record):
    class Meta(Record.Meta):
        resource = "webhook-deliveries"

    webhook_id = UnicodeAttribute(hash_key=True)
    event_id = UnicodeAttribute(range_key=True)
    type = UnicodeAttribute()
    envelope = JSONAttribute()
    status = UnicodeAttribute()
    webhook_status = UnicodeAttribute()
    created_key = UnicodeAttribute()
    attempts = NumberAttribute(default=0)
    last_status_code = NumberAttribute(null=True)
    last_error = UnicodeAttribute(null=True)
    last_attempt_at = UnicodeAttribute(null=True)
    due = UnicodeAttribute(null=True)  # "pending" while pending, absent otherwise (sparse index)
    next_attempt_at = UnicodeAttribute(null=True)  # sortable UTC
    by_webhook = DeliveriesByWebhook()
    by_status = DeliveriesByStatus()
    due_index = DueDeliveries()


MODELS = [WebhookRecord, DeliveryRecord]


# --- webhooks ---------------------------------------------------------------------

def get_webhook(webhook_id: str) -> Optional[WebhookRecord]:
    return WebhookRecord.find(webhook_id)


def create_webhook_op(webhook_id: str, url: str, events: list, active: bool, secret: str, at: str) -> tx.Op:
    rec = WebhookRecord(webhook_id, url=url, events=events, active=active, secret=secret, created_at=at,
                        updated_at=at)
    return tx.put(rec, WebhookRecord.webhook_id.does_not_exist())


def update_webhook_op(webhook_id: str, changes: dict, at: str) -> tx.Op:
    actions = [getattr(WebhookRecord, name).set(value) for name, value in changes.items()]
    actions.append(WebhookRecord.updated_at.set(at))
    return tx.update(WebhookRecord(webhook_id), actions, WebhookRecord.webhook_id.exists())


def delete_webhook_op(webhook_id: str) -> tx.Op:
    return tx.delete(WebhookRecord(webhook_id), WebhookRecord.webhook_id.exists())


def webhooks_page(limit: int, cursor: Optional[dict]) -> tuple[list, Optional[dict]]:
    result = WebhookRecord.scan(limit=limit, last_evaluated_key=cursor)
    return list(result), result.last_evaluated_key


def all_webhooks() -> list:
    """Every webhook (a program has a handful: one scan)."""
    return list(WebhookRecord.scan())


# --- deliveries -------------------------------------------------------------------

def create_delivery(webhook_id: str, envelope: dict, created_sortable: str, due_at: str) -> bool:
    """A pending delivery, unless this (webhook, event) already has one. True when written."""
    rec = DeliveryRecord(webhook_id, envelope["event_id"], type=envelope["type"], envelope=envelope,
                         status=PENDING, webhook_status=f"{webhook_id}#{PENDING}",
                         created_key=f"{created_sortable}#{envelope['event_id']}", attempts=0,
                         due=PENDING, next_attempt_at=due_at)
    try:
        rec.save(DeliveryRecord.event_id.does_not_exist())
        return True
    except PutError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise


def get_delivery(webhook_id: str, event_id: str) -> Optional[DeliveryRecord]:
    return DeliveryRecord.find(webhook_id, event_id)


def due(now_sortable: str, limit: int) -> list:
    """Pending deliveries due by now, oldest first (the index projects them whole)."""
    return list(DeliveryRecord.due_index.query(PENDING, DeliveryRecord.next_attempt_at <= now_sortable, limit=limit))


def _update(webhook_id: str, event_id: str, actions: list, condition) -> bool:
    try:
        DeliveryRecord(webhook_id, event_id).update(actions=actions, condition=condition)
        return True
    except UpdateError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise


def claim(webhook_id: str, event_id: str, seen_next_attempt_at: str, lease_until: str) -> bool:
    """Take a due delivery for one attempt: its next attempt moves to the lease's end, so
    another sender skips it, and a sender that dies mid-attempt leaves it due again then."""
    return _update(webhook_id, event_id, [DeliveryRecord.next_attempt_at.set(lease_until)],
                   (DeliveryRecord.status == PENDING) & (DeliveryRecord.next_attempt_at == seen_next_attempt_at))


def record_attempt(webhook_id: str, event_id: str, *, leased_until: str, status: str, attempts: int,
                   status_code: Optional[int], error: Optional[str], attempted_at: str,
                   next_attempt_at: Optional[str]) -> bool:
    """The outcome of an attempt: delivered, failed, or pending again at `next_attempt_at`.
    Conditional on the lease still being ours (a redelivery meanwhile wins)."""
    actions = [DeliveryRecord.status.set(status), DeliveryRecord.webhook_status.set(f"{webhook_id}#{status}"),
               DeliveryRecord.attempts.set(attempts), DeliveryRecord.last_attempt_at.set(attempted_at)]
    actions.append(DeliveryRecord.last_status_code.set(status_code) if status_code is not None
                   else DeliveryRecord.last_status_code.remove())
    actions.append(DeliveryRecord.last_error.set(error) if error else DeliveryRecord.last_error.remove())
    if status == PENDING:
        actions += [DeliveryRecord.due.set(PENDING), DeliveryRecord.next_attempt_at.set(next_attempt_at)]
    else:
        actions += [DeliveryRecord.due.remove(), DeliveryRecord.next_attempt_at.remove()]
    return _update(webhook_id, event_id, actions,
                   (DeliveryRecord.status == PENDING) & (DeliveryRecord.next_attempt_at == leased_until))


def postpone(webhook_id: str, event_id: str, leased_until: str, next_attempt_at: str) -> bool:
    """Pending again later without counting an attempt (the webhook is paused)."""
    return _update(webhook_id, event_id, [DeliveryRecord.next_attempt_at.set(next_attempt_at)],
                   (DeliveryRecord.status == PENDING) & (DeliveryRecord.next_attempt_at == leased_until))


def reset_op(webhook_id: str, event_id: str, due_at: str) -> tx.Op:
    """Redeliver: pending again, due at `due_at`, a fresh retry schedule."""
    return tx.update(DeliveryRecord(webhook_id, event_id),
                     [DeliveryRecord.status.set(PENDING), DeliveryRecord.webhook_status.set(f"{webhook_id}#{PENDING}"),
                      DeliveryRecord.attempts.set(0), DeliveryRecord.due.set(PENDING),
                      DeliveryRecord.next_attempt_at.set(due_at)],
                     DeliveryRecord.event_id.exists())


def deliveries_page(webhook_id: str, status: Optional[str], limit: int,
                    cursor: Optional[dict]) -> tuple[list, Optional[dict]]:
    """A webhook's deliveries, newest first; only those of `status` when given."""
    if status:
        result = DeliveryRecord.by_status.query(f"{webhook_id}#{status}", scan_index_forward=False, limit=limit,
                                                last_evaluated_key=cursor)
    else:
        result = DeliveryRecord.by_webhook.query(webhook_id, scan_index_forward=False, limit=limit,
                                                 last_evaluated_key=cursor)
    return list(result), result.last_evaluated_key
