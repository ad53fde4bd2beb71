from datetime import datetime, timezone

from chalicelib.domain import rfm
from chalicelib.domain.automations import due_automations


def test_quintiles_ties_share_a_score_and_ranks_are_order_independent():
    members = [rfm.Inputs(f"m{i}", recency_days=i * 10, frequency=10 - i, monetary=1000 * (10 - i)) for i in range(10)]
    a = {s.member_id: s for s in rfm.score_all(members)}
    b = {s.member_id: s for s in rfm.score_all(list(reversed(members)))}
    assert a == b
    assert a["m0"].rfm == "555" and a["m0"].label == "champions"
    assert a["m9"].rfm == "111" and a["m9"].label == "lost"
    tied = rfm.score_all([rfm.Inputs("x", 5, 1, 100), rfm.Inputs("y", 5, 1, 100)])
    assert tied[0].rfm == tied[1].rfm


def test_no_purchase_is_new_and_touch_model_by_ltv_rank():
    members = [rfm.Inputs(f"m{i:02d}", recency_days=i, frequency=1 + (20 - i) // 4, monetary=1000 * (20 - i))
               for i in range(20)] + [rfm.Inputs("fresh", None, 0, 0)]
    scores = {s.member_id: s for s in rfm.score_all(members)}
    assert scores["fresh"].label == "new" and scores["fresh"].rfm is None and scores["fresh"].ltv_12m == 0
    touch = [s.touch for s in sorted(scores.values(), key=lambda s: -s.ltv_12m)]
    assert touch.count("high_touch") == 2 and touch.count("low_touch") == 4  # ceil(5% of 21), ceil(25%) - 2
    assert touch[:2] == ["high_touch", "high_touch"]


def test_grid_labels_and_ltv_formula():
    assert rfm.label_for(1, 5, 5) == "cant_lose"
    assert rfm.label_for(2, 4, 3) == "at_risk"
    assert rfm.label_for(3, 3, 2) == "need_attention"
    assert rfm.label_for(4, 1, 1) == "promising"
    assert rfm.ltv_12m(5, 4, 40000) == 40000
    assert rfm.ltv_12m(1, 4, 40000) == 6000
    assert rfm.f2_rate([0, 1, 2, 3]) == round(2 / 3, 4)
    assert rfm.nps([10, 9, 8, 7, 6, 0]) == round(100 * (2 - 2) / 6, 1)


def _view(**over):
    base = {"enrolled_at": "2026-01-01T00:00:00Z", "birthday": None, "segment": None,
            "points": {"available": 10, "expiring_soon": []},
            "tier": {"tier_id": "bronze", "next_tier": "silver", "spend_to_next_tier": 50000, "qualifying_spend": 0}}
    base.update(over)
    return base


def at(s):
    return datetime.fromisoformat(s).replace(tzinfo=timezone.utc)


def test_leap_day_birthday_in_common_years():
    view = _view(birthday="02-29")
    assert [d.automation for d in due_automations(view, {}, at("2027-02-28T09:00:00"), {})] == ["birthday"]
    assert due_automations(view, {}, at("2028-02-28T09:00:00"), {}) == []
    assert [d.automation for d in due_automations(view, {}, at("2028-02-29T09:00:00"), {})] == ["birthday"]


def test_disabled_automation_is_silent():
    view = _view(enrolled_at="2026-03-01T08:00:00Z")
    assert [d.automation for d in due_automations(view, {}, at("2026-03-01T10:00:00"), {})] == ["welcome"]
    assert due_automations(view, {}, at("2026-03-01T10:00:00"), {"welcome": {"enabled": False}}) == []
