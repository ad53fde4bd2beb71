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
from typing import Optional

from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex

from chalicelib.store import tx
from chalicelib.store.base import Record
from chalicelib.store.models import LookupRecord


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


# --- the catalogue -------------------------------------------------------------------------

def get_reward(reward_id: str) -> Optional[RewardRecord]:
    return RewardRecord.find(reward_id)


def reward_key(reward_id: str) -> tuple:
    """A reward's key for `tx.get_many`."""
    return (RewardRecord, reward_id)


def reward_exists(reward_id: str) -> bool:
    return bool(RewardRecord.count(reward_id, consistent_read=True))


def all_rewards() -> list:
    """The whole catalogue (it is small: one scan)."""
    return list(RewardRecord.scan())


def new_reward(reward_id: str, data: dict, stock, updated_at: str) -> RewardRecord:
    return RewardRecord(reward_id, data=data, stock=stock, redeemed=0, updated_at=updated_at)


def create_op(rec: RewardRecord) -> tx.Op:
    """A new catalogue entry, only if its id is free."""
    return tx.put(rec, RewardRecord.reward_id.does_not_exist())


def delete_op(reward_id: str) -> tx.Op:
    """The entry out of the catalogue, only if it is there."""
    return tx.delete(RewardRecord(reward_id, data={}), RewardRecord.reward_id.exists())


# --- redemptions (vouchers) ------------------------------------------------------------------

def new_redemption(redemption_id: str, member_id: str, issued_at: str, expires_at: str, data: dict) -> RedemptionRecord:
    """An issued voucher, owned and paid for by `member_id`."""
    return RedemptionRecord(redemption_id, owner_id=member_id, payer_id=member_id, issued_at=issued_at,
                            status="issued", expires_at=expires_at, data=data)


def get_redemption(redemption_id: str) -> Optional[RedemptionRecord]:
    return RedemptionRecord.find(redemption_id)


def redemptions_page(owner_id: str, limit: int, cursor: Optional[dict]) -> tuple[list, Optional[dict]]:
    """A member's vouchers, newest first."""
    result = RedemptionRecord.by_owner.query(owner_id, scan_index_forward=False, limit=limit,
                                             last_evaluated_key=cursor)
    return list(result), result.last_evaluated_key


def create_redemption_op(red: RedemptionRecord) -> tx.Op:
    return tx.put(red, RedemptionRecord.redemption_id.does_not_exist())


def issued_update_op(red: RedemptionRecord, version_read: int) -> tx.Op:
    """The voucher as changed (`red.version` already the next), only while it is still the
    version read and still issued."""
    return tx.put(red, (RedemptionRecord.version == version_read) & (RedemptionRecord.status == "issued"))


def redemption_anchor() -> type:
    """A redemption as a unit of work's anchor (the write's own record)."""
    return RedemptionRecord


# --- voucher codes (lookups `voucher#CODE` → redemption) --------------------------------------

def voucher_redemption_id(code: str) -> Optional[str]:
    """The redemption a (normalised) voucher code names, None when none."""
    rec = LookupRecord.find(voucher_key(code))
    return rec.target if rec else None


def voucher_code_op(code: str, redemption_id: str) -> tx.Op:
    """Claim a code for a voucher; fails when another voucher holds it."""
    return tx.put(LookupRecord(voucher_key(code), target=redemption_id), LookupRecord.key.does_not_exist())


def voucher_code_release_op(code: str, redemption_id: str) -> tx.Op:
    return tx.delete(LookupRecord(voucher_key(code), target=redemption_id))


MODELS: list = [RewardRecord, RedemptionRecord]
