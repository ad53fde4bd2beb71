"""The member aggregate: everything one member's item holds, typed.

A `Member` is loaded and saved whole by the repository (`chalicelib/store/members.py`),
which alone knows how it is stored; services change it through its parts — the
`Wallet` (available lots, pending lots, holds), the `TierState`, the `OrderStats` — and
never through key strings or stored dicts. Every part is bounded whatever the member's
history, so the item stays small (≤ 4 KB, `item_growth` in docs/PERFORMANCE.md):

- `orders`: a count, the first and last instants, order counts per month for the last
  13 months, the newest 40 order instants;
- `spend`: qualifying spend per month, pruned to the months a tier window can reach;
- `earned`: the earning caps' counters of the current day and month;
- `activities`: per activity type a total and the newest 35 days' counts;
- the wallet: lots per earning month (expired months leave), at most
  `wallet.MAX_PENDING_LOTS` pending lots, at most 20 open holds.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Optional

from chalicelib.clock import iso
from chalicelib.domain import order_stats
from chalicelib.domain.months import month_of
from chalicelib.domain.tiers import TierState, prune_buckets
from chalicelib.domain.wallet import Wallet

RECENT_ORDER_DAYS = 400
RECENT_ORDERS = 40  # timestamps kept (RFM recency and frequency; more than 40 a year all score 5)
ORDER_MONTHS_KEPT = 13


@dataclass
class OrderStats:
    """A member's purchase history in a bounded form (RFM, automations, first purchase)."""

    count: int = 0
    first_at: Optional[str] = None
    last_at: Optional[str] = None
    recent: list = field(default_factory=list)  # epoch seconds, oldest first (domain/order_stats.py)
    months: dict = field(default_factory=dict)  # month -> orders, the last 13 months

    @classmethod
    def from_dict(cls, d: Optional[dict]) -> "OrderStats":
        d = d or {}
        return cls(int(d.get("count", 0) or 0), d.get("first_at"), d.get("last_at"),
                   list(d.get("recent") or []), dict(d.get("months") or {}))

    def to_dict(self) -> dict:
        out = {"count": self.count, "first_at": self.first_at, "last_at": self.last_at, "recent": self.recent}
        if self.months:
            out["months"] = self.months
        return out

    def record(self, occurred: datetime, now: datetime) -> bool:
        """Count an order placed at `occurred`; True when it is the member's first."""
        first = self.count == 0
        self.count += 1
        self.first_at = self.first_at or iso(occurred)
        self.last_at = max(self.last_at or "", iso(occurred))
        month = month_of(occurred)
        months = dict(self.months)
        months[month] = int(months.get(month, 0)) + 1
        self.months = prune_buckets(months, month_of(now), ORDER_MONTHS_KEPT)
        self.recent = order_stats.with_order(self.recent, occurred, now - timedelta(days=RECENT_ORDER_DAYS),
                                             RECENT_ORDERS)
        return first


# The item's state keys this class knows; any other key read is kept as it was (`extra`),
# so a newer writer's field survives an older reader's write.
_KNOWN = ("wallet", "spend", "tier", "seq", "orders", "activities", "referral_paid", "rewards", "segment",
          "earned", "last_activity_month", "transfers", "merged_into", "merged_at", "merged_from", "import")


@dataclass
class Member:
    member_id: str
    version: Optional[int] = None  # the version read; None: not stored yet
    status: str = "active"
    profile: dict = field(default_factory=dict)
    wallet: Wallet = field(default_factory=Wallet)
    tier: TierState = field(default_factory=TierState)
    orders: OrderStats = field(default_factory=OrderStats)
    spend: dict = field(default_factory=dict)  # month -> qualifying spend (minor units)
    seq: int = 0  # the last ledger entry's number
    activities: dict = field(default_factory=dict)  # type -> {"total", "days": {day: n}}
    rewards: dict = field(default_factory=dict)  # reward_id -> redemptions (per-member limits)
    segment: Optional[dict] = None  # the last scoring's label, touch, rfm, ltv_12m, p_alive...
    earned: Optional[dict] = None  # earning caps' counters (domain/earning.py)
    referral_paid: bool = False
    last_activity_month: Optional[str] = None  # the last month it earned or spent
    transfers: Optional[dict] = None  # {"month", "points"} sent this month
    merged_into: Optional[str] = None
    merged_at: Optional[str] = None
    merged_from: list = field(default_factory=list)
    imported: Optional[dict] = None  # {"import_id", "row"} of the import that created it
    extra: dict = field(default_factory=dict)

    @classmethod
    def new(cls, member_id: str, profile: dict, entry_tier: str, now: datetime) -> "Member":
        return cls(member_id, None, "active", profile, tier=TierState(entry_tier, iso(now), None))

    @property
    def active(self) -> bool:
        return self.status == "active"

    @property
    def tier_id(self) -> Optional[str]:
        return self.tier.tier_id

    @property
    def segment_label(self) -> Optional[str]:
        return (self.segment or {}).get("label")

    @property
    def segment_touch(self) -> Optional[str]:
        return (self.segment or {}).get("touch")

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    # --- the stored form ---------------------------------------------------------------
    @classmethod
    def from_state(cls, member_id: str, version: Optional[int], status: str, profile: Optional[dict],
                   state: Optional[dict]) -> "Member":
        s = state or {}
        return cls(
            member_id, version, status or "active", dict(profile or {}),
            wallet=Wallet.from_dict(s.get("wallet")),
            tier=TierState.from_dict(s.get("tier")),
            orders=OrderStats.from_dict(s.get("orders")),
            spend={k: int(v) for k, v in (s.get("spend") or {}).items()},
            seq=int(s.get("seq", 0) or 0),
            activities=dict(s.get("activities") or {}),
            rewards=dict(s.get("rewards") or {}),
            segment=s.get("segment"),
            earned=s.get("earned"),
            referral_paid=bool(s.get("referral_paid")),
            last_activity_month=s.get("last_activity_month"),
            transfers=s.get("transfers"),
            merged_into=s.get("merged_into"),
            merged_at=s.get("merged_at"),
            merged_from=list(s.get("merged_from") or []),
            imported=s.get("import"),
            extra={k: v for k, v in s.items() if k not in _KNOWN},
        )

    def to_state(self) -> dict:
        """The state as stored (and as the access export shows it); optional parts only when set."""
        s = {
            "wallet": self.wallet.to_dict(),
            "spend": self.spend,
            "tier": self.tier.to_dict(),
            "seq": self.seq,
            "orders": self.orders.to_dict(),
            "activities": self.activities,
            "referral_paid": self.referral_paid,
            "rewards": self.rewards,
            "segment": self.segment,
        }
        optional = {"earned": self.earned, "last_activity_month": self.last_activity_month,
                    "transfers": self.transfers, "merged_into": self.merged_into, "merged_at": self.merged_at,
                    "merged_from": self.merged_from or None, "import": self.imported}
        s.update({k: v for k, v in optional.items() if v is not None})
        s.update(self.extra)
        return s


