"""Status match (SPEC 2.15): an admin sets a member's tier and how long it is kept.

The member holds `tier_id` with `retained_until = until` (up or down); the change is a
tier-history record and a `tier_changed` message (an outbox row) in the member's own
transaction, audited with its reason. `recalculate-tiers` then treats it as any reached tier.
"""
from __future__ import annotations

from chalicelib import clock
from chalicelib.domain.tiers import TierState
from chalicelib.errors import ValidationFailed
from chalicelib.services import audit, members, program
from chalicelib.services.points import Change, record_tier_change
from chalicelib.services.uow import retry
from chalicelib.store import tx
from chalicelib.store.base import Conflict


def set_tier(member_id: str, body, actor: str) -> dict:
    if program.tier_by_id(body.tier_id) is None:
        ids = ", ".join(t.tier_id for t in program.tiers())
        raise ValidationFailed("tier_id is not a configured tier",
                               fields=[{"field": "tier_id", "message": "must be one of " + ids}])
    until = clock.iso(body.until)

    def attempt():
        now = clock.now()
        row = members.require(member_id)
        members.require_active(row)
        tier = row.tier
        if tier.tier_id == body.tier_id and tier.retained_until == until:
            return members.view(row, now)  # already so: a repeated PUT changes nothing
        ch = Change.begin(row, now)
        change = {"from": tier.tier_id or program.tiers()[0].tier_id, "to": body.tier_id}
        row.tier = TierState(body.tier_id, clock.iso(now), until)
        record_tier_change(ch, change, now, "status_match")
        uow = ch.unit_of_work()
        uow.add(audit.entry_op(actor, "member.tier", target=member_id,
                               details={**change, "until": until, "reason": body.reason}))
        try:
            uow.commit()
        except tx.TxCancelled:
            raise Conflict()
        return members.view(row, now)

    return retry(attempt)
