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


@dataclass
class TierState:
    """A member's tier: the tier held, when it was reached, and until when it is kept
    whatever the spend (None for the entry tier)."""

    tier_id: Optional[str] = None
    reached_at: Optional[str] = None
    retained_until: Optional[str] = None

    @classmethod
    def from_dict(cls, d: Optional[dict]) -> "TierState":
        d = d or {}
        return cls(d.get("tier_id"), d.get("reached_at"), d.get("retained_until"))

    def to_dict(self) -> dict:
        return {"tier_id": self.tier_id, "retained_until": self.retained_until, "reached_at": self.reached_at}


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


def _move(state: TierState, tiers: Sequence[TierDef], to_idx: int, at: datetime, retention_months: int) -> dict:
    change = {"from": state.tier_id or tiers[0].tier_id, "to": tiers[to_idx].tier_id}
    state.tier_id = tiers[to_idx].tier_id
    state.reached_at = iso(at)
    state.retained_until = _retained_until(at, retention_months) if to_idx > 0 else None
    return change


def apply_upgrade(state: TierState, spend: int, tiers: Sequence[TierDef], at: datetime,
                  retention_months: int) -> Optional[dict]:
    """Upgrade at once when the spend reaches a higher tier (possibly several at once)."""
    current = index_of(state.tier_id, tiers)
    earned = earned_index(spend, tiers)
    if earned > current:
        return _move(state, tiers, earned, at, retention_months)
    if state.tier_id != tiers[current].tier_id:  # unknown tier after a tier-list change
        state.tier_id = tiers[current].tier_id
    return None


def recalculate(state: TierState, spend: int, tiers: Sequence[TierDef], as_of: datetime,
                retention_months: int, soft_landing: bool) -> Optional[dict]:
    """The `recalculate-tiers` rule for one member; returns the change or None."""
    up = apply_upgrade(state, spend, tiers, as_of, retention_months)
    if up:
        return up
    current = index_of(state.tier_id, tiers)
    earned = earned_index(spend, tiers)
    if earned >= current:
        return None
    retained = state.retained_until
    # retained_until is shown as the month's last second; the tier is kept through all of it
    if retained and as_of < parse_instant(retained) + timedelta(seconds=1):
        return None
    target = current - 1 if soft_landing else earned
    return _move(state, tiers, target, as_of, retention_months)


def tier_view(state: TierState, spend: int, tiers: Sequence[TierDef]) -> dict:
    """The member's `tier` block of SPEC 4.4."""
    current = index_of(state.tier_id, tiers)
    tier = tiers[current]
    nxt = tiers[current + 1] if current + 1 < len(tiers) else None
    return {
        "tier_id": tier.tier_id,
        "name": tier.name,
        "multiplier": str(tier.multiplier),
        "qualifying_spend": spend,
        "next_tier": nxt.tier_id if nxt else None,
        "spend_to_next_tier": max(0, nxt.threshold - spend) if nxt else None,
        "retained_until": state.retained_until,
    }


def merged_tier(mine: TierState, theirs: TierState, spend: int, tiers: Sequence[TierDef], now: datetime,
                retention_months: int) -> TierState:
    """A merge's tier: the highest of the survivor's, the source's and the one earned on the
    merged window, with that tier's `retained_until` (the later one when both held it; a
    tier only the merged window earns is reached now)."""
    i_mine, i_theirs = index_of(mine.tier_id, tiers), index_of(theirs.tier_id, tiers)
    best = max(i_mine, i_theirs, earned_index(spend, tiers))
    held = [t for t, i in ((mine, i_mine), (theirs, i_theirs)) if i == best and t.tier_id]
    if held:
        until = [t.retained_until for t in held if t.retained_until]
        reached = [t.reached_at for t in held if t.reached_at]
        return TierState(tiers[best].tier_id, min(reached) if reached else iso(now), max(until) if until else None)
    return TierState(tiers[best].tier_id, iso(now), _retained_until(now, retention_months) if best > 0 else None)
