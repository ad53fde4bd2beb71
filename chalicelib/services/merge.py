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

from datetime import datetime, timedelta
from typing import Optional

from chalicelib import clock, observability
from chalicelib.domain import events
from chalicelib.domain.hashing import canonical_hash
from chalicelib.domain.months import month_of
from chalicelib.domain.tiers import _retained_until, earned_index, index_of, prune_buckets, qualifying_spend
from chalicelib.domain.wallet import absorb
from chalicelib.errors import IdempotencyMismatch, MemberInactive, MemberNotFound, ValidationFailed
from chalicelib.services import audit, members, program
from chalicelib.services.points import RECENT_ORDER_DAYS, RECENT_ORDERS, Change, record_tier_change
from chalicelib.services.uow import MAX_ITEMS, UnitOfWork, retry
from chalicelib.store import members as member_store
from chalicelib.store import transfers as store
from chalicelib.store import tx
from chalicelib.store.base import Conflict
from chalicelib.store.models import MemberRecord
from chalicelib.store.transfers import MergeRecord

MAX_MERGED = 20  # ids a survivor remembers having absorbed (rare CS actions; the member item stays small)
MAX_HOPS = 10  # merged_into chains followed at most this far
RESERVED_ITEMS = 12  # outbox rows and slack kept free in the merge's transaction


# --- redirection: where a merged member's things live now -------------------------------

def follow(row: member_store.MemberRow) -> member_store.MemberRow:
    """The member that holds `row`'s points now: `row` itself, or the end of its
    `merged_into` chain."""
    for _ in range(MAX_HOPS):
        target = (row.state or {}).get("merged_into")
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


def absorbed(row: member_store.MemberRow) -> set:
    """Ids whose records (orders, vouchers) `row` answers for: itself and every member merged into it."""
    return {row.member_id, *((row.state or {}).get("merged_from") or ())}


def owner_for_order(row: member_store.MemberRow, order_member_id: Optional[str]) -> member_store.MemberRow:
    """A refund's member: addressed to a merged source, the survivor (the end of its
    `merged_into` chain), else the addressed member. The caller then accepts the order when
    its member is among the ids this member answers for (`absorbed`: itself and its
    `merged_from`). Reads only when the addressed member was merged away."""
    return follow(row)


# --- the merge ------------------------------------------------------------------------

def _merge_counts(into: dict, other: dict) -> dict:
    out = dict(into or {})
    for k, v in (other or {}).items():
        out[k] = int(out.get(k, 0)) + int(v)
    return out


def _seconds(stamp) -> int:
    """An order timestamp as `orders.recent` keeps it (epoch seconds, or an older ISO string)."""
    return int(clock.parse_instant(stamp).timestamp()) if isinstance(stamp, str) else int(stamp)


def merge_state(survivor: dict, source: dict, source_id: str, now: datetime, settings) -> None:
    """Everything per member besides the wallet and the tier: spend buckets, order
    statistics, activity and reward counters, the referral flag, the absorbed ids."""
    keep = max(settings.tier_window_months, 13)
    survivor["spend"] = prune_buckets(_merge_counts(survivor.get("spend"), source.get("spend")), month_of(now), keep)
    a, b = survivor.get("orders") or {}, source.get("orders") or {}
    firsts = [d for d in (a.get("first_at"), b.get("first_at")) if d]
    lasts = [d for d in (a.get("last_at"), b.get("last_at")) if d]
    horizon = _seconds(clock.iso(now - timedelta(days=RECENT_ORDER_DAYS)))
    survivor["orders"] = {
        **a,
        "count": int(a.get("count", 0)) + int(b.get("count", 0)),
        "first_at": min(firsts) if firsts else None,
        "last_at": max(lasts) if lasts else None,
        "months": prune_buckets(_merge_counts(a.get("months"), b.get("months")), month_of(now), 13),
        "recent": [d for _, d in sorted((_seconds(d), d) for d in (a.get("recent") or []) + (b.get("recent") or [])
                                        if d and _seconds(d) >= horizon)][-RECENT_ORDERS:],
    }
    acts = dict(survivor.get("activities") or {})
    for kind, counts in (source.get("activities") or {}).items():
        mine = acts.get(kind) or {"total": 0, "days": {}}
        days = _merge_counts(mine.get("days"), counts.get("days"))
        acts[kind] = {"total": int(mine.get("total", 0)) + int(counts.get("total", 0)),
                      "days": dict(sorted(days.items())[-35:])}
    survivor["activities"] = acts
    survivor["rewards"] = _merge_counts(survivor.get("rewards"), source.get("rewards"))
    survivor["referral_paid"] = bool(survivor.get("referral_paid") or source.get("referral_paid"))
    if source.get("earned"):  # earning-cap counters: one person's day and month
        from chalicelib.domain.earning import CAP_DAYS_KEPT, CAP_MONTHS_KEPT

        mine, theirs = survivor.get("earned") or {}, source["earned"]
        days = _merge_counts(mine.get("days"), theirs.get("days"))
        months = _merge_counts(mine.get("months"), theirs.get("months"))
        survivor["earned"] = {"days": dict(sorted(days.items())[-CAP_DAYS_KEPT:]),
                              "months": dict(sorted(months.items())[-CAP_MONTHS_KEPT:])}
    if source.get("last_activity_month"):  # the expiry policy's last earning or spending
        survivor["last_activity_month"] = max(survivor.get("last_activity_month") or "", source["last_activity_month"])
    sent, theirs = survivor.get("transfers") or {}, source.get("transfers") or {}
    if theirs.get("month") and theirs.get("month") == sent.get("month"):  # one person's month of transfers
        survivor["transfers"] = {"month": sent["month"], "points": int(sent["points"]) + int(theirs["points"])}
    elif theirs.get("month") and theirs["month"] > (sent.get("month") or ""):
        survivor["transfers"] = dict(theirs)
    merged_from = [*(survivor.get("merged_from") or []), source_id, *(source.get("merged_from") or [])]
    survivor["merged_from"] = list(dict.fromkeys(merged_from))


