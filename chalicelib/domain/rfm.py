"""RFM scoring, segment labels, the LTV estimate and the touch model (SPEC 2.11). Pure.

See docs/SEGMENTS.md for every rule and why. In short:
- inputs as of a moment: R = days since the last purchase, F = orders in the last 365
  days, M = net spend in the last 365 days (monthly buckets; the 13th, partial month is
  prorated by the days of it inside the window);
- each 1–5 by quintile of the mid-rank over the members with a purchase (ties share a
  score; the result does not depend on scan order);
- label from the grid (R, FM = ⌈(F + M) / 2⌉); no purchase → `new` with rfm "000";
- frequency ties take the lowest score of their block (the tie rule of docs/SEGMENTS.md);
- p_alive, expected_orders_12m and ltv_12m from the fitted value model (value_model.py),
  or, below its minimum of repeat buyers, the fallback floor(M × retention(recency days));
  touch model by LTV rank.
"""
from __future__ import annotations

import bisect
import calendar
import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Iterable, Optional, Sequence

from chalicelib.clock import iso, parse_instant
from chalicelib.domain import order_stats
from chalicelib.domain.months import add_months, month_of, month_start
from chalicelib.domain.value_model import Calibration, History, Model, Prediction

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
    span_days: int = 0  # first → last order on or before the moment
    age_days: int = 0  # first order → the moment

    @property
    def history(self) -> Optional[History]:
        if self.recency_days is None:
            return None
        return History(self.orders, self.span_days, self.age_days, self.frequency, self.monetary)


@dataclass(frozen=True)
class Score:
    member_id: str
    rfm: str
    label: str
    touch: str
    ltv_12m: int
    p_alive: Optional[float] = None
    expected_orders_12m: Optional[float] = None


# --- inputs -------------------------------------------------------------------------------

@functools.lru_cache(maxsize=64)
def _window(as_of: datetime) -> tuple:
    """What every member's inputs as of one moment share (a job scores thousands a second):
    the 12 full months of the window, the 13th month, the days of it inside the window and
    its length, the moment in ISO and in seconds, and the start of the 365 days in seconds."""
    current = month_of(as_of)
    thirteenth = add_months(current, -12)
    first_day = as_of.date() - timedelta(days=364)  # the window's 365 dates end with as_of's date
    start = month_start(thirteenth).date()
    days = calendar.monthrange(start.year, start.month)[1]
    inside = max(0, min(days, (start + timedelta(days=days - 1) - first_day).days + 1))
    return (tuple(add_months(current, -i) for i in range(12)), thirteenth, inside, days, iso(as_of),
            order_stats.encode(as_of), order_stats.encode(as_of - timedelta(days=365)))


def monetary(spend: dict, as_of: datetime) -> int:
    """Net spend in the 365 days ending at `as_of` from monthly buckets: the 12 months
    ending with `as_of`'s month in full, plus the 13th month prorated by the share of its
    days that fall inside the window (floor). Never negative."""
    months, thirteenth, inside, days = _window(as_of)[:4]
    total = sum(int(spend.get(m, 0)) for m in months)
    if inside:
        total += int(spend.get(thirteenth, 0)) * inside // days  # floor, exact in integers
    return max(0, total)


def inputs_from_state(member_id: str, state: dict, as_of: datetime) -> Inputs:
    """R, F, M as of `as_of` from a member's `orders` and `spend` state. Orders placed
    after `as_of` do not count (back-dated scoring)."""
    orders = state.get("orders") or {}
    until, until_s, horizon = _window(as_of)[4:]
    count = int(orders.get("count") or 0)
    recent = order_stats.recent_seconds(orders)  # compared in seconds, as encode(as_of) (whole seconds)
    before = [d for d in recent if d <= until_s]
    later = len(recent) - len(before)
    lifetime = max(0, count - later)
    last = order_stats.decode(before[-1]) if before else None
    if last is None and lifetime and orders.get("last_at") and orders["last_at"] <= until:
        last = orders["last_at"]  # older than the kept timestamps
    if not lifetime or last is None:
        return Inputs(member_id, None, 0, 0, 0)
    recency = max(0, (as_of.date() - parse_instant(last).date()).days)
    frequency = sum(1 for d in before if d > horizon)
    first = orders.get("first_at") or last
    first = min(first, last)
    age = max(recency, (as_of.date() - parse_instant(first).date()).days)
    return Inputs(member_id, recency, frequency, monetary(state.get("spend") or {}, as_of), lifetime,
                  age - recency if lifetime > 1 else 0, age)


