"""Domain events (the envelope other systems follow the program by), built from what a
write commits. Pure: ids are deterministic per effect, so a replay or a retried write can
never make a second event with another id."""
from __future__ import annotations

import hashlib
import uuid
from typing import Optional

# ledger entry type → event type
LEDGER_EVENTS = {
    "earn": "points.earned", "bonus": "points.earned", "activity": "points.earned",
    "reversal": "points.reversed",
    "redeem": "points.spent", "spend": "points.spent",
    "refund_redemption": "points.returned", "refund_spend": "points.returned",
    "expire": "points.expired", "adjust": "points.adjusted",
    "transfer_out": "points.transferred", "transfer_in": "points.transferred",
    "merge_out": "member.merged", "merge_in": "member.merged",
    "import": "points.imported",
}

TYPES = sorted(set(LEDGER_EVENTS.values()) | {
    "member.enrolled", "member.updated", "member.closed", "hold.created", "hold.captured", "hold.released",
    "tier.changed", "reward.redeemed", "voucher.used", "voucher.gifted", "voucher.cancelled",
    "coupon.issued", "coupon.redeemed", "coupon.rolled_back"})

SEQUENCE_STEP = 100  # events of one commit: sequence = member version × 100 + their index


def event_id(type_: str, effect: str) -> str:
    """Deterministic per (type, effect): the same committed effect always names the same event."""
    digest = hashlib.sha256(f"event|{type_}|{effect}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=5))


def envelope(type_: str, effect: str, member_id: Optional[str], occurred_at: str, data: dict,
             sequence: int = 0) -> dict:
    return {"event_id": event_id(type_, effect), "type": type_, "occurred_at": occurred_at,
            "member_id": member_id, "sequence": sequence, "data": data}


def for_ledger_entry(entry: dict, balance: dict) -> dict:
    """The `points.*` event of one ledger entry (its id names the effect)."""
    type_ = LEDGER_EVENTS[entry["type"]]
    return envelope(type_, entry["entry_id"], entry["member_id"], entry["recorded_at"], {
        "points": entry["points"], "balance": balance, "entry_id": entry["entry_id"],
        "reference": entry.get("reference") or {}, "entry_type": entry["type"]})


def numbered(events: list[dict], member_version: int) -> list[dict]:
    """Give one commit's events of a member their sequence: increasing in commit order,
    because the member's version increases with every commit that writes it."""
    return [{**e, "sequence": member_version * SEQUENCE_STEP + i} for i, e in enumerate(events)]
