"""PynamoDB models of the core tables. Key formats live here and nowhere else.

Tables are split by access pattern (and because moto copies every table a
transaction touches, small tables keep the emulator honest):

- members:      one item per member: profile + wallet + tier + counters (`state`).
                A points mutation reads it once and rewrites it conditionally on `version`.
- ledger:       member_id / seq: the append-only points ledger.
- orders:       order_id: an accrual's record, its stored response, refund totals.
- idempotency:  key: stored responses of refunds, activities, adjustments and
                Idempotency-Key requests (`{scope}#{id}`).
- config:       name: program settings and tiers.
- audit:        `audit` / `{at}#{id}`: admin actions.
- jobs:         job_id (+ `{job_id}#seg#{n}` checkpoints).
- lookups:      `{kind}#{code}`: unique codes (referral codes, ...).
"""
from __future__ import annotations

from pynamodb.attributes import JSONAttribute, NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection

from chalicelib.store.base import Record


class MembersBySegment(GlobalSecondaryIndex):
    """Sparse: only scored members carry `segment_label`."""

    class Meta:
        index_name = "by-segment"
        projection = KeysOnlyProjection()

    segment_label = UnicodeAttribute(hash_key=True)
    member_id = UnicodeAttribute(range_key=True)


class MembersByEmail(GlobalSecondaryIndex):
    """Sparse: only members with an email carry `email_key` (the email lower-cased); closing
    a member erases the email and so takes the member out of the index."""

    class Meta:
        index_name = "by-email"
        projection = KeysOnlyProjection()

    email_key = UnicodeAttribute(hash_key=True)
    member_id = UnicodeAttribute(range_key=True)


class MemberRecord(Record):
    class Meta(Record.Meta):
        resource = "members"

    member_id = UnicodeAttribute(hash_key=True)
    version = NumberAttribute(default=0)
    status = UnicodeAttribute(default="active")
    profile = JSONAttribute(default=dict)
    state = JSONAttribute(default=dict)
    segment_label = UnicodeAttribute(null=True)
    by_segment = MembersBySegment()
    email_key = UnicodeAttribute(null=True)  # admin lookup by email (SPEC 4.5); see store/members.email_key
    by_email = MembersByEmail()


class LedgerRecord(Record):
    class Meta(Record.Meta):
        resource = "ledger"

    member_id = UnicodeAttribute(hash_key=True)
    seq = NumberAttribute(range_key=True)
    entry = JSONAttribute()


class OrderRecord(Record):
    class Meta(Record.Meta):
        resource = "orders"

    order_id = UnicodeAttribute(hash_key=True)
    member_id = UnicodeAttribute()
    version = NumberAttribute(default=0)
    request_hash = UnicodeAttribute()
    data = JSONAttribute(default=dict)
    response = JSONAttribute(default=dict)


class IdempotencyRecord(Record):
    class Meta(Record.Meta):
        resource = "idempotency"

    key = UnicodeAttribute(hash_key=True)
    member_id = UnicodeAttribute(null=True)
    request_hash = UnicodeAttribute()
    status_code = NumberAttribute(default=201)
    response = JSONAttribute(null=True)
    expires_at = TTLAttribute(null=True)
    # An Idempotency-Key claimed before its request runs: `state` "in_progress" with the
    # claimer's `claim` token and `claimed_at` (epoch seconds); absent once the answer is stored.
    state = UnicodeAttribute(null=True)
    claim = UnicodeAttribute(null=True)
    claimed_at = NumberAttribute(null=True)


class ConfigRecord(Record):
    class Meta(Record.Meta):
        resource = "config"

    name = UnicodeAttribute(hash_key=True)
    version = NumberAttribute(default=0)
    body = JSONAttribute()
    updated_at = UnicodeAttribute(null=True)


class AuditRecord(Record):
    class Meta(Record.Meta):
        resource = "audit"

    pk = UnicodeAttribute(hash_key=True, default="audit")
    sk = UnicodeAttribute(range_key=True)
    entry = JSONAttribute()


class JobRecord(Record):
    class Meta(Record.Meta):
        resource = "jobs"

    job_id = UnicodeAttribute(hash_key=True)
    version = NumberAttribute(default=0)  # job records change only conditionally on it
    data = JSONAttribute(default=dict)
    expires_at = TTLAttribute(null=True)


class LookupRecord(Record):
    """Unique codes: `referral#CODE` → member. Conditional puts keep them unique."""

    class Meta(Record.Meta):
        resource = "lookups"

    key = UnicodeAttribute(hash_key=True)
    target = UnicodeAttribute()
    data = JSONAttribute(null=True)


CORE_MODELS = [MemberRecord, LedgerRecord, OrderRecord, IdempotencyRecord, ConfigRecord,
               AuditRecord, JobRecord, LookupRecord]


class OutboxRecord(Record):
    """Messages committed with the write that caused them, sent after it; a job flushes leftovers."""

    class Meta(Record.Meta):
        resource = "outbox"
        stream_view_type = "NEW_IMAGE"  # production: the stream feeds the relay function

    message_id = UnicodeAttribute(hash_key=True)
    body = JSONAttribute()
    created_at = UnicodeAttribute()
    expires_at = TTLAttribute(null=True)


class TierHistoryRecord(Record):
    class Meta(Record.Meta):
        resource = "tier-history"

    member_id = UnicodeAttribute(hash_key=True)
    at = UnicodeAttribute(range_key=True)
    change = JSONAttribute()


CORE_MODELS += [OutboxRecord, TierHistoryRecord]