def merged_tier(survivor: dict, source: dict, spend: int, tiers, now: datetime, retention_months: int) -> dict:
    """The highest of the survivor's tier, the source's and the tier earned on the merged
    window, with that tier's `retained_until` (the later one when both held it; a tier only
    the merged window earns is reached now)."""
    mine, theirs = survivor.get("tier") or {}, source.get("tier") or {}
    i_mine, i_theirs = index_of(mine.get("tier_id"), tiers), index_of(theirs.get("tier_id"), tiers)
    i_earned = earned_index(spend, tiers)
    best = max(i_mine, i_theirs, i_earned)
    held = [t for t, i in ((mine, i_mine), (theirs, i_theirs)) if i == best and t.get("tier_id")]
    if held:
        until = [t.get("retained_until") for t in held if t.get("retained_until")]
        reached = [t.get("reached_at") for t in held if t.get("reached_at")]
        return {**mine, "tier_id": tiers[best].tier_id, "retained_until": max(until) if until else None,
                "reached_at": min(reached) if reached else clock.iso(now)}
    return {**mine, "tier_id": tiers[best].tier_id, "reached_at": clock.iso(now),
            "retained_until": _retained_until(now, retention_months) if best > 0 else None}


def voucher_moves(source_id: str, survivor_id: str) -> list:
    """One op (or a group of ops, as a list) per issued voucher of the source."""
    from chalicelib.store.rewards import RedemptionRecord

    out = []
    for rec in RedemptionRecord.by_owner.query(source_id):
        if rec.status != "issued":
            continue  # used, cancelled, expired: history, read through the source
        version = int(rec.version)
        out.append([tx.update(RedemptionRecord(rec.redemption_id),
                              [RedemptionRecord.owner_id.set(survivor_id), RedemptionRecord.version.set(version + 1)],
                              (RedemptionRecord.owner_id == source_id) & (RedemptionRecord.version == version))])
    return out


def wallet_moves(source_id: str, survivor_id: str) -> list:
    """Coupon-wallet rows of the source re-keyed to the survivor (delete + put), for
    campaigns the survivor has no row of (its own row wins: one code per campaign)."""
    from chalicelib.store.coupons import CodeRecord, WalletRecord

    theirs = {w.campaign_id for w in WalletRecord.query(survivor_id, consistent_read=True)}
    out = []
    for w in WalletRecord.query(source_id, consistent_read=True):
        if w.campaign_id in theirs:
            continue
        moved = WalletRecord(survivor_id, w.campaign_id, code=w.code, issued_at=w.issued_at, issued_sk=w.issued_sk,
                             uses=w.uses, redeemed=w.redeemed)
        group = [tx.delete(WalletRecord(source_id, w.campaign_id), WalletRecord.member_id.exists()),
                 tx.put(moved, WalletRecord.member_id.does_not_exist())]
        code = _unique_code(CodeRecord, w.code, source_id)
        if code is not None:  # a unique code names its holder: it is the survivor's to redeem now
            group.append(tx.update(CodeRecord(code.code, campaign_id=code.campaign_id),
                                   [CodeRecord.member_id.set(survivor_id)], CodeRecord.member_id == source_id))
        out.append(group)
    return out


