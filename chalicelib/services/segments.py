"""Segments: writing a member's score, the segments report and segment listings (SPEC 2.11)."""
from __future__ import annotations

import json
import logging
import random
import re
import secrets
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Optional

from chalicelib import clock
from chalicelib.domain import rfm, value_model
from chalicelib.errors import NotFound, RetryLater, ValidationFailed
from chalicelib.schemas.common import MEMBER_ID_PATTERN
from chalicelib.services import members
from chalicelib.store import jobs as job_store
from chalicelib.store import marketing as store
from chalicelib.store import members as member_store
from chalicelib.store import tx
from chalicelib.store.base import Conflict

log = logging.getLogger("loyalty.segments")

NPS_DAYS = 90
SAMPLE_SIZE = 50_000  # members kept for the model fit over all segments (uniform reservoir samples)


# --- score-rfm: the gather pass and the plan it leaves ----------------------------------------

@dataclass
class Plan:
    """What phase 1 of score-rfm leaves for the writers: cut points, the model, touch keys."""
    r: rfm.Cuts
    f: rfm.Cuts
    m: rfm.Cuts
    model: rfm.Model
    high_until: Optional[tuple]
    low_until: Optional[tuple]
    population: int

    def scorer(self) -> rfm.Scorer:
        return rfm.Scorer(self.r, self.f, self.m, self.model, self.high_until, self.low_until)

    def predict(self, inputs: rfm.Inputs) -> rfm.Prediction:
        if self.model.kind != "btyd" or inputs.recency_days is None:
            return rfm.predictions([inputs], self.model)[0]
        return value_model.predict_one(self.model, inputs.history)

    def as_dict(self) -> dict:
        return {"r": self.r.as_dict(), "f": self.f.as_dict(), "m": self.m.as_dict(), "model": self.model.as_dict(),
                "high_until": list(self.high_until) if self.high_until else None,
                "low_until": list(self.low_until) if self.low_until else None, "population": self.population}

    @classmethod
    def from_dict(cls, d: dict) -> "Plan":
        def key(v):
            return (int(v[0]), str(v[1])) if v else None

        return cls(rfm.Cuts.from_dict(d["r"]), rfm.Cuts.from_dict(d["f"]), rfm.Cuts.from_dict(d["m"]),
                   rfm.Model.from_dict(d["model"]), key(d.get("high_until")), key(d.get("low_until")),
                   int(d["population"]))


class Gatherer:
    """Phase 1 of score-rfm for one scan segment: bounded statistics of its active members
    (histograms of R, F and M; the earliest first order) and a uniform reservoir sample of
    `sample_size` members' order state for the model fit. Memory: O(sample_size + distinct
    histogram keys). `stats()` reduces it to what the segment stores (SegmentStats)."""

    def __init__(self, as_of: datetime, seed: str, sample_size: int = SAMPLE_SIZE):
        self.as_of = as_of
        self.sample_size = sample_size
        self.rng = random.Random(seed)
        self.r: Counter = Counter()
        self.f: Counter = Counter()
        self.m: Counter = Counter()
        self.seen = 0
        self.first_order: Optional[str] = None
        self.sample: list = []  # (member_id, inputs, {"orders", "spend"})

    def add(self, member_id: str, state: dict) -> None:
        inputs = rfm.inputs_from_state(member_id, state, self.as_of)
        self.seen += 1
        if inputs.recency_days is not None:
            self.r[inputs.recency_days] += 1
            self.f[inputs.frequency] += 1
            self.m[rfm.spend_key(inputs.monetary)] += 1
            first = (state.get("orders") or {}).get("first_at")
            if first and (self.first_order is None or first < self.first_order):
                self.first_order = first
        item = (member_id, inputs, {"orders": state.get("orders") or {}, "spend": state.get("spend") or {}})
        if len(self.sample) < self.sample_size:
            self.sample.append(item)
        else:  # Algorithm R: every member ends in the sample with the same chance
            j = self.rng.randrange(self.seen)
            if j < self.sample_size:
                self.sample[j] = item

    def inner_days(self) -> int:
        return inner_days(self.as_of, self.first_order)

    def stats(self) -> "SegmentStats":
        """The segment's statistics: histograms, counts and the sample reduced to integers
        (its inputs and its calibration slice at this segment's inner_days)."""
        inner = self.inner_days()
        rows = []
        for mid, i, st in self.sample:
            cal = None
            if inner and i.recency_days is not None:
                c = rfm.calibration_from_state(st, self.as_of, inner)
                b = c.before
                cal = [None if b is None else [b.orders, b.span_days, b.age_days, b.year_orders, b.year_spend],
                       c.spend_after, int(c.ordered_after)]
            rows.append([mid, i.recency_days, i.frequency, i.monetary, i.orders, i.span_days, i.age_days, cal])
        return SegmentStats(self.seen, dict(self.r), dict(self.f), dict(self.m), self.first_order, inner, rows)

    def plan(self) -> Plan:
        return plan_from_stats([self.stats()], self.as_of)


