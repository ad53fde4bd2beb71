"""Finance and data (SPEC 2.17): the points liability report, admin lookups (members by
email, the whole rewards catalogue) and the data-subject access export of one member.

The liability report is a segmented job (`jobs/finance.py`): each member's partial sums
come from `member_partials`, the sums of every segment are kept in the segments'
checkpoints, and `finish_liability` builds and stores the report once every segment is
done. How the 12-month flows are read without reading the whole ledger: docs/FINANCE.md.
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Callable, Iterator, Optional

from chalicelib import clock
from chalicelib.domain import liability
from chalicelib.domain.member import Member
from chalicelib.domain.wallet import Wallet
from chalicelib.errors import NotFound, ValidationFailed
from chalicelib.services import members, program
from chalicelib.services.uow import UnitOfWork, retry
from chalicelib.store import access, tx
from chalicelib.store import members as member_store
from chalicelib.store import reports as report_store
from chalicelib.store import rewards as reward_store
from chalicelib.store.base import Conflict

LIABILITY = "liability"


# --- the liability report --------------------------------------------------------------

def expiry_policy(settings=None) -> liability.ExpiryPolicy:
    settings = settings or program.settings()
    kind = getattr(settings, "points_expiry_policy", None) or "earned_month"
    return liability.ExpiryPolicy(settings.points_expiry_months, str(kind))


def member_partials(row: Member, as_of: datetime, policy: liability.ExpiryPolicy) -> Counter:
    """One member's partial sums for the report as of `as_of`: the outstanding points as a
    read would show them then (pending points past their window count as available, holds
    past their time as released; nothing is written), and the period's ledger flows."""
    wallet = Wallet.from_dict(row.wallet.to_dict())  # a copy: nothing is written
    wallet.mature(as_of)
    wallet.release_expired(as_of)
    out = liability.member_position(wallet.to_dict(), policy, row.to_state(), closed=row.status == "closed")
    if row.seq > 0:  # a member without ledger entries costs no query
        start, end = liability.period(as_of)
        out.update(liability.ledger_flows(_recent_entries(row.member_id, start), start, end, clock.parse_instant))
    return out


def _recent_entries(member_id: str, start: datetime) -> Iterator[dict]:
    """The member's ledger newest first, until entries recorded well before `start`."""
    for entry in report_store.ledger_newest_first(member_id):
        if liability.stop_reading(entry, start, clock.parse_instant):
            return
        yield entry


def segment_totals(job_id: str, segments: int, load_checkpoint: Callable[[str, str, int], dict],
                   phase: str = "main") -> Optional[Counter]:
    """The summed partial sums of every segment, or None while a segment is not done."""
    total: Counter = Counter()
    for segment in range(segments):
        cp = load_checkpoint(job_id, phase, segment)
        if not cp.get("done"):
            return None
        total.update(cp.get("counts") or {})
    return total


def finish_liability(job_id: str, as_of: datetime, started_at: str, totals: Counter) -> dict:
    """Build the report from the totals of every segment and store it. Writing it again
    (a redelivered last segment) writes the same item."""
    settings = program.settings()
    start, end = liability.period(as_of)
    report = {
        "as_of": clock.iso(as_of),
        "period": {"from": clock.iso(start), "to": clock.iso(end)},
        "currency": settings.currency,
        "point_value": int(settings.point_value),
        "points_expiry_months": settings.points_expiry_months,
        "points_expiry_policy": expiry_policy(settings).kind,
        **liability.build_report(totals, int(settings.point_value)),
        "job_id": job_id,
        "generated_at": clock.iso(datetime.now(as_of.tzinfo)),
    }
    report_store.save(LIABILITY, report["as_of"], started_at, job_id, report)
    return report


def latest_liability() -> dict:
    """The latest report (the newest `as_of`); 404 before any run."""
    report = report_store.latest(LIABILITY)
    if report is None:
        raise NotFound("no liability report yet: run the report-liability job", report="liability")
    return report


# --- admin lookups ------------------------------------------------------------------------

def email_key(email: str) -> Optional[str]:
    """How an email is compared (lower-cased, trimmed): the index key and the cursor's."""
    return member_store.email_key(email)


def members_by_email(email: str, limit: int, cursor: Optional[dict]) -> tuple[list[dict], Optional[dict]]:
    """Members whose email is `email`, compared case-insensitively (the sparse `by-email`
    index of the members table; closed members have no email and are not in it)."""
    key = member_store.email_key(email)
    if not key:
        raise ValidationFailed("email is required", fields=[{"field": "email", "message": "required"}])
    ids, last = member_store.ids_by_email(key, limit, cursor)
    rows = member_store.batch_get(ids)
    now = clock.now()
    items = [members.view(rows[i], now) for i in ids if i in rows and member_store.email_key(
        rows[i].profile.get("email") or "") == key]
    return items, last


