"""Per-member rules the schedules apply: tier recalculation, points expiry, maturation.

Each takes the member as scanned, decides with pure rules whether anything
changes (most members: nothing, and no write), and writes conditionally on the
member's version; on a conflict it re-reads and decides again.
"""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from chalicelib import clock
from dataclasses import replace

from chalicelib.domain.member import Member
from chalicelib.domain.months import month_of
from chalicelib.domain.tiers import TierState, qualifying_spend, recalculate
from chalicelib.services import program
from chalicelib.services.points import Change, record_tier_change
from chalicelib.services.uow import retry
from chalicelib.store import members as store
from chalicelib.store import tx
from chalicelib.store.base import Conflict

JOB_ACTOR = "system"


def _apply(member_id: str, first: Optional[Member], mutate) -> Optional[dict]:
    """Run `mutate(change) -> result|None` on the member; write only when it returns a result."""
    state = {"row": first}

    def attempt():
        row = state["row"] or store.get(member_id)
        state["row"] = None
        if row is None:
            return None
        ch = Change.begin(row, clock.now())
        result = mutate(ch)
        if result is None:
            return None
        try:
            ch.unit_of_work().commit()
        except tx.TxCancelled:
            raise Conflict()
        return result

    return retry(attempt)


def recalculate_tier(row: Member, as_of: datetime) -> Optional[dict]:
    """`recalculate-tiers` for one member: upgrade if due, downgrade once retention has passed."""
    settings = program.settings()
    tiers = program.tiers()

    def decide(r: Member, tier_state: TierState) -> Optional[dict]:
        spend = qualifying_spend(r.spend, month_of(as_of), settings.tier_window_months)
        return recalculate(tier_state, spend, tiers, as_of, settings.tier_retention_months,
                           settings.tier_soft_landing)

    if row.status == "closed" or decide(row, replace(row.tier)) is None:
        return None  # the common case: nothing to do, no write

    def mutate(ch: Change) -> Optional[dict]:
        change = decide(ch.row, ch.row.tier)
        if change:
            record_tier_change(ch, change, as_of, "recalculate")
        return change

    return _apply(row.member_id, row, mutate)


def expire_points(row: Member, as_of: datetime) -> int:
    """`expire-points` for one member: one `expire` ledger entry for all lots past their date."""
    from chalicelib.domain import expiry  # the policy (SPEC 2.20): earned_month or last_activity

    settings = program.settings()
    months, policy = settings.points_expiry_months, settings.points_expiry_policy
    if months is None or expiry.expire(row.wallet.copy(), row.last_activity_month, policy, months, as_of) == 0:
        return 0

    def mutate(ch: Change) -> Optional[int]:
        expired = expiry.expire(ch.wallet, ch.row.last_activity_month, policy, months, as_of)
        if not expired:
            return None
        note = (f"no earning or spending for {months} months" if policy == expiry.LAST_ACTIVITY
                else f"points earned before {month_of(as_of)} minus {months} months")
        ch.entry("expire", -expired, reference={}, actor=JOB_ACTOR, occurred_at=as_of, note=note)
        return expired

    return _apply(row.member_id, row, mutate) or 0


def mature_points(row: Member, as_of: datetime) -> int:
    """`mature-points` for one member: pending points whose return window closed become available."""
    if row.wallet.copy().mature(as_of) == 0:
        return 0

    def mutate(ch: Change) -> Optional[int]:
        # Change.begin already matured at the pinned clock; compare with what was stored.
        matured = ch.pending_at_start - ch.wallet.pending
        return matured or None

    return _apply(row.member_id, row, mutate) or 0