def calibration_from_state(state: dict, as_of: datetime, inner_days: int) -> Calibration:
    """The member's history `inner_days` before `as_of` and what followed, from the same
    bounded state (docs/SEGMENTS.md, "Calibration slice"): orders before the cut are the
    lifetime count less the kept timestamps after it; last year's value before the cut
    comes from the monthly buckets of the months before the cut's month; the spend that
    followed from the buckets after it (the cut's month prorated by its days after the cut)."""
    cut = as_of - timedelta(days=inner_days)
    orders = state.get("orders") or {}
    spend = state.get("spend") or {}
    months = orders.get("months") or {}
    cut_s = iso(cut)
    until_n, cut_n = order_stats.encode(as_of), order_stats.encode(cut)
    recent = [d for d in order_stats.recent_seconds(orders) if d <= until_n]
    current = inputs_from_state("", state, as_of)
    after = [d for d in recent if d > cut_n]
    count0 = max(0, current.orders - len(after))
    first = orders.get("first_at")
    cut_month = month_of(cut)
    days = calendar.monthrange(cut.year, cut.month)[1]
    share = Decimal(days - cut.day) / days  # the cut's month after the cut
    spent = sum(int(v) for m, v in spend.items() if cut_month < m <= month_of(as_of))
    spent += int((Decimal(int(spend.get(cut_month, 0))) * share).to_integral_value(rounding=ROUND_FLOOR))
    spent = max(0, spent)
    if not count0 or not first or first > cut_s:
        return Calibration(None, spent, bool(after))
    before = [d for d in recent if d <= cut_n]
    if before:
        last = order_stats.decode(before[-1])
    elif count0 == 1:
        last = first
    else:  # older than the kept timestamps: at the edge of the kept window (an approximation)
        last = max(first, iso(as_of - timedelta(days=400)))
    age = max(0, (cut.date() - parse_instant(first).date()).days)
    recency = max(0, (cut.date() - parse_instant(last).date()).days)
    year_orders = sum(int(v) for m, v in months.items() if add_months(cut_month, -12) <= m < cut_month)
    year_spend = max(0, sum(int(v) for m, v in spend.items() if add_months(cut_month, -12) <= m < cut_month))
    hist = History(count0, max(0, age - recency) if count0 > 1 else 0, max(age, recency), year_orders, year_spend)
    return Calibration(hist, spent, bool(after))


# --- scores -------------------------------------------------------------------------------

