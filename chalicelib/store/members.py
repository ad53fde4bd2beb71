"""Member items and their ledger: reads and the ops a points transaction is made of."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterator, Optional

from chalicelib.domain.member import Member
from chalicelib.store import tx
from chalicelib.store.base import dynamodb_client
from chalicelib.store.models import LedgerRecord, LookupRecord, MemberRecord


def _member(v: dict) -> Member:
    return Member.from_state(v["member_id"], int(v.get("version") or 0), v.get("status") or "active",
                             v.get("profile"), v.get("state"))


def from_record(rec: Optional[MemberRecord]) -> Optional[Member]:
    """A member read as a record (a transactional or batch read) as the aggregate."""
    if rec is None:
        return None
    return Member.from_state(rec.member_id, int(rec.version or 0), rec.status, rec.profile, rec.state)


def key(member_id: str) -> tuple:
    """The member's key for `tx.get_many` (a transactional read beside other items)."""
    return (MemberRecord, member_id)


def get(member_id: str) -> Optional[Member]:
    """One consistent GetItem, read as a raw item (the hot path of every points mutation)."""
    item = dynamodb_client().get_item(TableName=MemberRecord.table_name(), Key={"member_id": {"S": member_id}},
                                      ConsistentRead=True).get("Item")
    return _member(MemberRecord.from_item(item)) if item is not None else None


def compact_json(value: dict) -> str:
    """The member's JSON as stored: no spaces after separators and UTF-8 as is (a kana name is
    3 bytes a character, not a 6-byte escape). The item is rewritten by every points write and
    billed per started KB (docs/PERFORMANCE.md, `item_growth`); JSONAttribute reads it alike."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate from a JSON escape: keep it escaped
            return json.dumps(value, separators=(",", ":"))
    return text


def save_op(member: Member) -> tx.Op:
    """Write the whole member item, conditional on the version read (optimistic lock): a new
    member (version None) only if its id is free."""
    expected = member.version
    item = MemberRecord.to_item(member_id=member.member_id, version=expected + 1 if expected is not None else 0,
                                status=member.status, profile=None, state=None,
                                segment_label=member.segment_label if member.active else None,
                                email_key=email_key(member.profile.get("email")) if member.status != "closed" else None)
    item["profile"], item["state"] = {"S": compact_json(member.profile)}, {"S": compact_json(member.to_state())}
    if expected is None:
        return tx.put_item(MemberRecord, item, MemberRecord.member_id.does_not_exist())
    return tx.put_item(MemberRecord, item, MemberRecord.version == expected)


def active_check_op(member_id: str) -> tx.Op:
    """A condition check, in another item's transaction, that a member (not written) is active."""
    return tx.check(MemberRecord, member_id, condition=MemberRecord.status == "active")


def anchor() -> type:
    """The member item as a unit of work's anchor (the write's own record)."""
    return MemberRecord


def ledger_op(member_id: str, seq: int, entry: dict) -> tx.Op:
    return tx.put_item(LedgerRecord, LedgerRecord.to_item(member_id=member_id, seq=seq, entry=entry),
                       LedgerRecord.seq.does_not_exist())


def ledger_page(member_id: str, limit: int, cursor: Optional[dict]) -> tuple[list[dict], Optional[dict]]:
    result = LedgerRecord.query(member_id, scan_index_forward=False, limit=limit, last_evaluated_key=cursor)
    items = [r.entry for r in result]
    return items, result.last_evaluated_key


def ledger_sum(member_id: str) -> int:
    """Σ points of a member's ledger (tests and the invariant checker)."""
    return sum(int(r.entry["points"]) for r in LedgerRecord.query(member_id, consistent_read=True))


# --- the admin lookup by email (SPEC 4.5) ---------------------------------------------
# Every member write (save_op) sets `email_key` from the profile, so enrolment, a profile
# change and closing (which erases the email) keep the sparse `by-email` index exact.

def email_key(email: Optional[str]) -> Optional[str]:
    """The index key of an email: exact match, case-insensitive; None for no email."""
    key = (email or "").strip().lower()
    return key or None


def ids_by_email(key: str, limit: int, cursor: Optional[dict]) -> tuple[list[str], Optional[dict]]:
    result = MemberRecord.by_email.query(key, limit=limit, last_evaluated_key=cursor)
    return [r.member_id for r in result], result.last_evaluated_key


def batch_get(member_ids, consistent: bool = True) -> dict[str, Member]:
    """Reads of these members (any number, 100 a call); missing ids are absent."""
    ids = list(dict.fromkeys(member_ids))
    out: dict[str, Member] = {}
    for i in range(0, len(ids), 100):
        for r in MemberRecord.batch_get(ids[i:i + 100], consistent_read=consistent):
            out[r.member_id] = from_record(r)
    return out


