"""PynamoDB models of the rewards tables. Key formats live here and nowhere else.

- rewards:      reward_id → the catalogue entry (`data`); `stock` (units offered in all, absent
                = unlimited) and `redeemed` (units taken, net of cancellations) as top-level
                numbers, so a redemption takes a unit with one condition (`redeemed < stock`)
                and an edit of the entry, which sets `stock`, never touches `redeemed`.
- redemptions:  redemption_id → the voucher; `owner_id` is the member who holds it now
                (GSI `by-owner` lists a member's vouchers newest first), `payer_id` the
                member whose points paid for it. Voucher codes map to redemptions through
                the lookups table (`voucher#CODE`), written with a uniqueness condition.
"""
from __future__ import annotations

import json

from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex

from chalicelib.store.base import Record


class RewardRecord(Record):
    class Meta(Record.Meta):
        resource = "rewards"

    reward_id = UnicodeAttribute(hash_key=True)
    data = JSONAttribute()
    stock = NumberAttribute(null=True)
    redeemed = NumberAttribute(default=0)
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


def remaining(rec: RewardRecord):
    """Units left (None = unlimited); never below zero when the marketer lowered `stock`."""
    if rec.stock is None:
        return None
    return max(0, int(rec.stock) - int(rec.redeemed or 0))


def take_unit_op(reward_id: str) -> dict:
    """One unit of a reward, for the redemption's transaction: counted whether or not the
    reward is limited (so a later limit counts the units already sold)."""
    return {"Update": {
        "TableName": RewardRecord.table_name(), "Key": {"reward_id": {"S": reward_id}},
        "UpdateExpression": "ADD #red :one",
        "ConditionExpression": "attribute_exists(#id) AND (attribute_not_exists(#stock) OR #red < #stock)",
        "ExpressionAttributeNames": {"#red": "redeemed", "#stock": "stock", "#id": "reward_id"},
        "ExpressionAttributeValues": {":one": {"N": "1"}}}}


def return_unit_op(reward_id: str) -> dict:
    """A cancelled redemption's unit back (only for a reward still in the catalogue)."""
    return {"Update": {
        "TableName": RewardRecord.table_name(), "Key": {"reward_id": {"S": reward_id}},
        "UpdateExpression": "ADD #red :minus",
        "ConditionExpression": "attribute_exists(#id)",
        "ExpressionAttributeNames": {"#red": "redeemed", "#id": "reward_id"},
        "ExpressionAttributeValues": {":minus": {"N": "-1"}}}}


def replace_op(reward_id: str, data: dict, stock, updated_at: str) -> dict:
    """An edit of an existing entry: `data` and `stock` replaced, `redeemed` kept."""
    names = {"#data": "data", "#stock": "stock", "#at": "updated_at", "#id": "reward_id"}
    values = {":data": {"S": json.dumps(data)}, ":at": {"S": updated_at}}
    if stock is None:
        expr = "SET #data = :data, #at = :at REMOVE #stock"
    else:
        expr = "SET #data = :data, #at = :at, #stock = :stock"
        values[":stock"] = {"N": str(int(stock))}
    return {"Update": {"TableName": RewardRecord.table_name(), "Key": {"reward_id": {"S": reward_id}},
                       "UpdateExpression": expr, "ConditionExpression": "attribute_exists(#id)",
                       "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}}


def voucher_key(code: str) -> str:
    return "voucher#" + code


MODELS: list = [RewardRecord, RedemptionRecord]
