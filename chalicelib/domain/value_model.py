"""The predicted-value model of score-rfm (SPEC 2.19): fitted on the program's own history. Pure.

docs/SEGMENTS.md explains it; in short, at each scoring:
1. BG/NBD is fitted on every sampled member's (x, t_x, T) at the scoring moment and
   gives E[orders in the next 12 months] and the chance of buying in a horizon h.
2. Gamma-Gamma is fitted on the members' order values (all of last year's orders, the
   first included, so one-order buyers get their own shrunk value, not the population's).
3. A calibration on an earlier slice of the same history: the same two models fitted as
   of `as_of − h` (h = half the history, at most 182 days: a member
   keeps 13 monthly order and spend buckets, so half a year of them lies before the cut) are scored against what the
   members actually did in (as_of − h, as_of]. From that split come
   - β, how far a member's own order value is trusted against the program mean μ: the
     value is μ · (own / μ)^β, a shrinkage in log space (order values are skewed; a
     geometric blend keeps a big spender's lead without letting it swamp the expected
     orders); β is the grid value with the best mean of the rank correlation with the
     spend that followed and the share of it the top 20% took,
   - k, the factor that makes the predicted total match the spend that followed,
   - the logistic map from log E[orders in h] to P(ordered in h) = `p_alive`.
Below MIN_REPEAT_BUYERS members with a repeat purchase (or when a fit fails) the model
is the documented `fallback`: the retention table of rfm.py.

numpy and scipy are imported inside functions only (never at `import app`).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Optional, Sequence

MIN_REPEAT_BUYERS = 200
BETAS = (0.0, 0.25, 0.5, 0.75, 1.0)
YEAR_DAYS = 365
MAX_INNER_DAYS = 182  # the member keeps 13 monthly buckets: half a year of them before the cut
MIN_INNER_DAYS = 28
WEEK = 7.0


@dataclass(frozen=True)
class History:
    """A member's purchase history at a moment, in whole days, and last year's value."""
    orders: int  # lifetime orders (x = orders − 1)
    span_days: int  # first → last order (t_x)
    age_days: int  # first order → the moment (T)
    year_orders: int  # orders in the last 365 days
    year_spend: int  # net spend in the last 365 days (minor units)


@dataclass(frozen=True)
class Calibration:
    """What an earlier slice says: `spend_after` is the spend in the h days that followed
    `before` (the member's history h days earlier; None: no order yet then)."""
    before: Optional[History]
    spend_after: int
    ordered_after: bool


@dataclass(frozen=True)
class Prediction:
    p_alive: float  # 4 decimals
    expected_orders_12m: float  # 2 decimals
    ltv_12m: int  # minor units


@dataclass
class Model:
    kind: str  # "btyd" or "fallback"
    reason: str = ""
    bgnbd: dict = field(default_factory=dict)  # r, alpha, a, b (weeks)
    gg: dict = field(default_factory=dict)  # p, q, gamma (minor units)
    beta: float = 1.0
    k: float = 1.0
    inner_days: int = 0
    logit: tuple = (0.0, 1.0)  # p_alive = σ(c0 + Σ c_j · feature_j) over alive_features
    fitted_on: int = 0
    repeat_buyers: int = 0
    alive_features: tuple = ("eo",)
    # the ranking the cross-validation chose: {} = BG/NBD × Gamma-Gamma (β, k); else the
    # two-part spend model {"features", "buy": coefficients, "amount": coefficients, "s2"}
    spend: dict = field(default_factory=dict)
    scale: float = 1.0  # ltv_12m = floor(scale × P(buy in h) × E[spend | buy]) with the spend model
    blend: bool = False  # with `spend`: ltv_12m = floor(scale × √(BTYD value × spend model's))
    chosen: str = ""
    cv: dict = field(default_factory=dict)  # candidate → its pooled out-of-fold objective on the slice

    def as_dict(self) -> dict:
        d = asdict(self)
        d["logit"] = list(self.logit)
        d["alive_features"] = list(self.alive_features)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Model":
        d = dict(d)
        d["logit"] = tuple(float(v) for v in d.get("logit") or (0.0, 1.0))
        d["alive_features"] = tuple(d.get("alive_features") or ("eo",))
        spend = d.get("spend") or {}
        if spend:
            d["spend"] = {"features": list(spend["features"]), "buy": [float(v) for v in spend["buy"]],
                          "amount": [float(v) for v in spend["amount"]], "s2": float(spend["s2"])}
        d["cv"] = {k: float(v) for k, v in (d.get("cv") or {}).items()}
        d["blend"] = bool(d.get("blend"))
        return cls(**{k: (float(v) if k in ("beta", "k", "scale") else v) for k, v in d.items()
                      if k in cls.__dataclass_fields__})


def fallback(reason: str, fitted_on: int = 0, repeat_buyers: int = 0) -> Model:
    return Model("fallback", reason, fitted_on=fitted_on, repeat_buyers=repeat_buyers)


# --- fitting --------------------------------------------------------------------------------

def _arrays(hs: Sequence[History]):
    import numpy as np

    x = np.array([h.orders - 1 for h in hs], dtype=float)
    t_x = np.array([h.span_days for h in hs], dtype=float) / WEEK
    T = np.array([h.age_days for h in hs], dtype=float) / WEEK
    n = np.array([h.year_orders for h in hs], dtype=float)
    spend = np.array([h.year_spend for h in hs], dtype=float)
    return x, t_x, T, n, spend


def _fit_pair(hs: Sequence[History], gg_default=None):
    """BG/NBD and Gamma-Gamma fitted on distinct tuples weighted by their counts
    (`gg_default` where no member has a kept order value)."""
    from collections import Counter

    import numpy as np

    from chalicelib.domain import btyd

    tuples = Counter((h.orders - 1, h.span_days, h.age_days) for h in hs)
    keys = np.array(list(tuples), dtype=float)
    w = np.array(list(tuples.values()), dtype=float)
    bg = btyd.fit_bgnbd(keys[:, 0], keys[:, 1] / WEEK, keys[:, 2] / WEEK, w)
    values = [(h.year_orders, h.year_spend / h.year_orders) for h in hs if h.year_orders > 0 and h.year_spend > 0]
    n = np.array([v[0] for v in values], dtype=float)
    mean = np.array([v[1] for v in values], dtype=float)
    if len(values) < 2 and gg_default is not None:
        return bg, gg_default
    gg = btyd.fit_gamma_gamma(n, mean)
    return bg, gg


def _raw(bg, gg, hs: Sequence[History], horizon_days: float):
    """E[orders in horizon], P(order in horizon) and the member's own expected order value."""
    import numpy as np

    from chalicelib.domain import btyd

    x, t_x, T, n, spend = _arrays(hs)
    eo = btyd.expected_orders(bg, horizon_days / WEEK, x, t_x, T)
    mean = np.where(n > 0, spend / np.maximum(n, 1), 0.0)
    own = btyd.expected_order_value(gg, np.where(mean > 0, n, 0), np.maximum(mean, 1e-9))
    return np.nan_to_num(eo), np.nan_to_num(own, nan=gg.population_mean)


def _spearman(a, b) -> float:
    import numpy as np
    from scipy.stats import spearmanr

    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(spearmanr(a, b)[0])


def _top_capture(score, actual, share: float = 0.2) -> float:
    import numpy as np

    k = int(np.ceil(share * len(score)))
    total = float(actual.sum())
    return float(actual[np.argsort(-score, kind="stable")[:k]].sum()) / total if total > 0 else 0.0


def _objective(score, actual) -> float:
    """What β is chosen for on the calibration slice: the mean of the rank correlation with
    the spend that followed and the share of it the top 20% captured (SPEC 2.19's two
    ranking goals, weighted alike)."""
    return (_spearman(score, actual) + _top_capture(score, actual)) / 2


# The ranking candidates compared by cross-validation on the calibration slice (fixed here,
# never chosen by looking at a holdout): the BTYD value for each β, and the two-part spend
# model on nested feature sets; and the p_alive feature sets. Features of a history, with
# the BTYD fits of the same moment: eo = log E[orders in h], rec = log(1 + days since the
# last order), x = log(orders), T = log(1 + days since the first order), v = log(own / μ).
SPEND_FEATURES = (("eo", "v"), ("eo", "rec", "x", "v"), ("eo", "rec", "x", "T", "v"))
ALIVE_FEATURES = (("eo",), ("eo", "rec", "x"), ("eo", "rec", "x", "T"), ("eo", "rec", "x", "T", "v"))
FOLDS = 5
RIDGE = 1e-3  # L2 on the non-intercept coefficients (the features are O(1)): keeps a fold's fit tame


def _features(hs: Sequence[History], eo_h, own, mu: float, names: Sequence[str]):
    """The design matrix (intercept first) of `names` for these histories (numpy)."""
    import numpy as np

    orders = np.array([h.orders for h in hs], dtype=float)
    age = np.array([h.age_days for h in hs], dtype=float)
    rec = np.maximum(age - np.array([h.span_days for h in hs], dtype=float), 0)
    cols = {"eo": lambda: np.log(np.maximum(eo_h, 1e-6)), "rec": lambda: np.log1p(rec),
            "x": lambda: np.log(np.maximum(orders, 1)), "T": lambda: np.log1p(age),
            "v": lambda: np.log(np.maximum(own, 1e-9) / mu)}
    return np.column_stack([np.ones(len(hs))] + [cols[n]() for n in names])


def _features_one(h: History, eo_h: float, own: float, mu: float, names: Sequence[str]) -> list:
    """_features for one member in plain floats."""
    rec = max(h.age_days - h.span_days, 0)
    cols = {"eo": lambda: math.log(max(eo_h, 1e-6)), "rec": lambda: math.log1p(rec),
            "x": lambda: math.log(max(h.orders, 1)), "T": lambda: math.log1p(h.age_days),
            "v": lambda: math.log(max(own, 1e-9) / mu)}
    return [1.0] + [cols[n]() for n in names]


def _fit_logistic(X, y) -> list:
    """Logistic regression by maximum likelihood with RIDGE on the slopes (L-BFGS)."""
    import numpy as np
    from scipy.optimize import minimize

    n = len(y)
    mask = np.r_[0.0, np.ones(X.shape[1] - 1)]

    def f(c):
        z = X @ c
        grad = X.T @ (1 / (1 + np.exp(-z)) - y) / n + 2 * RIDGE * mask * c
        return float(np.sum(np.logaddexp(0, z) - y * z) / n + RIDGE * np.sum(mask * c * c)), grad

    with np.errstate(over="ignore"):
        return [float(v) for v in minimize(f, np.zeros(X.shape[1]), jac=True, method="L-BFGS-B").x]


def _fit_amount(X, log_spend) -> tuple:
    """Ridge regression of log(spend | bought) on X: (coefficients, residual variance)."""
    import numpy as np

    mask = np.diag(np.r_[0.0, np.ones(X.shape[1] - 1)])
    c = np.linalg.solve(X.T @ X + RIDGE * len(log_spend) * mask, X.T @ log_spend)
    return [float(v) for v in c], float(np.mean((log_spend - X @ c) ** 2))


def _fit_spend(X, bought, spent) -> dict:
    """The two-part spend model: P(buy in h) by logistic regression, log(spend) of the buyers by
    ridge regression; E[spend in h] = P × exp(amount + s²/2) (the log-normal mean)."""
    import numpy as np

    buyers = bought & (spent > 0)
    if buyers.sum() < X.shape[1] + 2:
        raise ValueError("too few buyers in the slice for the spend model")
    amount, s2 = _fit_amount(X[buyers], np.log(spent[buyers]))
    return {"buy": _fit_logistic(X, bought.astype(float)), "amount": amount, "s2": s2}


def _spend_score(m: dict, X):
    import numpy as np

    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-(X @ np.array(m["buy"])))) * np.exp(X @ np.array(m["amount"]) + m["s2"] / 2)


