"""`ltv_quality` (SPEC 2.19, 6): our predicted value against a reference BG/NBD + Gamma-Gamma
on a public data set's later, held-out period.

Data: CDNOW's Q1-1997 cohort (bench/data/README.md): every purchase up to 1998-06-30 of the
customers whose first purchase at the online music retailer was in the first quarter of
1997. The model was designed on the 2,357-customer sample of Fader, Hardie & Lee; the
**judged** figure is on the other 21,213 customers of the full cohort, which no design
choice was made on (the protocol, fixed before their first run, is in docs/SEGMENTS.md).
Split: calibration = every purchase up to CUT (1997-09-30, 39 weeks after the cohort's
start, the published split), holdout = the 273 days (39 weeks) after it (1997-10-01 …
1998-06-30); the figures named _12m then cover that horizon. Reported beside it, not
judged: the same customers with CUT 1997-12-31 (holdout the 181 days after), and both
splits of the sample.

Protocol: the holdout is never used for fitting or for choosing anything at run time. The
model calibrates itself on an earlier slice inside the calibration period, as the job
does on a program's history: the BG/NBD and Gamma-Gamma fits, the ranking (the BTYD value
at one of five β, or a two-part spend model on one of three feature sets, chosen by
5-fold cross-validation on the slice), k (the total) and the p_alive logistic (its
features also by cross-validation) all come from purchases up to CUT. On the sample,
design choices were made while holdout figures were visible (docs/SEGMENTS.md says which);
the fresh customers are the out-of-sample test of those choices.

Ours runs the job's own code: each customer's purchases become the member state the
accrual path keeps (bounded: order count, first/last, the newest 40 timestamps of 400 days,
13 monthly order counts and spend buckets), then `segments.Gatherer` → the fitted plan →
`rfm.predictions` / the scorer. The reference is fitted on the exact transactions (x, t_x, T
in days, the mean of the repeat purchases), as published: E[orders in the holdout] × the
Gamma-Gamma conditional mean (the population mean for customers without a repeat) over the
holdout's length, and P(at least one purchase in the period).

Judged since 2026-12-02 (evening; pre-registered in docs/SEGMENTS.md): UCI Online Retail,
which nobody looked at while the model was designed (calibration up to 2011-06-30, holdout
the 162 days after), AND the fresh CDNOW customers on the first split: met only when both
meet the four goals. The repository does not ship Online Retail (bench/data/README.md says
why): the key reads it from the file `LTV_ONLINE_RETAIL` names, the UCI file's lines as
CSV. Without it the top-level figures are CDNOW's fresh customers', `online_retail` says it
was not run, and the key is not met: half of the pre-registered test cannot be judged.
Beside them `cdnow_fresh_second_split` (CUT 1997-12-31), `sample_first_split` and
`sample_second_split`, each with the model its slice chose.
"""
from __future__ import annotations

import os
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone

from bench.common import entry

DATA = os.path.join(os.path.dirname(__file__), "data", "CDNOW_sample.txt")
MASTER = os.path.join(os.path.dirname(__file__), "data", "CDNOW_master.txt.gz")
RETAIL_ENV = "LTV_ONLINE_RETAIL"  # the path of UCI Online Retail's lines as CSV; not shipped
RETAIL_CUT = date(2011, 6, 30)
RETAIL_HOLDOUT_DAYS = 162  # 2011-07-01 … 2011-12-09, the data's last day
CUT = date(1997, 9, 30)
HOLDOUT_DAYS = 273
BOOTSTRAP = 2000


def _orders(rows) -> dict:
    """customer → {date: spend in cents} from (customer, YYYYMMDD, dollars) rows (purchases on
    one day are one order)."""
    out: dict = defaultdict(lambda: defaultdict(int))
    for cust, day, dollars in rows:
        out[cust][datetime.strptime(day, "%Y%m%d").date()] += int(round(float(dollars) * 100))
    return out


def load(path: str = DATA) -> dict:
    """The sample (columns: customer, id within the sample, date, CDs, dollars)."""
    with open(path) as f:
        return _orders((c, d, v) for c, _, d, _, v in (line.split() for line in f))


def load_fresh(sample: dict, path: str = MASTER) -> dict:
    """The full cohort's customers that are not in `sample` (the never-tuned-on set)."""
    import gzip

    with gzip.open(path, "rt") as f:
        next(f)  # header
        return _orders((c, d, v) for c, d, _, v in (line.split() for line in f) if c not in sample)


