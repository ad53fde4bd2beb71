"""PynamoDB models of the marketing tables. Key formats live here and nowhere else.

- outreach:          member_id → the member's message log: ids of messages already
                     queued (dedupe, 400 days) and the times of marketing sends (the
                     weekly cap, 7 days), with a `version` every write is conditional on
                     (a chunk's claims are one TransactWriteItems: see docs/MESSAGING.md).
- outreach-pending:  batch_id → messages claimed in the logs and about to be sent (written
                     in the claims' transaction, deleted after the send; `run-triggers`
                     re-sends the claimed ones a crash left behind).
- member-events:     member_id / `{at}#{event_id}` → storefront events, TTL 60 days. Events
                     a trigger may still fire for carry `pending_member`, which puts them in
                     the sparse `pending-triggers` index the hourly job scans.
- favorites:         sku / member_id → the member's latest favourite event for the sku
                     (`added` or `removed`, with its time, so late events lose).
- feedback:          feedback_id → score, comment, member, time, stored response.
- nps-daily:         `nps` / `{day}#{shard}` → promoters, passives, detractors counted in
                     the same transaction as each feedback (the 90-day NPS is one query).
- message-campaigns: campaign_id → a broadcast and its counts; the `by-created` index
                     lists them newest first.
- segment-reports:   `latest` → counts of the last `score-rfm` run.
"""
from __future__ import annotations

import hashlib
import secrets
import zlib
from typing import Iterable, Iterator, Optional

from pynamodb.exceptions import UpdateError
from pynamodb.attributes import JSONAttribute, NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection

from chalicelib import clock
from chalicelib.store import tx
from chalicelib.store.base import Conflict, Record, error_code

NPS_SHARDS = 4


# --- outreach ----------------------------------------------------------------------------

class OutreachRecord(Record):
    class Meta(Record.Meta):
        resource = "outreach"

    member_id = UnicodeAttribute(hash_key=True)
    version = NumberAttribute(default=0)
    sent = JSONAttribute(default=dict)  # message_id -> ISO time queued
    marketing = JSONAttribute(default=list)  # ISO times of marketing sends
    claim = UnicodeAttribute(null=True)  # token of the claim that wrote this version


class PendingMessagesRecord(Record):
    class Meta(Record.Meta):
        resource = "outreach-pending"

    batch_id = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute()
    messages = JSONAttribute(default=list)


def batch_get_outreach(member_ids: Iterable[str]) -> dict[str, OutreachRecord]:
    ids = list(dict.fromkeys(member_ids))
    out: dict[str, OutreachRecord] = {}
    for i in range(0, len(ids), 100):
        for rec in OutreachRecord.batch_get(ids[i:i + 100], consistent_read=True):
            out[rec.member_id] = rec
    return out


_LOST_TO_ANOTHER_WRITER = ("ConditionalCheckFailed", "TransactionConflict")


def claim_outreach(writes: list, pending: dict[str, list], extra: tuple | list = ()) -> set[str]:
    """Claim: in one TransactWriteItems (at most 100 items), write the members' logs
    (`writes`: (member_id, version read or None when absent, sent, marketing)), each
    conditional on the version read, and the pending items (batch_id → messages, fresh
    ids) that hold the messages until they are sent. Returns the members whose log
    write committed.

    A member whose log another writer changed in between (its condition failed, or a write
    to it was in flight: TransactionConflict) is left out and the others are written again
    without it; the caller re-reads the left-out members and decides again. Every log
    written carries this claim's token, so a claim that committed but whose answer was lost
    (the SDK's retry then fails the condition) is recognised as ours on the re-read."""
    token = secrets.token_hex(8)
    todo = list(writes)
    committed: set[str] = set()
    created_at = clock.iso(clock.now())
    pending_ops = [tx.put_item(PendingMessagesRecord, PendingMessagesRecord.to_item(
                       batch_id=batch_id, created_at=created_at, messages=messages))
                   for batch_id, messages in pending.items()] + list(extra)  # e.g. the exposure batch
    while todo:
        log_ops = [tx.put_item(OutreachRecord, OutreachRecord.to_item(
                       member_id=member_id, version=(version or 0) + 1, sent=sent, marketing=marketing, claim=token),
                       OutreachRecord.member_id.does_not_exist() if version is None
                       else OutreachRecord.version == version)
                   for member_id, version, sent, marketing in todo]
        try:
            tx.write(pending_ops + log_ops, token=secrets.token_hex(16))
            committed.update(w[0] for w in todo)
            break
        except (tx.TxCancelled, Conflict) as exc:
            pending_codes, log_codes = exc.codes[:len(pending_ops)], exc.codes[len(pending_ops):]
            lost = {i for i, c in enumerate(log_codes) if c in _LOST_TO_ANOTHER_WRITER}
            if not lost or any(pending_codes) or any(c not in (None, *_LOST_TO_ANOTHER_WRITER) for c in log_codes):
                raise
            todo = [w for i, w in enumerate(todo) if i not in lost]
    left_out = [w[0] for w in writes if w[0] not in committed]
    if left_out:
        committed.update(m for m, rec in batch_get_outreach(left_out).items() if rec.claim == token)
    return committed


