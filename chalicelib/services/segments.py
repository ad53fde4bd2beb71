"""Segments: writing a member's score, the segments report and segment listings (SPEC 2.11)."""
from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Optional

from chalicelib import clock
from chalicelib.domain import rfm, value_model
from chalicelib.errors import NotFound, ValidationFailed
from chalicelib.schemas.common import MEMBER_ID_PATTERN
from chalicelib.services import members
from chalicelib.store import marketing as store
from chalicelib.store import members as member_store
from chalicelib.store import tx
from chalicelib.store.base import Conflict, retrying
from chalicelib.store import jobs as job_store
from chalicelib.store.models import MemberRecord

NPS_DAYS = 90
SAMPLE_SIZE = 50_000  # members kept for the model fit (a uniform reservoir sample)


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
    """Phase 1 of score-rfm: bounded statistics of every active member (histograms of R, F
    and M; the earliest first order) and a uniform reservoir sample of SAMPLE_SIZE members'
    order state for the model fit. Memory: O(SAMPLE_SIZE + distinct histogram keys)."""

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
        """The calibration slice: half the program's purchase history, at most a year."""
        if not self.first_order:
            return 0
        days = (self.as_of - clock.parse_instant(self.first_order)).days
        return min(value_model.MAX_INNER_DAYS, max(0, days // 2))

    def plan(self) -> Plan:
        from chalicelib.domain import value_model as vm

        buyers = [(mid, i, st) for mid, i, st in self.sample if i.recency_days is not None]
        inner = self.inner_days()
        calibration = [rfm.calibration_from_state(st, self.as_of, inner) for _, _, st in buyers] if inner else []
        model = vm.fit([i.history for _, i, _ in buyers], calibration, inner)
        members = [i for _, i, _ in self.sample]
        preds = rfm.predictions(members, model)
        high, low = rfm.touch_thresholds([(p.ltv_12m, m.member_id) for m, p in zip(members, preds)], self.seen)
        return Plan(rfm.Cuts.from_counts(self.r, higher_is_better=False),
                    rfm.Cuts.from_counts(self.f, higher_is_better=True, ties="low"),
                    rfm.Cuts.from_counts(self.m, higher_is_better=True, keyed=True), model, high, low, self.seen)


def _plan_key(job_id: str) -> str:
    return f"{job_id}#plan"


def load_plan(job_id: str) -> Optional[Plan]:
    data = job_store.get(_plan_key(job_id))
    return Plan.from_dict(data) if data else None


def save_plan(job_id: str, plan: Plan) -> Plan:
    """Store the run's plan; if another worker stored one first, that one is the run's."""
    try:
        job_store.create(_plan_key(job_id), plan.as_dict())
    except Exception:  # noqa: BLE001 - a plan already stored (or a lost answer): read what is there
        stored = load_plan(job_id)
        if stored is None:
            raise
        return stored
    return plan


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
                                                                       "inner_days", "fitted_on", "repeat_buyers")},
    }


def write_segment(row: member_store.MemberRow, score: rfm.Score, scored_at: str) -> str:
    """Store a member's score on the member item, conditional on the version read; on a
    concurrent write, re-read and decide again. 'written', 'unchanged' or 'skipped'."""
    state = {"row": row}

    def attempt() -> str:
        r = state["row"] or member_store.get(score.member_id)
        state["row"] = None
        if r is None or r.status != "active":
            return "skipped"
        new = rfm.segment_state(r.state.get("segment"), score, scored_at)
        if r.state.get("segment") == new:
            return "unchanged"  # a re-run for the same moment writes nothing
        r.state["segment"] = new
        try:
            tx.write([member_store.save_op(r, r.version)])
        except tx.TxCancelled:
            raise Conflict()
        return "written"

    return retrying()(attempt)


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
    rows = {r.member_id: member_store.from_record(r) for r in MemberRecord.batch_get(ids)} if ids else {}
    items = []
    for m in ids:
        row = rows.get(m)
        if row is None or (row.state.get("segment") or {}).get("label") != label:
            continue  # the index lags the table by a moment
        v = members.view(row)
        items.append({"member_id": m, "name": v["name"], "status": v["status"], "tier": v["tier"]["tier_id"],
                      "points": v["points"]["available"], "segment": v["segment"]})
    return items, ({"after": last} if last else None)