def load_retail(path: str) -> dict:
    """UCI Online Retail's invoice lines (CSV, plain or gzip; the published column names,
    InvoiceNo, Quantity, InvoiceDate, UnitPrice, CustomerID, or Online Retail II's Invoice,
    Price, Customer ID) → customer → {date: spend in cents}. A line's cents are
    quantity × unit price × 100, exact in Decimal, rounded half to even. Lines without a
    customer are left out; so are cancellations (invoice numbers starting with "C") and
    invoices of no positive amount; the invoices of one day are one order."""
    import csv
    import gzip
    from decimal import ROUND_HALF_EVEN, Decimal

    def col(row: dict, *names: str) -> str:
        return next(row[n] for n in names if n in row).strip()

    invoices: dict = defaultdict(int)
    placed: dict = {}
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", newline="", encoding="utf-8-sig") as f:
        for row in csv.DictReader(f):
            cust = col(row, "CustomerID", "Customer ID").removesuffix(".0")
            invoice = col(row, "InvoiceNo", "Invoice")
            if not cust or invoice.upper().startswith("C"):
                continue
            cents = Decimal(col(row, "Quantity")) * Decimal(col(row, "UnitPrice", "Price")) * 100
            invoices[cust, invoice] += int(cents.to_integral_value(ROUND_HALF_EVEN))
            placed.setdefault((cust, invoice), _day(col(row, "InvoiceDate")))
    out: dict = defaultdict(lambda: defaultdict(int))
    for (cust, invoice), cents in invoices.items():
        if cents > 0:
            out[cust][placed[cust, invoice]] += cents
    return out


def _day(stamp: str) -> date:
    """An invoice time as UCI's file has it ("2010-12-01 08:26:00") or as a spreadsheet export
    writes it ("12/1/2010 8:26", month first)."""
    day = stamp.split()[0]
    if "/" in day:
        month, dom, year = (int(v) for v in day.split("/"))
        return date(year, month, dom)
    return date.fromisoformat(day)


def member_state(orders: list, as_of: datetime) -> dict:
    """The bounded order state the accrual path would hold at `as_of` (services/points.py)."""
    from chalicelib.clock import iso
    from chalicelib.domain.months import add_months, month_of

    stamps = [datetime(d.year, d.month, d.day, 12, tzinfo=timezone.utc) for d, _ in orders]
    horizon = iso(as_of - timedelta(days=400))
    months: dict = defaultdict(int)
    spend: dict = defaultdict(int)
    for t, (_, cents) in zip(stamps, orders):
        months[month_of(t)] += 1
        spend[month_of(t)] += cents
    oldest = add_months(month_of(as_of), -12)
    return {"orders": {"count": len(orders), "first_at": iso(stamps[0]), "last_at": iso(stamps[-1]),
                       "recent": [iso(t) for t in stamps if iso(t) >= horizon][-40:],
                       "months": {m: v for m, v in months.items() if m >= oldest}},
            "spend": {m: v for m, v in spend.items() if m >= oldest}}


def _spearman(a, b) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b)[0])


def _auc(score, label) -> float:
    import numpy as np
    from scipy.stats import rankdata

    r = rankdata(score)
    pos = label.sum()
    neg = len(label) - pos
    return float((r[label].sum() - pos * (pos + 1) / 2) / (pos * neg))


def _capture(score, actual, share: float) -> float:
    import numpy as np

    k = int(np.ceil(share * len(score)))
    top = np.argsort(-score, kind="stable")[:k]
    return float(actual[top].sum() / actual.sum())


