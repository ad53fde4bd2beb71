"""churn_risk on p_alive (SPEC 2.19) from the segment the scoring stores: two scorings in a
row, the second below `churn_p_alive`, fire once; a re-run of the same moment keeps the
previous scoring's p_alive."""
from __future__ import annotations

from datetime import datetime, timezone

from chalicelib.domain import rfm
from chalicelib.domain.automations import due_automations
from chalicelib.schemas.program import DEFAULT_AUTOMATIONS
from tests.unit.test_automations import view

ALL_ON = {k: dict(v) for k, v in DEFAULT_AUTOMATIONS.items()}
STATE = {"orders": {"count": 3, "first_at": "2025-01-01T00:00:00Z", "last_at": "2025-09-01T00:00:00Z",
                    "recent": []}}


def score(p_alive):
    return rfm.Score("m1", "333", "need_attention", "low_touch", 4200, p_alive, 0.8)


def churn(segment, when="2026-03-01T10:00:00"):
    at = datetime.fromisoformat(when).replace(tzinfo=timezone.utc)
    return {d.automation: d for d in due_automations(view(segment=segment), STATE, at, ALL_ON)}.get("churn_risk")


def test_a_fall_below_churn_p_alive_between_two_scorings_fires_once():
    first = rfm.segment_state(None, score(0.41), "2026-02-28T01:00:00Z")
    assert first["p_alive"] == 0.41 and first["previous_p_alive"] is None
    assert churn(first) is None  # nothing to compare with
    second = rfm.segment_state(first, score(0.22), "2026-03-01T01:00:00Z")
    assert (second["p_alive"], second["previous_p_alive"]) == (0.22, 0.41)
    d = churn(second)
    assert d is not None and d.period == "p_alive@2026-03-01" and d.variables["p_alive"] == 0.22
    # the same moment scored again keeps the comparison with the scoring before it
    rerun = rfm.segment_state(second, score(0.22), "2026-03-01T01:00:00Z")
    assert rerun["previous_p_alive"] == 0.41 and churn(rerun).period == d.period
    # the next day it is below and was below: no new alert
    third = rfm.segment_state(second, score(0.2), "2026-03-02T01:00:00Z")
    assert third["previous_p_alive"] == 0.22 and churn(third, "2026-03-02T10:00:00") is None


def test_at_the_threshold_is_not_below():
    prev = rfm.segment_state(None, score(0.5), "2026-02-28T01:00:00Z")
    assert churn(rfm.segment_state(prev, score(0.3), "2026-03-01T01:00:00Z")) is None