def scan(active_only: bool = False) -> Iterator[Member]:
    """Every member (a marketer's batch action, never a request's path)."""
    condition = MemberRecord.status == "active" if active_only else None
    for rec in MemberRecord.scan(condition):
        yield from_record(rec)


def estimated_count() -> int:
    """The table's item count as DynamoDB last estimated it (about every six hours)."""
    return int(MemberRecord.describe_table().get("ItemCount", 0))


# --- referral codes (a lookup item per code, written in the member's transaction) -------------

def _referral_key(code: str) -> str:
    return "referral#" + code


def referral_owner(code: str) -> Optional[str]:
    """The member whose referral code this is (the code as normalised), None when none."""
    rec = LookupRecord.find(_referral_key(code), consistent=False)
    return rec.target if rec else None


def referral_op(code: str, member_id: str) -> tx.Op:
    """Claim a referral code for a member; fails (a collision) when another holds it."""
    return tx.put(LookupRecord(_referral_key(code), target=member_id), LookupRecord.key.does_not_exist())


def referral_release_op(code: str, member_id: str) -> tx.Op:
    return tx.delete(LookupRecord(_referral_key(code), target=member_id))


# --- the scoring job's raw path (services/segments.py) -------------------------------------
# score-rfm reads every member and writes back those whose segment changed: raw items, so a
# put keeps every attribute as stored (known to this code or not) and no aggregate is built
# per member on the hot path of a 10M-member scan.

@dataclass(frozen=True)
class Read:
    """A member item as the scan read it, raw (every attribute as stored) and its parsed state."""
    member_id: str
    version: int
    status: str
    state: dict
    item: dict

    @classmethod
    def of(cls, item: dict) -> "Read":
        state = item.get("state", {}).get("S")
        return cls(item["member_id"]["S"], int(item.get("version", {}).get("N") or 0),
                   item.get("status", {}).get("S") or "active", json.loads(state) if state else {}, item)


class RawMembers:
    """The members table for `JobContext.scan`, read raw: pages of Read instead of records
    (the write puts the item back as read with only its state, index key and version
    changed, so every attribute, known to this code or not, is kept as stored)."""

    _hash_keyname = "member_id"

    class _Page(list):
        last_evaluated_key = None

    @classmethod
    def scan(cls, filter_condition=None, segment=None, total_segments=None, limit=None, last_evaluated_key=None,
             consistent_read=False):
        kw = {"TableName": MemberRecord.table_name(), "ConsistentRead": consistent_read}
        if total_segments:
            kw.update(Segment=segment, TotalSegments=total_segments)
        if limit:
            kw["Limit"] = limit
        if last_evaluated_key:
            kw["ExclusiveStartKey"] = last_evaluated_key
        result = dynamodb_client().scan(**kw)
        page = cls._Page(Read.of(item) for item in result.get("Items", []))
        page.last_evaluated_key = result.get("LastEvaluatedKey")
        return page


def segment_put_op(read: Read, new: dict) -> tuple:
    """The member item as read with its new `segment` in the state, its index key and the
    next version, put conditional on the version read (the optimistic lock of every member
    write), and the op's size in bytes. A put of the item as read, not an update: on the
    emulator an update expression costs ~3x a put (DynamoDB bills both by item size)."""
    state = compact_json({**read.state, "segment": new})
    item = {**read.item, "state": {"S": state}, "segment_label": {"S": new["label"]},
            "version": {"N": str(read.version + 1)}}
    op = {"Put": {"TableName": MemberRecord.table_name(), "Item": item, "ConditionExpression": "#v = :read",
                  "ExpressionAttributeNames": {"#v": "version"},
                  "ExpressionAttributeValues": {":read": {"N": str(read.version)}}}}
    return op, len(state.encode()) + sum(len(v.get("S", "")) for k, v in read.item.items() if k != "state") + 200


def reread(member_ids: list) -> dict:
    """Consistent reads of these members as Read (BatchGetItem, 100 a call)."""
    out: dict = {}
    for i in range(0, len(member_ids), 100):
        keys = [{"member_id": {"S": m}} for m in member_ids[i:i + 100]]
        while keys:
            result = dynamodb_client().batch_get_item(RequestItems={
                MemberRecord.table_name(): {"Keys": keys, "ConsistentRead": True}})
            for item in result.get("Responses", {}).get(MemberRecord.table_name(), []):
                out[item["member_id"]["S"]] = Read.of(item)
            keys = (result.get("UnprocessedKeys") or {}).get(MemberRecord.table_name(), {}).get("Keys") or []
    return out
