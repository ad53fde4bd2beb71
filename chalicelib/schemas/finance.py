"""Finance and data responses (SPEC 2.17): the liability report, the access export, the
admin lookups. The routes take no body; their query parameters are checked in the views."""
from __future__ import annotations

from typing import Optional

from chalicelib.schemas.common import Out, Page
from chalicelib.schemas.members import LedgerEntry, Member
from chalicelib.schemas.rewards import RewardOut


class Outstanding(Out):
    available: int  # Σ of members' available points, a negative balance counting as 0
    pending: int
    held: int


class ExpiringMonth(Out):
    month: str  # YYYY-MM: the points expire at the end of this month (UTC)
    points: int


class OtherFlows(Out):
    reversed: int  # points taken back by refunds in the period
    adjusted_down: int  # negative adjustments in the period
    moved_net: int  # transfers and merges between members: 0 for the program


class LiabilityReport(Out):
    """The points liability as of `as_of` (docs/FINANCE.md explains each figure)."""

    as_of: str
    period: dict  # {"from", "to"}: the 12 months the flows cover, [from, to)
    currency: str
    point_value: int  # minor units of the currency per point
    points_expiry_months: Optional[int]  # the program's expiry at the run (null: points never expire)
    points_expiry_policy: str  # earned_month | last_activity
    outstanding: Outstanding
    outstanding_value: int  # (available + pending + held) × point_value, minor units
    expiring_by_month: list[ExpiringMonth]
    issued: int
    redeemed: int  # redemptions and spends net of returns
    expired: int
    breakage_rate: Optional[str]  # expired ÷ (expired + redeemed), 4 decimals floored; null without either
    estimated_liability: int  # floor(outstanding_value × (1 − breakage_rate)), minor units
    other_flows: OtherFlows
    negative_balance: int  # Σ of negative available balances (owed by members; not in outstanding)
    closed_points: int  # points of closed members: in outstanding, but nobody can redeem them any more
    members: int
    members_negative: int
    members_failed: int  # members the job could not read (then the report is incomplete)
    job_id: str
    generated_at: str


class MemberExport(Out):
    """Everything held about one member (data-subject access)."""

    member_id: str
    exported_at: str
    member: Member
    account: dict  # status, the stored profile and state (wallet lots, tier state, counters)
    tier_history: list[dict]
    ledger: list[LedgerEntry]
    orders: list[dict]
    redemptions: list[dict]  # vouchers held or paid for
    coupons: list[dict]
    coupon_redemptions: list[dict]
    holds: list[dict]
    transfers: list[dict]
    merges: list[dict]
    events: list[dict]
    feedback: list[dict]
    messages: dict  # {"sent": {message_id: queued_at}, "marketing_sends": [at, ...]}
    experiments: list[dict]  # control-group exposures and the orders attributed to them


MemberPage = Page[Member]
RewardPage = Page[RewardOut]
