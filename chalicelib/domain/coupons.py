"""Coupon rules (SPEC 2.9, 2.10): pure functions of plain data, no AWS.

- `discount_for`: the discount an order gets (integers only, never above the total).
- `in_audience`: whether a member is in a campaign's audience (the one rule of
  `domain/audience.py`; a campaign without an audience is for everyone).
- `evaluate`: the first reason a coupon does not apply, in a fixed order, or the discount.
- `shard_caps` / `redistribute`: a redemption limit split into slices, one per counter shard,
  so that no single item takes every write of a flash sale and the slices never sum above it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Optional, Sequence

from chalicelib.domain.audience import EVERYONE, Audience, MemberFacts
from chalicelib.domain.audience import in_audience as _in_audience

SHIPPING = "shipping"

# Rejection codes (SPEC 2.9), in the order `evaluate` checks them.
NOT_FOUND = "COUPON_NOT_FOUND"
INACTIVE = "COUPON_INACTIVE"
NOT_STARTED = "COUPON_NOT_STARTED"
EXPIRED = "COUPON_EXPIRED"
ALREADY_USED = "COUPON_ALREADY_USED"
NOT_ELIGIBLE = "COUPON_NOT_ELIGIBLE"
MEMBER_LIMIT = "COUPON_MEMBER_LIMIT_REACHED"
LIMIT = "COUPON_LIMIT_REACHED"
MIN_ORDER = "COUPON_MIN_ORDER"
BUDGET = "COUPON_BUDGET_EXHAUSTED"  # SPEC 2.20
NOT_STACKABLE = "COUPON_NOT_STACKABLE"


@dataclass(frozen=True)
class Line:
    category: Optional[str]
    amount: int


@dataclass(frozen=True)
class Rules:
    """What a campaign decides at checkout, parsed once from its stored definition."""

    discount_type: str  # percent | amount | free_shipping
    discount_value: int
    min_order_amount: int
    categories: Optional[frozenset]
    starts_at: datetime
    ends_at: datetime
    status: str
    max_per_member: int
    audience: Audience = Audience()  # none: every member


@dataclass(frozen=True)
class CodeFacts:
    """A unique code's state as read; shared codes carry no per-code state."""

    owner: Optional[str] = None  # the member it was issued to
    redeemed: bool = False


@dataclass
class Verdict:
    reason: Optional[str]
    discount_amount: int = 0

    @property
    def valid(self) -> bool:
        return self.reason is None


# --- discounts ------------------------------------------------------------------------

def eligible_amount(total: int, lines: Sequence[Line], categories: Optional[Iterable[str]]) -> Optional[int]:
    """The part of the order a discount applies to; None when `categories` match no line."""
    if not categories:
        return total
    cats = set(categories)
    matching = [ln.amount for ln in lines if ln.category in cats]
    if not matching:
        return None
    return min(sum(matching), total)


def discount_for(discount_type: str, value: int, total: int, lines: Sequence[Line],
                 categories: Optional[Iterable[str]] = None) -> Optional[int]:
    """The discount in minor units (None when the order has no eligible line).

    percent: floor(eligible × value / 100); amount: min(value, eligible);
    free_shipping: the amount of the order's `shipping` lines (0 when there are none).
    Never more than the order's total.
    """
    eligible = eligible_amount(total, lines, categories)
    if eligible is None:
        return None
    if discount_type == "percent":
        amount = eligible * value // 100
    elif discount_type == "amount":
        amount = min(value, eligible)
    elif discount_type == "free_shipping":
        amount = sum(ln.amount for ln in lines if ln.category == SHIPPING)
    else:
        raise ValueError(f"unknown discount type {discount_type!r}")
    return max(0, min(amount, total))


# --- audience ---------------------------------------------------------------------------

def in_audience(rules: Rules, member: MemberFacts) -> bool:
    """The campaign's audience (domain/audience.py); a campaign without one is for everyone."""
    return _in_audience(rules.audience, member, when_empty=EVERYONE)


# --- the verdict ------------------------------------------------------------------------

