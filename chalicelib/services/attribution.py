"""Attribution and uplift results (SPEC 2.18, 4.5; docs/UPLIFT.md).

`measure(ctx)` is the body of the `measure-campaigns` job; `campaign_results` and
`automation_results` read what the last measurement stored.
"""
from __future__ import annotations

import re
import secrets
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from typing import Optional

from chalicelib import clock
from chalicelib.domain import uplift
from chalicelib.errors import NotFound, ValidationFailed
from chalicelib.jobs import framework
from chalicelib.schemas.common import ID_PATTERN
from chalicelib.schemas.program import DEFAULT_AUTOMATIONS
from chalicelib.services import program
from chalicelib.store import attribution as store
from chalicelib.store import jobs as job_store
from chalicelib.store import marketing as marketing_store
from chalicelib.store import members as member_store
from chalicelib.store import operations, scans

# Exposures of the last MEASURED_DAYS days (by their day) are measured again by every run
# (late orders, refunds); older days keep the counts of the last run that measured them.
MEASURED_DAYS = 35
MAX_RANGE_DAYS = 400
GROUPS = ("treatment", "control")
_KEY = "u|"  # count keys: u|{source}|{day}|{group}|{members|converters|revenue}
_COUPON = "c|"  # c|{coupon campaign}|{orders|revenue}


def _order(order_id: str) -> Optional[dict]:
    rec = operations.get_order(order_id)
    return dict(rec.data or {}) if rec is not None else None


def _window(ctx_as_of: datetime, days: int) -> tuple[str, str]:
    first_day = (ctx_as_of - timedelta(days=MEASURED_DAYS)).date().isoformat()
    return first_day, clock.iso(ctx_as_of)


def _in_window(exposure_at: str, occurred_at: str, days: int, as_of_iso: str) -> bool:
    if occurred_at > as_of_iso or occurred_at < exposure_at:
        return False
    return clock.parse_instant(occurred_at) < clock.parse_instant(exposure_at) + timedelta(days=days)


def _pinned_days(ctx) -> int:
    """attribution_days as the job's first invocation read it: every segment measures alike."""
    current = program.settings().attribution_days
    data = job_store.update(ctx.job_id, lambda d: None if "attribution_days" in (d.get("params") or {}) else
                            {**d, "params": {**(d.get("params") or {}), "attribution_days": current}})
    return int((data.get("params") or {}).get("attribution_days", current))


def _phase_done(ctx, phase: str) -> bool:
    return all(job_store.load_checkpoint(ctx.job_id, phase, s).get("done") for s in range(ctx.segments))


def _wake_the_others(ctx, phase: str) -> None:
    """Fanned out: the segment that finished `phase` last sends the other segments on to the
    next phase, once (a conditional write on the job record elects the sender)."""
    token = secrets.token_hex(8)
    data = job_store.update(ctx.job_id, lambda d: None if phase in (d.get("released") or {}) else
                            {**d, "released": {**(d.get("released") or {}), phase: token}})
    if (data.get("released") or {}).get(phase) == token:
        framework._send_job_messages([{"job_id": ctx.job_id, "segment": s}
                                      for s in range(ctx.segments) if s != ctx.only_segment])


def _summed(ctx, phase: str, prefix: str) -> Counter:
    """A phase's counts over every segment's checkpoint (this run's, whoever ran them)."""
    total: Counter = Counter()
    for s in range(ctx.segments):
        total.update({k: v for k, v in (job_store.load_checkpoint(ctx.job_id, phase, s).get("counts") or {}).items()
                      if k.startswith(prefix)})
    return total


