"""Pure reward rules (SPEC 2.8): catalogue window, tier reach, voucher status. No AWS."""
from __future__ import annotations

from datetime import datetime
from typing import Optional, Sequence

from chalicelib.clock import parse_instant


def available(data: dict, now: datetime) -> bool:
    """Active and inside its [starts_at, ends_at) window (a missing bound is unbounded)."""
    if not data.get("active", True):
        return False
    if data.get("starts_at") and parse_instant(data["starts_at"]) > now:
        return False
    if data.get("ends_at") and parse_instant(data["ends_at"]) <= now:
        return False
    return True


def tier_reaches(member_tier: Optional[str], min_tier: Optional[str], tier_ids: Sequence[str]) -> bool:
    """Whether a member on `member_tier` may redeem a reward that asks for `min_tier`.

    Tiers are ordered lowest first. No `min_tier`: everyone. A `min_tier` that is not a
    configured tier (the tiers changed after the reward was written) reaches nobody: fail
    closed rather than open. A member without a known tier is on the lowest tier.
    """
    if not min_tier:
        return True
    if min_tier not in tier_ids:
        return False
    mine = tier_ids.index(member_tier) if member_tier in tier_ids else 0
    return mine >= tier_ids.index(min_tier)


def effective_status(status: str, expires_at: str, now: datetime) -> str:
    """An issued voucher past `expires_at` is expired at once, before the job has run."""
    if status == "issued" and parse_instant(expires_at) <= now:
        return "expired"
    return status
