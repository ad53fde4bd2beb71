"""PynamoDB models of transfers and merges (SPEC 2.15). Key formats live here.

- transfers:       transfer_id → the transfer: who sent how many points to whom, the lots
                   they came from, the request's hash and the stored answer (a replay
                   returns it). The anchor of the transfer's transaction.
- transfer-lines:  member_id / `{sortable created_at}#{transfer_id}`: one line for the
                   sender (`out`) and one for the recipient (`in`), so a member's
                   transfers in and out list newest first from one query.
- merges:          merge_id → which member was merged into which, the request's hash and
                   what moved. The anchor of the merge's transaction.
"""
from __future__ import annotations

from typing import Optional

from pynamodb.attributes import JSONAttribute, UnicodeAttribute

from chalicelib.store import tx
from chalicelib.store.base import Record


class TransferRecord(Record):
    class Meta(Record.Meta):
        resource = "transfers"

    transfer_id = UnicodeAttribute(hash_key=True)
    from_member_id = UnicodeAttribute()
    to_member_id = UnicodeAttribute()
    request_hash = UnicodeAttribute()
    data = JSONAttribute()  # points, lots (month → points), created_at (ISO)
    response = JSONAttribute()


class TransferLineRecord(Record):
    class Meta(Record.Meta):
        resource = "transfer-lines"

    member_id = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)  # {sortable created_at}#{transfer_id}
    line = JSONAttribute()  # the transfer as the list shows it, with `direction`


class MergeRecord(Record):
    class Meta(Record.Meta):
        resource = "merges"

    merge_id = UnicodeAttribute(hash_key=True)
    survivor_id = UnicodeAttribute()
    source_id = UnicodeAttribute()
    request_hash = UnicodeAttribute()
    data = JSONAttribute()  # what moved: points, holds, merged_at


MODELS = [TransferRecord, TransferLineRecord, MergeRecord]


def get_transfer(transfer_id: str) -> Optional[TransferRecord]:
    return TransferRecord.find(transfer_id)


def put_transfer_op(transfer_id: str, from_member_id: str, to_member_id: str, request_hash: str, data: dict,
                    response: dict) -> tx.Op:
    """The transfer itself, conditional on its id being new (what makes a replay a replay)."""
    item = TransferRecord.to_item(transfer_id=transfer_id, from_member_id=from_member_id,
                                  to_member_id=to_member_id, request_hash=request_hash, data=data,
                                  response=response)
    return tx.put_item(TransferRecord, item, TransferRecord.transfer_id.does_not_exist())


def line_op(member_id: str, created_sortable: str, transfer_id: str, line: dict) -> tx.Op:
    item = TransferLineRecord.to_item(member_id=member_id, sk=f"{created_sortable}#{transfer_id}", line=line)
    return tx.put_item(TransferLineRecord, item, TransferLineRecord.sk.does_not_exist())


def lines_page(member_id: str, limit: int, cursor: Optional[dict]) -> tuple[list[dict], Optional[dict]]:
    result = TransferLineRecord.query(member_id, scan_index_forward=False, limit=limit, last_evaluated_key=cursor)
    return [r.line for r in result], result.last_evaluated_key


def get_merge(merge_id: str) -> Optional[MergeRecord]:
    return MergeRecord.find(merge_id)


def put_merge_op(merge_id: str, survivor_id: str, source_id: str, request_hash: str, data: dict) -> tx.Op:
    return tx.put(MergeRecord(merge_id, survivor_id=survivor_id, source_id=source_id, request_hash=request_hash,
                              data=data), MergeRecord.merge_id.does_not_exist())


def transfer_key(transfer_id: str) -> tuple:
    """The transfer's key for `tx.get_many`."""
    return (TransferRecord, transfer_id)


def transfer_anchor() -> type:
    return TransferRecord


def merge_key(merge_id: str) -> tuple:
    return (MergeRecord, merge_id)


def merge_anchor() -> type:
    return MergeRecord


# --- what a merge re-keys beside the two members (the merge's own transaction, or later) ----

def voucher_moves(source_id: str, survivor_id: str) -> list:
    """One group of ops per issued voucher of the source: its owner becomes the survivor."""
    from chalicelib.store.rewards import RedemptionRecord

    out = []
    for rec in RedemptionRecord.by_owner.query(source_id):
        if rec.status != "issued":
            continue  # used, cancelled, expired: history, read through the source
        version = int(rec.version)
        out.append([tx.update(RedemptionRecord(rec.redemption_id),
                              [RedemptionRecord.owner_id.set(survivor_id), RedemptionRecord.version.set(version + 1)],
                              (RedemptionRecord.owner_id == source_id) & (RedemptionRecord.version == version))])
    return out


def coupon_wallet_moves(source_id: str, survivor_id: str) -> list:
    """Coupon-wallet rows of the source re-keyed to the survivor (delete + put), for campaigns
    the survivor has no row of (its own row wins: one code per campaign); a unique code names
    its holder, so it becomes the survivor's to redeem."""
    from chalicelib.store.coupons import CodeRecord, WalletRecord

    theirs = {w.campaign_id for w in WalletRecord.query(survivor_id, consistent_read=True)}
    out = []
    for w in WalletRecord.query(source_id, consistent_read=True):
        if w.campaign_id in theirs:
            continue
        moved = WalletRecord(survivor_id, w.campaign_id, code=w.code, issued_at=w.issued_at, issued_sk=w.issued_sk,
                             uses=w.uses, redeemed=w.redeemed)
        group = [tx.delete(WalletRecord(source_id, w.campaign_id), WalletRecord.member_id.exists()),
                 tx.put(moved, WalletRecord.member_id.does_not_exist())]
        code = _unique_code(CodeRecord, w.code, source_id)
        if code is not None:
            group.append(tx.update(CodeRecord(code.code, campaign_id=code.campaign_id),
                                   [CodeRecord.member_id.set(survivor_id)], CodeRecord.member_id == source_id))
        out.append(group)
    return out


def _unique_code(model, code: Optional[str], member_id: str):
    rec = model.find(code) if code else None
    return rec if rec is not None and rec.kind == "unique" and rec.member_id == member_id else None


def hold_moves(hold_ids, source_id: str, survivor_id: str) -> list:
    """The source's open holds now belong to the survivor (a capture or release by hold id
    keeps working)."""
    from chalicelib.store.holds import HoldRecord

    return [tx.update(HoldRecord(h), [HoldRecord.member_id.set(survivor_id)],
                      (HoldRecord.status == "held") & (HoldRecord.member_id == source_id)) for h in hold_ids]