def pending_delete(batch_ids: Iterable[str]) -> None:
    with PendingMessagesRecord.batch_write() as batch:
        for b in batch_ids:
            batch.delete(PendingMessagesRecord(b, created_at="", messages=[]))


def stale_pending(older_than: str) -> Iterator[PendingMessagesRecord]:
    return PendingMessagesRecord.scan(PendingMessagesRecord.created_at <= older_than, consistent_read=True)


# --- storefront events and favourites ---------------------------------------------------

class PendingTriggers(GlobalSecondaryIndex):
    """Sparse: only events a trigger may still fire for carry `pending_member`."""

    class Meta:
        index_name = "pending-triggers"
        projection = AllProjection()

    pending_member = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)


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
    pending_member = UnicodeAttribute(null=True)
    expires_at = TTLAttribute(null=True)
    pending_triggers = PendingTriggers()


def event_record(member_id: str, event_id: str, type_: str, occurred, sku: Optional[str], data: Optional[dict],
                 pending: bool, ttl) -> MemberEventRecord:
    return MemberEventRecord(member_id, f"{clock.sortable(occurred)}#{event_id}", event_id=event_id, type=type_,
                             occurred_at=clock.iso(occurred), sku=sku, data=data,
                             pending_member=member_id if pending else None, expires_at=ttl)


class _PendingEventsScan:
    """Lets the job framework's checkpointed parallel scan walk the sparse index
    (a GSI cannot be read consistently, so that flag is dropped)."""

    @staticmethod
    def scan(filter_condition=None, consistent_read=None, **kwargs):
        return MemberEventRecord.pending_triggers.scan(filter_condition, **kwargs)


PENDING_EVENTS = _PendingEventsScan()


def clear_pending(event: MemberEventRecord) -> None:
    event.update(actions=[MemberEventRecord.pending_member.remove()])


class FavoriteRecord(Record):
    class Meta(Record.Meta):
        resource = "favorites"

    sku = UnicodeAttribute(hash_key=True)
    member_id = UnicodeAttribute(range_key=True)
    state = UnicodeAttribute(default="added")  # added | removed
    at = UnicodeAttribute()  # time of the event that set the state


def get_favorite(sku: str, member_id: str) -> Optional[FavoriteRecord]:
    return FavoriteRecord.find(sku, member_id)


def favorite_op(sku: str, member_id: str, state: str, at: str, read: Optional[FavoriteRecord]) -> tx.Op:
    """Set the favourite state, conditional on what was read (a concurrent event → retry)."""
    rec = FavoriteRecord(sku, member_id, state=state, at=at)
    if read is None:
        return tx.put(rec, FavoriteRecord.member_id.does_not_exist())
    return tx.put(rec, FavoriteRecord.at == read.at)


def followers(sku: str) -> Iterator[str]:
    for rec in FavoriteRecord.query(sku, filter_condition=FavoriteRecord.state == "added"):
        yield rec.member_id


# --- feedback and NPS --------------------------------------------------------------------

class CommentsByMember(GlobalSecondaryIndex):
    """Sparse: feedback that still carries a comment, by member (erased on closing)."""

    class Meta:
        index_name = "comments-by-member"
        projection = KeysOnlyProjection()

    commenter = UnicodeAttribute(hash_key=True)
    at = UnicodeAttribute(range_key=True)


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
    commenter = UnicodeAttribute(null=True)  # the member, while `comment` is kept
    expires_at = TTLAttribute(null=True)
    comments_by_member = CommentsByMember()


class NpsDayRecord(Record):
    class Meta(Record.Meta):
        resource = "nps-daily"

    pk = UnicodeAttribute(hash_key=True, default="nps")
    sk = UnicodeAttribute(range_key=True)
    promoters = NumberAttribute(default=0)
    passives = NumberAttribute(default=0)
    detractors = NumberAttribute(default=0)


def get_feedback(feedback_id: str) -> Optional[FeedbackRecord]:
    return FeedbackRecord.find(feedback_id)


def erase_comments(member_id: str) -> int:
    """Remove the free-text comments a member left (personal data), keeping the scores."""
    erased = 0
    for key in FeedbackRecord.comments_by_member.query(member_id):
        try:
            FeedbackRecord(key.feedback_id).update(
                actions=[FeedbackRecord.comment.remove(), FeedbackRecord.commenter.remove()],
                condition=FeedbackRecord.commenter == member_id)
            erased += 1
        except UpdateError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":  # expired or already erased
                raise
    return erased


