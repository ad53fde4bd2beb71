"""The points liability report's arithmetic (SPEC 2.17), on plain data.

A report is built in two steps so that it can be computed over many segments:

1. per member, `member_position` (what the member item says about outstanding points
   and when they expire) and `ledger_flows` (the member's issued / redeemed / expired
   points in the report's 12-month period) give integer partial sums;
2. the partial sums of every member of every segment are added up (a `Counter`: the
   job's checkpoints keep them), and `build_report` turns the totals into the report.

Every figure is an integer except `breakage_rate`, a `Decimal` floored to 4 places.
See docs/FINANCE.md for what each figure means to an accountant.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Iterable, Mapping, Optional

from chalicelib.domain import expiry
from chalicelib.domain.months import add_months

PERIOD_MONTHS = 12  # issued / redeemed / expired cover the 12 months before as_of
RATE_PLACES = Decimal("0.0001")
EXPIRING_PREFIX = "expiring:"  # partial-sum key of the points expiring at the end of a month

# Ledger entry types by the flow they count in (magnitudes; see ledger_flows).
ISSUED_TYPES = frozenset({"earn", "bonus", "activity", "import"})  # + positive "adjust"
REDEEMED_TYPES = frozenset({"redeem", "spend", "refund_redemption", "refund_spend"})  # net of returns
EXPIRED_TYPES = frozenset({"expire"})
# Not in the spec's three flows, reported beside them so the period reconciles:
REVERSED_TYPES = frozenset({"reversal"})  # refunds taking earned points back
# transfer_in/out and merge_in/out move points between members: zero for the program.
MOVED_TYPES = frozenset({"transfer_in", "transfer_out", "merge_in", "merge_out"})


# --- expiry ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ExpiryPolicy:
    """How points expire: `earned_month` (SPEC 2.6: points earned in month M expire at the
    end of month M + `months`) or `last_activity` (all of a member's points expire together,
    `months` after the month of their last earning or spending). `months` None: never."""

    months: Optional[int]
    kind: str = "earned_month"


def expiring_schedule(lots: Mapping[str, int], policy: ExpiryPolicy,
                      member_state: Optional[Mapping] = None) -> dict[str, int]:
    """Points by the month at whose end they expire, for `lots` (earning month → points).

    The one place the report asks when points expire: it is the program's expiry schedule
    (`domain/expiry.py`, shared with the expire-points job and member reads), given the
    available lots and the lots held points came from, so the report and the job cannot
    disagree, whatever the policy."""
    lots = {m: int(n) for m, n in lots.items() if int(n) > 0}
    if policy.months is None or not lots:
        return {}
    state = {**(member_state or {}), "wallet": {"lots": lots}}
    return dict(expiry.expiring_by_month(state, policy.kind, policy.months))


# --- one member --------------------------------------------------------------------

def member_position(wallet: Mapping, policy: ExpiryPolicy, member_state: Optional[Mapping] = None,
                    closed: bool = False) -> Counter:
    """A member's outstanding points as partial sums.

    `wallet` is the member's wallet as stored (`Wallet.to_dict()`), already matured and
    with holds past their time released as of the report. A negative available balance
    counts as 0 available (the deficit is reported as `negative_balance`, its magnitude).
    A closed member's points still count (they are in the ledger) and are also reported as
    `closed_points`: nobody can redeem them any more.
    Expiring points: the available lots and the lots each hold keeps, by the month at whose
    end they expire; pending points are not in lots yet and are left out.
    """
    out: Counter = Counter()
    available = int(wallet.get("available", 0))
    out["members"] += 1
    out["available"] += max(available, 0)
    out["pending"] += int(wallet.get("pending", 0))
    out["held"] += int(wallet.get("held", 0))
    if closed:
        out["closed_points"] += max(available, 0) + int(wallet.get("pending", 0)) + int(wallet.get("held", 0))
    if available < 0:
        out["negative_balance"] += -available
        out["members_negative"] += 1
    lots: Counter = Counter({m: int(p) for m, p in (wallet.get("lots") or {}).items()})
    for hold in (wallet.get("holds") or {}).values():
        lots.update({m: int(p) for m, p in (hold.get("lots") or {}).items()})
    for month, points in expiring_schedule(lots, policy, member_state).items():
        if points > 0:
            out[EXPIRING_PREFIX + month] += points
    return out


def period(as_of: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the report's flows: the 12 months before `as_of`, to the same
    day and time (clamped to the month's last day: 12 months before 29 Feb is 28 Feb)."""
    month = add_months(f"{as_of.year:04d}-{as_of.month:02d}", -PERIOD_MONTHS)
    year, mon = int(month[:4]), int(month[5:7])
    day = as_of.day
    while True:
        try:
            return as_of.replace(year=year, month=mon, day=day), as_of
        except ValueError:
            day -= 1


