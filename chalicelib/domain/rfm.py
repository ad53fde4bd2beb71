"""RFM scoring, segment labels, the LTV estimate and the touch model (SPEC 2.11). Pure.

See docs/SEGMENTS.md for every rule and why. In short:
- inputs as of a moment: R = days since the last purchase, F = orders in the last 365
  days, M = net spend in the last 365 days (monthly buckets; the 13th, partial month is
  prorated by the days of it inside the window);
- each 1–5 by quintile of the mid-rank over the members with a purchase (ties share a
  score; the result does not depend on scan order);
- label from the grid (R, FM = ⌈(F + M) / 2⌉); no purchase → `new` with rfm "000";
- ltv_12m = floor(M × retention(recency days)); touch model by LTV rank.
"""
from __future__ import annotations

import bisect
import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Iterable, Optional, Sequence

from chalicelib.clock import iso, parse_instant
from chalicelib.domain.months import add_months, month_of, month_start

LABELS = ("champions", "loyal", "potential_loyalist", "new", "promising", "need_attention", "at_risk",
          "cant_lose", "hibernating", "lost")
TOUCH = ("high_touch", "low_touch", "tech_touch")
NOT_SCORED = "000"  # the rfm of a member without a purchase

# (R, FM) → label; rows R 5…1, columns FM 5…1. The table of docs/SEGMENTS.md.
_GRID = {
    5: ("champions", "champions", "potential_loyalist", "potential_loyalist", "new"),
    4: ("champions", "champions", "potential_loyalist", "potential_loyalist", "promising"),
    3: ("loyal", "loyal", "need_attention", "need_attention", "hibernating"),
    2: ("cant_lose", "at_risk", "at_risk", "hibernating", "hibernating"),
    1: ("cant_lose", "cant_lose", "at_risk", "lost", "lost"),
}

# Share of the last year's spend expected again in the next 12 months, by days since the
# last purchase (absolute, so a member's LTV does not depend on the rest of the population).
RETENTION = ((30, Decimal("1.0")), (90, Decimal("0.8")), (180, Decimal("0.55")), (365, Decimal("0.3")))
RETENTION_AFTER = Decimal("0.1")

HIGH_TOUCH_PERCENT = 5
LOW_TOUCH_PERCENT = 20


@dataclass(frozen=True)
class Inputs:
    member_id: str
    recency_days: Optional[int]  # None: no purchase on or before the scoring moment
    frequency: int
    monetary: int
    orders: int = 0  # lifetime orders on or before the scoring moment (f2_rate)


@dataclass(frozen=True)
class Score:
    member_id: str
    rfm: str
    label: str
    touch: str
    ltv_12m: int


# --- inputs -------------------------------------------------------------------------------

def monetary(spend: dict, as_of: datetime) -> int:
    """Net spend in the 365 days ending at `as_of` from monthly buckets: the 12 months
    ending with `as_of`'s month in full, plus the 13th month prorated by the share of its
    days that fall inside the window (floor). Never negative."""
    current = month_of(as_of)
    total = sum(int(spend.get(add_months(current, -i), 0)) for i in range(12))
    thirteenth = add_months(current, -12)
    first_day = as_of.date() - timedelta(days=364)  # the window's 365 dates end with as_of's date
    start = month_start(thirteenth).date()
    days = calendar.monthrange(start.year, start.month)[1]
    inside = max(0, min(days, (start + timedelta(days=days - 1) - first_day).days + 1))
    if inside:
        total += int((Decimal(int(spend.get(thirteenth, 0))) * inside / days).to_integral_value(rounding=ROUND_FLOOR))
    return max(0, total)


def inputs_from_state(member_id: str, state: dict, as_of: datetime) -> Inputs:
    """R, F, M as of `as_of` from a member's `orders` and `spend` state. Orders placed
    after `as_of` do not count (back-dated scoring)."""
    orders = state.get("orders") or {}
    until = iso(as_of)
    count = int(orders.get("count") or 0)
    recent = sorted(d for d in (orders.get("recent") or []) if d)
    before = [d for d in recent if d <= until]
    later = len(recent) - len(before)
    lifetime = max(0, count - later)
    last = before[-1] if before else None
    if last is None and lifetime and orders.get("last_at") and orders["last_at"] <= until:
        last = orders["last_at"]  # older than the kept timestamps
    if not lifetime or last is None:
        return Inputs(member_id, None, 0, 0, 0)
    horizon = iso(as_of - timedelta(days=365))
    recency = max(0, (as_of.date() - parse_instant(last).date()).days)
    frequency = sum(1 for d in before if d > horizon)
    return Inputs(member_id, recency, frequency, monetary(state.get("spend") or {}, as_of), lifetime)


# --- scores -------------------------------------------------------------------------------

