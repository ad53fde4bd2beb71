"""Segments: writing a member's score, the segments report and segment listings (SPEC 2.11)."""
from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta
from typing import Iterable, Optional

from chalicelib import clock
from chalicelib.domain import rfm
from chalicelib.errors import NotFound, ValidationFailed
from chalicelib.schemas.common import MEMBER_ID_PATTERN
from chalicelib.services import members
from chalicelib.store import marketing as store
from chalicelib.store import members as member_store
from chalicelib.store import tx
from chalicelib.store.base import Conflict, retrying
from chalicelib.store.models import MemberRecord

NPS_DAYS = 90


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
