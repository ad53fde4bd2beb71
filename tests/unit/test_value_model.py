"""The value model of score-rfm, the frequency tie rule, the one-member scorer, and churn_risk
on p_alive (SPEC 2.11, 2.19; docs/SEGMENTS.md)."""
from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timezone

import pytest

from chalicelib.domain import rfm, value_model
from chalicelib.domain.automations import due_automations
from chalicelib.schemas.program import DEFAULT_AUTOMATIONS
from tests.unit.test_automations import view

ALL_ON = {k: dict(v) for k, v in DEFAULT_AUTOMATIONS.items()}


def test_frequency_ties_take_the_lowest_score_so_one_order_buyers_are_not_lifted():
    # 61% one-order buyers: under mid-ranks they would all score 2 and new/promising never appear
    freqs = [1] * 61 + [2] * 20 + [3] * 10 + [5] * 9
    mid = rfm.Quintiles(freqs, higher_is_better=True)
    low = rfm.Quintiles(freqs, higher_is_better=True, ties="low")
    assert mid.score(1) == 2 and low.score(1) == 1
    assert [low.score(v) for v in (2, 3, 5)] == [4, 5, 5]
    # without ties both rules agree
    assert [rfm.Quintiles(range(10), True, "low").score(v) for v in range(10)] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_one_order_recent_buyers_are_new_or_promising():
    pop = [rfm.Inputs(f"one{i}", 3 + i % 60, 1, 1000 + i, 1) for i in range(61)] + \
          [rfm.Inputs(f"rep{i}", 10 + i, 2 + i % 4, 50000 + 100 * i, 2 + i % 4, 100, 200) for i in range(39)]
    labels = Counter(s.label for s in rfm.score_all(pop))
    assert labels["new"] > 0 and labels["promising"] > 0


@pytest.mark.parametrize("higher,ties", [(True, "mid"), (True, "low"), (False, "mid")])
def test_cut_points_score_every_population_value_as_the_quintiles_do(higher, ties):
    rng = random.Random(7)
    values = [rng.choice([0, 1, 1, 1, 2, 3, 5, 8, 13, 400]) + rng.randrange(3) for _ in range(500)]
    q = rfm.Quintiles(values, higher, ties)
    cuts = rfm.Cuts.from_counts(Counter(values), higher, ties)
    assert all(cuts.score(v) == q.score(v) for v in set(values))
    assert rfm.Cuts.from_dict(cuts.as_dict()) == cuts


def test_sample_touch_thresholds_equal_the_exact_ranking_when_the_sample_is_everyone():
    ltvs = {f"m{i:02d}": 1000 * (21 - i) for i in range(20)}
    ltvs["zero"] = 0
    high, low = rfm.touch_thresholds([(v, k) for k, v in ltvs.items()], len(ltvs))
    scorer = rfm.Scorer(None, None, None, None, high, low)
    assert {k: scorer.touch(k, v) for k, v in ltvs.items()} == rfm.touch_models(ltvs)


def test_below_the_minimum_of_repeat_buyers_the_model_falls_back_to_the_retention_table():
    sample = [value_model.History(2, 30, 100, 2, 5000)] * (value_model.MIN_REPEAT_BUYERS - 1)
    model = value_model.fit(sample, [], 180)
    assert model.kind == "fallback" and "repeat buyers" in model.reason
    p = rfm.predictions([rfm.Inputs("m", 100, 4, 40000, 4)], model)[0]
    assert p == value_model.Prediction(0.55, 2.2, 22000)  # 4 × 0.55 orders; 40,000 × 0.55


