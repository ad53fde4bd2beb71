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