def email_index_stale(stored_key: Optional[str], row: Member) -> bool:
    """Whether a member item's `email_key` differs from what its profile says (members
    written before the index existed have none)."""
    expected = member_store.email_key(row.profile.get("email")) if row.status != "closed" else None
    return (stored_key or None) != expected


def reindex_email(member_id: str) -> bool:
    """Rewrite the member item as it is, so that `save_op` sets its `email_key` (the one
    write of the `index-member-emails` backfill). Conditional on the version read; nothing
    else changes, so no event is published. Returns whether a write was made."""
    def attempt() -> bool:
        row = member_store.get(member_id)
        if row is None:
            return False
        uow = UnitOfWork()
        uow.add(member_store.save_op(row), anchor=member_store.anchor())
        try:
            uow.commit()
        except tx.TxCancelled:
            raise Conflict()
        return True

    return retry(attempt)


def all_rewards(limit: int, cursor: Optional[dict]) -> tuple[list[dict], Optional[dict]]:
    """Every reward in the catalogue, inactive and out-of-window ones too, by reward_id,
    each with `stock` and `remaining`."""
    items = sorted(({**rec.data, "reward_id": rec.reward_id,
                     "stock": int(rec.stock) if rec.stock is not None else None,
                     "remaining": reward_store.remaining(rec)} for rec in reward_store.all_rewards()),
                   key=lambda r: r["reward_id"])
    start = int((cursor or {}).get("offset", 0))
    if not isinstance((cursor or {}).get("offset", 0), int) or start < 0:
        raise ValidationFailed("cursor is not valid", fields=[{"field": "cursor", "message": "invalid"}])
    page = items[start:start + limit]
    nxt = {"offset": start + limit} if start + limit < len(items) else None
    return page, nxt


# --- data-subject access -------------------------------------------------------------------

# Every table of the stack, by whether it holds data about a member and how the export finds
# it. tests/integration/test_member_export.py fails when a table is added without an entry
# here (and so without a decision on what the export and the erasure do with it).
MEMBER_DATA = {
    "members": "exported: profile, consents, points, tier, counters (`member`, `account`)",
    "ledger": "exported: every entry (`ledger`)",
    "orders": "exported: the orders the ledger names (`orders`)",
    "idempotency": "not exported: stored answers of refunds, activities and adjustments, copies of the ledger",
    "config": "no member data: program settings and tiers",
    "audit": "not exported: admin actions name the member as a target (no index by target)",
    "jobs": "no member data: job records and checkpoints (keys only in error reports)",
    "lookups": "exported: the referral code is in the profile",
    "outbox": "no member data at rest: messages waiting a few seconds for the relay",
    "tier-history": "exported: every tier change (`tier_history`)",
    "rewards": "no member data: the catalogue",
    "redemptions": "exported: vouchers held or paid for (`redemptions`)",
    "coupon-campaigns": "no member data",
    "coupon-codes": "no member data: codes (an issued code is in the member's coupons)",
    "coupon-counters": "no member data",
    "coupon-wallets": "exported: issued coupons (`coupons`)",
    "coupon-redemptions": "exported: coupon uses of the orders the ledger names (`coupon_redemptions`)",
    "outreach": "exported: the messages queued for the member (`messages`)",
    "outreach-pending": "no member data at rest: messages between claim and send",
    "member-events": "exported: storefront events reported (`events`)",
    "favorites": "not exported: the latest favourite per sku (the events hold the same facts)",
    "feedback": "exported: feedback the ledger or the comments index names (`feedback`)",
    "nps-daily": "no member data: daily counts",
    "message-campaigns": "no member data",
    "segment-reports": "no member data: counts",
    "holds": "exported: point holds (`holds`)",
    "webhooks": "no member data",
    "webhook-deliveries": "not exported: copies of domain events sent to the program's own endpoints",
    "transfers": "exported through the transfer lines (`transfers`)",
    "transfer-lines": "exported: transfers in and out (`transfers`)",
    "merges": "exported: merges the ledger names (`merges`)",
    "reports": "no member data: program totals",
    "exposures": "exported: the member's treatment and control groups (`experiments`)",
    "exposure-batches": "not exported: delivery chunks, indexed into exposures by the measure job, then deleted",
    "attributions": "exported: the orders attributed to the member's exposures (`experiments`)",
    "uplift-results": "no member data: counts by source and day",
}


def export_member(member_id: str) -> dict:
    """Everything held about one member, in one document (SPEC 2.17 data-subject access).

    Each list is read page by page from the member's own keys and indexes (and the records
    the member's ledger names); nothing of other members is read."""
    row = members.require(member_id)
    now = clock.now()
    records = access.member_records(member_id)
    return {
        "member_id": member_id,
        "exported_at": clock.iso(now),
        "member": members.view(row, now),
        "account": {"status": row.status, "profile": access.plain(row.profile),
                    "state": access.plain(row.to_state())},
        **records,
    }
