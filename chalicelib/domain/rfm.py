"""RFM scoring, segment labels, LTV estimate and the touch model (SPEC 2.11). Pure.

Scores are quintiles by rank over the scored members: a value's score is
1 + floor(5 × (members with a strictly worse value) / n), so ties share a score and
the result does not depend on scan order. Recency is days since the last purchase
(fewer is better); Frequency is orders in the last 365 days; Monetary is net spend
(refunds subtracted) in the 12 calendar months ending with the scoring month.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Optional, Sequence

# (R, FM) → label; FM is the rounded-up mean of the F and M scores. See docs/SEGMENTS.md.
_GRID = {
    5: {5: "champions", 4: "champions", 3: "potential_loyalist", 2: "potential_loyalist", 1: "new"},
    4: {5: "champions", 4: "champions", 3: "potential_loyalist", 2: "potential_loyalist", 1: "promising"},
    3: {5: "loyal", 4: "loyal", 3: "need_attention", 2: "need_attention", 1: "hibernating"},
    2: {5: "cant_lose", 4: "at_risk", 3: "at_risk", 2: "hibernating", 1: "hibernating"},
    1: {5: "cant_lose", 4: "at_risk", 3: "at_risk", 2: "lost", 1: "lost"},
}
LABELS = ("champions", "loyal", "potential_loyalist", "new", "promising", "need_attention", "at_risk",
          "cant_lose", "hibernating", "lost")
TOUCH = ("high_touch", "low_touch", "tech_touch")
# Share of this year's orders expected again in the next 12 months, by recency score.
RETENTION = {5: Decimal("1.0"), 4: Decimal("0.8"), 3: Decimal("0.6"), 2: Decimal("0.35"), 1: Decimal("0.15")}


@dataclass(frozen=True)
class Inputs:
    member_id: str
    recency_days: Optional[int]  # None: never purchased
    frequency: int
    monetary: int


@dataclass(frozen=True)
class Score:
    member_id: str
    rfm: Optional[str]
    label: str
    touch: str
    ltv_12m: int


def _scorer(values: Sequence[int], higher_is_better: bool):
    ordered = sorted(values)
    n = len(ordered)

    def score(v: int) -> int:
        worse = bisect.bisect_left(ordered, v) if higher_is_better else n - bisect.bisect_right(ordered, v)
        return min(5, 1 + (5 * worse) // n)

    return score


def label_for(r: int, f: int, m: int) -> str:
    return _GRID[r][(f + m + 1) // 2]


def ltv_12m(r: int, frequency: int, monetary: int) -> int:
    """Average order value × orders expected in the next 12 months (integer, floor)."""
    if frequency <= 0 or monetary <= 0:
        return 0
    aov = Decimal(monetary) / Decimal(frequency)
    return int((aov * Decimal(frequency) * RETENTION[r]).to_integral_value(rounding=ROUND_FLOOR))


def score_all(members: Sequence[Inputs]) -> list[Score]:
    buyers = [m for m in members if m.recency_days is not None]
    out: list[Score] = []
    if buyers:
        rs = _scorer([m.recency_days for m in buyers], higher_is_better=False)
        fs = _scorer([m.frequency for m in buyers], higher_is_better=True)
        ms = _scorer([m.monetary for m in buyers], higher_is_better=True)
    partial = []
    for m in members:
        if m.recency_days is None:
            partial.append((m, None, "new", 0))
            continue
        r, f, mo = rs(m.recency_days), fs(m.frequency), ms(m.monetary)
        partial.append((m, f"{r}{f}{mo}", label_for(r, f, mo), ltv_12m(r, m.frequency, m.monetary)))
    # Touch model by LTV rank: top 5% high touch, next 20% low touch (at least one member
    # each once anyone has value), the rest tech touch.
    valued = sorted((p for p in partial if p[3] > 0), key=lambda p: (-p[3], p[0].member_id))
    n = len(partial)
    high = math.ceil(n * 0.05) if valued else 0
    low = math.ceil(n * 0.25) - high if valued else 0
    touch = {}
    for i, p in enumerate(valued):
        touch[p[0].member_id] = "high_touch" if i < high else "low_touch" if i < high + low else "tech_touch"
    for m, rfm, label, ltv in partial:
        out.append(Score(m.member_id, rfm, label, touch.get(m.member_id, "tech_touch"), ltv))
    return out


def f2_rate(order_counts: Sequence[int]) -> float:
    """Share of members with at least one order who placed a second."""
    buyers = [c for c in order_counts if c >= 1]
    if not buyers:
        return 0.0
    return round(sum(1 for c in buyers if c >= 2) / len(buyers), 4)


def nps(scores: Sequence[int]) -> Optional[float]:
    """% promoters (9–10) − % detractors (0–6); None without answers."""
    if not scores:
        return None
    promoters = sum(1 for s in scores if s >= 9)
    detractors = sum(1 for s in scores if s <= 6)
    return round(100 * (promoters - detractors) / len(scores), 1)