class Quintiles:
    """Score 1–5 of a value by its mid-rank among `values`:
    score = 1 + floor(5 × (worse + ties / 2) / n), capped at 5, where `worse` counts the
    values strictly worse and `ties` the equal ones (itself included). Integer arithmetic.
    With ties="low" a tied block takes the score its lowest member would have untied:
    score = 1 + floor(5 × (worse + 1/2) / n); for values without ties both rules agree."""

    def __init__(self, values: Iterable[int], higher_is_better: bool, ties: str = "mid"):
        self.ordered = sorted(values)
        self.higher = higher_is_better
        self.ties = ties  # "mid": a tied block takes its mid-rank; "low": its lowest rank

    def score(self, v: int) -> int:
        n = len(self.ordered)
        lo = bisect.bisect_left(self.ordered, v)
        hi = bisect.bisect_right(self.ordered, v)
        ties = hi - lo if self.ties == "mid" else 1
        worse = lo if self.higher else n - hi
        return min(5, 1 + (5 * (2 * worse + ties)) // (2 * n))


@dataclass(frozen=True)
class Cuts:
    """A Quintiles reduced to its four cut points, so one worker can score a member alone:
    `at[s - 2]` is the least good value scoring at least s (s = 2…5). Built from the
    population's histogram; for any value of that population it gives Quintiles' score."""
    at: tuple
    higher: bool
    keyed: bool = False  # values go through spend_key first

    @classmethod
    def from_counts(cls, counts: dict, higher_is_better: bool, ties: str = "mid", keyed: bool = False) -> "Cuts":
        values = sorted(counts)
        n = sum(counts.values())
        at: list = [None] * 4
        below = 0  # members with a smaller value
        for v in values:
            c = counts[v]
            worse = below if higher_is_better else n - below - c
            score = min(5, 1 + (5 * (2 * worse + (c if ties == "mid" else 1))) // (2 * n))
            for s in range(2, score + 1):
                if higher_is_better and at[s - 2] is None:
                    at[s - 2] = v  # smallest value reaching s
                elif not higher_is_better:
                    at[s - 2] = v  # largest value still reaching s
            below += c
        return cls(tuple(at), higher_is_better, keyed)

    def as_dict(self) -> dict:
        return {"at": list(self.at), "higher": self.higher, "keyed": self.keyed}

    @classmethod
    def from_dict(cls, d: dict) -> "Cuts":
        return cls(tuple(None if v is None else int(v) for v in d["at"]), bool(d["higher"]), bool(d["keyed"]))

    def score(self, v: int) -> int:
        v = spend_key(v) if self.keyed else v
        s = 1
        for i, t in enumerate(self.at):
            if t is not None and (v >= t if self.higher else v <= t):
                s = i + 2
        return s


def spend_key(m: int) -> int:
    """Monetary as histogram key: exact below 10,000 minor units, else rounded down to four
    significant digits (≤ 0.1% apart), so a worker's histogram stays small at any scale."""
    if m < 10_000:
        return m
    step = 10 ** (len(str(m)) - 4)
    return m // step * step


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


def fallback_prediction(m: Inputs) -> Prediction:
    """The documented fallback (too few repeat buyers to fit): orders expected = F ×
    retention(R), ltv_12m = floor(M × retention(R)), p_alive = retention(R)."""
    if m.recency_days is None:
        return Prediction(0.0, 0.0, 0)
    share = retention(m.recency_days)
    return Prediction(float(share), float((Decimal(m.frequency) * share).quantize(Decimal("0.01"), ROUND_FLOOR)),
                      ltv_12m(m.recency_days, m.frequency, m.monetary))


def predictions(members: Sequence[Inputs], model: Optional[Model], horizon_days: int = 365) -> list[Prediction]:
    """p_alive, expected_orders_12m, ltv_12m for each member (none without a purchase)."""
    if model is None or model.kind != "btyd":
        return [fallback_prediction(m) for m in members]
    from chalicelib.domain import value_model

    buyers = [i for i, m in enumerate(members) if m.recency_days is not None]
    out = [Prediction(0.0, 0.0, 0)] * len(members)
    for i, p in zip(buyers, value_model.predict_many(model, [members[i].history for i in buyers], horizon_days)):
        out[i] = p
    return out


@dataclass(frozen=True)
class Scorer:
    """Everything needed to score one member alone: the quintile inputs of the population,
    the value model and the touch thresholds, i.e. the (ltv, member_id) rank keys of the
    last high_touch and low_touch members (None: nobody in that model)."""
    rq: Quintiles
    fq: Quintiles
    mq: Quintiles
    model: Optional[Model]
    high_until: Optional[tuple]
    low_until: Optional[tuple]

    def touch(self, member_id: str, ltv: int) -> str:
        key = (-ltv, member_id)
        if ltv > 0 and self.high_until is not None and key <= self.high_until:
            return "high_touch"
        if ltv > 0 and self.low_until is not None and key <= self.low_until:
            return "low_touch"
        return "tech_touch"

    def score(self, m: Inputs, p: Prediction) -> Score:
        touch = self.touch(m.member_id, p.ltv_12m)
        if m.recency_days is None:
            return Score(m.member_id, NOT_SCORED, "new", touch, 0, 0.0, 0.0)
        r, f, mo = self.rq.score(m.recency_days), self.fq.score(m.frequency), self.mq.score(m.monetary)
        return Score(m.member_id, f"{r}{f}{mo}", label_for(r, f, mo), touch, p.ltv_12m, p.p_alive,
                     p.expected_orders_12m)


def touch_thresholds(ltvs: Sequence[tuple], population: int) -> tuple:
    """From (ltv, member_id) pairs of `population` members (all of them, or a uniform sample
    whose ranks are scaled up), the rank keys ending high_touch and low_touch."""
    ranked = sorted((-ltv, m) for ltv, m in ltvs if ltv > 0)
    n, s = population, len(ltvs)
    if not s:
        return None, None
    high = -(-n * HIGH_TOUCH_PERCENT // 100)
    low_end = -(-n * (HIGH_TOUCH_PERCENT + LOW_TOUCH_PERCENT) // 100)

    def key_at(rank: int):  # rank among the population → the sample's key at that share
        i = min(len(ranked), -(-rank * s // n))
        return ranked[i - 1] if i >= 1 and ranked else None

    return key_at(high), key_at(low_end)


def scorer_for(members: Sequence[Inputs], model: Optional[Model],
               preds: Optional[Sequence[Prediction]] = None) -> Scorer:
    buyers = [m for m in members if m.recency_days is not None]
    preds = preds if preds is not None else predictions(members, model)
    high, low = touch_thresholds([(p.ltv_12m, m.member_id) for m, p in zip(members, preds)], len(members))
    return Scorer(Quintiles((m.recency_days for m in buyers), higher_is_better=False),
                  Quintiles((m.frequency for m in buyers), higher_is_better=True, ties="low"),
                  Quintiles((m.monetary for m in buyers), higher_is_better=True), model, high, low)


def score_all(members: Sequence[Inputs], model: Optional[Model] = None) -> list[Score]:
    """Score a population; the result is independent of the input order."""
    preds = predictions(members, model)
    scorer = scorer_for(members, model, preds)
    return [scorer.score(m, p) for m, p in zip(members, preds)]


def segment_state(previous: Optional[dict], score: Score, scored_at: str) -> dict:
    """The member's new `segment`. `previous_label` is the label held before the last
    change of label and `changed_at` when that change was scored, so a move into
    at_risk is still visible to churn_risk until the next move, and re-running a scoring
    for the same moment keeps them."""
    previous = previous or {}
    seg = {"rfm": score.rfm, "label": score.label, "touch": score.touch, "ltv_12m": score.ltv_12m,
           "p_alive": score.p_alive, "expected_orders_12m": score.expected_orders_12m, "scored_at": scored_at}
    # p_alive at the scoring before this one (churn_risk's "fell below" rule)
    if previous.get("scored_at") == scored_at:
        seg["previous_p_alive"] = previous.get("previous_p_alive")
    else:
        seg["previous_p_alive"] = previous.get("p_alive")
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
