"""Merging a duplicate account into the member that survives (SPEC 2.15).

One transaction, all or nothing, holding everything that is *per member* and bounded:
- both member items (each conditional on the version read): the survivor gains the
  source's wallet (available lots with their months, a deficit, pending lots, open holds
  with the lots they took), its qualifying-spend buckets, order statistics, activity and
  reward counters and lifetime totals; the source is emptied and closed with
  `merged_into`;
- the `merge_out` and `merge_in` ledger entries (and their `member.merged` events);
- the open holds' records (their owner becomes the survivor, so a capture or release
  addressed to the survivor finds them; at most 20 per member);
- the source's issued vouchers (their owner becomes the survivor) and its coupon wallet
  (rows re-keyed to the survivor), as many as fit;
- the merge record (the anchor, conditional on merge_id being new), the audit entry and,
  when the tier changes, the tier-history record and its message.

What is unbounded stays where it is and is reached by redirection: the source's orders
(a refund addressed to either id follows `merged_into` / `merged_from`), its ledger and
closed holds (history, read under the source id), and any voucher or coupon-wallet row
that did not fit in the transaction: those are moved right after the commit, each by one
conditional write, and again by a replay of the merge; until then every lookup of them
follows `merged_into`. See docs/TRANSFERS.md.
"""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from chalicelib import clock, observability
from chalicelib.domain import events
from chalicelib.domain.hashing import canonical_hash
from chalicelib.domain.member import Member, merge_history
from chalicelib.domain.months import month_of
from chalicelib.domain.tiers import merged_tier, qualifying_spend
from chalicelib.domain.wallet import absorb
from chalicelib.errors import IdempotencyMismatch, MemberInactive, MemberNotFound, ValidationFailed
from chalicelib.services import audit, members, program
from chalicelib.services.points import Change, record_tier_change
from chalicelib.services.uow import MAX_ITEMS, UnitOfWork, retry
from chalicelib.store import members as member_store
from chalicelib.store import transfers as store
from chalicelib.store import tx
from chalicelib.store.base import Conflict

MAX_MERGED = 20  # ids a survivor remembers having absorbed (rare CS actions; the member item stays small)
MAX_HOPS = 10  # merged_into chains followed at most this far
RESERVED_ITEMS = 12  # outbox rows and slack kept free in the merge's transaction


# --- redirection: where a merged member's things live now -------------------------------

def follow(row: Member) -> Member:
    """The member that holds `row`'s points now: `row` itself, or the end of its
    `merged_into` chain."""
    for _ in range(MAX_HOPS):
        target = row.merged_into
        if not target:
            return row
        nxt = member_store.get(target)
        if nxt is None:
            return row
        row = nxt
    return row


def current_owner(member_id: str) -> str:
    """The id that stands for `member_id` now (itself unless it was merged away)."""
    row = member_store.get(member_id)
    return follow(row).member_id if row is not None else member_id


def absorbed(row: Member) -> set:
    """Ids whose records (orders, vouchers) `row` answers for: itself and every member merged into it."""
    return {row.member_id, *row.merged_from}


def owner_for_order(row: Member, order_member_id: Optional[str]) -> Member:
    """A refund's member: addressed to a merged source, the survivor (the end of its
    `merged_into` chain), else the addressed member. The caller then accepts the order when
    its member is among the ids this member answers for (`absorbed`: itself and its
    `merged_from`). Reads only when the addressed member was merged away."""
    return follow(row)


# --- the merge ------------------------------------------------------------------------

def _moves(source_id: str, survivor_id: str) -> list:
    """The groups of ops re-keying the source's vouchers and coupon-wallet rows."""
    return store.voucher_moves(source_id, survivor_id) + store.coupon_wallet_moves(source_id, survivor_id)


def _flatten(groups: list) -> list:
    return [op for g in groups for op in g]


def finish_moves(groups: list) -> int:
    """Moves that did not fit in the merge's transaction, each group one small transaction;
    a group whose condition fails was done already (or its item changed hands): skipped."""
    done = 0
    for g in groups:
        try:
            tx.write(g)
            done += 1
        except (tx.TxCancelled, Conflict):
            continue
    return done


