"""PynamoDB models of the marketing tables. Key formats live here and nowhere else.

- outreach:           member_id → the member's message log: ids of messages already queued
                      (dedupe, kept 400 days) and the times of marketing sends (the weekly
                      cap, kept 7 days). Read with BatchGetItem, written with BatchWriteItem.
- member-events:      member_id / `{at}#{event_id}` → storefront events (cart abandoned,
                      product viewed, favourites), TTL 60 days; `pending` marks events a
                      trigger may still fire for.
- favorites:          sku / member_id → who has the sku in their favourites.
- feedback:           feedback_id → score, comment, member, time (NPS), TTL 400 days.
- message-campaigns:  campaign_id → a broadcast and its counts.
- segment-reports:    `latest` → counts of the last `score-rfm` run.
"""
from __future__ import annotations

from typing import Iterable

from pynamodb.attributes import BooleanAttribute, JSONAttribute, NumberAttribute, TTLAttribute, UnicodeAttribute

from chalicelib.store.base import Record


class OutreachRecord(Record):
    class Meta(Record.Meta):
        resource = "outreach"

    member_id = UnicodeAttribute(hash_key=True)
    sent_ids = JSONAttribute(default=dict)  # message_id -> ISO time
    marketing = JSONAttribute(default=list)  # ISO times of marketing sends


class MemberEventRecord(Record):
    class Meta(Record.Meta):
        resource = "member-events"

    member_id = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    event_id = UnicodeAttribute()
    type = UnicodeAttribute()
    occurred_at = UnicodeAttribute()
    sku = UnicodeAttribute(null=True)
    data = JSONAttribute(null=True)
    pending = BooleanAttribute(null=True)
    expires_at = TTLAttribute(null=True)


class FavoriteRecord(Record):
    class Meta(Record.Meta):
        resource = "favorites"

    sku = UnicodeAttribute(hash_key=True)
    member_id = UnicodeAttribute(range_key=True)
    added_at = UnicodeAttribute()


class FeedbackRecord(Record):
    class Meta(Record.Meta):
        resource = "feedback"

    feedback_id = UnicodeAttribute(hash_key=True)
    member_id = UnicodeAttribute()
    score = NumberAttribute()
    at = UnicodeAttribute()
    request_hash = UnicodeAttribute()
    response = JSONAttribute()
    comment = UnicodeAttribute(null=True)
    expires_at = TTLAttribute(null=True)


class MessageCampaignRecord(Record):
    class Meta(Record.Meta):
        resource = "message-campaigns"

    campaign_id = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute()
    data = JSONAttribute()


class SegmentReportRecord(Record):
    class Meta(Record.Meta):
        resource = "segment-reports"

    name = UnicodeAttribute(hash_key=True)
    data = JSONAttribute()


def batch_get_outreach(member_ids: Iterable[str]) -> dict[str, OutreachRecord]:
    ids = list(dict.fromkeys(member_ids))
    out: dict[str, OutreachRecord] = {}
    for i in range(0, len(ids), 100):
        for rec in OutreachRecord.batch_get(ids[i:i + 100], consistent_read=True):
            out[rec.member_id] = rec
    return out


def batch_put(records: Iterable[Record]) -> None:
    """BatchWriteItem in 25s; PynamoDB retries unprocessed items with backoff."""
    records = list(records)
    if not records:
        return
    by_model: dict = {}
    for r in records:
        by_model.setdefault(type(r), []).append(r)
    for model, recs in by_model.items():
        with model.batch_write() as batch:
            for r in recs:
                batch.save(r)


MODELS: list = [OutreachRecord, MemberEventRecord, FavoriteRecord, FeedbackRecord, MessageCampaignRecord,
                SegmentReportRecord]