def _unique_code(model, code: Optional[str], member_id: str):
    if not code:
        return None
    try:
        rec = model.get(code, consistent_read=True)
    except model.DoesNotExist:
        return None
    return rec if rec.kind == "unique" and rec.member_id == member_id else None


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

    def replay(rec: MergeRecord) -> dict:
        if rec.survivor_id != survivor_id or rec.source_id != source_id or rec.request_hash != req_hash:
            raise IdempotencyMismatch(merge_id=body.merge_id)
        # finish what may not have fit in the transaction (a crash after the commit, say)
        finish_moves(voucher_moves(source_id, survivor_id) + wallet_moves(source_id, survivor_id))
        return members.view(members.require(survivor_id))

    def attempt():
        now = clock.now()
        settings, tiers = program.settings(), program.tiers()
        s_rec, src_rec, prior = tx.get_many((MemberRecord, survivor_id), (MemberRecord, source_id),
                                            (MergeRecord, body.merge_id))
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
        if len(survivor.state.get("merged_from") or ()) + 1 + len(source.state.get("merged_from") or ()) > MAX_MERGED:
            raise ValidationFailed(f"a member absorbs at most {MAX_MERGED} accounts",
                                   fields=[{"field": "source_member_id", "message": "too many merges"}])
        vch, sch = Change.begin(survivor, now), Change.begin(source, now)
        open_holds = sorted(sch.wallet.holds)
        moved = absorb(vch.wallet, sch.wallet)
        merge_state(survivor.state, source.state, source_id, now, settings)
        before = (survivor.state.get("tier") or {}).get("tier_id") or tiers[0].tier_id
        spend = qualifying_spend(survivor.state["spend"], month_of(now), settings.tier_window_months)
        survivor.state["tier"] = merged_tier(survivor.state, source.state, spend, tiers, now,
                                             settings.tier_retention_months)
        source.status = "closed"
        source.state["merged_into"] = survivor_id
        source.state["merged_at"] = clock.iso(now)
        source.state["spend"] = {}
        ref = {"merge_id": body.merge_id}
        sch.entry("merge_out", -moved, reference=ref, actor=actor, occurred_at=now, note=f"merged into {survivor_id}")
        vch.entry("merge_in", moved, reference=ref, actor=actor, occurred_at=now, note=f"merged from {source_id}")
        after = survivor.state["tier"]["tier_id"]
        if after != before:
            record_tier_change(vch, {"from": before, "to": after}, now, f"merge:{body.merge_id}")
        from chalicelib.store.holds import HoldRecord

        hold_ops = [tx.update(HoldRecord(h), [HoldRecord.member_id.set(survivor_id)],
                              (HoldRecord.status == "held") & (HoldRecord.member_id == source_id)) for h in open_holds]
        uow = UnitOfWork()
        uow.extend(vch.write_ops())
        uow.extend(sch.write_ops())
        uow.extend(hold_ops)
        index = uow.add(store.put_merge_op(body.merge_id, survivor_id, source_id, req_hash,
                                           {"points": moved, "holds": open_holds, "merged_at": clock.iso(now)}),
                        anchor=MergeRecord)
        uow.add(audit.entry_op(actor, "member.merge", target=survivor_id,
                               details={"merge_id": body.merge_id, "source_member_id": source_id, "points": moved}))
        uow.publish(vch.messages + sch.messages)
        uow.publish_events(_merged_events(vch, body.merge_id, now) + _merged_events(sch, body.merge_id, now))
        budget = MAX_ITEMS - RESERVED_ITEMS - len(uow.ops) - len(uow.messages)
        now_groups, later = [], []
        for g in voucher_moves(source_id, survivor_id) + wallet_moves(source_id, survivor_id):
            if len(g) <= budget:
                now_groups.append(g)
                budget -= len(g)
            else:
                later.append(g)
                budget = -1  # keep the order: what comes after waits too
        uow.extend(_flatten(now_groups))
        try:
            uow.commit()
        except tx.TxCancelled as c:
            if c.failed(index):
                prior = store.get_merge(body.merge_id)
                if prior is None:
                    raise Conflict()
                return replay(prior), []
            raise Conflict()  # a member, a hold, a voucher changed since the read: decide again
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
