"""RFM scoring, labels, LTV, touch model, F2 and NPS: pure rules (docs/SEGMENTS.md)."""
from datetime import datetime, timezone

import pytest

from chalicelib.domain import rfm


def at(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=timezone.utc)


class TestQuintiles:
    def test_mid_rank_quintiles_of_ten_distinct_values(self):
        q = rfm.Quintiles(range(10), higher_is_better=True)
        assert [q.score(v) for v in range(10)] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
        r = rfm.Quintiles(range(10), higher_is_better=False)  # recency: fewer days is better
        assert [r.score(v) for v in range(10)] == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]

    def test_ties_share_a_score_and_a_lone_or_uniform_population_is_in_the_middle(self):
        q = rfm.Quintiles([1, 1, 1, 1, 5], higher_is_better=True)
        assert q.score(1) == 1 + (5 * (0 + 4)) // 10 == 3 and q.score(5) == 5
        assert rfm.Quintiles([7], True).score(7) == 3
        assert {rfm.Quintiles([2] * 9, False).score(2)} == {3}

    def test_scores_do_not_depend_on_input_order(self):
        members = [rfm.Inputs(f"m{i}", i * 10, 10 - i, 1000 * (10 - i), 10 - i) for i in range(10)]
        a = rfm.score_all(members)
        b = rfm.score_all(list(reversed(members)))
        assert sorted(a, key=lambda s: s.member_id) == sorted(b, key=lambda s: s.member_id)
        by_id = {s.member_id: s for s in a}
        assert by_id["m0"].rfm == "555" and by_id["m0"].label == "champions"
        assert by_id["m9"].rfm == "111" and by_id["m9"].label == "lost"


class TestLabels:
    @pytest.mark.parametrize("r,f,m,label", [
        (5, 5, 5, "champions"), (4, 4, 3, "champions"), (5, 3, 2, "potential_loyalist"), (5, 1, 1, "new"),
        (4, 1, 1, "promising"), (3, 5, 4, "loyal"), (3, 3, 2, "need_attention"), (3, 1, 1, "hibernating"),
        (2, 5, 5, "cant_lose"), (2, 4, 3, "at_risk"), (2, 2, 1, "hibernating"), (1, 4, 4, "cant_lose"),
        (1, 3, 3, "at_risk"), (1, 2, 2, "lost"), (1, 1, 1, "lost")])
    def test_grid(self, r, f, m, label):
        assert rfm.label_for(r, f, m) == label

    def test_every_label_is_reachable(self):
        got = {rfm.label_for(r, f, m) for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)}
        assert got == set(rfm.LABELS)

    def test_no_purchase_is_new_with_rfm_000_and_no_value(self):
        scores = {s.member_id: s for s in rfm.score_all([rfm.Inputs("buyer", 3, 2, 5000, 2),
                                                          rfm.Inputs("fresh", None, 0, 0, 0)])}
        assert scores["fresh"] == rfm.Score("fresh", "000", "new", "tech_touch", 0, 0.0, 0.0)
        assert scores["buyer"].rfm == "333"  # alone among buyers: the middle quintile

    def test_a_frequent_big_spender_ranks_above_a_one_time_small_buyer(self):
        pop = [rfm.Inputs("big", 5, 12, 600000, 12), rfm.Inputs("small", 200, 1, 1000, 1)] + \
              [rfm.Inputs(f"mid{i}", 30 + i, 3, 30000 + i, 3) for i in range(8)]
        s = {x.member_id: x for x in rfm.score_all(pop)}
        assert s["big"].rfm == "555" and s["big"].label == "champions"
        assert s["small"].rfm == "111" and s["small"].label == "lost"
        assert s["big"].ltv_12m > s["small"].ltv_12m
        assert s["big"].touch == "high_touch" and s["small"].touch == "tech_touch"