class Quintiles:
    """Score 1–5 of a value by its mid-rank among `values`:
    score = 1 + floor(5 × (worse + ties / 2) / n), capped at 5, where `worse` counts the
    values strictly worse and `ties` the equal ones (itself included). Integer arithmetic."""

    def __init__(self, values: Iterable[int], higher_is_better: bool):
        self.ordered = sorted(values)
        self.higher = higher_is_better

    def score(self, v: int) -> int:
        n = len(self.ordered)
        lo = bisect.bisect_left(self.ordered, v)
        hi = bisect.bisect_right(self.ordered, v)
        ties = hi - lo
        worse = lo if self.higher else n - hi
        return min(5, 1 + (5 * (2 * worse + ties)) // (2 * n))


def label_for(r: int, f: int, m: int) -> str:
    fm = (f + m + 1) // 2
    return _GRID[r][5 - fm]


def retention(recency_days: int) -> Decimal:
    for days, share in RETENTION:
        if recency_days <= days:
            return share
    return RETENTION_AFTER


def ltv_12m(recency_days: Optional[int], frequency: int, monetary_: int) -> int:
    """Average order value (M ÷ F) × orders expected in the next 12 months (F × retention),
    i.e. floor(M × retention(R days)); 0 without a purchase in the last year."""
    if recency_days is None or frequency <= 0 or monetary_ <= 0:
        return 0
    aov = Decimal(monetary_) / Decimal(frequency)
    expected = Decimal(frequency) * retention(recency_days)
    return int((aov * expected).to_integral_value(rounding=ROUND_FLOOR))


def touch_models(ltvs: dict[str, int]) -> dict[str, str]:
    """Rank by LTV (higher first, ties by member id): the top 5% (rounded up) are
    high_touch, the next 20% low_touch, the rest tech_touch. A member without value
    (LTV 0) is always tech_touch."""
    n = len(ltvs)
    high = -(-n * HIGH_TOUCH_PERCENT // 100)
    low_end = -(-n * (HIGH_TOUCH_PERCENT + LOW_TOUCH_PERCENT) // 100)
    out = {}
    ranked = sorted(ltvs.items(), key=lambda kv: (-kv[1], kv[0]))
    for i, (member_id, ltv) in enumerate(ranked):
        if ltv > 0 and i < high:
            out[member_id] = "high_touch"
        elif ltv > 0 and i < low_end:
            out[member_id] = "low_touch"
        else:
            out[member_id] = "tech_touch"
    return out


def score_all(members: Sequence[Inputs]) -> list[Score]:
    """Score a population; the result is independent of the input order."""
    buyers = [m for m in members if m.recency_days is not None]
    rq = Quintiles((m.recency_days for m in buyers), higher_is_better=False)
    fq = Quintiles((m.frequency for m in buyers), higher_is_better=True)
    mq = Quintiles((m.monetary for m in buyers), higher_is_better=True)
    ltvs = {m.member_id: ltv_12m(m.recency_days, m.frequency, m.monetary) for m in members}
    touch = touch_models(ltvs)
    out = []
    for m in members:
        if m.recency_days is None:
            out.append(Score(m.member_id, NOT_SCORED, "new", touch[m.member_id], 0))
            continue
        r, f, mo = rq.score(m.recency_days), fq.score(m.frequency), mq.score(m.monetary)
        out.append(Score(m.member_id, f"{r}{f}{mo}", label_for(r, f, mo), touch[m.member_id], ltvs[m.member_id]))
    return out


def segment_state(previous: Optional[dict], score: Score, scored_at: str) -> dict:
    """The member's new `segment`. `previous_label` is the label held before the last
    change of label and `changed_at` when that change was scored, so a move into
    at_risk is still visible to churn_risk until the next move, and re-running a scoring
    for the same moment keeps them."""
    previous = previous or {}
    seg = {"rfm": score.rfm, "label": score.label, "touch": score.touch, "ltv_12m": score.ltv_12m,
           "scored_at": scored_at}
    if previous.get("scored_at") == scored_at:
        seg.update(previous_label=previous.get("previous_label"), changed_at=previous.get("changed_at"))
    elif previous.get("label") != score.label:
        seg.update(previous_label=previous.get("label"), changed_at=scored_at)
    else:
        seg.update(previous_label=previous.get("previous_label"), changed_at=previous.get("changed_at"))
    return seg


# --- report figures -----------------------------------------------------------------------

def f2_rate(order_counts: Iterable[int]) -> float:
    """Of the members with at least one order, the share with at least two (4 decimals)."""
    buyers = repeat = 0
    for c in order_counts:
        if c >= 1:
            buyers += 1
            repeat += c >= 2
    if not buyers:
        return 0.0
    return round(repeat / buyers, 4)


def nps(promoters: int, passives: int, detractors: int) -> Optional[float]:
    """% promoters (9–10) − % detractors (0–6), one decimal; None without answers."""
    total = promoters + passives + detractors
    if not total:
        return None
    return round(100 * (promoters - detractors) / total, 1)


def nps_bucket(score: int) -> str:
    return "promoters" if score >= 9 else "passives" if score >= 7 else "detractors"