def _auc(score, label) -> float:
    import numpy as np
    from scipy.stats import rankdata

    pos = float(label.sum())
    neg = len(label) - pos
    if not pos or not neg:
        return 0.5
    return float((rankdata(score)[label].sum() - pos * (pos + 1) / 2) / (pos * neg))


def _cross_validate(hs0, eo0, own0, mu0: float, gg_mu0: float, spent, bought) -> tuple:
    """Each candidate's objective on the slice from out-of-fold predictions: member i is in
    fold i mod FOLDS (the sample is in member-id order); a trained candidate scores each
    fold with the fit on the other folds, and the objective is computed once over all the
    slice's members, pooled (the top 20% of the whole slice, as the judged figure ranks
    the whole population: a fifth of the slice is too small for a stable top-20% share).
    The BTYD value eo × shrink(own, β) trains nothing, so its out-of-fold score is its
    score. Each p_alive feature set gets its pooled out-of-fold AUC. (spend cv, alive cv)."""
    import numpy as np

    fold = np.arange(len(hs0)) % FOLDS
    cv: dict = {}
    for b in BETAS:
        cv[f"btyd beta={b}"] = _objective(eo0 * shrink(own0, mu0, b), spent)
    oofs = {}
    for names in SPEND_FEATURES:
        X = _features(hs0, eo0, own0, gg_mu0, names)
        oof = np.zeros(len(hs0))
        for f in range(FOLDS):
            oof[fold == f] = _spend_score(_fit_spend(X[fold != f], bought[fold != f], spent[fold != f]), X[fold == f])
        oofs["+".join(names)] = oof
        cv["spend " + "+".join(names)] = _objective(oof, spent)
    beta, names = _blend_parts(cv)
    cv[f"blend beta={beta} spend {names}"] = _objective(np.sqrt(eo0 * shrink(own0, mu0, beta) * oofs[names]), spent)
    alive: dict = {}
    for names in ALIVE_FEATURES:
        X = _features(hs0, eo0, own0, gg_mu0, names)
        oof = np.zeros(len(hs0))
        for f in range(FOLDS):
            oof[fold == f] = X[fold == f] @ np.array(_fit_logistic(X[fold != f], bought[fold != f].astype(float)))
        alive["+".join(names)] = _auc(oof, bought)
    return cv, alive