def measure(ctx) -> None:
    """The four phases (jobs/measure.py). In one process every phase runs all its segments in
    turn; fanned out (one invocation per segment) each invocation runs its segment's phases
    while the phase before is complete everywhere, and the last segment to finish a phase
    sends the others on. Re-running a segment is harmless: every write is a put of the same
    value and the counts ride on the checkpoints."""
    days = _pinned_days(ctx)
    first_day, as_of_iso = _window(ctx.as_of, days)

    # 1. index the exposure batches by member
    def index() -> None:
        ctx.scan(scans.exposure_batches(), lambda rec: {"exposures_indexed": store.index_batch(rec)},
                 phase="index")

    # 2. attribute the orders of the measured period
    found: list = []
    merged: dict = {}  # member_id → ids it answers for (itself and the members merged into it), per page

    def answering_for(member_id: str) -> list:
        if member_id not in merged:
            row = member_store.get(member_id)
            merged[member_id] = [member_id, *(row.merged_from if row else ())]
        return merged[member_id]

    def match_order(order) -> Optional[dict]:
        data = dict(order.data or {})
        occurred = str(data.get("occurred_at") or "")
        if not occurred or occurred[:10] < first_day or occurred > as_of_iso:
            return None
        net = max(int(data.get("total_amount", 0)) - int(data.get("refunded_amount", 0)), 0)
        n = 0
        for exp in (e for m in answering_for(order.member_id) for e in store.member_exposures(m)):
            if exp.day >= first_day and exp.at <= as_of_iso and _in_window(exp.at, occurred, days, as_of_iso):
                found.append((exp.attribution_key, order.order_id, net, occurred))
                n += 1
        return {"orders_attributed": 1} if n else None

    def write_found() -> dict:
        merged.clear()
        if found:
            store.save_attributions(found)
            found.clear()
        return {}

    def match() -> None:
        ctx.scan(scans.orders(), match_order, phase="match", on_page_end=write_found)

    # 3. count treatment and control per source, day and group
    def tally_exposure(exp) -> Optional[dict]:
        if exp.day < first_day or exp.at > as_of_iso or exp.group not in GROUPS:
            return None
        orders = [a for a in store.attributions_of(exp.attribution_key)
                  if _in_window(exp.at, a.occurred_at, days, as_of_iso)]
        prefix = f"{_KEY}{exp.source}|{exp.day}|{exp.group}|"
        inc = {prefix + "members": 1}
        revenue = sum(int(a.net) for a in orders)
        if any(int(a.net) > 0 for a in orders):
            inc[prefix + "converters"] = 1
        if revenue:
            inc[prefix + "revenue"] = revenue
        return inc

    def tally() -> None:
        ctx.scan(scans.exposures(), tally_exposure, phase="tally")

    # 4. coupon campaigns: the net total of the orders that redeemed their codes (SPEC 2.18)
    def coupon(red) -> Optional[dict]:
        data = dict(red.data or {})
        if red.status != "redeemed" or str(data.get("redeemed_at") or "") > as_of_iso:
            return None
        order = _order(red.order_id)
        if order is not None:
            net = max(int(order.get("total_amount", 0)) - int(order.get("refunded_amount", 0)), 0)
        else:  # no accrual recorded for the order (yet): the total the redemption was made for
            net = int(data.get("order_total") or 0)
        return {f"{_COUPON}{red.campaign_id}|orders": 1, f"{_COUPON}{red.campaign_id}|revenue": net}

    def coupons() -> None:
        ctx.scan(scans.redeemed_coupons(), coupon, phase="coupons")

    fanned = ctx.only_segment is not None
    for name, run in (("index", index), ("match", match), ("tally", tally), ("coupons", coupons)):
        run()
        if fanned:
            if not _phase_done(ctx, name):
                return  # the segment that finishes this phase last carries on and wakes this one
            if name != "coupons":
                _wake_the_others(ctx, name)
    _finish(ctx, days, first_day, as_of_iso)


def _finish(ctx, days: int, first_day: str, as_of_iso: str) -> None:
    """Every phase is done in every segment: write the results, the measurement, and (fanned
    out) the `main` checkpoints the framework completes the job on."""
    for key in [k for k in ctx.counts if k.startswith((_KEY, _COUPON))]:
        ctx.counts.pop(key)  # the job record keeps the summary only; the figures come from the checkpoints
    summary: Counter = Counter()

    coupon_counts = _summed(ctx, "coupons", _COUPON)
    for key in [k for k in coupon_counts if k.endswith("|revenue")]:
        campaign_id = key[len(_COUPON):-len("|revenue")]
        store.save_coupon_result(campaign_id, {"revenue": int(coupon_counts[key]),
                                               "orders": int(coupon_counts.get(f"{_COUPON}{campaign_id}|orders", 0)),
                                               "as_of": as_of_iso, "job_id": ctx.job_id})
        summary["coupon_campaigns"] += 1

    by_day: dict = defaultdict(lambda: {g: {"members": 0, "converters": 0, "revenue": 0} for g in GROUPS})
    for key, value in _summed(ctx, "tally", _KEY).items():
        source, day, group, field = key[len(_KEY):].rsplit("|", 3)
        by_day[(source, day)][group][field] = int(value)
    measured = {"as_of": as_of_iso, "attribution_days": days, "job_id": ctx.job_id}
    # rows the previous measurement wrote in this window and this one did not see (a
    # measurement as of an earlier time): emptied, so no figure is newer than `as_of`
    previous = store.meta() or {}
    if previous.get("job_id") != ctx.job_id:
        for row in previous.get("rows") or []:
            source, day = row.rsplit("|", 1)
            if day >= first_day and (source, day) not in by_day:
                by_day[(source, day)]  # noqa: B018 - the defaultdict's empty groups
    for (source, day), groups in by_day.items():
        store.save_result(source, day, {**groups, **measured, "source": source, "day": day})
    store.save_meta({**measured, "first_day": first_day, "measured_at": clock.iso(clock.now()),
                     "rows": sorted(f"{s}|{d}" for (s, d), g in by_day.items()
                                    if g["treatment"]["members"] or g["control"]["members"])})
    summary["results_written"] += len(by_day)
    summary["sources"] += len({s for s, _ in by_day})
    if ctx.only_segment is None:
        ctx.counts.update(summary)
    else:
        for phase, key in (("index", "exposures_indexed"), ("match", "orders_attributed")):
            summary.update(_summed(ctx, phase, key))
        for s in range(ctx.segments):
            job_store.store_checkpoint(ctx.job_id, "main", s, {"done": True, "last_key": None,
                                                               "counts": dict(summary) if s == 0 else {}})


