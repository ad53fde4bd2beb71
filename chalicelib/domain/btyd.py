"""Buy-till-you-die models: BG/NBD for repeat purchases, Gamma-Gamma for order value. Pure.

numpy and scipy are imported inside the functions that need them, never at module import,
so `import app` stays cheap; only the score-rfm job (and the bench/tests) call them.

Notation (Fader, Hardie & Lee 2005, "Counting your customers the easy way"), time in weeks:
- x   = repeat purchases (orders after the first),
- t_x = time from the first to the last purchase,
- T   = time from the first purchase to the scoring moment.

BG/NBD: while alive a customer buys at Poisson rate λ ~ Gamma(r, α); after each purchase
they drop out with probability p ~ Beta(a, b). Gamma-Gamma: a customer's order values are
Gamma(p, ν) with ν ~ Gamma(q, γ); the expected mean of a customer with x orders of mean m
is (γ + x·m)·p / (p·x + q − 1), a shrinkage of m towards the population mean p·γ / (q − 1).

Fits are maximum likelihood over the distinct (x, t_x, T) tuples weighted by how many
members share them (the sufficient statistics), by Nelder-Mead on the log parameters.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

WEEK_DAYS = 7.0
# BG/NBD parameters are kept within [BG_MIN, BG_MAX]: a population without heterogeneity
# or drop-out drives r, α and b to infinity (the likelihood is flat out there), where the
# hypergeometric function of the conditional expectation overflows; 1e4 is indistinguishable.
BG_MIN, BG_MAX = 1e-4, 1e4


@dataclass(frozen=True)
class BgNbd:
    r: float
    alpha: float
    a: float
    b: float

    def as_dict(self) -> dict:
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}


@dataclass(frozen=True)
class GammaGamma:
    p: float
    q: float
    gamma: float

    def as_dict(self) -> dict:
        return {"p": self.p, "q": self.q, "gamma": self.gamma}

    @property
    def population_mean(self) -> float:
        return self.p * self.gamma / (self.q - 1) if self.q > 1 else float("nan")


# --- BG/NBD -------------------------------------------------------------------------------

def bgnbd_log_likelihood(params, x, t_x, T, weights=None):
    """Per-customer log-likelihood (an array) of BG/NBD at params (r, alpha, a, b)."""
    import numpy as np
    from scipy.special import gammaln

    r, alpha, a, b = params
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x),
                      -np.inf)
    ll = a1 + a2 + np.logaddexp(a3, a4)
    return ll if weights is None else ll * np.asarray(weights, dtype=float)


def _minimize(neg_ll, start: Sequence[float]):
    import numpy as np
    from scipy.optimize import minimize

    with np.errstate(over="ignore"):  # a step far out is clipped by the caller's bounds
        res = minimize(lambda lp: neg_ll(np.exp(lp)), np.log(start), method="Nelder-Mead",
                       options={"maxiter": 4000, "xatol": 1e-7, "fatol": 1e-9})
        return np.exp(res.x)


def fit_bgnbd(x, t_x, T, weights=None, penalizer: float = 0.0) -> BgNbd:
    """Maximum-likelihood BG/NBD. `weights` counts members per tuple (None: 1 each);
    `penalizer` adds an L2 penalty on the parameters (0 = plain ML, as published)."""
    import numpy as np

    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    total = w.sum()

    def neg(params):
        ll = bgnbd_log_likelihood(params, x, t_x, T, w).sum()
        if not np.isfinite(ll):
            return 1e100
        return -ll / total + penalizer * float(np.sum(np.asarray(params) ** 2))

    def bounded(params):
        return neg(np.clip(params, BG_MIN, BG_MAX))

    scale = max(float(np.average(T, weights=w)), 1.0)
    r, alpha, a, b = np.clip(_minimize(bounded, (0.5, scale / 4, 1.0, 2.0)), BG_MIN, BG_MAX)
    return BgNbd(float(r), float(alpha), float(a), float(b))


def p_alive(m: BgNbd, x, t_x, T):
    """P(still active at T | x, t_x, T). 1 for a customer without repeat purchases (under
    BG/NBD one can only drop out right after a purchase)."""
    import numpy as np

    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_ratio = (m.r + x) * (np.log(m.alpha + T) - np.log(m.alpha + t_x))
        odds = np.where(x > 0, m.a / np.maximum(m.b + x - 1, 1e-300) * np.exp(np.minimum(log_ratio, 700)), 0.0)
    return 1.0 / (1.0 + odds)


def expected_orders(m: BgNbd, t: float, x, t_x, T):
    """E[purchases in (T, T + t] | x, t_x, T] (Fader, Hardie & Lee 2005, eq. 10)."""
    import numpy as np
    from scipy.special import hyp2f1

    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    r, alpha, a, b = m.r, m.alpha, m.a, m.b
    aa, bb, cc = r + x, b + x, a + b + x - 1
    z = t / (alpha + T + t)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        hyp = hyp2f1(aa, bb, cc, z)
        # Euler's transformation when the series overflows
        alt = hyp2f1(cc - aa, cc - bb, cc, z) * (1 - z) ** (cc - aa - bb)
        hyp = np.where(np.isfinite(hyp), hyp, alt)
        first = (a + b + x - 1) / (a - 1)
        second = 1 - hyp * ((alpha + T) / (alpha + T + t)) ** (r + x)
        return first * second * p_alive(m, x, t_x, T)


def p_any_purchase(m: BgNbd, t: float, x, t_x, T):
    """P(at least one purchase in (T, T + t] | x, t_x, T): an alive customer buys with
    probability 1 − ((α + T) / (α + T + t))^(r + x) (no drop-out without a purchase)."""
    import numpy as np

    x, T = np.asarray(x, dtype=float), np.asarray(T, dtype=float)
    alive = p_alive(m, x, t_x, T)
    return alive * (1 - ((m.alpha + T) / (m.alpha + T + t)) ** (m.r + x))


# --- Gamma-Gamma ---------------------------------------------------------------------------

def gg_log_likelihood(params, n, mean, weights=None):
    """Per-customer log-likelihood of Gamma-Gamma for customers with n ≥ 1 orders of mean
    value `mean` (the terms that do not depend on the parameters are dropped)."""
    import numpy as np
    from scipy.special import gammaln

    p, q, g = params
    n, mean = np.asarray(n, dtype=float), np.asarray(mean, dtype=float)
    ll = (gammaln(p * n + q) - gammaln(p * n) - gammaln(q) + q * np.log(g) + (p * n - 1) * np.log(mean)
          + p * n * np.log(n) - (p * n + q) * np.log(n * mean + g))
    return ll if weights is None else ll * np.asarray(weights, dtype=float)


def fit_gamma_gamma(n, mean, weights=None) -> GammaGamma:
    import numpy as np

    n, mean = np.asarray(n, dtype=float), np.asarray(mean, dtype=float)
    w = np.ones_like(n) if weights is None else np.asarray(weights, dtype=float)
    total = w.sum()

    def neg(params):
        ll = gg_log_likelihood(params, n, mean, w).sum()
        return 1e100 if not np.isfinite(ll) else -ll / total

    m = float(np.average(mean, weights=w))
    p, q, g = _minimize(neg, (2.0, 3.0, m))
    return GammaGamma(float(p), float(q), float(g))


def expected_order_value(m: GammaGamma, n, mean):
    """E[order value | n orders of mean `mean`]; the population mean where n = 0."""
    import numpy as np

    n, mean = np.asarray(n, dtype=float), np.asarray(mean, dtype=float)
    own = (m.gamma + n * mean) * m.p / (m.p * n + m.q - 1)
    return np.where(n > 0, own, m.population_mean)
