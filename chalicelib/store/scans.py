"""The tables the jobs walk: sources for the job framework's checkpointed parallel scan
(`JobContext.scan`). A source has a model's `scan(filter_condition, segment=, total_segments=,
limit=, last_evaluated_key=, consistent_read=)`; the records it yields are read through the
store module of their table (e.g. `store.members.from_record`), so jobs name no model."""
from __future__ import annotations


class _Filtered:
    """A table scanned with a fixed filter (a job's own filter, if any, is added to it)."""

    def __init__(self, model, condition) -> None:
        self.model = model
        self.condition = condition

    def scan(self, filter_condition=None, **kwargs):
        condition = self.condition if filter_condition is None else self.condition & filter_condition
        return self.model.scan(condition, **kwargs)


def members():
    """Every member item (records: `store.members.from_record` makes them members)."""
    from chalicelib.store.models import MemberRecord

    return MemberRecord


def orders():
    """Every accrual's order record (`order_id`, `member_id`, `data`)."""
    from chalicelib.store.models import OrderRecord

    return OrderRecord


def issued_vouchers():
    """Reward redemptions whose voucher is still `issued`."""
    from chalicelib.store.rewards import RedemptionRecord

    return _Filtered(RedemptionRecord, RedemptionRecord.status == "issued")


def redeemed_coupons():
    """Coupon redemptions in force (`redeemed`)."""
    from chalicelib.store.coupons import RedemptionRecord

    return _Filtered(RedemptionRecord, RedemptionRecord.status == "redeemed")


def exposure_batches():
    """Delivery chunks' treatment and control records, not indexed yet."""
    from chalicelib.store.attribution import ExposureBatchRecord

    return ExposureBatchRecord


def exposures():
    """Every exposure record (member, source, period, group)."""
    from chalicelib.store.attribution import ExposureRecord

    return ExposureRecord
