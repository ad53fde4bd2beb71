"""The frame every points mutation is made of: `Change` — the member as read, its wallet, the
ledger entries, messages and events the mutation adds — turned into one unit of work."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Optional

from chalicelib import clock, messaging
from chalicelib.domain import events
from chalicelib.domain.member import Member
from chalicelib.domain.months import month_of
from chalicelib.domain.wallet import Wallet
from chalicelib.services import members
from chalicelib.store import holds as hold_store
from chalicelib.store import members as store
from chalicelib.store import operations
from chalicelib.services.uow import UnitOfWork


# --- the mutation frame ------------------------------------------------------------

@dataclass
class Change:
    """What one mutation of one member writes."""

    row: Member
    wallet: Wallet  # the member's own (row.wallet)
    entries: list = field(default_factory=list)
    ops: list = field(default_factory=list)
    messages: list = field(default_factory=list)
    events: list = field(default_factory=list)  # domain events besides the ledger's own
    lifetime_at_start: tuple = (0, 0)  # (earned, spent): did this change earn or spend?
    pending_at_start: int = 0  # as read, before maturation
    held_at_start: int = 0  # as read, before expired holds were released

    @classmethod
    def begin(cls, row: Member, now: datetime) -> "Change":
        wallet = row.wallet
        ch = cls(row, wallet, lifetime_at_start=(wallet.lifetime_earned, wallet.lifetime_spent),
                 pending_at_start=wallet.pending, held_at_start=wallet.held)
        wallet.mature(now)  # maturation happens on any write of the member
        ch.release_expired_holds(now)  # and so does the release of holds past their time
        return ch

    def release_expired_holds(self, now: datetime) -> int:
        """Release the holds past `expires_at` (no ledger entry: the points never left)."""
        released = self.wallet.release_expired(now)
        for h in released:
            self.ops.append(hold_store.close_hold_op(h["hold_id"], self.row.member_id, "released",
                                                     closed_by="expiry", closed_at=clock.iso(now)))
        return sum(h["points"] for h in released)

    def entry(self, type_: str, points: int, *, reference: dict, actor: str, occurred_at: datetime,
              note: Optional[str] = None) -> dict:
        """Append a ledger entry; call after the wallet holds the new balance."""
        seq = self.row.next_seq()
        now = clock.now()
        e = {
            "entry_id": f"le_{self.row.member_id}_{seq}",
            "member_id": self.row.member_id,
            "type": type_,
            "points": points,
            "balance_after": self.wallet.balance,
            "occurred_at": clock.iso(occurred_at),
            "recorded_at": clock.iso(now),
            "reference": reference,
            "actor": actor,
            "note": note,
        }
        self.entries.append((seq, e))
        return e

    def write_ops(self) -> list:
        earned, spent = self.lifetime_at_start
        if self.wallet.lifetime_earned > earned or self.wallet.lifetime_spent > spent:
            # the month of the last earning or spending: points_expiry_policy last_activity (SPEC 2.20)
            self.row.last_activity_month = month_of(clock.now())
        ops = [store.save_op(self.row)]
        ops += [store.ledger_op(self.row.member_id, seq, e) for seq, e in self.entries]
        ops += self.ops
        return ops

    def unit_of_work(self, own_record: bool = False) -> UnitOfWork:
        """A unit of work holding this change (member, ledger, extra ops) and its messages.
        `own_record`: the caller adds the operation's own record as the anchor, so the member
        item carries no commit token (40 bytes less in the item every accrual rewrites)."""
        uow = UnitOfWork()
        member_op, *rest = self.write_ops()
        uow.add(member_op, anchor=None if own_record else store.anchor())
        uow.extend(rest)
        uow.publish(self.messages)
        uow.publish_events(self.domain_events())
        return uow

    def domain_events(self) -> list:
        """A `points.*` event per ledger entry, then the others this change recorded, numbered
        by the member's new version (SPEC 2.16)."""
        now = balance(self.wallet)
        found = [events.for_ledger_entry(e, now) for _, e in self.entries] + self.events
        version = self.row.version + 1 if self.row.version is not None else 0
        return events.numbered(found, version)


def balance(wallet: Wallet) -> dict:
    return {"available": wallet.available, "pending": wallet.pending, "held": wallet.held}


def _active_member(member_id: str) -> Member:
    row = members.require(member_id)
    members.require_active(row)
    return row


def tier_change_message(row: Member, wallet: Wallet, change: dict, source_ref: str) -> dict:
    return messaging.compose(
        template="tier_changed", member_id=row.member_id, profile=row.profile,
        channel=messaging.transactional_channel(row.profile.get("consents")),
        variables={"points": wallet.available, "tier": change["to"], "previous_tier": change["from"]},
        source="tier_changed", period=source_ref)


def record_tier_change(ch: Change, change: dict, at: datetime, reason: str) -> None:
    ch.ops.append(operations.tier_history_op(ch.row.member_id, at, reason, {**change, "at": clock.iso(at),
                                                                            "reason": reason}))
    ch.messages.append(tier_change_message(ch.row, ch.wallet, change, f"{reason}@{clock.iso(at)}"))
    ch.events.append(events.envelope("tier.changed", f"{ch.row.member_id}|{reason}@{clock.iso(at)}",
                                     ch.row.member_id, clock.iso(clock.now()),
                                     {**change, "reason": reason, "at": clock.iso(at)}))