def _blend_parts(cv: dict) -> tuple:
    """The blend's two members: the best β of the BTYD value and the best spend model's
    feature set (each by its own cross-validated objective)."""
    btyd_best = _best({k: v for k, v in cv.items() if k.startswith("btyd ")})
    spend_best = _best({k: v for k, v in cv.items() if k.startswith("spend ")})
    return float(btyd_best.split("=")[1]), spend_best[len("spend "):]


def _best(scores: dict) -> str:
    """The best candidate at 4 decimals; a tie goes to the one listed first (the simpler)."""
    names = list(scores)
    return max(names, key=lambda k: (round(scores[k], 4), -names.index(k)))


def fit(sample: Sequence[History], calibration: Sequence[Calibration], inner_days: int) -> Model:
    """Fit the model on a sample of members' histories at the scoring moment and their
    calibration slice (`inner_days` earlier). Falls back (with the reason) when there is
    too little to fit on."""
    repeat = sum(1 for h in sample if h.orders >= 2)
    if repeat < MIN_REPEAT_BUYERS:
        return fallback(f"{repeat} repeat buyers < {MIN_REPEAT_BUYERS}", len(sample), repeat)
    inner = [c for c in calibration if c.before is not None]
    if inner_days < MIN_INNER_DAYS or sum(1 for c in inner if c.before.orders >= 2) < MIN_REPEAT_BUYERS:
        return fallback("history too short for a calibration slice", len(sample), repeat)
    try:
        import numpy as np

        from chalicelib.domain import btyd

        bg, gg = _fit_pair(sample)
        hs0 = [c.before for c in inner]
        bg0, gg0 = _fit_pair(hs0, gg)
        eo0, own0 = _raw(bg0, gg0, hs0, inner_days)
        spent = np.array([c.spend_after for c in inner], dtype=float)
        ordered = np.array([c.ordered_after for c in inner], dtype=bool)
        mu0 = float(np.mean(own0))
        cv, alive_cv = _cross_validate(hs0, eo0, own0, mu0, gg0.population_mean, spent, ordered)
        beta, blend_names = _blend_parts(cv)
        pred0 = eo0 * shrink(own0, mu0, beta)
        k = float(spent.sum() / pred0.sum()) if pred0.sum() > 0 else 1.0
        alive_names = tuple(_best(alive_cv).split("+"))
        logit = tuple(_fit_logistic(_features(hs0, eo0, own0, gg0.population_mean, alive_names), ordered.astype(float)))
        chosen = _best(cv)
        spend: dict = {}
        scale = 1.0
        x, t_x, T, _, _ = _arrays(sample)
        eo12 = btyd.expected_orders(bg, YEAR_DAYS / WEEK, x, t_x, T)
        if not np.all(np.isfinite(eo12)):
            return fallback("fit degenerate: expectations not finite", len(sample), repeat)
        blend = chosen.startswith("blend ")
        if blend or chosen.startswith("spend "):
            names = (blend_names if blend else chosen[len("spend "):]).split("+")
            spend = {"features": names, **_fit_spend(_features(hs0, eo0, own0, gg0.population_mean, names),
                                                     ordered, spent)}
            eo_h, own = _raw(bg, gg, sample, inner_days)
            score = _spend_score(spend, _features(sample, eo_h, own, gg.population_mean, names))
            value12 = k * eo12 * shrink(own, gg.population_mean, beta)  # the BTYD value
            if blend:
                score = np.sqrt(value12 * score)
            scale = float(value12.sum()) / float(score.sum()) if score.sum() > 0 else 1.0  # to the BTYD total
        params = [bg.r, bg.alpha, bg.a, bg.b, gg.p, gg.q, gg.gamma, k, scale, *logit,
                  *(spend.get("buy") or []), *(spend.get("amount") or []), spend.get("s2", 0.0)]
        if not all(math.isfinite(v) for v in params) or gg.q <= 1 or bg.a <= 1e-9:
            return fallback("fit did not converge", len(sample), repeat)
    except (ValueError, FloatingPointError, ZeroDivisionError, np.linalg.LinAlgError) as exc:
        return fallback(f"fit failed: {exc}", len(sample), repeat)
    return Model("btyd", "", bg.as_dict(), gg.as_dict(), beta, k, inner_days, logit, len(sample), repeat,
                 alive_names, spend, scale, blend, chosen, {**{n: round(v, 4) for n, v in cv.items()},
                                                     **{f"p_alive {n}": round(v, 4) for n, v in alive_cv.items()}})


