"""What the data-subject access export reads (SPEC 2.17): everything held about one member,
from the member's own keys and indexes and the records its ledger names, as plain values.
Nothing of other members is read. Which table holds what: `services/finance.MEMBER_DATA`."""
from __future__ import annotations

from datetime import datetime

from chalicelib import clock


def plain(value):
    """A stored value as JSON-ready data (instants as ISO strings, sets as lists)."""
    if isinstance(value, datetime):
        return clock.iso(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [plain(v) for v in value]
    return value


def _attrs(rec, drop: tuple = ("request_hash", "expires_at")) -> dict:
    return {k: plain(v) for k, v in rec.attribute_values.items() if k not in drop}


def _batch_get(model, keys) -> list:
    keys = sorted(set(keys))
    out = []
    for i in range(0, len(keys), 100):
        out.extend(model.batch_get(keys[i:i + 100]))
    return out


def member_records(member_id: str) -> dict:
    """The member's records by kind (the export's lists), each read page by page."""
    from chalicelib.store import coupons as coupon_store
    from chalicelib.store import holds as hold_store
    from chalicelib.store import marketing as mk
    from chalicelib.store import rewards as reward_store
    from chalicelib.store.models import LedgerRecord, OrderRecord, TierHistoryRecord

    ledger = [r.entry for r in LedgerRecord.query(member_id, consistent_read=True)]  # oldest first, paged
    refs: dict[str, set] = {}
    for e in ledger:
        for name, value in (e.get("reference") or {}).items():
            if isinstance(value, str):
                refs.setdefault(name, set()).add(value)
    orders = [{"order_id": r.order_id, "request": plain(r.data), "response": plain(r.response)}
              for r in _batch_get(OrderRecord, refs.get("order_id", ()))]
    owned = list(reward_store.RedemptionRecord.by_owner.query(member_id))
    paid_ids = refs.get("redemption_id", set()) - {r.redemption_id for r in owned}
    paid = _batch_get(reward_store.RedemptionRecord, paid_ids)
    redemptions = [_attrs(r, drop=("version",)) for r in sorted(owned + paid, key=lambda r: r.issued_at)]
    coupons = [_attrs(r) for r in coupon_store.WalletRecord.query(member_id)]
    order_ids = sorted(refs.get("order_id", ()))
    coupon_ids = [coupon_store.redemption_id(o) for o in order_ids]  # one per order, before stacking
    coupon_ids += coupon_store.redemption_ids_for_orders(order_ids)  # one per campaign and order
    coupon_uses = [_attrs(r) for r in _batch_get(coupon_store.RedemptionRecord, coupon_ids)
                   if r.member_id == member_id]
    holds = [_attrs(r) for r in hold_store.HoldRecord.by_member.query(member_id)]
    feedback_ids = {a.split(":", 1)[1] for a in refs.get("activity_id", ()) if a.startswith("feedback:")}
    feedback_ids |= {k.feedback_id for k in mk.FeedbackRecord.comments_by_member.query(member_id)}
    feedback = [_attrs(r, drop=("request_hash", "expires_at", "commenter"))
                for r in _batch_get(mk.FeedbackRecord, feedback_ids) if r.member_id == member_id]
    events = [_attrs(r, drop=("pending_member", "expires_at", "sk")) for r in mk.MemberEventRecord.query(member_id)]
    outreach = mk.OutreachRecord.find(member_id)
    messages = ({"sent": plain(outreach.sent), "marketing_sends": plain(outreach.marketing)} if outreach
                else {"sent": {}, "marketing_sends": []})
    tier_history = [{"at": r.at, **plain(r.change)} for r in TierHistoryRecord.query(member_id)]
    transfers, merges = _transfers_and_merges(member_id, refs)
    return {
        "tier_history": tier_history,
        "ledger": ledger,
        "orders": sorted(orders, key=lambda o: o["order_id"]),
        "redemptions": redemptions,
        "coupons": coupons,
        "coupon_redemptions": coupon_uses,
        "holds": holds,
        "transfers": transfers,
        "merges": merges,
        "events": events,
        "feedback": feedback,
        "messages": messages,
        "experiments": _experiments(member_id),
    }


def _transfers_and_merges(member_id: str, refs: dict) -> tuple[list, list]:
    """Transfers in and out (and merges the ledger names), from the transfers store."""
    from chalicelib.store import transfers as transfer_store

    transfers = [plain(r.line) for r in transfer_store.TransferLineRecord.query(member_id)]
    merges = [_attrs(r) for r in _batch_get(transfer_store.MergeRecord, refs.get("merge_id", ()))]
    return transfers, merges


def _experiments(member_id: str) -> list:
    """Control groups (SPEC 2.18): each exposure of the member, with the orders attributed to it."""
    from chalicelib.store import attribution

    out = []
    for exp in attribution.ExposureRecord.query(member_id):
        orders = [_attrs(a, drop=("expires_at", "exposure"))
                  for a in attribution.AttributionRecord.query(exp.attribution_key)]
        out.append({**_attrs(exp, drop=("expires_at", "key")), "attributed_orders": orders})
    return out