# --- results -----------------------------------------------------------------------------

def _sum(rows: list) -> tuple[uplift.Group, uplift.Group]:
    totals = {g: Counter() for g in GROUPS}
    for row in rows:
        for g in GROUPS:
            totals[g].update({k: int(v) for k, v in (row.get(g) or {}).items()})
    return tuple(uplift.Group(t["members"], t["converters"], t["revenue"]) for t in (totals["treatment"],
                                                                                         totals["control"]))


def _measured() -> dict:
    meta = store.meta()
    if meta is None:
        raise NotFound("no measurement yet: run the measure-campaigns job", reason="not_measured")
    return meta


def _report(rows: list, meta: dict) -> dict:
    t, c = _sum(rows)
    return uplift.report(t, c, int(meta["attribution_days"]), meta["as_of"])


def campaign_results(campaign_id: str) -> dict:
    """The broadcast's report as of the last measurement; 404 for an unknown campaign or
    before any measurement."""
    if not re.fullmatch(ID_PATTERN, campaign_id) or marketing_store.get_campaign(campaign_id) is None:
        raise NotFound("no such message campaign", campaign_id=campaign_id)
    meta = _measured()
    return _report(store.results(f"campaign:{campaign_id}"), meta)


def _day(query: dict, name: str, default: date) -> date:
    raw = query.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        raise ValidationFailed(f"{name} must be a date (YYYY-MM-DD)", fields=[{"field": f"query.{name}",
                                                                              "message": "not a date"}])
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        raise ValidationFailed(f"{name} must be a date (YYYY-MM-DD)", fields=[{"field": f"query.{name}",
                                                                              "message": "not a date"}]) from None
    if not date(2000, 1, 1) <= value <= date(2099, 12, 31):
        raise ValidationFailed(f"{name} is out of range", fields=[{"field": f"query.{name}",
                                                                   "message": "2000-01-01 .. 2099-12-31"}])
    return value


def automation_results(name: str, query: dict) -> dict:
    """An automation's or trigger's report for the members it messaged or held out on the
    days `from`..`to` (inclusive; default: the 30 days up to the last measurement)."""
    if name not in DEFAULT_AUTOMATIONS:
        raise NotFound("no such automation or trigger", automation=name[:64])
    meta = _measured()
    last = clock.parse_instant(meta["as_of"]).date()
    to = _day(query, "to", last)
    first = _day(query, "from", to - timedelta(days=29))
    if first > to:
        raise ValidationFailed("from must not be after to", fields=[{"field": "query.from", "message": "after to"}])
    if (to - first).days >= MAX_RANGE_DAYS:
        raise ValidationFailed(f"the range is at most {MAX_RANGE_DAYS} days",
                               fields=[{"field": "query.from", "message": "range too long"}])
    rows = store.results(name, first.isoformat(), to.isoformat())
    return _report(rows, meta)


def with_coupon_revenue(views: list[dict]) -> list[dict]:
    """Coupon campaign views with `stats.revenue`: the net total (refunds deducted) of the
    orders that redeemed their codes, as of the last measure-campaigns job; the stats have
    no `revenue` before the first measurement."""
    if not views or store.meta() is None:
        return views
    revenue = store.coupon_revenue([v["campaign_id"] for v in views])
    for v in views:
        v["stats"] = {**v["stats"], "revenue": int(revenue.get(v["campaign_id"], 0))}
    return views