def shrink(own, mu, beta):
    """The order value used: μ · (own / μ)^β (β = 0: the program mean; 1: the member's own).
    Works on floats and numpy arrays alike."""
    return mu * (own / mu) ** beta


def _fit_logit(z, y) -> tuple:
    """Logistic regression of y on z by maximum likelihood (two parameters)."""
    import numpy as np
    from scipy.optimize import minimize

    def neg(c):
        s = c[0] + c[1] * z
        return float(np.sum(np.logaddexp(0, s) - y * s))

    res = minimize(neg, np.array([0.0, 1.0]), method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-8})
    return float(res.x[0]), float(res.x[1])


# --- scoring ----------------------------------------------------------------------------------

def _expected_orders_one(m: dict, t: float, x: float, t_x: float, T: float) -> float:
    """btyd.expected_orders for one member with floats (a scan worker scores one at a time)."""
    from scipy.special import hyp2f1

    r, alpha, a, b = m["r"], m["alpha"], m["a"], m["b"]
    aa, bb, cc = r + x, b + x, a + b + x - 1
    z = t / (alpha + T + t)
    hyp = float(hyp2f1(aa, bb, cc, z))
    if not math.isfinite(hyp):
        hyp = float(hyp2f1(cc - aa, cc - bb, cc, z)) * (1 - z) ** (cc - aa - bb)
    first = (a + b + x - 1) / (a - 1)
    second = 1 - hyp * ((alpha + T) / (alpha + T + t)) ** (r + x)
    alive = 1.0
    if x > 0:
        log_ratio = min(700.0, (r + x) * (math.log(alpha + T) - math.log(alpha + t_x)))
        alive = 1 / (1 + a / (b + x - 1) * math.exp(log_ratio))
    out = first * second * alive
    return out if math.isfinite(out) else 0.0