def evaluate(tx: dict | None = None, cut: date = CUT, seed: int = 20, holdout_days: int = HOLDOUT_DAYS) -> dict:
    import numpy as np

    from chalicelib.domain import btyd, rfm
    from chalicelib.services import segments

    tx = load() if tx is None else tx
    as_of = datetime(cut.year, cut.month, cut.day, 23, 59, 59, tzinfo=timezone.utc)
    end = cut + timedelta(days=holdout_days)
    ids, states, ref_rows, actual, bought = [], [], [], [], []
    for cust in sorted(tx):
        orders = sorted((d, v) for d, v in tx[cust].items() if d <= cut)
        if not orders:
            continue
        ids.append(cust)
        states.append(member_state(orders, as_of))
        first, last = orders[0][0], orders[-1][0]
        repeat = [v for _, v in orders[1:]]
        ref_rows.append((len(orders) - 1, (last - first).days / 7, (cut - first).days / 7,
                         (sum(repeat) / len(repeat)) if repeat else 0.0))
        after = [v for d, v in tx[cust].items() if cut < d <= end]
        actual.append(sum(after))
        bought.append(bool(after))
    actual = np.array(actual, dtype=float)
    bought = np.array(bought)

    # ours: the job's gather → plan → scorer, on the bounded member states
    gather = segments.Gatherer(as_of, seed="ltv-quality")
    for cust, st in zip(ids, states):
        gather.add(cust, st)
    plan = gather.plan()
    inputs = [rfm.inputs_from_state(c, st, as_of) for c, st in zip(ids, states)]
    preds = rfm.predictions(inputs, plan.model, holdout_days)
    scorer = plan.scorer()
    scores = [scorer.score(i, p) for i, p in zip(inputs, preds)]
    ours = np.array([p.ltv_12m for p in preds], dtype=float)
    alive = np.array([p.p_alive for p in preds], dtype=float)

    # reference: BG/NBD + Gamma-Gamma on the exact transactions
    x, t_x, T, zbar = (np.array(c, dtype=float) for c in zip(*ref_rows))
    bg = btyd.fit_bgnbd(x, t_x, T)
    # Gamma-Gamma is defined for positive order values only (lifetimes refuses others): a repeat
    # buyer whose repeat orders were all $0 (one among the fresh customers) is left out of the fit,
    # else the log-likelihood is −inf everywhere and the fit never leaves its starting point
    gg = btyd.fit_gamma_gamma(x[(x > 0) & (zbar > 0)], zbar[(x > 0) & (zbar > 0)])
    horizon = holdout_days / 7
    ref = btyd.expected_orders(bg, horizon, x, t_x, T) * btyd.expected_order_value(gg, x, zbar)
    ref_any = btyd.p_any_purchase(bg, horizon, x, t_x, T)

    rng = np.random.default_rng(seed)
    n = len(actual)
    diffs = []
    for _ in range(BOOTSTRAP):
        i = rng.integers(0, n, n)
        diffs.append(_spearman(ours[i], actual[i]) - _spearman(ref[i], actual[i]))
    lo, hi = (float(v) for v in np.percentile(diffs, [5, 95]))

    by_touch: dict = {}
    for t in rfm.TOUCH:
        sel = np.array([s.touch == t for s in scores])
        by_touch[t] = {"members": int(sel.sum()), "predicted": round(float(ours[sel].sum()) / 100, 2),
                       "actual": round(float(actual[sel].sum()) / 100, 2)}
    by_label: dict = {}
    for label in rfm.LABELS:
        sel = np.array([s.label == label for s in scores])
        by_label[label] = {"members": int(sel.sum()),
                           "predicted_each": round(float(ours[sel].mean()) / 100, 2) if sel.any() else None,
                           "actual_each": round(float(actual[sel].mean()) / 100, 2) if sel.any() else None}
    start = min(d for days in tx.values() for d in days)
    return {
        "customers": n, "calibration": f"{start.isoformat()}..{cut.isoformat()}",
        "holdout": f"{(cut + timedelta(days=1)).isoformat()}..{end.isoformat()}",
        "spearman": {"ours": round(_spearman(ours, actual), 4), "reference": round(_spearman(ref, actual), 4),
                     "difference_90ci": [round(lo, 4), round(hi, 4)], "bootstrap": BOOTSTRAP},
        "top5_capture": {"ours": round(_capture(ours, actual, 0.05), 4),
                         "reference": round(_capture(ref, actual, 0.05), 4)},
        "top20_capture": {"ours": round(_capture(ours, actual, 0.20), 4),
                          "reference": round(_capture(ref, actual, 0.20), 4)},
        "total_ratio": {"ours": round(float(ours.sum() / actual.sum()), 4),
                        "reference": round(float(ref.sum() / actual.sum()), 4)},
        "auc_bought_again": {"ours_p_alive": round(_auc(alive, bought), 4),
                             "reference_p_any_purchase": round(_auc(ref_any, bought), 4)},
        "by_touch": by_touch, "by_label": by_label,
        "model": {k: v for k, v in plan.model.as_dict().items()},
        "reference_model": {"bgnbd": bg.as_dict(), "gg": gg.as_dict()},
    }


