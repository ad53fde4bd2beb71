"""PynamoDB models of the rewards tables. Key formats live here and nowhere else.

- rewards:      reward_id → the catalogue entry (`data`), `stock` as a top-level number so
                a redemption can decrement it conditionally (absent = unlimited).
- redemptions:  redemption_id → the voucher; `owner_id` is the member who holds it now
                (GSI `by-owner` lists a member's vouchers newest first), `payer_id` the
                member whose points paid for it. Voucher codes map to redemptions through
                the lookups table (`voucher#CODE`), written with a uniqueness condition.
"""
from __future__ import annotations

from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex

from chalicelib.store.base import Record


class RewardRecord(Record):
    class Meta(Record.Meta):
        resource = "rewards"

    reward_id = UnicodeAttribute(hash_key=True)
    data = JSONAttribute()
    stock = NumberAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)


class RedemptionsByOwner(GlobalSecondaryIndex):
    class Meta:
        index_name = "by-owner"
        projection = AllProjection()

    owner_id = UnicodeAttribute(hash_key=True)
    issued_at = UnicodeAttribute(range_key=True)


class RedemptionRecord(Record):
    class Meta(Record.Meta):
        resource = "redemptions"

    redemption_id = UnicodeAttribute(hash_key=True)
    owner_id = UnicodeAttribute()
    payer_id = UnicodeAttribute()
    issued_at = UnicodeAttribute()  # sortable timestamp
    status = UnicodeAttribute()
    expires_at = UnicodeAttribute()  # ISO instant
    version = NumberAttribute(default=0)
    data = JSONAttribute()
    by_owner = RedemptionsByOwner()


def voucher_key(code: str) -> str:
    return "voucher#" + code


MODELS: list = [RewardRecord, RedemptionRecord]