def inner_days(as_of: datetime, first_order: Optional[str]) -> int:
    """The calibration slice: half the program's purchase history, at most a year."""
    if not first_order:
        return 0
    days = (as_of - clock.parse_instant(first_order)).days
    return min(value_model.MAX_INNER_DAYS, max(0, days // 2))


@dataclass
class SegmentStats:
    """What one segment's gather leaves (stored with the job, docs/SEGMENTS.md): exact
    histograms, the members seen, the earliest first order, and the sample rows
    [member_id, recency, frequency, monetary, orders, span, age, calibration]."""
    seen: int
    r: dict
    f: dict
    m: dict
    first_order: Optional[str]
    inner_days: int
    rows: list

    def as_dict(self) -> dict:
        return {"seen": self.seen, "r": list(self.r.items()), "f": list(self.f.items()), "m": list(self.m.items()),
                "first_order": self.first_order, "inner_days": self.inner_days, "rows": self.rows}

    @classmethod
    def from_dict(cls, d: dict) -> "SegmentStats":
        def hist(pairs):
            return {int(k): int(v) for k, v in pairs}

        return cls(int(d["seen"]), hist(d["r"]), hist(d["f"]), hist(d["m"]), d.get("first_order"),
                   int(d["inner_days"]), d["rows"])


def _row_inputs(row: list) -> rfm.Inputs:
    mid, rec, f, m, orders, span, age, _ = row
    return rfm.Inputs(mid, None if rec is None else int(rec), int(f), int(m), int(orders), int(span), int(age))


def _row_calibration(row: list):
    before, spent, ordered = row[7]
    hist = None if before is None else value_model.History(*(int(v) for v in before))
    return value_model.Calibration(hist, int(spent), bool(ordered))


def merge_sample(stats: list) -> list:
    """One uniform sample of the whole population from the segments' reservoirs: every
    segment contributes the same fraction of its members, the smallest fraction any
    reservoir kept (a uniform subsample of a uniform sample is uniform; when every
    segment kept all its members the sample is the whole population). Sorted by member
    id, so the fit does not depend on which segment finished first."""
    frac = min((len(s.rows) / s.seen for s in stats if s.seen), default=1.0)
    out = []
    for k, s in enumerate(stats):
        take = min(len(s.rows), round(frac * s.seen))
        rows = s.rows if take >= len(s.rows) else random.Random(f"merge#{k}").sample(s.rows, take)
        out.extend(rows)
    return sorted(out, key=lambda row: row[0])


def plan_from_stats(stats: list, as_of: datetime) -> Plan:
    """The fit phase: the segments' histograms summed, their samples merged, the model
    fitted once. The calibration slice is the program's (from the earliest first order of
    all segments); a segment whose own earliest first order gave another slice length (a
    small segment without the program's first customers) lends its rows to the fit at
    the scoring moment but not to the calibration slice."""
    r, f, m = Counter(), Counter(), Counter()
    for s in stats:
        r.update(s.r)
        f.update(s.f)
        m.update(s.m)
    firsts = [s.first_order for s in stats if s.first_order]
    inner = inner_days(as_of, min(firsts) if firsts else None)
    same = {id(row) for s in stats if s.inner_days == inner for row in s.rows}
    rows = merge_sample(stats)
    members = [_row_inputs(row) for row in rows]
    buyers = [(row, i) for row, i in zip(rows, members) if i.recency_days is not None]
    calibration = [_row_calibration(row) for row, _ in buyers if id(row) in same and row[7]] if inner else []
    model = value_model.fit([i.history for _, i in buyers], calibration, inner)
    preds = rfm.predictions(members, model)
    population = sum(s.seen for s in stats)
    high, low = rfm.touch_thresholds([(p.ltv_12m, i.member_id) for i, p in zip(members, preds)], population)
    return Plan(rfm.Cuts.from_counts(r, higher_is_better=False),
                rfm.Cuts.from_counts(f, higher_is_better=True, ties="low"),
                rfm.Cuts.from_counts(m, higher_is_better=True, keyed=True), model, high, low, population)


# --- stored statistics and the plan --------------------------------------------------------
# A segment's statistics are stored as zlib-compressed JSON in parts of at most PART_CHARS
# (a DynamoDB item holds 400 KB), the parts first and then a header naming how many: the
# header's presence says the segment's gather is complete.

PART_CHARS = 300_000
STATS_PHASE = "rfm-stats"


def save_stats(job_id: str, segment: int, stats: SegmentStats) -> None:
    import base64
    import zlib

    blob = base64.b64encode(zlib.compress(json.dumps(stats.as_dict(), separators=(",", ":")).encode(), 6)).decode()
    parts = [blob[i:i + PART_CHARS] for i in range(0, len(blob), PART_CHARS)] or [""]
    for n, part in enumerate(parts):
        job_store.store_checkpoint(job_id, f"{STATS_PHASE}-{n}", segment, {"part": part})
    job_store.store_checkpoint(job_id, STATS_PHASE, segment, {"done": True, "parts": len(parts),
                                                              "seen": stats.seen, "sample": len(stats.rows)})


def has_stats(job_id: str, segment: int) -> bool:
    return bool(job_store.load_checkpoint(job_id, STATS_PHASE, segment).get("done"))


def load_stats(job_id: str, segment: int) -> Optional[SegmentStats]:
    import base64
    import zlib

    head = job_store.load_checkpoint(job_id, STATS_PHASE, segment)
    if not head.get("done"):
        return None
    blob = "".join(job_store.load_checkpoint(job_id, f"{STATS_PHASE}-{n}", segment)["part"]
                   for n in range(int(head["parts"])))
    return SegmentStats.from_dict(json.loads(zlib.decompress(base64.b64decode(blob))))


def _plan_key(job_id: str) -> str:
    return f"{job_id}#plan"


def load_plan(job_id: str) -> Optional[Plan]:
    data = job_store.get(_plan_key(job_id))
    return Plan.from_dict(data) if data else None


def save_plan(job_id: str, plan: Plan) -> Plan:
    """Store the run's plan; if another worker stored one first, that one is the run's."""
    return save_plan_created(job_id, plan)[0]


def save_plan_created(job_id: str, plan: Plan) -> tuple:
    """save_plan, and whether this call stored it (the worker that did dispatches the
    other segments' write phase)."""
    try:
        job_store.create(_plan_key(job_id), plan.as_dict())
    except Exception:  # noqa: BLE001 - a plan already stored (or a lost answer): read what is there
        stored = load_plan(job_id)
        if stored is None:
            raise
        return stored, False
    return plan, True


def report_from_counts(counts: dict, as_of: str, model: rfm.Model) -> dict:
    """The segments report from the write phase's summed (checkpointed) counts."""
    buyers = int(counts.get("buyers", 0))
    return {
        "as_of": as_of,
        "scored": int(counts.get("scored", 0)),
        "segments": {label: int(counts.get(f"label_{label}", 0)) for label in rfm.LABELS},
        "touch": {t: int(counts.get(f"touch_{t}", 0)) for t in rfm.TOUCH},
        "f2_rate": round(int(counts.get("repeat_buyers", 0)) / buyers, 4) if buyers else 0.0,
        "ltv_12m_total": int(counts.get("ltv_total", 0)),
        "model": {k: v for k, v in model.as_dict().items() if k in ("kind", "reason", "bgnbd", "gg", "beta", "k",
                                                                       "inner_days", "fitted_on", "repeat_buyers",
                                                                       "chosen", "scale", "alive_features")},
    }


# A page's changed members go out in TransactWriteItems of up to WRITE_BATCH updates
# (DynamoDB allows 100 actions and 4 MB a transaction), each conditional on its own member's
# version read, so one call stores up to 100 scores and a concurrent write to any of them
# cancels the call instead of being overwritten (docs/SEGMENTS.md, "Running at scale").
WRITE_BATCH = 100
BATCH_BYTES = 3_000_000  # under the 4 MB of a transaction, with room for names and keys
WRITE_ROUNDS = 8


def _chunks(ready: list, alone: set) -> Iterable[list]:
    """Transactions of up to WRITE_BATCH puts and BATCH_BYTES; the members in `alone` (read
    again after their own condition failed) go in one of their own each, so a member
    that keeps changing cannot hold back the rest of its page."""
    chunk, size = [], 0
    for entry in ready:
        if entry[0].member_id in alone:
            yield [entry]
            continue
        if chunk and (len(chunk) == WRITE_BATCH or size + entry[3] > BATCH_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(entry)
        size += entry[3]
    if chunk:
        yield chunk


def write_segments(items: list, scored_at: str) -> Counter:
    """Store the scores of (member as read (Read), score) pairs; counts of 'written',
    'unchanged' (the stored segment is already this one: a re-run writes nothing) and
    'skipped' (no longer an active member).

    Each changed member is a put of the item as read with its new segment, conditional on
    the version read, in transactions of up to WRITE_BATCH members. When a transaction is cancelled its
    reasons name the members whose condition failed (a concurrent accrual, or a conflict
    with another transaction): those are read again (consistent BatchGetItem) and decided
    again; the others, not written either (a transaction is all or nothing), go out again
    in the next round. Nothing is ever written over a version this call did not read."""
    out: Counter = Counter()
    todo = list(items)
    alone: set = set()
    for attempt in range(WRITE_ROUNDS):
        ready = []
        for row, score in todo:
            if row is None or row.status != "active":  # closed or suspended since the scan
                out["skipped"] += 1
                continue
            new = rfm.segment_state(row.state.get("segment"), score, scored_at)
            if row.state.get("segment") == new:
                out["unchanged"] += 1
                continue
            op, size = member_store.segment_put_op(row, new)
            ready.append((row, score, op, size))
        todo, again = [], []
        for chunk in _chunks(ready, alone):
            try:
                tx.write([e[2] for e in chunk], token=secrets.token_hex(16))
            except (tx.TxCancelled, Conflict) as exc:
                codes = list(exc.codes or [])
                for i, (row, score, _, _) in enumerate(chunk):
                    code = codes[i] if i < len(codes) else "unknown"
                    if code not in (None, "ConditionalCheckFailed", "TransactionConflict", "unknown"):
                        out["failed"] += 1  # this member's put itself is refused (e.g. ValidationError)
                        log.warning("score-rfm: member %s not written: %s", row.member_id, code)
                    elif code is None:
                        todo.append((row, score))  # cancelled for another member: send again as read
                    else:
                        again.append(score)  # its own condition failed (or no reason given): read again
                continue
            out["written"] += len(chunk)
        if again:
            alone.update(s.member_id for s in again)
            fresh = member_store.reread([s.member_id for s in again])
            todo.extend((fresh.get(s.member_id), s) for s in again)
        if not todo:
            return out
        if again:
            time.sleep(random.uniform(0, 0.01 * (2 ** attempt)))
    raise RetryLater("too much contention on these members; retry shortly")


def build_report(scores: Iterable[rfm.Score], inputs: Iterable[rfm.Inputs], as_of: str) -> dict:
    scores = list(scores)
    labels = Counter(s.label for s in scores)
    touch = Counter(s.touch for s in scores)
    return {
        "as_of": as_of,
        "scored": len(scores),
        "segments": {label: labels.get(label, 0) for label in rfm.LABELS},
        "touch": {t: touch.get(t, 0) for t in rfm.TOUCH},
        "f2_rate": rfm.f2_rate(i.orders for i in inputs),
        "ltv_12m_total": sum(s.ltv_12m for s in scores),
    }


def nps_report(now=None) -> dict:
    """NPS over the 90 days ending today (UTC days, today included)."""
    now = now or clock.now()
    first = (now - timedelta(days=NPS_DAYS - 1)).date().isoformat()
    counts = store.nps_counts(first, now.date().isoformat())
    return {"nps": rfm.nps(counts["promoters"], counts["passives"], counts["detractors"]),
            "nps_responses": {**counts, "total": sum(counts.values())}}


def report() -> dict:
    """The last scoring's counts with today's 90-day NPS."""
    data = store.latest_report() or {
        "as_of": None, "scored": 0, "segments": {label: 0 for label in rfm.LABELS},
        "touch": {t: 0 for t in rfm.TOUCH}, "f2_rate": 0.0, "ltv_12m_total": 0}
    return {**data, **nps_report()}


def segment_members(label: str, limit: int, cursor: Optional[dict]) -> tuple[list, Optional[dict]]:
    """A page of the members currently labelled `label` (by member id)."""
    if label not in rfm.LABELS:
        raise NotFound("no such segment", segment=label, segments=list(rfm.LABELS))
    after = (cursor or {}).get("after")
    if after is not None and not (isinstance(after, str) and re.fullmatch(MEMBER_ID_PATTERN, after)):
        raise ValidationFailed("cursor is not valid", fields=[{"field": "cursor", "message": "invalid"}])
    ids, last = store.segment_member_ids(label, limit, after)
    rows = member_store.batch_get(ids, consistent=False) if ids else {}
    items = []
    for m in ids:
        row = rows.get(m)
        if row is None or row.segment_label != label:
            continue  # the index lags the table by a moment
        v = members.view(row)
        items.append({"member_id": m, "name": v["name"], "status": v["status"], "tier": v["tier"]["tier_id"],
                      "points": v["points"]["available"], "segment": v["segment"]})
    return items, ({"after": last} if last else None)