def ledger_flows(entries: Iterable[Mapping], start: datetime, end: datetime, parse) -> Counter:
    """The period's flows of one member's ledger entries, as positive magnitudes.

    An entry counts when `start <= occurred_at < end` (`parse` turns its ISO string into
    a datetime). `redeemed` nets returns (a cancelled redemption, points paid back by a
    refund) against redemptions and spends; over a period it can only turn negative
    when more was returned than redeemed, which the report shows as it is.
    """
    out: Counter = Counter()
    for e in entries:
        at = parse(e["occurred_at"])
        if not start <= at < end:
            continue
        kind, points = e["type"], int(e["points"])
        if kind in ISSUED_TYPES or (kind == "adjust" and points > 0):
            out["issued"] += points
        elif kind in REDEEMED_TYPES:
            out["redeemed"] -= points
        elif kind in EXPIRED_TYPES:
            out["expired"] -= points
        elif kind in REVERSED_TYPES:
            out["reversed"] -= points
        elif kind == "adjust":
            out["adjusted_down"] -= points
        elif kind in MOVED_TYPES:
            out["moved_net"] += points
    return out


# Ledger entries are read newest first and the reading stops at the first entry recorded
# this long before the period starts: `occurred_at` is never more than 5 minutes after
# `recorded_at` (SPEC 3), and `recorded_at` is the commit's clock, which grows with `seq`
# up to clock skew between writers.
READ_MARGIN = timedelta(days=1)


def stop_reading(entry: Mapping, start: datetime, parse) -> bool:
    recorded = entry.get("recorded_at") or entry["occurred_at"]
    return parse(recorded) < start - READ_MARGIN


# --- the whole program ---------------------------------------------------------------

def breakage_rate(expired: int, redeemed: int) -> Optional[Decimal]:
    """expired ÷ (expired + redeemed), floored to 4 decimals; None without either (or when
    returns outweigh everything, leaving no denominator)."""
    total = expired + redeemed
    if (expired == 0 and redeemed == 0) or total <= 0:
        return None
    rate = Decimal(expired) / Decimal(total)
    return min(max(rate, Decimal(0)), Decimal(1)).quantize(RATE_PLACES, rounding=ROUND_FLOOR)


def estimated_liability(outstanding_value: int, rate: Optional[Decimal]) -> int:
    """floor(outstanding_value × (1 − breakage_rate)), with the rate as reported."""
    if rate is None:
        return outstanding_value
    return int((Decimal(outstanding_value) * (Decimal(1) - rate)).to_integral_value(rounding=ROUND_FLOOR))


def build_report(totals: Mapping[str, int], point_value: int) -> dict:
    """The report's figures from the summed partial sums of every member."""
    t = Counter({k: int(v) for k, v in totals.items()})
    outstanding = {"available": t["available"], "pending": t["pending"], "held": t["held"]}
    value = sum(outstanding.values()) * int(point_value)
    rate = breakage_rate(t["expired"], t["redeemed"])
    expiring = sorted((k[len(EXPIRING_PREFIX):], n) for k, n in t.items()
                      if k.startswith(EXPIRING_PREFIX) and n)
    return {
        "outstanding": outstanding,
        "outstanding_value": value,
        "expiring_by_month": [{"month": m, "points": n} for m, n in expiring],
        "issued": t["issued"],
        "redeemed": t["redeemed"],
        "expired": t["expired"],
        "breakage_rate": None if rate is None else str(rate),
        "estimated_liability": estimated_liability(value, rate),
        "other_flows": {"reversed": t["reversed"], "adjusted_down": t["adjusted_down"], "moved_net": t["moved_net"]},
        "negative_balance": t["negative_balance"],
        "closed_points": t["closed_points"],
        "members": t["members"],
        "members_negative": t["members_negative"],
        "members_failed": t["failed"],
    }
