"""PynamoDB models of control groups and attribution (SPEC 2.18). Key formats live here.

- exposure-batches: batch_id → the treatment and control records of one delivery chunk,
                    written in the same TransactWriteItems as the chunk's outreach-log
                    claims (a record exists exactly when its claim committed: the
                    `measure-campaigns` job keeps only those the member's log holds, with
                    the log's time). The job indexes them by member and deletes them.
- exposures:        member_id / `{source}#{period}` → group (treatment | control), time
                    (`at`), its day, the message id. One per member, source and period.
- attributions:     `{member_id}|{source}|{period}` / order_id → the order's net amount
                    (total − refunded) and time, for an order inside the attribution window.
                    Rewritten by every measurement (refunds change the net).
- uplift-results:   source / day → the measured counts of the exposures of that day
                    (treatment and control: members, converters, revenue); `coupon:{id}` /
                    `all` → a coupon campaign's redeemed orders and their net revenue;
                    `#measure` / `latest` → the last measurement (as_of, attribution_days).
"""
from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Iterable, Optional

from pynamodb.attributes import JSONAttribute, NumberAttribute, TTLAttribute, UnicodeAttribute

from chalicelib import clock
from chalicelib.store import tx
from chalicelib.store.base import Record

EXPOSURE_TTL = timedelta(days=400)
META_SOURCE, META_DAY = "#measure", "latest"
ALL_DAYS = "all"  # the day of a coupon campaign's row (`coupon:{campaign_id}`)


class ExposureBatchRecord(Record):
    class Meta(Record.Meta):
        resource = "exposure-batches"

    batch_id = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute()
    exposures = JSONAttribute(default=list)  # [{m, s, p, mid, g}]
    expires_at = TTLAttribute(null=True)


class ExposureRecord(Record):
    class Meta(Record.Meta):
        resource = "exposures"

    member_id = UnicodeAttribute(hash_key=True)
    key = UnicodeAttribute(range_key=True)  # {source}#{period}
    source = UnicodeAttribute()
    period = UnicodeAttribute()
    group = UnicodeAttribute()  # treatment | control
    at = UnicodeAttribute()
    day = UnicodeAttribute()
    message_id = UnicodeAttribute()
    expires_at = TTLAttribute(null=True)

    @property
    def attribution_key(self) -> str:
        return f"{self.member_id}|{self.source}|{self.period}"


class AttributionRecord(Record):
    class Meta(Record.Meta):
        resource = "attributions"

    exposure = UnicodeAttribute(hash_key=True)  # {member_id}|{source}|{period}
    order_id = UnicodeAttribute(range_key=True)
    net = NumberAttribute()
    occurred_at = UnicodeAttribute()
    expires_at = TTLAttribute(null=True)


class UpliftResultRecord(Record):
    class Meta(Record.Meta):
        resource = "uplift-results"

    source = UnicodeAttribute(hash_key=True)
    day = UnicodeAttribute(range_key=True)
    data = JSONAttribute(default=dict)


# --- exposure batches (hot path: one item in the claims' transaction) -----------------------

def exposure_batch_op(exposures: list, now) -> tx.Op:
    item = ExposureBatchRecord.to_item(batch_id="xb_" + secrets.token_hex(10), created_at=clock.iso(now),
                                       exposures=exposures, expires_at=int((now + EXPOSURE_TTL).timestamp()))
    # no condition (a fresh id): a re-sent claim whose first answer was lost writes it again alike
    return tx.put_item(ExposureBatchRecord, item)


def index_batch(batch: ExposureBatchRecord) -> int:
    """Write the batch's committed records by member (the claim's time from the member's log),
    then delete the batch. Idempotent: a crash in between writes the same items again."""
    from chalicelib.store.marketing import batch_get_outreach

    rows = list(batch.exposures or [])
    logs = batch_get_outreach(r["m"] for r in rows)
    written = 0
    with ExposureRecord.batch_write() as writer:
        for r in rows:
            log = logs.get(r["m"])
            at = (log.sent or {}).get(r["mid"]) if log else None
            if not at:
                continue  # the claim of this record did not commit (re-decided in another batch)
            writer.save(ExposureRecord(r["m"], f"{r['s']}#{r['p']}", source=r["s"], period=r["p"], group=r["g"],
                                       at=at, day=at[:10], message_id=r["mid"], expires_at=EXPOSURE_TTL))
            written += 1
    batch.delete()
    return written


def member_exposures(member_id: str) -> list[ExposureRecord]:
    return list(ExposureRecord.query(member_id, consistent_read=True))


# --- attributions ------------------------------------------------------------------------

def save_attributions(rows: Iterable[tuple[str, str, int, str]]) -> None:
    """(exposure key, order_id, net, occurred_at): puts, so a re-measurement overwrites."""
    with AttributionRecord.batch_write() as writer:
        for exposure, order_id, net, occurred_at in rows:
            writer.save(AttributionRecord(exposure, order_id, net=net, occurred_at=occurred_at,
                                          expires_at=EXPOSURE_TTL))


def attributions_of(exposure_key: str) -> list[AttributionRecord]:
    return list(AttributionRecord.query(exposure_key, consistent_read=True))


# --- results -----------------------------------------------------------------------------

def save_result(source: str, day: str, data: dict) -> None:
    UpliftResultRecord(source, day, data=data).save()


def results(source: str, first_day: Optional[str] = None, last_day: Optional[str] = None) -> list[dict]:
    cond = None
    if first_day and last_day:
        cond = UpliftResultRecord.day.between(first_day, last_day)
    return [dict(r.data) for r in UpliftResultRecord.query(source, cond, consistent_read=True)]


def _coupon_source(campaign_id: str) -> str:
    return f"coupon:{campaign_id}"


def save_coupon_result(campaign_id: str, data: dict) -> None:
    """A coupon campaign's measured orders and revenue (one row, rewritten by every measurement)."""
    save_result(_coupon_source(campaign_id), ALL_DAYS, data)


def coupon_revenue(campaign_ids: list[str]) -> dict[str, int]:
    """Coupon campaign id → the measured revenue of its redeemed orders (BatchGetItem)."""
    keys = [(_coupon_source(c), ALL_DAYS) for c in dict.fromkeys(campaign_ids)]
    out: dict[str, int] = {}
    for i in range(0, len(keys), 100):
        for rec in UpliftResultRecord.batch_get(keys[i:i + 100], consistent_read=True):
            out[rec.source.split(":", 1)[1]] = int((rec.data or {}).get("revenue", 0))
    return out


def save_meta(data: dict) -> None:
    UpliftResultRecord(META_SOURCE, META_DAY, data=data).save()


def meta() -> Optional[dict]:
    rec = UpliftResultRecord.find(META_SOURCE, META_DAY)
    return dict(rec.data) if rec else None


MODELS: list = [ExposureBatchRecord, ExposureRecord, AttributionRecord, UpliftResultRecord]