def merge(survivor_id: str, body, actor: str) -> dict:
    """Merge `body.source_member_id` into `survivor_id`; 200 the surviving Member."""
    source_id = body.source_member_id
    if source_id == survivor_id:
        raise ValidationFailed("a member cannot be merged into itself",
                               fields=[{"field": "source_member_id", "message": "must be another member"}])
    req_hash = canonical_hash({"member_id": survivor_id, **body.model_dump(mode="json")})

    def replay(rec) -> dict:
        if rec.survivor_id != survivor_id or rec.source_id != source_id or rec.request_hash != req_hash:
            raise IdempotencyMismatch(merge_id=body.merge_id)
        # finish what may not have fit in the transaction (a crash after the commit, say)
        finish_moves(_moves(source_id, survivor_id))
        return members.view(members.require(survivor_id))

    def attempt():
        now = clock.now()
        settings, tiers = program.settings(), program.tiers()
        s_rec, src_rec, prior = tx.get_many(member_store.key(survivor_id), member_store.key(source_id),
                                            store.merge_key(body.merge_id))
        if prior is not None:
            return replay(prior), []
        if s_rec is None:
            raise MemberNotFound(member_id=survivor_id)
        if src_rec is None:
            raise MemberNotFound(member_id=source_id)
        survivor, source = member_store.from_record(s_rec), member_store.from_record(src_rec)
        members.require_active(survivor)
        if source.status == "closed":  # a suspended duplicate may be merged; a closed one is gone
            raise MemberInactive(status="closed", member_id=source_id)
        if len(survivor.merged_from) + 1 + len(source.merged_from) > MAX_MERGED:
            raise ValidationFailed(f"a member absorbs at most {MAX_MERGED} accounts",
                                   fields=[{"field": "source_member_id", "message": "too many merges"}])
        vch, sch = Change.begin(survivor, now), Change.begin(source, now)
        open_holds = sorted(sch.wallet.holds)
        moved = absorb(vch.wallet, sch.wallet)
        merge_history(survivor, source, now, settings.tier_window_months)
        before = survivor.tier.tier_id or tiers[0].tier_id
        spend = qualifying_spend(survivor.spend, month_of(now), settings.tier_window_months)
        survivor.tier = merged_tier(survivor.tier, source.tier, spend, tiers, now, settings.tier_retention_months)
        source.status = "closed"
        source.merged_into = survivor_id
        source.merged_at = clock.iso(now)
        source.spend = {}
        ref = {"merge_id": body.merge_id}
        sch.entry("merge_out", -moved, reference=ref, actor=actor, occurred_at=now, note=f"merged into {survivor_id}")
        vch.entry("merge_in", moved, reference=ref, actor=actor, occurred_at=now, note=f"merged from {source_id}")
        after = survivor.tier.tier_id
        if after != before:
            record_tier_change(vch, {"from": before, "to": after}, now, f"merge:{body.merge_id}")
        hold_ops = store.hold_moves(open_holds, source_id, survivor_id)
        uow = UnitOfWork()
        uow.extend(vch.write_ops())
        uow.extend(sch.write_ops())
        uow.extend(hold_ops)
        index = uow.add(store.put_merge_op(body.merge_id, survivor_id, source_id, req_hash,
                                           {"points": moved, "holds": open_holds, "merged_at": clock.iso(now)}),
                        anchor=store.merge_anchor())
        uow.add(audit.entry_op(actor, "member.merge", target=survivor_id,
                               details={"merge_id": body.merge_id, "source_member_id": source_id, "points": moved}))
        uow.publish(vch.messages + sch.messages)
        uow.publish_events(_merged_events(vch, body.merge_id, now) + _merged_events(sch, body.merge_id, now))
        budget = MAX_ITEMS - RESERVED_ITEMS - len(uow.ops) - len(uow.messages)
        now_groups, later = [], []
        for g in _moves(source_id, survivor_id):
            if len(g) <= budget:
                now_groups.append(g)
                budget -= len(g)
            else:
                later.append(g)
                budget = -1  # keep the order: what comes after waits too
        uow.extend(_flatten(now_groups))
        # a member, a hold, a voucher changed since the read: Conflict, decided again
        replayed = uow.commit_or_replay(index, lambda: store.get_merge(body.merge_id), lambda prior: (replay(prior), []))
        if replayed is not None:
            return replayed
        observability.count("MembersMerged")
        return members.view(survivor, now), later

    result, later = retry(attempt)
    if later:
        finish_moves(later)
    return result


def _merged_events(ch: Change, merge_id: str, now: datetime) -> list:
    """The change's events, its `merge_in`/`merge_out` entry's event carrying the Member as
    the API now returns it (SPEC 2.16: a `member.*` event holds the resource, the source's
    with `status: closed` and `merged_into`), in the same place of the member's sequence."""
    found = ch.domain_events()
    for i, e in enumerate(found):
        if e["type"] == "member.merged":
            found[i] = {**events.envelope("member.merged", f"{merge_id}:{ch.row.member_id}", ch.row.member_id,
                                          clock.iso(now), members.view(ch.row, now)), "sequence": e["sequence"]}
    return found