def verdict(r: dict) -> bool:
    return all(g["met"] for g in goals(r).values())


SECOND_CUT = date(1997, 12, 31)
SECOND_HOLDOUT_DAYS = 181


def _beside(r: dict) -> dict:
    out = {k: r[k] for k in ("customers", "calibration", "holdout", "spearman", "top5_capture", "top20_capture",
                             "total_ratio", "auc_bought_again", "by_touch")}
    out["meets_2_19"] = verdict(r)
    out["model"] = {k: r["model"].get(k) for k in ("chosen", "beta", "k", "scale", "inner_days", "alive_features", "cv")}
    return out


def measure() -> dict:
    """Judged (the protocol in docs/SEGMENTS.md, fixed before the run): UCI Online Retail, never
    looked at while the model was designed, AND the CDNOW customers outside the sample on the
    first split; met only when both meet SPEC 2.19's four goals. The top-level figures are
    Online Retail's when its file is given (`LTV_ONLINE_RETAIL`), else CDNOW's fresh
    customers'. Beside them: CDNOW's second split and both splits of the sample."""
    sample = load()
    fresh = load_fresh(sample)
    cdnow = evaluate(fresh)
    cdnow_fresh = {**_beside(cdnow), "by_label": cdnow["by_label"],
                   "data": "CDNOW full Q1-1997 cohort minus the 2,357-customer sample"}
    path = os.environ.get(RETAIL_ENV)
    if path:
        r = evaluate(load_retail(path), cut=RETAIL_CUT, holdout_days=RETAIL_HOLDOUT_DAYS)
        r["data"] = "UCI Online Retail, customers with a purchase up to 2011-06-30 (never looked at before its first run)"
        r["meets_2_19"] = verdict(r)
        r["cdnow_fresh"] = cdnow_fresh
        sets = {"online_retail": goals(r), "cdnow_fresh": goals(cdnow)}
    else:
        r = {**cdnow, "meets_2_19": verdict(cdnow), "data": cdnow_fresh["data"],
             "online_retail": {"run": False, "why": f"not shipped with the repository; {RETAIL_ENV} names no file"}}
        sets = {"online_retail": None, "cdnow_fresh": goals(cdnow)}
    r["cdnow_fresh_second_split"] = _beside(evaluate(fresh, cut=SECOND_CUT, holdout_days=SECOND_HOLDOUT_DAYS))
    r["sample_first_split"] = _beside(evaluate(sample))
    r["sample_second_split"] = _beside(evaluate(sample, cut=SECOND_CUT, holdout_days=SECOND_HOLDOUT_DAYS))
    s = r["spearman"]
    out = entry(s["ours"], s["reference"], round(s["ours"] / s["reference"], 4),
                "on Online Retail and on CDNOW's fresh customers each: Spearman 90% CI of the difference > 0; "
                "top-20% capture ≥ reference; total within 10%; AUC ≥ reference"
                + ("" if path else f" (Online Retail not run: {RETAIL_ENV} names no file)"), "spearman",
                met=judged(sets), **r)
    out["goals"] = sets  # for the report's plot
    return out


def judged(sets: dict) -> bool:
    """The pre-registered verdict: both data sets run (a set not run is None), and every goal
    met on each."""
    return set(sets) == {"online_retail", "cdnow_fresh"} and all(
        figures is not None and all(g["met"] for g in figures.values()) for figures in sets.values())


def goals(r: dict) -> dict:
    """SPEC 2.19's four figures of one evaluation, ours and the reference's, and whether each is met."""
    s, t, a = r["spearman"], r["top20_capture"], r["auc_bought_again"]
    ours_total, ref_total = r["total_ratio"]["ours"], r["total_ratio"]["reference"]
    return {"spearman": {"ours": s["ours"], "reference": s["reference"], "met": s["difference_90ci"][0] > 0},
            "top20_capture": {"ours": t["ours"], "reference": t["reference"], "met": t["ours"] >= t["reference"]},
            "total_ratio": {"ours": ours_total, "reference": ref_total, "met": abs(ours_total - 1) <= 0.10},
            "auc_bought_again": {"ours": a["ours_p_alive"], "reference": a["reference_p_any_purchase"],
                                 "met": a["ours_p_alive"] >= a["reference_p_any_purchase"]}}


if __name__ == "__main__":
    import json

    print(json.dumps(evaluate(load_fresh(load())), indent=1))
