"""score-rfm's per-segment statistics and their merge (services/segments.py; docs/SEGMENTS.md,
"Running at scale")."""
from __future__ import annotations

from datetime import datetime, timezone

from chalicelib.services import segments

AS_OF = datetime(2026, 6, 15, tzinfo=timezone.utc)


def _stats(prefix, seen, kept, first="2025-01-01T00:00:00Z", inner=165):
    rows = [[f"{prefix}{i:03d}", 10 + i, 1 + i % 3, 1000 * (i + 1), 1 + i % 3, 5 * (i % 3), 300, None]
            for i in range(kept)]
    return segments.SegmentStats(seen, {10: seen}, {1: seen}, {1000: seen}, first, inner, rows)


def test_segments_that_kept_everyone_merge_into_the_whole_population_in_member_order():
    a, b = _stats("b", 30, 30), _stats("a", 20, 20)
    merged = segments.merge_sample([a, b])
    assert [r[0] for r in merged] == sorted(r[0] for r in a.rows + b.rows) and len(merged) == 50


def test_segments_contribute_the_same_fraction_of_their_members():
    full, sampled = _stats("f", 40, 40), _stats("s", 200, 100)  # kept 100% and 50%
    merged = segments.merge_sample([full, sampled])
    assert sum(r[0].startswith("f") for r in merged) == 20 and sum(r[0].startswith("s") for r in merged) == 100
    assert segments.merge_sample([full, sampled]) == merged  # deterministic
    assert {r[0] for r in merged if r[0].startswith("s")} == {r[0] for r in sampled.rows}


def test_statistics_round_trip_and_histograms_sum():
    a = _stats("a", 30, 30)
    assert segments.SegmentStats.from_dict(a.as_dict()) == a
    plan = segments.plan_from_stats([a, _stats("b", 20, 20)], AS_OF)
    assert plan.population == 50 and plan.model.kind == "fallback"  # below the minimum of repeat buyers
    assert plan.r.score(10) == 3 and plan.f.score(1) == 1  # one tied block: its mid-rank, its lowest rank


def test_the_calibration_slice_comes_from_the_earliest_first_order_of_every_segment(monkeypatch):
    """A segment whose own earliest order gave a shorter slice lends its members to the fit at
    the scoring moment, not to the calibration slice (its rows were cut at another moment)."""
    seen = {}

    def fake_fit(sample, calibration, inner):
        seen.update(sample=len(sample), calibration=len(calibration), inner=inner)
        return segments.value_model.fallback("test")

    monkeypatch.setattr(segments.value_model, "fit", fake_fit)
    cal = [[2, 10, 200, 1, 900], 500, 1]
    early = _stats("e", 10, 10, first="2024-01-01T00:00:00Z", inner=182)
    late = _stats("l", 10, 10, first="2026-01-01T00:00:00Z", inner=82)
    for row in early.rows + late.rows:
        row[7] = cal
    segments.plan_from_stats([late, early], AS_OF)
    assert seen == {"sample": 20, "calibration": 10, "inner": 182}