def feedback_ops(feedback_id: str, *, member_id: str, score: int, at: str, request_hash: str, response: dict,
                 comment: Optional[str], expires_at, bucket: str) -> list:
    """The feedback (new ids only: the condition makes a twin a replay) and its NPS day counter,
    for one transaction. The comment's author is kept while the comment is (erased on closing)."""
    rec = FeedbackRecord(feedback_id, member_id=member_id, score=score, at=at, request_hash=request_hash,
                         response=response, comment=comment, commenter=member_id if comment else None,
                         expires_at=expires_at)
    shard = int(hashlib.sha256(rec.feedback_id.encode()).hexdigest(), 16) % NPS_SHARDS
    counter = NpsDayRecord("nps", f"{rec.at[:10]}#{shard}")
    return [tx.put(rec, FeedbackRecord.feedback_id.does_not_exist()),
            tx.update(counter, [getattr(NpsDayRecord, bucket).add(1)])]


def feedback_anchor() -> type:
    """The feedback as a unit of work's anchor (the write's own record)."""
    return FeedbackRecord


def nps_counts(first_day: str, last_day: str) -> dict:
    totals = {"promoters": 0, "passives": 0, "detractors": 0}
    for rec in NpsDayRecord.query("nps", NpsDayRecord.sk.between(first_day, last_day + "#~"), consistent_read=True):
        totals["promoters"] += int(rec.promoters or 0)
        totals["passives"] += int(rec.passives or 0)
        totals["detractors"] += int(rec.detractors or 0)
    return totals


# --- message campaigns -------------------------------------------------------------------

class CampaignsByCreated(GlobalSecondaryIndex):
    class Meta:
        index_name = "by-created"
        projection = AllProjection()

    kind = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class MessageCampaignRecord(Record):
    class Meta(Record.Meta):
        resource = "message-campaigns"

    campaign_id = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute(default="message-campaign")
    created_at = UnicodeAttribute()
    data = JSONAttribute()
    by_created = CampaignsByCreated()


def campaign_create_op(campaign_id: str, data: dict) -> tx.Op:
    rec = MessageCampaignRecord(campaign_id, created_at=f"{clock.sortable(clock.now())}#{campaign_id}", data=data)
    return tx.put(rec, MessageCampaignRecord.campaign_id.does_not_exist())


def get_campaign(campaign_id: str) -> Optional[MessageCampaignRecord]:
    return MessageCampaignRecord.find(campaign_id)


def save_campaign(rec: MessageCampaignRecord, data: dict) -> None:
    rec.update(actions=[MessageCampaignRecord.data.set(data)])


def campaigns_page(limit: int, after: Optional[str]) -> tuple[list[dict], Optional[str]]:
    """Newest first; `after` is the `created_at` of the last item of the previous page."""
    last_key = None
    if after:
        last_key = {"kind": {"S": "message-campaign"}, "created_at": {"S": after},
                    "campaign_id": {"S": after.split("#", 1)[1] if "#" in after else after}}
    result = MessageCampaignRecord.by_created.query("message-campaign", scan_index_forward=False, limit=limit,
                                                    last_evaluated_key=last_key)
    items = list(result)
    nxt = items[-1].created_at if items and result.last_evaluated_key else None
    return [dict(r.data) for r in items], nxt


# --- segments ----------------------------------------------------------------------------

class SegmentReportRecord(Record):
    class Meta(Record.Meta):
        resource = "segment-reports"

    name = UnicodeAttribute(hash_key=True)
    data = JSONAttribute()


def save_report(data: dict) -> None:
    SegmentReportRecord("latest", data=data).save()


def latest_report() -> Optional[dict]:
    rec = SegmentReportRecord.find("latest")
    return dict(rec.data) if rec else None


class _Page(list):
    last_evaluated_key: Optional[dict] = None


class MemberIdList:
    """An explicit list of member ids that the job framework's checkpointed parallel scan
    can walk like a table: segment k holds the ids whose crc32 % segments == k, a page is
    one BatchGetItem, and the checkpoint is the offset into the segment's sorted ids."""

    def __init__(self, member_ids: Iterable[str]):
        self.ids = sorted(set(member_ids))

    def scan(self, filter_condition=None, segment: int = 0, total_segments: int = 1, limit: int = 100,
             last_evaluated_key: Optional[dict] = None, **_ignored) -> _Page:
        from chalicelib.store.models import MemberRecord

        part = [m for m in self.ids if zlib.crc32(m.encode()) % total_segments == segment]
        start = int((last_evaluated_key or {}).get("offset", 0))
        end = start + min(int(limit or 100), 100)
        page = _Page(MemberRecord.batch_get(part[start:end], consistent_read=True))
        page.last_evaluated_key = {"offset": end} if end < len(part) else None
        return page


def segment_member_ids(label: str, limit: int, after: Optional[str]) -> tuple[list[str], Optional[str]]:
    """Member ids in a segment (the members table's sparse `by-segment` index)."""
    from chalicelib.store.models import MemberRecord

    last_key = {"segment_label": {"S": label}, "member_id": {"S": after}} if after else None
    result = MemberRecord.by_segment.query(label, limit=limit, last_evaluated_key=last_key)
    ids = [r.member_id for r in result]
    return ids, (ids[-1] if ids and result.last_evaluated_key else None)


MODELS: list = [OutreachRecord, PendingMessagesRecord, MemberEventRecord, FavoriteRecord, FeedbackRecord,
                NpsDayRecord, MessageCampaignRecord, SegmentReportRecord]