class TestInputs:
    STATE = {"orders": {"count": 4, "first_at": "2025-01-10T00:00:00Z", "last_at": "2026-03-05T00:00:00Z",
                        "recent": ["2025-01-10T00:00:00Z", "2025-06-01T00:00:00Z", "2026-02-20T00:00:00Z",
                                   "2026-03-05T00:00:00Z"]},
             "spend": {"2025-02": 3100, "2025-06": 5000, "2026-02": 7000, "2026-03": 2000}}

    def test_recency_frequency_and_prorated_monetary(self):
        i = rfm.inputs_from_state("m", self.STATE, at("2026-03-10T12:00:00"))
        # the 365 dates end 2026-03-10: the 13th month (2025-03) has none of its own spend here
        assert (i.recency_days, i.frequency, i.monetary, i.orders) == (5, 3, 14000, 4)

    def test_back_dated_scoring_ignores_later_orders(self):
        i = rfm.inputs_from_state("m", self.STATE, at("2026-03-01T00:00:00"))
        assert (i.recency_days, i.frequency, i.orders) == (9, 2, 3)  # 2025-01-10 is more than 365 days back

    def test_nothing_before_the_moment_is_no_purchase(self):
        i = rfm.inputs_from_state("m", self.STATE, at("2025-01-01T00:00:00"))
        assert i == rfm.Inputs("m", None, 0, 0, 0)
        assert rfm.inputs_from_state("m", {}, at("2026-01-01T00:00:00")) == rfm.Inputs("m", None, 0, 0, 0)

    def test_partial_thirteenth_month_is_prorated_by_its_days_inside_the_window(self):
        spend = {"2025-03": 3100, "2025-04": 100, "2026-03": 5}
        assert rfm.monetary(spend, at("2026-03-01T00:00:00")) == 3000 + 100 + 5  # 30 of 31 days of March 2025
        assert rfm.monetary(spend, at("2026-03-31T00:00:00")) == 100 + 5  # March 2025 is out
        assert rfm.monetary({"2026-01": -500}, at("2026-03-01T00:00:00")) == 0  # refunds never go below 0


class TestValue:
    @pytest.mark.parametrize("days,ltv", [(0, 40000), (30, 40000), (31, 32000), (90, 32000), (91, 22000),
                                          (180, 22000), (181, 12000), (365, 12000), (366, 4000)])
    def test_ltv_is_spend_times_retention_by_recency(self, days, ltv):
        assert rfm.ltv_12m(days, 4, 40000) == ltv

    def test_ltv_is_an_integer_floor(self):
        assert rfm.ltv_12m(100, 3, 999) == 549  # 999 × 0.55 = 549.45
        assert rfm.ltv_12m(None, 0, 0) == 0 and rfm.ltv_12m(3, 0, 0) == 0

    def test_touch_model_top_5_and_next_20_percent_by_ltv(self):
        ltvs = {f"m{i:02d}": 1000 * (21 - i) for i in range(20)}
        ltvs["zero"] = 0
        touch = rfm.touch_models(ltvs)  # 21 members: ceil(1.05) = 2 high, ceil(5.25) - 2 = 4 low
        assert [touch[f"m{i:02d}"] for i in range(7)] == ["high_touch"] * 2 + ["low_touch"] * 4 + ["tech_touch"]
        assert touch["zero"] == "tech_touch"
        assert rfm.touch_models({"a": 0, "b": 0}) == {"a": "tech_touch", "b": "tech_touch"}
        assert rfm.touch_models({"b": 5, "a": 5})["a"] == "high_touch"  # ties: by member id


class TestSegmentState:
    def test_previous_label_tracks_the_last_change_of_label(self):
        s1 = rfm.segment_state(None, rfm.Score("m", "555", "champions", "high_touch", 9), "2026-01-01T00:00:00Z")
        assert (s1["previous_label"], s1["changed_at"]) == (None, "2026-01-01T00:00:00Z")
        s2 = rfm.segment_state(s1, rfm.Score("m", "255", "cant_lose", "high_touch", 5), "2026-02-01T00:00:00Z")
        assert (s2["previous_label"], s2["changed_at"]) == ("champions", "2026-02-01T00:00:00Z")
        s3 = rfm.segment_state(s2, rfm.Score("m", "155", "cant_lose", "high_touch", 4), "2026-02-02T00:00:00Z")
        assert (s3["previous_label"], s3["changed_at"]) == ("champions", "2026-02-01T00:00:00Z")
        rerun = rfm.segment_state(s2, rfm.Score("m", "255", "cant_lose", "high_touch", 5), "2026-02-01T00:00:00Z")
        assert rerun == s2  # scoring the same moment again changes nothing


def test_f2_rate_and_nps():
    assert rfm.f2_rate([0, 1, 2, 3]) == round(2 / 3, 4)
    assert rfm.f2_rate([0, 0]) == 0.0
    assert rfm.nps(2, 2, 2) == 0.0 and rfm.nps(1, 0, 2) == -33.3 and rfm.nps(0, 0, 0) is None
    assert [rfm.nps_bucket(s) for s in (0, 6, 7, 8, 9, 10)] == ["detractors"] * 2 + ["passives"] * 2 + ["promoters"] * 2
