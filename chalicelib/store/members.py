"""Member items and their ledger: reads and the ops a points transaction is made of."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Optional

from chalicelib.store import tx
from chalicelib.store.base import dynamodb_client
from chalicelib.store.models import LedgerRecord, MemberRecord


@dataclass
class MemberRow:
    member_id: str
    version: int = 0
    status: str = "active"
    profile: dict = field(default_factory=dict)
    state: dict = field(default_factory=dict)

    @classmethod
    def from_record(cls, rec: MemberRecord) -> "MemberRow":
        return cls(rec.member_id, int(rec.version or 0), rec.status, dict(rec.profile or {}),
                   dict(rec.state or {}))


def get(member_id: str) -> Optional[MemberRow]:
    """One consistent GetItem, read as a raw item (the hot path of every points mutation)."""
    item = dynamodb_client().get_item(TableName=MemberRecord.table_name(), Key={"member_id": {"S": member_id}},
                                      ConsistentRead=True).get("Item")
    if item is None:
        return None
    v = MemberRecord.from_item(item)
    return MemberRow(v["member_id"], v["version"], v["status"], v["profile"], v["state"])


def from_record(rec: Optional[MemberRecord]) -> Optional[MemberRow]:
    return MemberRow.from_record(rec) if rec is not None else None


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


def save_op(row: MemberRow, expected_version: Optional[int]) -> tx.Op:
    """Write the whole member item, conditional on the version read (optimistic lock)."""
    segment = row.state.get("segment") or {}
    item = MemberRecord.to_item(member_id=row.member_id,
                                version=expected_version + 1 if expected_version is not None else 0,
                                status=row.status, profile=None, state=None,
                                segment_label=segment.get("label") if row.status == "active" else None,
                                email_key=email_key(row.profile.get("email")) if row.status != "closed" else None)
    item["profile"], item["state"] = {"S": compact_json(row.profile)}, {"S": compact_json(row.state)}
    if expected_version is None:
        return tx.put_item(MemberRecord, item, MemberRecord.member_id.does_not_exist())
    return tx.put_item(MemberRecord, item, MemberRecord.version == expected_version)


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


def batch_get(member_ids: list) -> dict[str, MemberRow]:
    """Consistent reads of these members (at most 100)."""
    return {r.member_id: MemberRow.from_record(r) for r in MemberRecord.batch_get(list(member_ids), consistent_read=True)}