def test_the_fitted_model_predicts_more_for_frequent_recent_buyers():
    rng = random.Random(3)
    sample, calibration = [], []
    for i in range(1500):
        orders = 1 + (rng.random() < 0.5) * rng.randrange(1, 8)
        age = rng.randrange(200, 700)
        span = rng.randrange(0, age) if orders > 1 else 0
        h = value_model.History(orders, span, age, min(orders, 4), 3000 * min(orders, 4))
        sample.append(h)
        before = value_model.History(max(1, orders - 1), span // 2 if orders > 2 else 0, age - 100, 1, 3000)
        calibration.append(value_model.Calibration(before, 3000 * (orders > 2), orders > 2))
    model = value_model.fit(sample, calibration, 180)
    assert model.kind == "btyd", model.reason
    again = value_model.Model.from_dict(model.as_dict())
    frequent, lapsed = value_model.predict_many(again, [value_model.History(8, 600, 610, 4, 12000),
                                                        value_model.History(2, 10, 650, 0, 0)])
    assert frequent.ltv_12m > lapsed.ltv_12m >= 0
    assert frequent.expected_orders_12m > lapsed.expected_orders_12m
    assert 0 <= lapsed.p_alive <= 1 and 0 <= frequent.p_alive <= 1
    assert frequent.expected_orders_12m == round(frequent.expected_orders_12m, 2)
    # ltv is integer arithmetic on the stored 2-decimal orders figure
    assert isinstance(frequent.ltv_12m, int)


class TestChurnOnPAlive:
    def seg(self, **over):
        s = {"rfm": "343", "label": "loyal", "touch": "low_touch", "ltv_12m": 9000, "previous_label": "loyal",
             "changed_at": "2026-01-01T00:00:00Z", "scored_at": "2026-03-01T00:00:00Z",
             "p_alive": 0.25, "previous_p_alive": 0.4}
        s.update(over)
        return s

    def due(self, seg, count=2, config=ALL_ON):
        state = {"orders": {"count": count, "first_at": "2025-01-01T00:00:00Z", "last_at": "2025-06-01T00:00:00Z",
                            "recent": []}}
        when = datetime(2026, 3, 1, 10, tzinfo=timezone.utc)
        return {d.automation: d for d in due_automations(view(segment=seg), state, when, config)}

    def test_falling_below_the_threshold_fires_once_per_scoring(self):
        d = self.due(self.seg())["churn_risk"]
        assert d.period == "p_alive@2026-03-01" and d.variables["p_alive"] == 0.25 and not d.cs_alert
        assert self.due(self.seg(touch="high_touch"))["churn_risk"].cs_alert

    @pytest.mark.parametrize("over,count", [({"previous_p_alive": 0.29}, 2), ({"p_alive": 0.3}, 2),
                                            ({}, 1), ({"previous_p_alive": None}, 2),
                                            ({"scored_at": "2026-02-20T00:00:00Z"}, 2)])
    def test_no_fall_no_message(self, over, count):
        assert "churn_risk" not in self.due(self.seg(**over), count)

    def test_the_threshold_is_a_parameter(self):
        cfg = {**ALL_ON, "churn_risk": {**ALL_ON["churn_risk"], "churn_p_alive": "0.2"}}
        assert "churn_risk" not in self.due(self.seg(), config=cfg)
        assert "churn_risk" in self.due(self.seg(p_alive=0.1, previous_p_alive=0.2), config=cfg)


def test_one_member_scoring_equals_the_vectorised_btyd_formulas():
    """predict_one (plain floats, what every worker runs) against btyd.py's vectorised
    conditional expectation and the documented value formula."""
    import math

    import numpy as np

    from chalicelib.domain import btyd

    model = value_model.Model("btyd", "", {"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.4},
                              {"p": 9.8, "q": 3.4, "gamma": 792.0}, 0.25, 1.2, 136, (0.14, 1.15))
    rng = random.Random(1)
    hs = []
    for _ in range(500):
        o, age = rng.randrange(1, 30), rng.randrange(0, 900)
        hs.append(value_model.History(o, rng.randrange(0, age + 1) if o > 1 else 0, age, rng.randrange(0, o + 1),
                                      rng.randrange(0, 100000)))
    bg = btyd.BgNbd(**model.bgnbd)
    x = np.array([h.orders - 1 for h in hs], float)
    t_x = np.array([h.span_days for h in hs], float) / 7
    T = np.array([h.age_days for h in hs], float) / 7
    eo12 = btyd.expected_orders(bg, 365 / 7, x, t_x, T)
    eo_h = btyd.expected_orders(bg, 136 / 7, x, t_x, T)
    mu = 9.8 * 792.0 / 2.4
    for h, e12, eh, p in zip(hs, eo12, eo_h, value_model.predict_many(model, hs)):
        assert p == value_model.predict_one(model, h)
        assert p.expected_orders_12m == pytest.approx(round(float(e12), 2), abs=0.011)
        assert p.p_alive == pytest.approx(1 / (1 + math.exp(-(0.14 + 1.15 * math.log(max(float(eh), 1e-6))))), abs=1e-4)
        own = (792.0 + h.year_spend) * 9.8 / (9.8 * h.year_orders + 2.4) if h.year_orders and h.year_spend else mu
        value = math.floor(1.2 * mu * (own / mu) ** 0.25)
        assert p.ltv_12m == int(round(p.expected_orders_12m * 100)) * value // 100


def slice_population(n: int = 3000, seed: int = 5):
    """Members whose next-h-days spend follows recency and frequency far more than BG/NBD's
    expectation says (a program where recent buyers come back): (sample, calibration)."""
    rng = random.Random(seed)
    sample, calibration = [], []
    for _ in range(n):
        orders = 1 + (rng.random() < 0.6) * rng.randrange(1, 10)
        age = rng.randrange(200, 700)
        span = rng.randrange(0, age) if orders > 1 else 0
        spend = rng.choice((2000, 5000, 12000)) * min(orders, 6)
        sample.append(value_model.History(orders, span, age, min(orders, 6), spend))
        rec = age - span
        before = value_model.History(orders, span, age, min(orders, 6), spend)
        buys = rng.random() < (0.9 if rec < 60 else 0.5 if rec < 200 else 0.05)
        calibration.append(value_model.Calibration(before, int(buys) * spend // max(1, min(orders, 6)) * 2, buys))
    return sample, calibration


def test_the_ranking_is_chosen_by_cross_validation_on_the_slice_and_round_trips():
    sample, calibration = slice_population()
    model = value_model.fit(sample, calibration, 180)
    assert model.kind == "btyd", model.reason
    # every candidate was scored on the slice; the chosen one has the best objective
    assert set(model.cv) >= {f"btyd beta={b}" for b in value_model.BETAS} | {
        "spend " + "+".join(f) for f in value_model.SPEND_FEATURES}
    ranking = {k: v for k, v in model.cv.items() if not k.startswith("p_alive")}
    assert model.chosen == max(ranking, key=lambda k: (ranking[k], -list(ranking).index(k)))
    assert model.chosen.startswith("spend ")  # recency drives the slice's spend here: the spend model wins
    assert model.spend["features"] == model.chosen[len("spend "):].split("+")
    assert model.cv[model.chosen] > max(v for k, v in ranking.items() if k.startswith("btyd"))
    again = value_model.Model.from_dict(model.as_dict())
    assert again == model
    # the spend model's total is the BTYD total: scale × Σ score = k × Σ E[orders] × value
    preds = value_model.predict_many(again, sample)
    btyd_only = value_model.Model(**{**again.__dict__, "spend": {}, "scale": 1.0, "chosen": ""})
    total = sum(p.ltv_12m for p in preds)
    assert total == pytest.approx(sum(p.ltv_12m for p in value_model.predict_many(btyd_only, sample)), rel=0.01)
    recent = value_model.History(5, 400, 410, 5, 25000)
    lapsed = value_model.History(5, 100, 410, 5, 25000)
    assert value_model.predict_one(again, recent).ltv_12m > value_model.predict_one(again, lapsed).ltv_12m


def test_the_spend_model_prediction_is_the_documented_formula():
    import math

    model = value_model.Model("btyd", "", {"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.4},
                              {"p": 9.8, "q": 3.4, "gamma": 792.0}, 0.5, 1.2, 136, (0.1, 1.0, -0.2, 0.3),
                              alive_features=("eo", "rec", "x"),
                              spend={"features": ["eo", "v"], "buy": [0.2, 0.9, 0.1], "amount": [8.0, 0.1, 0.7],
                                     "s2": 0.5},
                              scale=1.7, chosen="spend eo+v")
    h = value_model.History(4, 200, 300, 3, 9000)
    p = value_model.predict_one(model, h)
    eo_h = value_model._expected_orders_one(model.bgnbd, 136 / 7, 3, 200 / 7, 300 / 7)
    mu = 9.8 * 792.0 / 2.4
    own = (792.0 + 9000) * 9.8 / (9.8 * 3 + 2.4)
    z = [1.0, math.log(eo_h), math.log(own / mu)]
    buy = 1 / (1 + math.exp(-sum(c * f for c, f in zip([0.2, 0.9, 0.1], z))))
    amount = math.exp(sum(c * f for c, f in zip([8.0, 0.1, 0.7], z)) + 0.25)
    assert p.ltv_12m == math.floor(1.7 * buy * amount)
    alive = 1 / (1 + math.exp(-(0.1 + 1.0 * math.log(eo_h) - 0.2 * math.log1p(100) + 0.3 * math.log(4))))
    assert p.p_alive == round(alive, 4)


def test_the_blend_candidate_joins_the_best_btyd_value_and_the_best_spend_model():
    sample, calibration = slice_population()
    model = value_model.fit(sample, calibration, 180)
    btyd = {k: v for k, v in model.cv.items() if k.startswith("btyd ")}
    spend = {k: v for k, v in model.cv.items() if k.startswith("spend ")}
    beta = max(btyd, key=lambda k: (btyd[k], -list(btyd).index(k))).split("=")[1]
    names = max(spend, key=lambda k: (spend[k], -list(spend).index(k)))[len("spend "):]
    assert [k for k in model.cv if k.startswith("blend ")] == [f"blend beta={beta} spend {names}"]


def test_a_chosen_blend_is_fitted_scaled_to_the_btyd_total_and_round_trips(monkeypatch):
    """fit's wiring when the slice's cross-validation prefers the blend: the spend model of the
    blend's feature set is fitted, the blend's total is the BTYD total, and it round-trips."""
    sample, calibration = slice_population()
    real = value_model._cross_validate

    def prefer_blend(*args):
        cv, alive = real(*args)
        return {k: (1.0 if k.startswith("blend ") else v) for k, v in cv.items()}, alive

    monkeypatch.setattr(value_model, "_cross_validate", prefer_blend)
    model = value_model.fit(sample, calibration, 180)
    assert model.chosen.startswith("blend ") and model.blend
    assert model.spend["features"] == model.chosen.split(" spend ")[1].split("+")
    again = value_model.Model.from_dict(model.as_dict())
    assert again == model
    btyd_only = value_model.Model(**{**again.__dict__, "spend": {}, "scale": 1.0, "blend": False, "chosen": ""})
    total = sum(p.ltv_12m for p in value_model.predict_many(again, sample))
    assert total == pytest.approx(sum(p.ltv_12m for p in value_model.predict_many(btyd_only, sample)), rel=0.01)
    spend_only = value_model.Model(**{**again.__dict__, "blend": False})
    assert [p.ltv_12m for p in value_model.predict_many(again, sample[:50])] != [
        p.ltv_12m for p in value_model.predict_many(spend_only, sample[:50])]


def test_the_blend_prediction_is_the_documented_formula():
    import math

    model = value_model.Model("btyd", "", {"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.4},
                              {"p": 9.8, "q": 3.4, "gamma": 792.0}, 0.5, 1.2, 136, (0.1, 1.0, -0.2, 0.3),
                              alive_features=("eo", "rec", "x"),
                              spend={"features": ["eo", "v"], "buy": [0.2, 0.9, 0.1], "amount": [8.0, 0.1, 0.7],
                                     "s2": 0.5},
                              scale=1.7, blend=True, chosen="blend beta=0.5 spend eo+v")
    h = value_model.History(4, 200, 300, 3, 9000)
    eo_h = value_model._expected_orders_one(model.bgnbd, 136 / 7, 3, 200 / 7, 300 / 7)
    eo12 = value_model._expected_orders_one(model.bgnbd, 365 / 7, 3, 200 / 7, 300 / 7)
    mu = 9.8 * 792.0 / 2.4
    own = (792.0 + 9000) * 9.8 / (9.8 * 3 + 2.4)
    z = [1.0, math.log(eo_h), math.log(own / mu)]
    buy = 1 / (1 + math.exp(-sum(c * f for c, f in zip([0.2, 0.9, 0.1], z))))
    amount = math.exp(sum(c * f for c, f in zip([8.0, 0.1, 0.7], z)) + 0.25)
    btyd_value = 1.2 * mu * (own / mu) ** 0.5 * eo12
    assert value_model.predict_one(model, h).ltv_12m == math.floor(1.7 * math.sqrt(btyd_value * buy * amount))
    # over another horizon (the benchmark's holdout) the 12-month figure is scaled by BG/NBD's ratio
    eo_181 = value_model._expected_orders_one(model.bgnbd, 181 / 7, 3, 200 / 7, 300 / 7)
    v = 1.7 * math.sqrt(btyd_value * buy * amount)
    assert value_model.predict_one(model, h, 181).ltv_12m == math.floor(v * eo_181 / eo12)