def evaluate(rules: Rules, *, now: datetime, member: MemberFacts, total: int, lines: Sequence[Line],
             code: CodeFacts = CodeFacts(), member_uses: Optional[int] = None,
             remaining: Optional[int] = None, budget_left: Optional[int] = None) -> Verdict:
    """The first rule that says no, or the discount. `member_uses` and `remaining` are
    checked only when known (validate reads them; redeem enforces them with conditions)."""
    if rules.status != "active":
        return Verdict(INACTIVE)
    if now < rules.starts_at:
        return Verdict(NOT_STARTED)
    if now > rules.ends_at:
        return Verdict(EXPIRED)
    if code.redeemed:
        return Verdict(ALREADY_USED)
    if code.owner is not None and code.owner != member.member_id:
        return Verdict(NOT_ELIGIBLE)
    if not in_audience(rules, member):
        return Verdict(NOT_ELIGIBLE)
    if total < rules.min_order_amount:
        return Verdict(MIN_ORDER)
    amount = discount_for(rules.discount_type, rules.discount_value, total, lines, rules.categories)
    if amount is None:
        return Verdict(NOT_ELIGIBLE)
    # The limits come last and in the order redeem's transaction reports them (the total
    # limit's counter before the member's wallet), so validate and redeem give the same reason.
    if remaining is not None and remaining <= 0:
        return Verdict(LIMIT)
    if budget_left is not None and amount > budget_left:
        return Verdict(BUDGET)
    if member_uses is not None and member_uses >= rules.max_per_member:
        return Verdict(MEMBER_LIMIT)
    return Verdict(None, amount)


# --- the sharded limit ---------------------------------------------------------------------

def shard_caps(limit: Optional[int], shards: int) -> list[Optional[int]]:
    """`limit` split into `shards` slices that sum to it exactly (None = unlimited)."""
    return redistribute(limit, [0] * shards)


def redistribute(limit: Optional[int], used: Sequence[int]) -> list[Optional[int]]:
    """New slices after the limit changed: each shard keeps what it used and gets a share
    of what is left, so Σ caps = max(limit, Σ used) and no shard is below its own use."""
    if limit is None:
        return [None] * len(used)
    remaining = max(limit - sum(used), 0)
    n = len(used)
    base, extra = divmod(remaining, n)
    return [u + base + (1 if i < extra else 0) for i, u in enumerate(used)]


def remaining(caps: Sequence[Optional[int]], used: Sequence[int]) -> Optional[int]:
    if any(c is None for c in caps):
        return None
    return sum(max(int(c) - int(u), 0) for c, u in zip(caps, used))


# --- stats ---------------------------------------------------------------------------------

def stats(code_mode: str, codes: int, issued: int, redeemed: int, discount_total: int = 0) -> dict:
    """SPEC 2.9: unique campaigns redeemed ÷ issued; shared codes 1.0 once used. SPEC 2.20:
    `discount_total`, the discount of the redemptions in force (net of rollbacks)."""
    if code_mode == "shared":
        rate = 1.0 if redeemed > 0 else 0.0
    else:
        rate = round(redeemed / issued, 4) if issued else 0.0
    return {"codes": codes, "issued": issued, "redeemed": redeemed, "redemption_rate": rate,
            "discount_total": discount_total}


# --- the sharded money budget (SPEC 2.20) ----------------------------------------------------

def budget_rooms(budgets: Sequence[Optional[int]], spent: Sequence[int]) -> list[int]:
    """What each slice of the budget has left."""
    return [max(int(b or 0) - int(s), 0) for b, s in zip(budgets, spent)]


def allocate(amount: int, rooms: Sequence[int], prefer: Optional[int] = None) -> Optional[dict[int, int]]:
    """Take `amount` from the slices' rooms: the preferred slice first, then the roomiest ones,
    so one discount may span several slices. None when all of them together lack the room."""
    if amount <= 0:
        return {}
    if sum(rooms) < amount:
        return None
    order = sorted(range(len(rooms)), key=lambda n: (n != prefer, -rooms[n], n))
    parts: dict[int, int] = {}
    left = amount
    for n in order:
        if left <= 0:
            break
        take = min(rooms[n], left)
        if take > 0:
            parts[n] = take
            left -= take
    return parts


def wallet_status(code_mode: str, rules: Rules, now: datetime, uses: int, code_redeemed: bool) -> str:
    """A wallet entry: `redeemed` once its code (unique) or all the member's uses (shared) are
    spent, `expired` when the campaign ended, else `issued`."""
    spent = code_redeemed if code_mode == "unique" else uses >= rules.max_per_member
    if spent:
        return "redeemed"
    if rules.status == "ended" or now > rules.ends_at:
        return "expired"
    return "issued"


@dataclass
class IssuePlan:
    """How one issuing call went (counts for the response and the audit trail)."""

    issued: int = 0
    already_issued: int = 0
    not_found: int = 0
    inactive: int = 0
    ineligible: int = 0
    out_of_codes: int = 0
    notified: int = 0
    codes: dict = field(default_factory=dict)

    def counts(self) -> dict:
        return {"issued": self.issued, "already_issued": self.already_issued, "not_found": self.not_found,
                "inactive": self.inactive, "ineligible": self.ineligible, "out_of_codes": self.out_of_codes,
                "notified": self.notified}