# --- a merge: everything per member besides the wallet and the tier (SPEC 2.15) -------------

def _summed(into: Optional[dict], other: Optional[dict]) -> dict:
    out = dict(into or {})
    for k, v in (other or {}).items():
        out[k] = int(out.get(k, 0)) + int(v)
    return out


def merge_history(survivor: Member, source: Member, now: datetime, tier_window_months: int,
                  activity_days_kept: int = 35) -> None:
    """Add `source`'s history to `survivor`: spend buckets, order statistics, activity and
    reward counters, earning-cap counters, the referral flag, the last activity, this month's
    transfers, the absorbed ids. Every part stays within its bound."""
    from chalicelib.domain.earning import CAP_DAYS_KEPT, CAP_MONTHS_KEPT

    survivor.spend = prune_buckets(_summed(survivor.spend, source.spend), month_of(now),
                                   max(tier_window_months, ORDER_MONTHS_KEPT))
    a, b = survivor.orders, source.orders
    firsts = [d for d in (a.first_at, b.first_at) if d]
    lasts = [d for d in (a.last_at, b.last_at) if d]
    horizon = int((now - timedelta(days=RECENT_ORDER_DAYS)).timestamp())
    seconds = order_stats.seconds
    stamps = sorted((seconds(d), d) for d in a.recent + b.recent if d and seconds(d) >= horizon)
    survivor.orders = OrderStats(a.count + b.count, min(firsts) if firsts else None, max(lasts) if lasts else None,
                                 [d for _, d in stamps][-RECENT_ORDERS:],
                                 prune_buckets(_summed(a.months, b.months), month_of(now), ORDER_MONTHS_KEPT))
    acts = dict(survivor.activities)
    for kind, counts in source.activities.items():
        mine = acts.get(kind) or {"total": 0, "days": {}}
        days = _summed(mine.get("days"), counts.get("days"))
        acts[kind] = {"total": int(mine.get("total", 0)) + int(counts.get("total", 0)),
                      "days": dict(sorted(days.items())[-activity_days_kept:])}
    survivor.activities = acts
    survivor.rewards = _summed(survivor.rewards, source.rewards)
    survivor.referral_paid = survivor.referral_paid or source.referral_paid
    if source.earned:  # earning-cap counters: one person's day and month
        mine, theirs = survivor.earned or {}, source.earned
        days = _summed(mine.get("days"), theirs.get("days"))
        months = _summed(mine.get("months"), theirs.get("months"))
        survivor.earned = {"days": dict(sorted(days.items())[-CAP_DAYS_KEPT:]),
                           "months": dict(sorted(months.items())[-CAP_MONTHS_KEPT:])}
    if source.last_activity_month:  # the expiry policy's last earning or spending
        survivor.last_activity_month = max(survivor.last_activity_month or "", source.last_activity_month)
    sent, theirs = survivor.transfers or {}, source.transfers or {}
    if theirs.get("month") and theirs.get("month") == sent.get("month"):  # one person's month of transfers
        survivor.transfers = {"month": sent["month"], "points": int(sent["points"]) + int(theirs["points"])}
    elif theirs.get("month") and theirs["month"] > (sent.get("month") or ""):
        survivor.transfers = dict(theirs)
    survivor.merged_from = list(dict.fromkeys([*survivor.merged_from, source.member_id, *source.merged_from]))
