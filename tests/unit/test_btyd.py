"""BG/NBD and Gamma-Gamma against the published CDNOW figures (Fader, Hardie & Lee 2005).

tests/data/cdnow_summary.csv is the 2,357-customer CDNOW sample summarised over its 39-week
calibration period (x, t_x, T in weeks; zbar = mean value of the repeat purchases), as
shipped with the `lifetimes` package's data sets (bench/data/README.md).
"""
from __future__ import annotations

import csv
import os

import pytest

from chalicelib.domain import btyd

np = pytest.importorskip("numpy")
HERE = os.path.dirname(__file__)


@pytest.fixture(scope="module")
def cdnow():
    with open(os.path.join(HERE, "..", "data", "cdnow_summary.csv")) as f:
        rows = list(csv.DictReader(f))
    cols = {k: np.array([float(r[k]) for r in rows]) for k in ("x", "t_x", "T", "zbar")}
    return cols


PUBLISHED = (0.243, 4.414, 0.793, 2.426)  # r, alpha, a, b


def test_log_likelihood_at_the_published_parameters(cdnow):
    ll = btyd.bgnbd_log_likelihood(PUBLISHED, cdnow["x"], cdnow["t_x"], cdnow["T"]).sum()
    assert ll == pytest.approx(-9582.4, abs=0.1)


def test_fit_recovers_the_published_parameters(cdnow):
    m = btyd.fit_bgnbd(cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert (m.r, m.alpha, m.a, m.b) == pytest.approx(PUBLISHED, abs=2e-3)


def test_weighted_fit_on_distinct_tuples_equals_the_full_fit(cdnow):
    from collections import Counter

    tuples = Counter(zip(cdnow["x"], cdnow["t_x"], cdnow["T"]))
    keys = np.array(list(tuples))
    m = btyd.fit_bgnbd(keys[:, 0], keys[:, 1], keys[:, 2], np.array(list(tuples.values())))
    assert (m.r, m.alpha, m.a, m.b) == pytest.approx(PUBLISHED, abs=2e-3)


def test_conditional_expectations_match_the_reference_values():
    m = btyd.BgNbd(*PUBLISHED)
    # a customer with 2 repeat purchases, the last at week 30.43, observed for 38.86 weeks
    # (customer 1 of the sample): E[purchases in the next 39 weeks] and P(alive) from the
    # paper's closed forms (eq. 10 and P(alive) = 1 / (1 + a/(b+x-1) ((α+T)/(α+t_x))^(r+x))).
    assert btyd.expected_orders(m, 39, 2, 30.43, 38.86) == pytest.approx(1.226, abs=2e-3)
    assert btyd.p_alive(m, 2, 30.43, 38.86) == pytest.approx(0.727, abs=2e-3)
    # no repeat purchase: alive for sure under BG/NBD; expectation falls with the age T
    assert btyd.p_alive(m, 0, 0, 30) == 1.0
    assert btyd.expected_orders(m, 39, 0, 0, 10) > btyd.expected_orders(m, 39, 0, 0, 30)
    # P(at least one purchase) lies between 0 and P(alive)
    p = btyd.p_any_purchase(m, 39, 2, 30.43, 38.86)
    assert 0 < p < 0.727


def test_expected_orders_over_a_long_horizon_approach_the_unconditional_limit():
    m = btyd.BgNbd(*PUBLISHED)
    # for a brand-new customer (x = t_x = T = 0) E[X(t)] is the unconditional expectation
    # (a + b − 1)/(a − 1) × [1 − (α/(α + t))^r 2F1(r, b; a + b − 1; t/(α + t))]
    from scipy.special import hyp2f1

    t = 52.0
    r, alpha, a, b = PUBLISHED
    unconditional = (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))
    assert btyd.expected_orders(m, t, 0, 0, 0) == pytest.approx(unconditional, rel=1e-9)


def test_gamma_gamma_fit_recovers_the_published_parameters(cdnow):
    repeat = cdnow["x"] > 0
    g = btyd.fit_gamma_gamma(cdnow["x"][repeat], cdnow["zbar"][repeat])
    assert (g.p, g.q, g.gamma) == pytest.approx((6.25, 3.74, 15.44), abs=0.02)
    # the conditional mean shrinks a customer's mean towards the population mean
    own = float(btyd.expected_order_value(g, 2, 100.0))
    assert g.population_mean < own < 100.0
    assert float(btyd.expected_order_value(g, 0, 0.0)) == pytest.approx(g.population_mean)


# --- the value model's pieces against hand computations (value_model.py) -------------------------

