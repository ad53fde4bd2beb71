"""Tier rules (SPEC 2.7): qualifying spend over a rolling window, upgrades, retention, downgrades."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Optional, Sequence

from chalicelib.clock import iso, parse_instant
from chalicelib.domain.months import add_months, month_end, month_of


@dataclass(frozen=True)
class TierDef:
    tier_id: str
    name: str
    threshold: int
    multiplier: Decimal
    benefits: tuple = ()


def qualifying_spend(buckets: dict, month: str, window_months: int) -> int:
    """Net purchase spend over the `window_months` calendar months ending with `month`."""
    oldest = add_months(month, -(window_months - 1))
    return sum(int(v) for m, v in buckets.items() if oldest <= m <= month)


def prune_buckets(buckets: dict, month: str, keep_months: int) -> dict:
    """Drop months that no window can reach any more (keeps the member item small)."""
    oldest = add_months(month, -(keep_months - 1))
    return {m: v for m, v in buckets.items() if m >= oldest}


def earned_index(spend: int, tiers: Sequence[TierDef]) -> int:
    idx = 0
    for i, tier in enumerate(tiers):
        if spend >= tier.threshold:
            idx = i
    return idx


def index_of(tier_id: Optional[str], tiers: Sequence[TierDef]) -> int:
    for i, tier in enumerate(tiers):
        if tier.tier_id == tier_id:
            return i
    return 0


def _retained_until(at: datetime, retention_months: int) -> str:
    return iso(month_end(add_months(month_of(at), retention_months)))


def _move(state: dict, tiers: Sequence[TierDef], to_idx: int, at: datetime, retention_months: int) -> dict:
    change = {"from": state.get("tier_id") or tiers[0].tier_id, "to": tiers[to_idx].tier_id}
    state["tier_id"] = tiers[to_idx].tier_id
    state["reached_at"] = iso(at)
    state["retained_until"] = _retained_until(at, retention_months) if to_idx > 0 else None
    return change


def apply_upgrade(state: dict, spend: int, tiers: Sequence[TierDef], at: datetime,
                  retention_months: int) -> Optional[dict]:
    """Upgrade at once when the spend reaches a higher tier (possibly several at once)."""
    current = index_of(state.get("tier_id"), tiers)
    earned = earned_index(spend, tiers)
    if earned > current:
        return _move(state, tiers, earned, at, retention_months)
    if state.get("tier_id") != tiers[current].tier_id:  # unknown tier after a tier-list change
        state["tier_id"] = tiers[current].tier_id
    return None


def recalculate(state: dict, spend: int, tiers: Sequence[TierDef], as_of: datetime,
                retention_months: int, soft_landing: bool) -> Optional[dict]:
    """The `recalculate-tiers` rule for one member; returns the change or None."""
    up = apply_upgrade(state, spend, tiers, as_of, retention_months)
    if up:
        return up
    current = index_of(state.get("tier_id"), tiers)
    earned = earned_index(spend, tiers)
    if earned >= current:
        return None
    retained = state.get("retained_until")
    # retained_until is shown as the month's last second; the tier is kept through all of it
    if retained and as_of < parse_instant(retained) + timedelta(seconds=1):
        return None
    target = current - 1 if soft_landing else earned
    return _move(state, tiers, target, as_of, retention_months)


def tier_view(state: dict, spend: int, tiers: Sequence[TierDef]) -> dict:
    """The member's `tier` block of SPEC 4.4."""
    current = index_of(state.get("tier_id"), tiers)
    tier = tiers[current]
    nxt = tiers[current + 1] if current + 1 < len(tiers) else None
    return {
        "tier_id": tier.tier_id,
        "name": tier.name,
        "multiplier": str(tier.multiplier),
        "qualifying_spend": spend,
        "next_tier": nxt.tier_id if nxt else None,
        "spend_to_next_tier": max(0, nxt.threshold - spend) if nxt else None,
        "retained_until": state.get("retained_until"),
    }