def predict_one(model: Model, h: History, horizon_days: int = YEAR_DAYS) -> Prediction:
    """One member's prediction in plain floats (~50 µs; a scan worker scores one at a time).
    expected_orders_12m is BG/NBD's; p_alive the slice's logistic; ltv_12m the chosen
    ranking: the BTYD value (orders_cents × floor(k·μ·(own/μ)^β) // 100), the spend
    model (floor(scale × P(buy in h) × E[spend | buy])) or the blend (floor(scale ×
    √(BTYD value × P × E[spend | buy]))), the last two scaled to the BTYD total."""
    x, t_x, T = h.orders - 1, h.span_days / WEEK, h.age_days / WEEK
    eo = _expected_orders_one(model.bgnbd, horizon_days / WEEK, x, t_x, T)
    eo_h = _expected_orders_one(model.bgnbd, model.inner_days / WEEK, x, t_x, T)
    p, q, g = model.gg["p"], model.gg["q"], model.gg["gamma"]
    mu = p * g / (q - 1)
    if h.year_orders > 0 and h.year_spend > 0:
        n, mean = h.year_orders, h.year_spend / h.year_orders
        own = (g + n * mean) * p / (p * n + q - 1)
    else:
        own = mu
    z = sum(c * f for c, f in zip(model.logit, _features_one(h, eo_h, own, mu, model.alive_features)))
    alive = 1 / (1 + math.exp(-z)) if z > -700 else 0.0
    orders_cents = int(round(eo * 100))
    if model.spend:
        f = _features_one(h, eo_h, own, mu, model.spend["features"])
        zb = sum(c * v for c, v in zip(model.spend["buy"], f))
        za = sum(c * v for c, v in zip(model.spend["amount"], f)) + model.spend["s2"] / 2
        v = (1 / (1 + math.exp(-zb)) if zb > -700 else 0.0) * math.exp(min(za, 700.0))
        eo12 = eo if horizon_days == YEAR_DAYS else _expected_orders_one(model.bgnbd, YEAR_DAYS / WEEK, x, t_x, T)
        if model.blend:
            v = math.sqrt(max(model.k * mu * (own / mu) ** model.beta * eo12, 0.0) * v)
        v *= model.scale
        ltv = int(math.floor(v)) if math.isfinite(v) and v > 0 else 0
        if horizon_days != YEAR_DAYS and eo > 0:  # the bench's holdout of another length: BG/NBD's horizon ratio
            ltv = int(math.floor(v * eo / eo12)) if eo12 > 0 and math.isfinite(v) and v > 0 else 0
        return Prediction(round(alive, 4), orders_cents / 100, ltv)
    v = model.k * mu * (own / mu) ** model.beta
    value_minor = int(math.floor(v)) if math.isfinite(v) and v > 0 else 0
    return Prediction(round(alive, 4), orders_cents / 100, orders_cents * value_minor // 100)


def predict_many(model: Model, hs: Sequence[History], horizon_days: int = YEAR_DAYS) -> list[Prediction]:
    """Predictions for members with at least one order (model.kind == 'btyd'): predict_one
    each, so the plan's touch thresholds and every worker's write come from one formula.
    `horizon_days` other than a year only for the benchmark's holdout of another length
    (the figures are then named _12m but cover that horizon)."""
    return [predict_one(model, h, horizon_days) for h in hs]