def test_order_value_shrinks_in_log_space():
    from chalicelib.domain import value_model

    assert value_model.shrink(400.0, 100.0, 0.5) == pytest.approx(200.0)  # the geometric mean
    assert value_model.shrink(400.0, 100.0, 0.0) == 100.0 and value_model.shrink(400.0, 100.0, 1.0) == 400.0
    assert value_model.shrink(25.0, 100.0, 0.5) == pytest.approx(50.0)


def test_one_member_prediction_is_the_closed_form_with_floors():
    """ltv_12m = (E[orders in 52 1/7 weeks] rounded to cents) × floor(k · μ · (own/μ)^β) // 100,
    own the Gamma-Gamma conditional mean; p_alive the calibrated logistic of E[orders in h]."""
    import math

    from chalicelib.domain import value_model

    bg = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    gg = {"p": 6.25, "q": 3.74, "gamma": 1544.0}
    model = value_model.Model("btyd", "", bg, gg, 0.5, 1.1, 91, (-0.2, 0.9))
    h = value_model.History(orders=4, span_days=210, age_days=280, year_orders=4, year_spend=12000)
    m = btyd.BgNbd(**bg)
    eo = float(btyd.expected_orders(m, 365 / 7, 3, 30.0, 40.0))
    eo_h = float(btyd.expected_orders(m, 91 / 7, 3, 30.0, 40.0))
    g = btyd.GammaGamma(**gg)
    own = float(btyd.expected_order_value(g, 4, 3000.0))
    mu = g.population_mean
    value = math.floor(1.1 * mu * (own / mu) ** 0.5)
    cents = round(eo * 100)
    alive = 1 / (1 + math.exp(0.2 - 0.9 * math.log(eo_h)))
    p = value_model.predict_one(model, h)
    assert p == value_model.Prediction(round(alive, 4), cents / 100, cents * value // 100)
    assert p == value_model.predict_many(model, [h])[0]
    assert 0 < p.ltv_12m and p.expected_orders_12m > 0.5


def _synthetic(n=1200, seed=5):
    import random

    from chalicelib.domain import value_model

    rng = random.Random(seed)
    sample, calibration = [], []
    for _ in range(n):
        orders = 1 + (rng.random() < 0.55) * rng.randrange(1, 9)
        age = rng.randrange(200, 700)
        span = rng.randrange(0, age) if orders > 1 else 0
        value = rng.choice((2000, 5000, 12000))
        sample.append(value_model.History(orders, span, age, min(orders, 5), value * min(orders, 5)))
        # the member's kept monthly buckets do not reach before the cut: no order value there
        before = value_model.History(max(1, orders - 1), span // 2 if orders > 2 else 0, age - 150, 0, 0)
        calibration.append(value_model.Calibration(before, value * (orders > 2), orders > 2))
    return sample, calibration


def test_a_calibration_slice_without_kept_order_values_uses_the_current_order_value_model():
    from chalicelib.domain import value_model

    sample, calibration = _synthetic()
    model = value_model.fit(sample, calibration, 150)
    assert model.kind == "btyd", model.reason
    assert model.beta in value_model.BETAS and model.k > 0 and model.inner_days == 150
    assert model.gg["q"] > 1 and model.fitted_on == 1200


def test_the_calibration_slice_is_half_the_history_and_at_most_half_a_year():
    from datetime import datetime, timezone

    from chalicelib.services import segments

    as_of = datetime(2026, 6, 15, tzinfo=timezone.utc)
    assert segments.inner_days(as_of, "2026-02-15T00:00:00Z") == 60
    assert segments.inner_days(as_of, "2020-01-01T00:00:00Z") == 182
    assert segments.inner_days(as_of, None) == 0


def test_a_population_without_heterogeneity_or_drop_out_keeps_finite_expectations():
    """Everyone buying monthly and nobody leaving drives r, α and b to infinity; the fit stays
    within its bounds and the expectation is finite and close to the common rate."""
    x, t_x, T = [], [], []
    for i in range(600):
        n = 4 + i % 8  # orders, one every ~4.3 weeks up to now
        x.append(n - 1)
        t_x.append((n - 1) * 4.3)
        T.append((n - 1) * 4.3 + (i % 4))
    m = btyd.fit_bgnbd(np.array(x, float), np.array(t_x, float), np.array(T, float))
    assert btyd.BG_MIN <= min(m.r, m.alpha, m.a, m.b) and max(m.r, m.alpha, m.a, m.b) <= btyd.BG_MAX
    eo = btyd.expected_orders(m, 52, np.array([6.0]), np.array([25.8]), np.array([27.0]))
    assert np.all(np.isfinite(eo)) and 8 < float(eo[0]) < 16  # ~52 / 4.3 ≈ 12 orders
